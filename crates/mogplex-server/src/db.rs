//! Storage: one interface, SQLite or PostgreSQL behind it.
//!
//! Every query is written once with `$N` placeholders (both drivers bind `$N` by number) and
//! portable types (TEXT, 64-bit integers for unix seconds), and runs on whichever pool the
//! database URL chose. Each backend has its own migrations. Everything that must hold across
//! several server processes (code redemption, refresh rotation, throttling, device approval) is a
//! single conditional UPDATE or a transaction here, never state in memory.

use crate::crypto::{self, now};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Row, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL must start with sqlite:// or postgres:// (got `{0}`)")]
    BadUrl(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// Runs a statement with its binds on whichever pool is in use: `Result<u64>`, the rows changed.
macro_rules! execute {
    ($db:expr, $q:expr $(, $arg:expr)* $(,)?) => {
        on_pool!($db, |p| sqlx::query($q)$(.bind($arg))*.execute(p).await.map(|r| r.rows_affected()))
    };
}

/// Runs the same expression against whichever pool is in use.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../migrations/sqlite/0002_rotation_trigger.sql"),
    ),
    (
        3,
        include_str!("../migrations/sqlite/0003_plans_models.sql"),
    ),
    (4, include_str!("../migrations/sqlite/0004_mcp_servers.sql")),
    (5, include_str!("../migrations/sqlite/0005_runs.sql")),
];
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_plans_models.sql"),
    ),
    (
        3,
        include_str!("../migrations/postgres/0003_mcp_servers.sql"),
    ),
    (4, include_str!("../migrations/postgres/0004_runs.sql")),
];
/// Serialises migrations when several processes start at once on one PostgreSQL.
const MIGRATION_LOCK: i64 = 0x006d_6f67_706c_6578;

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Grant {
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
}

#[derive(Debug, Clone)]
pub struct CodeRow {
    pub user_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub expires_at: i64,
}

/// What a refresh-token presentation found.
#[derive(Debug)]
pub enum Refresh {
    /// Rotated: the family and what the old token granted.
    Rotated { family_id: String, grant: Grant },
    /// Already used: reuse. The family has been revoked.
    Reused,
    /// Unknown, expired, or its family revoked.
    Invalid,
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub scope: String,
    /// The SHA-256 of the bearer, for per-token limits.
    pub token_hash: String,
}

#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub client_id: String,
    pub scope: String,
    pub expires_at: i64,
    pub interval_secs: i64,
    pub last_polled_at: Option<i64>,
    pub status: String,
    pub user_id: Option<String>,
}

