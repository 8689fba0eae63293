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
macro_rules! fetch_optional {
    ($db:expr, $q:expr, [$($arg:expr),* $(,)?], $decode:expr) => {
        on_pool!($db, |p| sqlx::query($q)$(.bind($arg))*.fetch_optional(p).await?.map(|r| $crate::db::decode(&r, $decode)))
    };
}

/// Like [`fetch_optional!`] for every row: `Vec<T>`.
macro_rules! fetch_all {
    ($db:expr, $q:expr, [$($arg:expr),* $(,)?], $decode:expr) => {
        on_pool!($db, |p| sqlx::query($q)$(.bind($arg))*.fetch_all(p).await?.iter().map($decode).collect())
    };
}

pub mod catalog;
pub mod clients;
pub mod device;
pub mod idp;
pub mod keys;
pub mod mcp;
pub mod migrate;
pub mod oauth;
pub mod oidc;
pub mod pats;
pub mod runs;
pub mod users;

pub use catalog::ModelRow;
pub use device::DeviceRow;
pub use oauth::{CodeRow, Grant, Principal, Refresh};
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
}

impl DbError {
    /// Whether the schema, not the connection, is the problem.
    pub fn is_migration(&self) -> bool {
        matches!(self, DbError::Migrate(_) | DbError::Legacy(_))
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
            },
        )
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
