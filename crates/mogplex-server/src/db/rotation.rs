//! Refresh-token rotation as a group commit: the winning half of a refresh (the rest is
//! [`Db::settle_rotation`]) for many refreshes at once, in one transaction with their audit rows.
//!
//! Under load the cost of a refresh is mostly the trips to the database (on SQLite a hand-off
//! to sqlx's worker thread and back for every statement, on PostgreSQL a round trip and a
//! commit), not the work the database does. So the server's refreshes go through one
//! [`Batcher`] task: the rotations that arrived while the previous batch ran are rotated
//! together: one statement on PostgreSQL (a data-modifying CTE over arrays), one command on
//! SQLite (`BEGIN IMMEDIATE`, the rotation as an `UPDATE … FROM (VALUES …)` that fires the
//! `refresh_rotation` trigger, the audit rows, the winners' claims, `COMMIT`). Each refresh is
//! answered only after that commit succeeded; if the batch fails nothing of it was stored, and
//! each refresh is tried again alone, so it gets its own answer (and its own storage error).
//!
//! The rules are those of the single rotation: only an unused, unexpired token of a live family
//! bound to the named resource wins (on SQLite also of the presenting client; on PostgreSQL a
//! family presented by another client wins and its caller revokes it), at most once; a token
//! presented twice in one batch is rotated for its first presentation only, and the others go
//! on as losers (reuse or a retry inside the grace interval, decided by the caller). What a
//! winner's ID token needs (the account's claims and the sign-in's `auth_time`) comes back with
//! it, so an OpenID refresh costs no query of its own.

use super::oidc::Claims;
use super::{Cols, Db, DbError, Grant};
use crate::crypto::now;
use tokio::sync::{mpsc, oneshot};

/// Rotations one batch takes at most (SQLite binds 12 values a rotation, well under its limit).
const BATCH: usize = 64;

/// One rotation to try: the presented token's hash, its successors' hashes and expiries, the
/// presenting client, the scope of the new access token if narrowed, the resource the request
/// named, and the audit row's client address and detail (`None`: no audit row here).
#[derive(Debug, Clone)]
pub struct Rotation {
    pub token_hash: String,
    pub access_hash: String,
    pub access_expires: i64,
    pub refresh_hash: String,
    pub refresh_expires: i64,
    pub client_id: String,
    pub access_scope: Option<String>,
    pub resource: Option<String>,
    pub audit: Option<AuditNote>,
}

/// The audit row a winning rotation writes in its own transaction (`token.refreshed`, `ok`).
#[derive(Debug, Clone)]
pub struct AuditNote {
    pub client: Option<String>,
    pub detail: String,
}

/// A rotation that won: the family, what it grants, and the account's claims with the
/// sign-in's `auth_time` (for an ID token). `audited`: its audit row was written with it.
#[derive(Debug, Clone)]
pub struct Won {
    pub family_id: String,
    pub grant: Grant,
    pub claims: Option<(Claims, Option<i64>)>,
    pub audited: bool,
}

