//! Storage: one interface, SQLite or PostgreSQL behind it, one module per domain.
//!
//! Every query is written once with `$N` placeholders (both drivers bind `$N` by number) and
//! portable types (TEXT, 64-bit integers for unix seconds), and runs on whichever pool the
//! database URL chose through the macros below. Where the backends must differ, the domain module
//! keeps those statements together in its `postgres` and `sqlite` submodules and dispatches to
//! them once. Everything that must hold across several server processes (code redemption,
//! refresh rotation, throttling, device approval) is a single conditional UPDATE or a
//! transaction here, never state in memory.
//!
//! Domains: [`users`] (accounts, browser sessions, throttles), [`oauth`] (authorization codes,
//! token families, access and refresh tokens, the bearer check), [`device`] (device grants),
//! [`catalog`] (models and plans), [`mcp`] (MCP server definitions), [`runs`], [`pats`]
//! (personal access tokens), [`keys`] (ID token signing keys), [`clients`] (registered
//! clients, consent), [`idp`] (single sign-on), [`oidc`] (what ID tokens need
//! beyond the grant); [`migrate`] keeps the schema current.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Row, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

/// When the database last failed as an outage (unix seconds; 0: never). For [`SUSPECT_SECS`]
/// after, a PostgreSQL connection is pinged before the pool hands it out and dropped if it does
/// not answer, so the connections a restart broke each cost a ping, not a failed request; the
/// rest of the time nothing is pinged (a ping doubles the bearer check's round trips).
static SUSPECT_SINCE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
const SUSPECT_SECS: i64 = 60;

/// Says that pooled connections may be broken (an outage was answered).
pub fn connections_suspect() {
    SUSPECT_SINCE.store(crate::crypto::now(), std::sync::atomic::Ordering::Relaxed);
}

fn connections_are_suspect() -> bool {
    crate::crypto::now() - SUSPECT_SINCE.load(std::sync::atomic::Ordering::Relaxed) < SUSPECT_SECS
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

/// Runs a statement with its binds on whichever pool is in use: `Result<u64>`, the rows changed.
macro_rules! execute {
    ($db:expr, $q:expr $(, $arg:expr)* $(,)?) => {
        on_pool!($db, |p| sqlx::query($q)$(.bind($arg))*.execute(p).await.map(|r| r.rows_affected()))
    };
}

/// Runs a query with its binds and decodes at most one row with `$decode` (a closure over the
/// row, instantiated once per backend): `Option<T>`, `?` on a storage error.
///
/// It steps the statement to its end (`fetch_all`), never `fetch_optional`/`fetch_one`: on
/// SQLite those stop after the first row and reset the statement, and for a write with
/// `RETURNING` the commit then happens inside that reset, whose error sqlx discards. A commit
/// that failed (a full disk) was answered as a success, and SQLite's WAL hook, which runs the
/// auto-checkpoint, only runs when a statement steps to its end, so the WAL was never
/// checkpointed either. Every statement here returns at most a row or two.
macro_rules! fetch_optional {
    ($db:expr, $q:expr, [$($arg:expr),* $(,)?], $decode:expr) => {
        on_pool!($db, |p| sqlx::query($q)$(.bind($arg))*.fetch_all(p).await?.first().map(|r| $crate::db::decode(r, $decode)))
    };
}

/// Like [`fetch_optional!`] for every row: `Vec<T>`.
macro_rules! fetch_all {
    ($db:expr, $q:expr, [$($arg:expr),* $(,)?], $decode:expr) => {
        on_pool!($db, |p| sqlx::query($q)$(.bind($arg))*.fetch_all(p).await?.iter().map($decode).collect())
    };
}

pub mod admin;
pub mod audit;
pub mod catalog;
pub mod clients;
pub mod device;
pub mod files;
pub mod idp;
pub mod keys;
pub mod mcp;
pub mod migrate;
pub mod oauth;
pub mod oidc;
pub mod pats;
pub mod rotation;
pub mod runs;
pub mod throttle;
pub mod users;

pub use admin::{AccountRow, PlanRow};
pub use audit::AuditRow;
pub use catalog::ModelRow;
pub use device::DeviceRow;
pub use oauth::{CodeRow, Grant, NextTokens, Principal, Refresh};
pub use pats::PatRow;
pub use users::User;

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
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot migrate the database: {0}")]
    Legacy(String),
    #[error("{0}")]
    Files(String),
}

/// How a storage failure that is not the request's fault is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// The disk is full: 507, nothing was stored.
    Full,
    /// The database cannot be reached or failed an I/O: 503 with `Retry-After`.
    Unavailable,
}

