//! Runs (for `mogplex --attach`) and their events, numbered densely per run.
//!
//! Live delivery differs by backend, and only here: on PostgreSQL an append NOTIFYs and
//! [`Db::listen_runs`] relays every process's appends; a SQLite file has one serving process,
//! which announces its own appends.

use super::{Cols, Db, DbError};
use crate::crypto::{self, now};

/// An appended event.
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    pub seq: i64,
    /// Whether [`Db::listen_runs`] hears of it (PostgreSQL); if not, the appender announces it.
    pub heard_by_listeners: bool,
}

impl Db {
    pub async fn create_run(&self, user_id: &str, title: &str) -> Result<(String, i64), DbError> {
        let id = format!("run_{}", crypto::hex(&crypto::random_bytes::<10>()));
        let t = now();
        let q = "INSERT INTO runs (id, user_id, title, created_at) VALUES ($1, $2, $3, $4)";
        execute!(self, q, &id, user_id, title, t)?;
        Ok((id, t))
    }

    /// How many runs `user_id` created since `since` (unix seconds), for the runs-per-day cap.
    pub async fn runs_created_since(&self, user_id: &str, since: i64) -> Result<i64, DbError> {
        let q = "SELECT COUNT(*) FROM runs WHERE user_id = $1 AND created_at > $2";
        Ok(fetch_optional!(self, q, [user_id, since], |r| r.int(0)).unwrap_or_default())
    }

    /// The run if `user_id` owns it: (title, created_at, event count, last sequence number).
    pub async fn run_of(
        &self,
        run_id: &str,
        user_id: &str,
    ) -> Result<Option<(String, i64, i64, i64)>, DbError> {
        let q = "SELECT r.title, r.created_at, COUNT(e.seq), COALESCE(MAX(e.seq), 0) FROM runs r \
                 LEFT JOIN run_events e ON e.run_id = r.id WHERE r.id = $1 AND r.user_id = $2 GROUP BY r.id, r.title, r.created_at";
        Ok(fetch_optional!(self, q, [run_id, user_id], |r| (
            r.text(0),
            r.int(1),
            r.int(2),
            r.int(3)
        )))
    }

    /// Appends an event and returns its sequence number. Concurrent appends to one run retry on
    /// the primary key, so numbers are dense and never shared.
    pub async fn append_run_event(&self, run_id: &str, event: &str) -> Result<Appended, DbError> {
        let q = "INSERT INTO run_events (run_id, seq, event, created_at) \
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3 FROM run_events WHERE run_id = $1 RETURNING seq";
        let mut tries = 0;
        loop {
            let _serialised = self.write_guard().await;
            let r: Result<i64, sqlx::Error> = on_pool!(self, |p| sqlx::query(q)
                .bind(run_id)
                .bind(event)
                .bind(now())
                // Stepped to the end, so a failed commit is an error (see `fetch_optional!`).
                .fetch_all(p)
                .await
                .and_then(|rows| rows
                    .first()
                    .map(|r| r.int(0))
                    .ok_or(sqlx::Error::RowNotFound)));
            match r {
                Ok(seq) => {
                    let heard_by_listeners = match self {
                        Db::Postgres(p) => {
                            postgres::notify(p, run_id, seq).await?;
                            true
                        }
                        Db::Sqlite(_) => false,
                    };
                    return Ok(Appended {
                        seq,
                        heard_by_listeners,
                    });
                }
                Err(e)
                    if tries < 20
                        && e.as_database_error()
                            .is_some_and(|d| d.is_unique_violation()) =>
                {
                    tries += 1
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Events after `after`, in order: (seq, event JSON).
    pub async fn run_events_after(
        &self,
        run_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, DbError> {
        let q = "SELECT seq, event FROM run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
        Ok(fetch_all!(self, q, [run_id, after, limit], |r| (
            r.int(0),
            r.text(1)
        )))
    }

    /// Calls `heard(run_id, seq)` for every event any server process appends, forever (a task
    /// that reconnects after an interruption). On SQLite there is nothing to listen to.
    pub fn listen_runs(&self, heard: impl Fn(&str, i64) + Send + Sync + 'static) {
        if let Db::Postgres(pool) = self {
            tokio::spawn(postgres::listen(pool.clone(), heard));
        }
    }
}

/// NOTIFY and LISTEN on the `mogplex_runs` channel, payload `run_id:seq`.
mod postgres {
    use sqlx::PgPool;
    use std::time::Duration;

    const CHANNEL: &str = "mogplex_runs";

    pub(super) async fn notify(p: &PgPool, run_id: &str, seq: i64) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{run_id}:{seq}"))
            .execute(p)
            .await?;
        Ok(())
    }

    pub(super) async fn listen(pool: PgPool, heard: impl Fn(&str, i64) + Sync) {
        loop {
            let listener = async {
                let mut l = sqlx::postgres::PgListener::connect_with(&pool).await?;
                l.listen(CHANNEL).await?;
                loop {
                    let n = l.recv().await?;
                    if let Some((run, seq)) = n.payload().rsplit_once(':')
                        && let Ok(seq) = seq.parse()
                    {
                        heard(run, seq);
                    }
                }
                #[allow(unreachable_code)]
                Ok::<(), sqlx::Error>(())
            };
            if let Err(e) = listener.await {
                tracing::warn!("run notifications interrupted ({e}); reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
