//! The schema, kept current at start-up with sqlx's migrator: `migrations/sqlite` and
//! `migrations/postgres`, numbered alike (version N is the same change on both; a backend with
//! nothing to do at a version has a file that says so), embedded in the binary and recorded with
//! their checksums in `_sqlx_migrations`.
//!
//! Everything runs in one transaction, so a failed start changes nothing: on SQLite a `BEGIN
//! IMMEDIATE` one (the writer lock, so two processes on one file migrate one after the other); on
//! PostgreSQL one that first takes [`MIGRATION_LOCK`], so several processes starting at once on
//! one database migrate once (sqlx's own advisory lock is taken inside it too).
//!
//! Databases created before sqlx kept their own `schema_migrations (version, applied_at)` table,
//! with PostgreSQL numbered without the SQLite-only version 2. On the first start of this code
//! such a database is adopted in that same transaction: what it had applied is recorded as
//! applied (nothing runs twice), the rest is applied, and the old table is kept as
//! `schema_migrations_legacy`.

use super::{Db, DbError};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{Connection, Row};

pub static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
pub static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// Serialises migrations when several processes start at once on one PostgreSQL.
const MIGRATION_LOCK: i64 = 0x006d_6f67_706c_6578;

/// The tracking table before sqlx, and what it becomes once adopted.
const LEGACY_TABLE: &str = "schema_migrations";
const LEGACY_KEPT_AS: &str = "schema_migrations_legacy";

/// What differs between the backends' migrations.
struct Backend {
    migrator: &'static Migrator,
    /// Legacy version N is version `legacy[N - 1]` now.
    legacy: &'static [i64],
    /// Counts the tables named `$1`.
    table_exists: &'static str,
}

const SQLITE_BACKEND: Backend = Backend {
    migrator: &SQLITE,
    legacy: &[1, 2, 3, 4, 5],
    table_exists: "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
};
const POSTGRES_BACKEND: Backend = Backend {
    migrator: &POSTGRES,
    legacy: &[1, 3, 4, 5],
    table_exists: "SELECT COUNT(*) FROM information_schema.tables \
                   WHERE table_schema = current_schema() AND table_name = $1",
};

impl Db {
    pub(super) async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                migrate_on::<sqlx::Sqlite>(&mut *tx, &SQLITE_BACKEND).await?;
                tx.commit().await?;
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATION_LOCK)
                    .execute(&mut *tx)
                    .await?;
                migrate_on::<sqlx::Postgres>(&mut *tx, &POSTGRES_BACKEND).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }
}

/// Adopts a legacy database if this is one, then applies what is pending, on a connection
/// inside the caller's transaction.
async fn migrate_on<DB>(conn: &mut DB::Connection, backend: &Backend) -> Result<(), DbError>
where
    DB: sqlx::Database,
    DB::Connection: Migrate,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let legacy: i64 = sqlx::query(backend.table_exists)
        .bind(LEGACY_TABLE)
        .fetch_one(&mut *conn)
        .await?
        .get(0);
    if legacy > 0 {
        let q = "SELECT version FROM schema_migrations ORDER BY version";
        let versions: Vec<i64> = sqlx::query(q)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if let Some(target) = legacy_target(backend.legacy, &versions)? {
            // Recorded as applied without running them: this database has them already.
            backend
                .migrator
                .run_direct(Some(target), conn, true)
                .await?;
        }
        let rename = format!("ALTER TABLE {LEGACY_TABLE} RENAME TO {LEGACY_KEPT_AS}");
        sqlx::query(sqlx::AssertSqlSafe(rename))
            .execute(&mut *conn)
            .await?;
    }
    backend.migrator.run_direct(None, conn, false).await?;
    Ok(())
}

/// The version a legacy database is at now, from the versions its table lists.
fn legacy_target(map: &[i64], versions: &[i64]) -> Result<Option<i64>, DbError> {
    // The old code applied its migrations in order, all or none: anything else is not ours.
    let in_order = versions.iter().zip(1..).all(|(v, n)| *v == n);
    if !in_order || versions.len() > map.len() {
        return Err(DbError::Legacy(format!(
            "its {LEGACY_TABLE} table lists versions {versions:?}, which no release of mogplex-server wrote"
        )));
    }
    Ok(versions.len().checked_sub(1).map(|last| map[last]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_are_numbered_alike() {
        let versions = |m: &Migrator| {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(&SQLITE), versions(&POSTGRES));
        for b in [&SQLITE_BACKEND, &POSTGRES_BACKEND] {
            assert!(b.legacy.iter().all(|v| b.migrator.version_exists(*v)));
            assert!(b.legacy.windows(2).all(|w| w[0] < w[1]));
        }
        assert_eq!(legacy_target(POSTGRES_BACKEND.legacy, &[]).unwrap(), None);
        assert_eq!(
            legacy_target(POSTGRES_BACKEND.legacy, &[1, 2]).unwrap(),
            Some(3)
        );
        assert!(legacy_target(POSTGRES_BACKEND.legacy, &[1, 3]).is_err());
        assert!(legacy_target(POSTGRES_BACKEND.legacy, &[1, 2, 3, 4, 5]).is_err());
    }

    #[tokio::test]
    async fn every_sqlite_migration_applies() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let db = Db::connect(&url).await.unwrap();
        let Db::Sqlite(p) = &db else { unreachable!() };
        let versions: Vec<i64> =
            sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(p)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
        assert_eq!(
            versions,
            SQLITE.iter().map(|m| m.version).collect::<Vec<_>>()
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
            sqlx::query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name IN ('refresh_rotation', 'audit_log_append_only')")
                .fetch_one(p)
                .await
                .unwrap()
                .get(0);
        assert_eq!(triggers, 2);
        // Connecting again (a restart) applies nothing twice.
        drop(db);
        Db::connect(&url).await.unwrap();
    }
}