impl DbError {
    /// Whether the schema, not the connection, is the problem.
    pub fn is_migration(&self) -> bool {
        matches!(self, DbError::Migrate(_) | DbError::Legacy(_))
    }

    /// Whether the failure is the storage's state (full, unreachable, restarting) rather than a
    /// bug: the write did not happen and the client may try again later.
    pub fn outage(&self) -> Option<Outage> {
        let DbError::Sqlx(e) = self else {
            return None;
        };
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::BeginFailed => Some(Outage::Unavailable),
            sqlx::Error::Database(d) => {
                let code = d.code().unwrap_or_default();
                match code.parse::<i32>() {
                    // SQLite result codes (extended: the low byte is the primary code):
                    // SQLITE_FULL; SQLITE_IOERR, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_CANTOPEN,
                    // SQLITE_READONLY (the file's permissions changed under us).
                    Ok(n) if n & 0xff == 13 => Some(Outage::Full),
                    Ok(n) if matches!(n & 0xff, 5 | 6 | 8 | 10 | 14) => Some(Outage::Unavailable),
                    Ok(_) => None,
                    // PostgreSQL SQLSTATEs: disk full, out of memory or too many connections,
                    // connection failures, shutting down or starting up, I/O errors.
                    Err(_) if code == "53100" => Some(Outage::Full),
                    Err(_)
                        if code.starts_with("53")
                            || code.starts_with("08")
                            || code.starts_with("57P")
                            || code.starts_with("58") =>
                    {
                        Some(Outage::Unavailable)
                    }
                    Err(_) => None,
                }
            }
            _ => None,
        }
    }
}

impl Db {
    /// Connects to `sqlite://PATH` (created if missing, WAL) or `postgres://…`, and migrates.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        let db = Self::open(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Connects without migrating.
    pub(crate) async fn open(url: &str) -> Result<Self, DbError> {
        Ok(
            if let Some(path) = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
            {
                let file = path.split('?').next().unwrap_or(path);
                files::prepare(std::path::Path::new(file)).map_err(DbError::Files)?;
                let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    // After a checkpoint that resets it, the WAL file is cut back to this size.
                    .pragma("journal_size_limit", files::WAL_SIZE_LIMIT.to_string())
                    // A checkpoint once the WAL holds this many pages (SQLite's default is
                    // 1,000): the pages a refresh load rewrites again and again (index and
                    // table tails) are then copied into the database once per 16 MiB of WAL,
                    // not once per 4, and the WAL still stays within its bound.
                    .pragma(
                        "wal_autocheckpoint",
                        files::WAL_CHECKPOINT_PAGES.to_string(),
                    );
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
                        // A ping before every query doubles the round trips of the bearer check:
                        // only after an outage ([`connections_are_suspect`]).
                        .test_before_acquire(false)
                        .before_acquire(|conn, _| {
                            Box::pin(async move {
                                if !connections_are_suspect() {
                                    return Ok(true);
                                }
                                Ok(sqlx::Connection::ping(conn).await.is_ok())
                            })
                        })
                        .acquire_timeout(Duration::from_secs(10))
                        .connect_with(opts)
                        .await?,
                )
            } else {
                return Err(DbError::BadUrl(url.to_owned()));
            },
        )
    }

    /// Before the process exits: merges the SQLite WAL into the database file and truncates it,
    /// so a stopped server leaves one self-contained file. Nothing to do on PostgreSQL.
    pub async fn checkpoint(&self) {
        if let Db::Sqlite(p) = self {
            let r = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_all(p)
                .await;
            match r.as_deref().map(|rows| rows.first().map(|r| r.int(0))) {
                Ok(Some(0)) => tracing::info!("database checkpointed"),
                Ok(_) => tracing::warn!("database checkpoint incomplete: a reader was busy"),
                Err(e) => tracing::warn!("database checkpoint failed: {e}"),
            }
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
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
}

/// Applies `f` to `row`; gives a decoding closure in a macro its row type.
fn decode<R, T>(row: &R, f: impl FnOnce(&R) -> T) -> T {
    f(row)
}

/// Reading columns the same way from a row of either backend, for the decoders the domains
/// share between queries.
trait Cols {
    fn text(&self, i: usize) -> String;
    fn text_opt(&self, i: usize) -> Option<String>;
    fn int(&self, i: usize) -> i64;
    fn int_opt(&self, i: usize) -> Option<i64>;
}

impl<R: Row> Cols for R
where
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    fn text(&self, i: usize) -> String {
        self.get(i)
    }
    fn text_opt(&self, i: usize) -> Option<String> {
        self.get(i)
    }
    fn int(&self, i: usize) -> i64 {
        self.get(i)
    }
    fn int_opt(&self, i: usize) -> Option<i64> {
        self.get(i)
    }
}