/// A model: its catalog entry and where requests for it go.
#[derive(Debug, Clone)]
pub struct ModelRow {
    pub slug: String,
    pub provider: String,
    pub display_name: String,
    /// The catalog entry, JSON of `mogplex_protocol::CliModel`.
    pub spec: String,
    /// `echo` or `openai` (an OpenAI-compatible upstream).
    pub upstream_kind: String,
    pub upstream_base_url: Option<String>,
    /// The name of the server-side environment variable holding the upstream key (never the key).
    pub upstream_key_env: Option<String>,
    pub upstream_model: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PatRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Db {
    /// Connects to `sqlite://PATH` (created if missing, WAL) or `postgres://…`, and migrates.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        let db = if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            Db::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(opts)
                    .await?,
            )
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            Db::Postgres(
                PgPoolOptions::new()
                    .max_connections(16)
                    // A ping before every query doubles the round trips of the bearer check;
                    // broken connections surface as errors on use instead.
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await?,
            )
        } else {
            return Err(DbError::BadUrl(url.to_owned()));
        };
        db.migrate().await?;
        Ok(db)
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    async fn migrate(&self) -> Result<(), DbError> {
        const CREATE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";
        match self {
            Db::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                let result: Result<(), sqlx::Error> = async {
                    sqlx::query(CREATE).execute(&mut *conn).await?;
                    for (version, sql) in SQLITE_MIGRATIONS {
                        let done = sqlx::query("SELECT 1 FROM schema_migrations WHERE version = $1")
                            .bind(version)
                            .fetch_optional(&mut *conn)
                            .await?;
                        if done.is_none() {
                            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql)).execute(&mut *conn).await?;
                            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                                .bind(version)
                                .bind(now())
                                .execute(&mut *conn)
                                .await?;
                        }
                    }
                    Ok(())
                }
                .await;
                let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
                sqlx::query(end).execute(&mut *conn).await?;
                result?;
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATION_LOCK)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(CREATE).execute(&mut *tx).await?;
                for (version, sql) in POSTGRES_MIGRATIONS {
                    let done = sqlx::query("SELECT 1 FROM schema_migrations WHERE version = $1")
                        .bind(version)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if done.is_none() {
                        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query(
                            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                        )
                        .bind(version)
                        .bind(now())
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    // ----- users -----

    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        password_hash: &str,
    ) -> Result<User, DbError> {
        let user = User {
            id: crypto::id("usr_"),
            email: email.to_owned(),
            name: name.to_owned(),
            created_at: now(),
        };
        let q = "INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)";
        execute!(
            self,
            q,
            &user.id,
            &user.email,
            &user.name,
            password_hash,
            user.created_at
        )?;
        Ok(user)
    }

    pub async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<(), DbError> {
        let q = "UPDATE users SET password_hash = $1 WHERE id = $2";
        execute!(self, q, password_hash, user_id)?;
        Ok(())
    }

    /// The user and their password hash.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>, DbError> {
        let q = "SELECT id, email, name, created_at, password_hash FROM users WHERE email = $1";
        let row = on_pool!(self, |p| {
            sqlx::query(q)
                .bind(email)
                .fetch_optional(p)
                .await?
                .map(|r| (r.user(), r.get::<String, _>(4)))
        });
        Ok(row)
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, DbError> {
        let q = "SELECT id, email, name, created_at FROM users WHERE id = $1";
        Ok(on_pool!(self, |p| sqlx::query(q)
            .bind(id)
            .fetch_optional(p)
            .await?
            .map(|r| r.user())))
    }

    // ----- browser sessions -----

    pub async fn create_web_session(
        &self,
        token: &str,
        user_id: &str,
        ttl: i64,
    ) -> Result<(), DbError> {
        let q = "INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
        let t = now();
        execute!(self, q, crypto::hash(token), user_id, t, t + ttl)?;
        Ok(())
    }

    pub async fn web_session_user(&self, token: &str) -> Result<Option<User>, DbError> {
        let q = "SELECT u.id, u.email, u.name, u.created_at FROM web_sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = $1 AND s.expires_at > $2";
        Ok(on_pool!(self, |p| sqlx::query(q)
            .bind(crypto::hash(token))
            .bind(now())
            .fetch_optional(p)
            .await?
            .map(|r| r.user())))
    }

    pub async fn delete_web_session(&self, token: &str) -> Result<(), DbError> {
        let q = "DELETE FROM web_sessions WHERE token_hash = $1";
        execute!(self, q, crypto::hash(token))?;
        Ok(())
    }

    // ----- throttling -----

    /// Counts one event for `key` in a fixed window of `window` seconds; returns the count so far
    /// and when the window ends.
    pub async fn throttle_hit(&self, key: &str, window: i64) -> Result<(i64, i64), DbError> {
        let t = now();
        let q = "INSERT INTO throttle (key, window_start, count) VALUES ($1, $2, 1) \
                 ON CONFLICT (key) DO UPDATE SET \
                   count = CASE WHEN throttle.window_start <= $3 THEN 1 ELSE throttle.count + 1 END, \
                   window_start = CASE WHEN throttle.window_start <= $3 THEN $2 ELSE throttle.window_start END \
                 RETURNING count, window_start";
        let (count, start): (i64, i64) = on_pool!(self, |p| {
            let r = sqlx::query(q)
                .bind(key)
                .bind(t)
                .bind(t - window)
                .fetch_one(p)
                .await?;
            (r.get(0), r.get(1))
        });
        Ok((count, start + window))
    }

    /// The count in the current window, and when it ends.
    pub async fn throttle_count(&self, key: &str, window: i64) -> Result<(i64, i64), DbError> {
        let q = "SELECT count, window_start FROM throttle WHERE key = $1 AND window_start > $2";
        let t = now();
        Ok(on_pool!(self, |p| sqlx::query(q)
            .bind(key)
            .bind(t - window)
            .fetch_optional(p)
            .await?
            .map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1) + window))
            .unwrap_or((0, t))))
    }

    pub async fn throttle_clear(&self, key: &str) -> Result<(), DbError> {
        execute!(self, "DELETE FROM throttle WHERE key = $1", key)?;
        Ok(())
    }

    // ----- authorization codes -----

    pub async fn create_code(&self, code: &str, row: &CodeRow) -> Result<(), DbError> {
        let q = "INSERT INTO auth_codes (code_hash, user_id, client_id, redirect_uri, code_challenge, scope, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)";
        execute!(
            self,
            q,
            crypto::hash(code),
            &row.user_id,
            &row.client_id,
            &row.redirect_uri,
            &row.code_challenge,
            &row.scope,
            row.expires_at
        )?;
        Ok(())
    }

    /// Marks the code used, atomically, binding it to a new token family. `Ok(Some)` for exactly
    /// one caller; a second presentation gets `Ok(None)` and the family the code issued (if any)
    /// is revoked.
    pub async fn redeem_code(
        &self,
        code: &str,
        family_id: &str,
    ) -> Result<Option<CodeRow>, DbError> {
        let h = crypto::hash(code);
        let t = now();
        let q = "UPDATE auth_codes SET used_at = $1, family_id = $2 WHERE code_hash = $3 AND used_at IS NULL \
                 RETURNING user_id, client_id, redirect_uri, code_challenge, scope, expires_at";
        let row = on_pool!(self, |p| sqlx::query(q)
            .bind(t)
            .bind(family_id)
            .bind(&h)
            .fetch_optional(p)
            .await?
            .map(|r| CodeRow {
                user_id: r.get(0),
                client_id: r.get(1),
                redirect_uri: r.get(2),
                code_challenge: r.get(3),
                scope: r.get(4),
                expires_at: r.get(5),
            }));
        if row.is_none() {
            // A replay: revoke whatever the code issued. The family row may not be committed yet
            // if the first redemption is still running, so revoke by upsert.
            let q =
                "SELECT family_id, user_id, client_id, scope FROM auth_codes WHERE code_hash = $1";
            let found: Option<(Option<String>, String, String, String)> =
                on_pool!(self, |p| sqlx::query(q)
                    .bind(&h)
                    .fetch_optional(p)
                    .await?
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))));
            if let Some((Some(fid), user_id, client_id, scope)) = found {
                let q = "INSERT INTO token_families (id, user_id, client_id, scope, created_at, revoked_at) \
                         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO UPDATE SET revoked_at = $5";
                execute!(self, q, fid, user_id, client_id, scope, t)?;
            }
        }
        Ok(row)
    }

    // ----- token families, access and refresh tokens -----

    /// Creates the family and its first tokens. If a replay of the code got in first, the family
    /// row already exists, revoked, and stays so: the tokens issued here are dead on arrival, as
    /// the replay rule demands.
    pub async fn start_family(
        &self,
        family_id: &str,
        grant: &Grant,
        access: &str,
        access_expires: i64,
        refresh: &str,
        refresh_expires: i64,
    ) -> Result<(), DbError> {
        let q = "INSERT INTO token_families (id, user_id, client_id, scope, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO NOTHING";
        execute!(
            self,
            q,
            family_id,
            &grant.user_id,
            &grant.client_id,
            &grant.scope,
            now()
        )?;
        self.issue_tokens(
            family_id,
            grant,
            access,
            access_expires,
            refresh,
            refresh_expires,
        )
        .await
    }

    async fn issue_tokens(
        &self,
        family_id: &str,
        grant: &Grant,
        access: &str,
        access_expires: i64,
        refresh: &str,
        refresh_expires: i64,
    ) -> Result<(), DbError> {
        let t = now();
        let qa = "INSERT INTO access_tokens (token_hash, family_id, user_id, scope, expires_at) VALUES ($1, $2, $3, $4, $5)";
        let qr = "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
        execute!(
            self,
            qa,
            crypto::hash(access),
            family_id,
            &grant.user_id,
            &grant.scope,
            access_expires
        )?;
        execute!(
            self,
            qr,
            crypto::hash(refresh),
            family_id,
            t,
            refresh_expires
        )?;
        Ok(())
    }

    /// Rotates a refresh token: exactly one presentation of a token wins; any later one is reuse
    /// and revokes the whole family. The winner's rotation is one statement (one round trip, one
    /// commit): a data-modifying CTE on PostgreSQL, a trigger on SQLite.
    pub async fn rotate_refresh(
        &self,
        refresh: &str,
        client_id: &str,
        new_access: &str,
        access_expires: i64,
        new_refresh: &str,
        refresh_expires: i64,
    ) -> Result<Refresh, DbError> {
        let h = crypto::hash(refresh);
        let t = now();
        // Winning needs an unused, unexpired token of a live family, checked in one statement, so
        // exactly one concurrent presentation wins (later ones are reuse, whatever they race).
        let _serialised = self.write_guard().await;
        let rotated: Option<(String, Grant)> = match self {
            // One statement (one round trip, one commit): PostgreSQL allows data-modifying CTEs.
            Db::Postgres(p) => {
                let q = "WITH won AS ( \
                           UPDATE refresh_tokens SET used_at = $1 \
                           WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
                             AND family_id IN (SELECT id FROM token_families WHERE revoked_at IS NULL) \
                           RETURNING family_id), \
                         fam AS (SELECT f.id, f.user_id, f.client_id, f.scope FROM token_families f JOIN won ON won.family_id = f.id), \
                         a AS (INSERT INTO access_tokens (token_hash, family_id, user_id, scope, expires_at) \
                               SELECT $3, id, user_id, scope, $4 FROM fam WHERE client_id = $7), \
                         r AS (INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) \
                               SELECT $5, id, $1, $6 FROM fam WHERE client_id = $7) \
                         SELECT id, user_id, client_id, scope FROM fam";
                let row = sqlx::query(q)
                    .bind(t)
                    .bind(&h)
                    .bind(crypto::hash(new_access))
                    .bind(access_expires)
                    .bind(crypto::hash(new_refresh))
                    .bind(refresh_expires)
                    .bind(client_id)
                    .fetch_optional(p)
                    .await?;
                match row {
                    Some(r) => {
                        let family_id: String = r.get(0);
                        let grant = Grant {
                            user_id: r.get(1),
                            client_id: r.get(2),
                            scope: r.get(3),
                        };
                        if grant.client_id == client_id {
                            Some((family_id, grant))
                        } else {
                            self.revoke_family(&family_id).await?;
                            None
                        }
                    }
                    None => None,
                }
            }
            // SQLite has no data-modifying CTEs: the winning UPDATE carries the new hashes and
            // the `refresh_rotation` trigger inserts the new tokens (migration 0002).
            Db::Sqlite(p) => {
                let q = "UPDATE refresh_tokens SET used_at = $1, next_access_hash = $3, next_access_expires = $4, \
                           next_refresh_hash = $5, next_refresh_expires = $6 \
                         WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
                           AND family_id IN (SELECT id FROM token_families WHERE revoked_at IS NULL AND client_id = $7) \
                         RETURNING family_id, \
                           (SELECT user_id FROM token_families f WHERE f.id = family_id), \
                           (SELECT client_id FROM token_families f WHERE f.id = family_id), \
                           (SELECT scope FROM token_families f WHERE f.id = family_id)";
                sqlx::query(q)
                    .bind(t)
                    .bind(&h)
                    .bind(crypto::hash(new_access))
                    .bind(access_expires)
                    .bind(crypto::hash(new_refresh))
                    .bind(refresh_expires)
                    .bind(client_id)
                    .fetch_optional(p)
                    .await?
                    .map(|r| {
                        (
                            r.get(0),
                            Grant {
                                user_id: r.get(1),
                                client_id: r.get(2),
                                scope: r.get(3),
                            },
                        )
                    })
            }
        };
        drop(_serialised);
        if let Some((family_id, grant)) = rotated {
            return Ok(Refresh::Rotated { family_id, grant });
        }
        let q = "SELECT family_id, used_at FROM refresh_tokens WHERE token_hash = $1";
        let seen: Option<(String, Option<i64>)> = on_pool!(self, |p| sqlx::query(q)
            .bind(&h)
            .fetch_optional(p)
            .await?
            .map(|r| (r.get(0), r.get(1))));
        Ok(match seen {
            Some((family, Some(_))) => {
                self.revoke_family(&family).await?;
                Refresh::Reused
            }
            _ => Refresh::Invalid,
        })
    }

    /// SQLite allows one writer at a time and makes the others sleep and retry; serialising this
    /// process's writers on an async lock is much faster than letting them collide. (Several
    /// processes on one SQLite file still coordinate through SQLite's own lock.)
    async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'static, ()>> {
        static SQLITE_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        match self {
            Db::Sqlite(_) => Some(SQLITE_WRITES.lock().await),
            Db::Postgres(_) => None,
        }
    }

    pub async fn revoke_family(&self, family_id: &str) -> Result<(), DbError> {
        let q = "UPDATE token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
        execute!(self, q, now(), family_id)?;
        Ok(())
    }

    /// RFC 7009: a refresh token revokes its family (and so its access tokens); an access token
    /// revokes itself. Unknown tokens are not an error.
    pub async fn revoke_token(&self, token: &str) -> Result<(), DbError> {
        let h = crypto::hash(token);
        let q = "SELECT family_id FROM refresh_tokens WHERE token_hash = $1";
        let fam: Option<String> = on_pool!(self, |p| sqlx::query(q)
            .bind(&h)
            .fetch_optional(p)
            .await?
            .map(|r| r.get(0)));
        if let Some(f) = fam {
            return self.revoke_family(&f).await;
        }
        let q =
            "UPDATE access_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL";
        execute!(self, q, now(), &h)?;
        Ok(())
    }

    /// The bearer check: an unexpired, unrevoked access token or personal access token.
    pub async fn principal(&self, bearer: &str) -> Result<Option<Principal>, DbError> {
        let h = crypto::hash(bearer);
        let t = now();
        let q = if crypto::is_personal_access_token(bearer) {
            "SELECT user_id, 'openid profile email offline_access read write' FROM personal_access_tokens \
             WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"
        } else {
            "SELECT a.user_id, a.scope FROM access_tokens a JOIN token_families f ON f.id = a.family_id \
             WHERE a.token_hash = $1 AND a.expires_at > $2 AND a.revoked_at IS NULL AND f.revoked_at IS NULL"
        };
        Ok(on_pool!(self, |p| sqlx::query(q)
            .bind(&h)
            .bind(t)
            .fetch_optional(p)
            .await?
            .map(|r| Principal {
                user_id: r.get(0),
                scope: r.get(1),
                token_hash: h.clone()
            })))
    }

    // ----- device authorization -----

    pub async fn create_device_code(
        &self,
        device_code: &str,
        user_code: &str,
        client_id: &str,
        scope: &str,
        expires_at: i64,
        interval: i64,
    ) -> Result<(), DbError> {
        let q = "INSERT INTO device_codes (device_code_hash, user_code_hash, client_id, scope, expires_at, interval_secs, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending')";
        execute!(
            self,
            q,
            crypto::hash(device_code),
            crypto::hash(user_code),
            client_id,
            scope,
            expires_at,
            interval
        )?;
        Ok(())
    }

    fn device_row(r: impl Row + RowExt) -> DeviceRow {
        r.device()
    }

    pub async fn device_by_user_code(&self, user_code: &str) -> Result<Option<DeviceRow>, DbError> {
        let q = "SELECT client_id, scope, expires_at, interval_secs, last_polled_at, status, user_id FROM device_codes WHERE user_code_hash = $1";
        Ok(on_pool!(self, |p| sqlx::query(q)
            .bind(crypto::hash(user_code))
            .fetch_optional(p)
            .await?
            .map(Self::device_row)))
    }

    /// Approves or denies a pending, unexpired code. Returns whether it changed.
    pub async fn decide_device(
        &self,
        user_code: &str,
        user_id: &str,
        approve: bool,
    ) -> Result<bool, DbError> {
        let q = "UPDATE device_codes SET status = $1, user_id = $2 WHERE user_code_hash = $3 AND status = 'pending' AND expires_at > $4";
        let status = if approve { "approved" } else { "denied" };
        let n = execute!(self, q, status, user_id, crypto::hash(user_code), now())?;
        Ok(n == 1)
    }

    /// Records a poll and returns the row as it was before it (so the caller can apply
    /// `slow_down`). A poll that comes too early also widens the interval by 5 seconds.
    pub async fn poll_device(&self, device_code: &str) -> Result<Option<DeviceRow>, DbError> {
        let h = crypto::hash(device_code);
        let q = "SELECT client_id, scope, expires_at, interval_secs, last_polled_at, status, user_id FROM device_codes WHERE device_code_hash = $1";
        let Some(row) = on_pool!(self, |p| sqlx::query(q)
            .bind(&h)
            .fetch_optional(p)
            .await?
            .map(Self::device_row))
        else {
            return Ok(None);
        };
        let t = now();
        let too_fast = row
            .last_polled_at
            .is_some_and(|last| t - last < row.interval_secs);
        let q = if too_fast {
            "UPDATE device_codes SET last_polled_at = $1, interval_secs = interval_secs + 5 WHERE device_code_hash = $2"
        } else {
            "UPDATE device_codes SET last_polled_at = $1 WHERE device_code_hash = $2"
        };
        execute!(self, q, t, &h)?;
        Ok(Some(row))
    }

    /// Moves an approved code to redeemed, once.
    pub async fn redeem_device(&self, device_code: &str, family_id: &str) -> Result<bool, DbError> {
        let q = "UPDATE device_codes SET status = 'redeemed', family_id = $1 WHERE device_code_hash = $2 AND status = 'approved'";
        let n = execute!(self, q, family_id, crypto::hash(device_code))?;
        Ok(n == 1)
    }

    // ----- models and plans -----

    /// Adds or replaces a model. `spec` is its catalog entry (JSON of `CliModel`).
    pub async fn upsert_model(&self, m: &ModelRow) -> Result<(), DbError> {
        let q = "INSERT INTO models (slug, provider, display_name, spec, upstream_kind, upstream_base_url, upstream_key_env, upstream_model, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (slug) DO UPDATE SET provider = $2, display_name = $3, spec = $4, upstream_kind = $5, \
                   upstream_base_url = $6, upstream_key_env = $7, upstream_model = $8";
        execute!(
            self,
            q,
            &m.slug,
            &m.provider,
            &m.display_name,
            &m.spec,
            &m.upstream_kind,
            &m.upstream_base_url,
            &m.upstream_key_env,
            &m.upstream_model,
            now()
        )?;
        Ok(())
    }

    /// Creates a plan (or finds it by name) and sets its models. `Ok(Err(slug))` names a model
    /// that does not exist (nothing is changed then).
    pub async fn set_plan(
        &self,
        name: &str,
        models: &[String],
    ) -> Result<Result<String, String>, DbError> {
        for slug in models {
            if self.model(slug).await?.is_none() {
                return Ok(Err(slug.clone()));
            }
        }
        let id = match self.plan_id(name).await? {
            Some(id) => id,
            None => {
                let id = crypto::id("plan_");
                let q = "INSERT INTO plans (id, name, created_at) VALUES ($1, $2, $3)";
                execute!(self, q, &id, name, now())?;
                id
            }
        };
        execute!(self, "DELETE FROM plan_models WHERE plan_id = $1", &id)?;
        for slug in models {
            let q = "INSERT INTO plan_models (plan_id, model_slug) VALUES ($1, $2) ON CONFLICT DO NOTHING";
            execute!(self, q, &id, slug)?;
        }
        Ok(Ok(id))
    }

    pub async fn plan_id(&self, name: &str) -> Result<Option<String>, DbError> {
        let q = "SELECT id FROM plans WHERE name = $1";
        Ok(on_pool!(self, |p| sqlx::query(q)
            .bind(name)
            .fetch_optional(p)
            .await?
            .map(|r| r.get(0))))
    }

    /// Gives a user a plan (`None`: no plan). Returns false when the user does not exist.
    pub async fn assign_plan(&self, user_id: &str, plan_id: Option<&str>) -> Result<bool, DbError> {
        let q = "UPDATE users SET plan_id = $1 WHERE id = $2";
        let n = execute!(self, q, plan_id, user_id)?;
        Ok(n == 1)
    }

    pub async fn model(&self, slug: &str) -> Result<Option<ModelRow>, DbError> {
        let q = "SELECT slug, provider, display_name, spec, upstream_kind, upstream_base_url, upstream_key_env, upstream_model FROM models WHERE slug = $1";
        Ok(on_pool!(self, |p| sqlx::query(q)
            .bind(slug)
            .fetch_optional(p)
            .await?
            .map(|r| r.model())))
    }

    /// The models the user's plan allows, in slug order.
    pub async fn plan_models(&self, user_id: &str) -> Result<Vec<ModelRow>, DbError> {
        let q = "SELECT m.slug, m.provider, m.display_name, m.spec, m.upstream_kind, m.upstream_base_url, m.upstream_key_env, m.upstream_model \
                 FROM users u JOIN plan_models pm ON pm.plan_id = u.plan_id JOIN models m ON m.slug = pm.model_slug \
                 WHERE u.id = $1 ORDER BY m.slug";
        Ok(on_pool!(self, |p| sqlx::query(q)
            .bind(user_id)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| r.model())
            .collect()))
    }

    /// The model, if the user's plan allows it.
    pub async fn allowed_model(
        &self,
        user_id: &str,
        slug: &str,
    ) -> Result<Option<ModelRow>, DbError> {
        let q = "SELECT m.slug, m.provider, m.display_name, m.spec, m.upstream_kind, m.upstream_base_url, m.upstream_key_env, m.upstream_model \
                 FROM users u JOIN plan_models pm ON pm.plan_id = u.plan_id JOIN models m ON m.slug = pm.model_slug \
                 WHERE u.id = $1 AND m.slug = $2";
        Ok(on_pool!(self, |p| sqlx::query(q)
            .bind(user_id)
            .bind(slug)
            .fetch_optional(p)
            .await?
            .map(|r| r.model())))
    }

    /// The name of the user's plan, if any.
    pub async fn user_plan(&self, user_id: &str) -> Result<Option<String>, DbError> {
        let q = "SELECT p.name FROM users u JOIN plans p ON p.id = u.plan_id WHERE u.id = $1";
        Ok(on_pool!(self, |p| sqlx::query(q)
            .bind(user_id)
            .fetch_optional(p)
            .await?
            .map(|r| r.get(0))))
    }

    // ----- MCP server definitions -----

    /// Adds or replaces the user's MCP server `name`. `secrets` is already sealed.
    pub async fn upsert_mcp(
        &self,
        user_id: &str,
        name: &str,
        enabled: bool,
        config: &str,
        secrets: Option<&str>,
    ) -> Result<(), DbError> {
        let q = "INSERT INTO mcp_servers (id, user_id, name, enabled, config, secrets, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (user_id, name) DO UPDATE SET enabled = $4, config = $5, secrets = $6";
        execute!(
            self,
            q,
            crypto::id("mcp_"),
            user_id,
            name,
            i64::from(enabled),
            config,
            secrets,
            now()
        )?;
        Ok(())
    }

    /// The user's MCP servers: (name, enabled, config JSON, sealed secrets), by name.
    pub async fn list_mcp(
        &self,
        user_id: &str,
    ) -> Result<Vec<(String, bool, String, Option<String>)>, DbError> {
        let q = "SELECT name, enabled, config, secrets FROM mcp_servers WHERE user_id = $1 ORDER BY name";
        Ok(on_pool!(self, |p| sqlx::query(q)
            .bind(user_id)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| (r.get(0), r.get::<i64, _>(1) != 0, r.get(2), r.get(3)))
            .collect()))
    }

    // ----- runs -----

    pub async fn create_run(&self, user_id: &str, title: &str) -> Result<(String, i64), DbError> {
        let id = format!("run_{}", crypto::hex(&crypto::random_bytes::<10>()));
        let t = now();
        let q = "INSERT INTO runs (id, user_id, title, created_at) VALUES ($1, $2, $3, $4)";
        execute!(self, q, &id, user_id, title, t)?;
        Ok((id, t))
    }

    /// The run if `user_id` owns it: (title, created_at, event count, last sequence number).
    pub async fn run_of(
        &self,
        run_id: &str,
        user_id: &str,
    ) -> Result<Option<(String, i64, i64, i64)>, DbError> {
        let q = "SELECT r.title, r.created_at, COUNT(e.seq), COALESCE(MAX(e.seq), 0) FROM runs r \
                 LEFT JOIN run_events e ON e.run_id = r.id WHERE r.id = $1 AND r.user_id = $2 GROUP BY r.id, r.title, r.created_at";
        Ok(on_pool!(self, |p| sqlx::query(q)
            .bind(run_id)
            .bind(user_id)
            .fetch_optional(p)
            .await?
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))))
    }

    /// Appends an event; returns its sequence number. Concurrent appends to one run retry on the
    /// primary key, so numbers are dense and never shared. On PostgreSQL every server process
    /// hears about it (NOTIFY); on SQLite, this process does.
    pub async fn append_run_event(&self, run_id: &str, event: &str) -> Result<i64, DbError> {
        let q = "INSERT INTO run_events (run_id, seq, event, created_at) \
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3 FROM run_events WHERE run_id = $1 RETURNING seq";
        let mut tries = 0;
        loop {
            let _serialised = self.write_guard().await;
            let r: Result<i64, sqlx::Error> = on_pool!(self, |p| sqlx::query(q)
                .bind(run_id)
                .bind(event)
                .bind(now())
                .fetch_one(p)
                .await
                .map(|r| r.get(0)));
            match r {
                Ok(seq) => {
                    if let Db::Postgres(p) = self {
                        sqlx::query("SELECT pg_notify('mogplex_runs', $1)")
                            .bind(format!("{run_id}:{seq}"))
                            .execute(p)
                            .await?;
                    }
                    return Ok(seq);
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
        Ok(on_pool!(self, |p| sqlx::query(q)
            .bind(run_id)
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()))
    }

    // ----- personal access tokens -----

    pub async fn create_pat(
        &self,
        user_id: &str,
        name: &str,
        token: &str,
        expires_at: Option<i64>,
    ) -> Result<PatRow, DbError> {
        let row = PatRow {
            id: crypto::id("pat_"),
            name: name.to_owned(),
            prefix: format!("{}…", &token[..8.min(token.len())]),
            created_at: now(),
            expires_at,
            revoked_at: None,
        };
        let q = "INSERT INTO personal_access_tokens (token_hash, id, user_id, name, prefix, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)";
        execute!(
            self,
            q,
            crypto::hash(token),
            &row.id,
            user_id,
            &row.name,
            &row.prefix,
            row.created_at,
            row.expires_at
        )?;
        Ok(row)
    }

    pub async fn list_pats(&self, user_id: &str) -> Result<Vec<PatRow>, DbError> {
        let q = "SELECT id, name, prefix, created_at, expires_at, revoked_at FROM personal_access_tokens WHERE user_id = $1 ORDER BY created_at";
        Ok(on_pool!(self, |p| sqlx::query(q)
            .bind(user_id)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| PatRow {
                id: r.get(0),
                name: r.get(1),
                prefix: r.get(2),
                created_at: r.get(3),
                expires_at: r.get(4),
                revoked_at: r.get(5)
            })
            .collect()))
    }

    /// Revokes by id (`pat_…`) or by the token itself. Returns whether one was revoked.
    pub async fn revoke_pat(&self, user_id: &str, id_or_token: &str) -> Result<bool, DbError> {
        let q = "UPDATE personal_access_tokens SET revoked_at = $1 WHERE user_id = $2 AND (id = $3 OR token_hash = $4) AND revoked_at IS NULL";
        let n = execute!(
            self,
            q,
            now(),
            user_id,
            id_or_token,
            crypto::hash(id_or_token)
        )?;
        Ok(n > 0)
    }
}

/// Row decoding shared by both backends.
trait RowExt {
    fn device(self) -> DeviceRow;
    /// Columns 0..4: id, email, name, created_at.
    fn user(&self) -> User;
    /// Columns 0..8 of a model row.
    fn model(&self) -> ModelRow;
}

impl<R: Row> RowExt for R
where
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    fn model(&self) -> ModelRow {
        ModelRow {
            slug: self.get(0),
            provider: self.get(1),
            display_name: self.get(2),
            spec: self.get(3),
            upstream_kind: self.get(4),
            upstream_base_url: self.get(5),
            upstream_key_env: self.get(6),
            upstream_model: self.get(7),
        }
    }

    fn user(&self) -> User {
        User {
            id: self.get(0),
            email: self.get(1),
            name: self.get(2),
            created_at: self.get(3),
        }
    }

    fn device(self) -> DeviceRow {
        DeviceRow {
            client_id: self.get(0),
            scope: self.get(1),
            expires_at: self.get(2),
            interval_secs: self.get(3),
            last_polled_at: self.get(4),
            status: self.get(5),
            user_id: self.get(6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_sqlite_migration_applies() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let db = Db::connect(&url).await.unwrap();
        let Db::Sqlite(p) = &db else { unreachable!() };
        let versions: Vec<i64> =
            sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
                .fetch_all(p)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
        assert_eq!(
            versions,
            SQLITE_MIGRATIONS
                .iter()
                .map(|(v, _)| *v)
                .collect::<Vec<_>>()
        );
        let cols: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info('refresh_tokens')")
            .fetch_all(p)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(cols.contains(&"next_refresh_hash".to_owned()), "{cols:?}");
        let triggers: i64 =
            sqlx::query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'")
                .fetch_one(p)
                .await
                .unwrap()
                .get(0);
        assert_eq!(triggers, 1);
        // Connecting again (a restart) applies nothing twice.
        drop(db);
        Db::connect(&url).await.unwrap();
    }
}