impl Db {
    /// Tries every rotation of `jobs` in one transaction: for each, `Some` if it won. The token
    /// hashes must be distinct ([`Batcher`] keeps only the first of a repeated one).
    pub async fn rotate_batch(&self, jobs: &[Rotation]) -> Result<Vec<Option<Won>>, DbError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let t = now();
        let rows = match self {
            Db::Postgres(p) => postgres::rotate(&mut *p.acquire().await?, jobs, t).await?,
            Db::Sqlite(p) => {
                let mut conn = p.acquire().await?;
                let _serialised = self.write_guard().await;
                match sqlite::rotate(&mut conn, jobs, t).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        // Perhaps stopped inside its transaction: closed (which rolls that
                        // back), never handed out again.
                        drop(conn.detach());
                        return Err(e.into());
                    }
                }
            }
        };
        Ok(place(jobs, rows))
    }

    /// The [`Batcher`]'s own connection, taken out of the pool: on PostgreSQL planned for each
    /// batch's tokens (a plan cached while the tables were small would scan them whole once
    /// they have grown: its cost is fixed when it is cached, and the index wins only for a
    /// large table; that setting on the pool would re-plan every query of the server); on
    /// SQLite with a page cache large enough to keep the pages every rotation touches.
    async fn open_lane(&self) -> Result<Lane, DbError> {
        Ok(match self {
            Db::Postgres(p) => {
                let mut c = p.acquire().await?.detach();
                sqlx::query("SET plan_cache_mode = force_custom_plan")
                    .execute(&mut c)
                    .await?;
                Lane::Postgres(c)
            }
            Db::Sqlite(p) => {
                let mut c = p.acquire().await?.detach();
                sqlx::query("PRAGMA cache_size = -16384")
                    .execute(&mut c)
                    .await?;
                Lane::Sqlite(c)
            }
        })
    }

    /// [`Db::rotate_batch`] on the [`Batcher`]'s connection `lane` (opened when `None`,
    /// dropped after a failure, which closes it and so rolls back whatever it left open).
    async fn rotate_on(
        &self,
        lane: &mut Option<Lane>,
        jobs: &[Rotation],
    ) -> Result<Vec<Option<Won>>, DbError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let conn = match lane {
            Some(c) => c,
            None => lane.insert(self.open_lane().await?),
        };
        let t = now();
        let rows = match conn {
            Lane::Postgres(c) => postgres::rotate(c, jobs, t).await,
            Lane::Sqlite(c) => {
                let _serialised = self.write_guard().await;
                sqlite::rotate(c, jobs, t).await
            }
        };
        match rows {
            Ok(rows) => Ok(place(jobs, rows)),
            Err(e) => {
                *lane = None;
                Err(e.into())
            }
        }
    }
}

/// A connection of the [`Batcher`]'s own.
enum Lane {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

/// Each job's winner, by the token hash it rotated.
fn place(jobs: &[Rotation], rows: Vec<(String, Won)>) -> Vec<Option<Won>> {
    let mut out: Vec<Option<Won>> = vec![None; jobs.len()];
    for (hash, won) in rows {
        if let Some(i) = jobs.iter().position(|j| j.token_hash == hash) {
            out[i] = Some(Won {
                audited: jobs[i].audit.is_some() && won.grant.client_id == jobs[i].client_id,
                ..won
            });
        }
    }
    out
}

/// A winner's row: the token hash it rotated, the family, the grant, the claims.
fn won<R: Cols>(r: &R) -> (String, Won) {
    let claims = r.text_opt(5).map(|email| Claims {
        id: r.text(2),
        email,
        name: r.text_opt(6).unwrap_or_default(),
        email_verified: r.int_opt(7).unwrap_or(0) != 0,
    });
    (
        r.text(0),
        Won {
            family_id: r.text(1),
            grant: Grant {
                user_id: r.text(2),
                client_id: r.text(3),
                scope: r.text(4),
            },
            claims: claims.map(|c| (c, r.int_opt(8))),
            audited: false,
        },
    )
}

mod postgres {
    use super::{Rotation, Won};
    use sqlx::PgConnection;

    /// The batch as one statement over arrays (one round trip, one commit). `token_hash =
    /// ANY($2)` beside the join lets the planner look the tokens up by their index: joined only
    /// to `unnest`, whose size it cannot know, it scanned the whole table (a rate that fell as
    /// the table grew). The rows answered
    /// are the winners, whatever their client: the caller revokes a family of another client,
    /// for which no tokens and no audit row were written.
    const ROTATE: &str = "WITH v AS ( \
           SELECT * FROM unnest($2::text[], $3::text[], $4::int8[], $5::text[], $6::int8[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[]) \
             AS v(h, ah, ae, rh, re, cid, sc, res, ip, detail)), \
         won AS ( \
           UPDATE refresh_tokens r SET used_at = $1, next_access_hash = v.ah, next_refresh_hash = v.rh, next_access_scope = v.sc \
           FROM v WHERE r.token_hash = v.h AND r.token_hash = ANY($2) AND r.used_at IS NULL AND r.expires_at > $1 \
             AND r.family_id = (SELECT f.id FROM token_families f WHERE f.id = r.family_id \
               AND f.revoked_at IS NULL AND f.resource IS NOT DISTINCT FROM v.res) \
           RETURNING r.token_hash, r.family_id, v.ah, v.ae, v.rh, v.re, v.cid, v.sc, v.ip, v.detail), \
         fam AS (SELECT won.*, f.user_id, f.client_id, f.scope FROM won JOIN token_families f ON f.id = won.family_id), \
         at AS (INSERT INTO access_tokens (token_hash, family_id, user_id, scope, expires_at) \
               SELECT ah, family_id, user_id, COALESCE(sc, scope), ae FROM fam WHERE client_id = cid), \
         rt AS (INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) \
               SELECT rh, family_id, $1, re FROM fam WHERE client_id = cid), \
         log AS (INSERT INTO audit_log (at, kind, outcome, user_id, email, client, detail) \
               SELECT $1, 'token.refreshed', 'ok', user_id, NULL, ip, detail FROM fam WHERE client_id = cid AND detail IS NOT NULL) \
         SELECT fam.token_hash, fam.family_id, fam.user_id, fam.client_id, fam.scope, u.email, u.name, u.email_verified, \
           (SELECT o.auth_time FROM oidc_auth o WHERE o.family_id = fam.family_id LIMIT 1) \
         FROM fam LEFT JOIN users u ON u.id = fam.user_id";

    pub(super) async fn rotate(
        p: &mut PgConnection,
        jobs: &[Rotation],
        t: i64,
    ) -> Result<Vec<(String, Won)>, sqlx::Error> {
        let col = |f: fn(&Rotation) -> Option<String>| jobs.iter().map(f).collect::<Vec<_>>();
        let int = |f: fn(&Rotation) -> i64| jobs.iter().map(f).collect::<Vec<_>>();
        let mut tries = 0;
        loop {
            let r = sqlx::query(ROTATE)
                .bind(t)
                .bind(col(|j| Some(j.token_hash.clone())))
                .bind(col(|j| Some(j.access_hash.clone())))
                .bind(int(|j| j.access_expires))
                .bind(col(|j| Some(j.refresh_hash.clone())))
                .bind(int(|j| j.refresh_expires))
                .bind(col(|j| Some(j.client_id.clone())))
                .bind(col(|j| j.access_scope.clone()))
                .bind(col(|j| j.resource.clone()))
                .bind(col(|j| j.audit.as_ref().and_then(|a| a.client.clone())))
                .bind(col(|j| j.audit.as_ref().map(|a| a.detail.clone())))
                .fetch_all(&mut *p)
                .await;
            match r {
                Ok(rows) => return Ok(rows.iter().map(super::won).collect()),
                // Two processes' batches that lock the same tokens in another order: PostgreSQL
                // aborts one; it changed nothing, so it runs again.
                Err(sqlx::Error::Database(d))
                    if tries < 3
                        && matches!(d.code().as_deref(), Some("40P01") | Some("40001")) =>
                {
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

mod sqlite {
    use super::{Rotation, Won};
    use sqlx::SqliteConnection;
    use std::fmt::Write;

    /// The rotations as a `VALUES` list: `$1` is now, then 10 values a rotation.
    fn values(n: usize) -> String {
        let mut s = String::from("WITH v(h, ah, ae, rh, re, cid, sc, res, ip, detail) AS (VALUES ");
        for i in 0..n {
            let b = 2 + i * 10;
            let _ = write!(
                s,
                "{}(${b}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                if i == 0 { "" } else { ", " },
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9
            );
        }
        s.push_str(") ");
        s
    }

    /// The whole batch as one command (one hand-off to the connection's worker thread). The
    /// winners are the presented tokens whose successor is now this rotation's.
    fn command(n: usize) -> String {
        let v = values(n);
        format!(
            "BEGIN IMMEDIATE; \
             {v}UPDATE refresh_tokens SET used_at = $1, next_access_hash = v.ah, next_access_expires = v.ae, \
               next_refresh_hash = v.rh, next_refresh_expires = v.re, next_access_scope = v.sc \
             FROM v WHERE refresh_tokens.token_hash = v.h AND refresh_tokens.used_at IS NULL AND refresh_tokens.expires_at > $1 \
               AND EXISTS (SELECT 1 FROM token_families f WHERE f.id = refresh_tokens.family_id \
                 AND f.revoked_at IS NULL AND f.client_id = v.cid AND f.resource IS v.res); \
             {v}INSERT INTO audit_log (at, kind, outcome, user_id, email, client, detail) \
               SELECT $1, 'token.refreshed', 'ok', f.user_id, NULL, v.ip, v.detail FROM v \
               JOIN refresh_tokens r ON r.token_hash = v.h AND r.next_refresh_hash = v.rh \
               JOIN token_families f ON f.id = r.family_id WHERE v.detail IS NOT NULL; \
             {v}SELECT v.h, f.id, f.user_id, f.client_id, f.scope, u.email, u.name, u.email_verified, \
               (SELECT o.auth_time FROM oidc_auth o WHERE o.family_id = f.id LIMIT 1) FROM v \
               JOIN refresh_tokens r ON r.token_hash = v.h AND r.next_refresh_hash = v.rh \
               JOIN token_families f ON f.id = r.family_id LEFT JOIN users u ON u.id = f.user_id; \
             COMMIT;"
        )
    }

    pub(super) async fn rotate(
        c: &mut SqliteConnection,
        jobs: &[Rotation],
        t: i64,
    ) -> Result<Vec<(String, Won)>, sqlx::Error> {
        let sql = command(jobs.len());
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(t);
        for j in jobs {
            q = q
                .bind(j.token_hash.clone())
                .bind(j.access_hash.clone())
                .bind(j.access_expires)
                .bind(j.refresh_hash.clone())
                .bind(j.refresh_expires)
                .bind(j.client_id.clone())
                .bind(j.access_scope.clone())
                .bind(j.resource.clone())
                .bind(j.audit.as_ref().and_then(|a| a.client.clone()))
                .bind(j.audit.as_ref().map(|a| a.detail.clone()));
        }
        // If it fails, the caller closes the connection: the command may have stopped inside
        // its transaction.
        Ok(q.fetch_all(&mut *c).await?.iter().map(super::won).collect())
    }
}

/// What a job's waiter is told: its result, or that the batch failed (try alone).
type Answer = Result<Option<Won>, ()>;

/// The server's way to rotate: a group commit (see the module header).
#[derive(Debug, Clone)]
pub struct Batcher {
    db: Db,
    tx: mpsc::Sender<(Rotation, oneshot::Sender<Answer>)>,
}

impl Batcher {
    /// Starts the batching task for `db` (on the current runtime).
    pub fn start(db: Db) -> Self {
        let (tx, mut rx) = mpsc::channel::<(Rotation, oneshot::Sender<Answer>)>(4096);
        let worker = db.clone();
        tokio::spawn(async move {
            let mut lane = None;
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let (mut jobs, waiting): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut batch).into_iter().unzip();
                // A token presented twice: only its first presentation takes part.
                let mut first = vec![true; jobs.len()];
                for i in 1..jobs.len() {
                    first[i] = !jobs[..i].iter().any(|j| j.token_hash == jobs[i].token_hash);
                }
                let taking: Vec<Rotation> = jobs
                    .drain(..)
                    .zip(&first)
                    .filter_map(|(j, f)| f.then_some(j))
                    .collect();
                let results = worker.rotate_on(&mut lane, &taking).await;
                let mut results = results.map(Vec::into_iter);
                for (w, f) in waiting.into_iter().zip(first) {
                    let answer = match (&mut results, f) {
                        (Ok(r), true) => Ok(r.next().flatten()),
                        (Ok(_), false) => Ok(None),
                        (Err(_), _) => Err(()),
                    };
                    let _ = w.send(answer);
                }
                if let Err(e) = results {
                    tracing::warn!("a batch of refresh rotations failed; retrying each alone: {e}");
                }
            }
        });
        Self { db, tx }
    }

    /// Tries `job` with the others waiting now; `Some` if it won.
    pub async fn rotate(&self, job: Rotation) -> Result<Option<Won>, DbError> {
        let (done, answer) = oneshot::channel();
        if self.tx.send((job.clone(), done)).await.is_ok()
            && let Ok(Ok(won)) = answer.await
        {
            return Ok(won);
        }
        // The batch failed (nothing of it was stored) or the task is gone: alone.
        let mut alone = self.db.rotate_batch(std::slice::from_ref(&job)).await?;
        Ok(alone.pop().flatten())
    }
}
