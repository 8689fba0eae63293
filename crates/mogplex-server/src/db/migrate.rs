//! The schema, kept current at start-up: each backend's migrations in order, each applied once
//! and recorded in `schema_migrations`, all in one transaction (on PostgreSQL under an advisory
//! lock, so several processes starting at once migrate once).

use super::{Db, DbError};
use crate::crypto::now;

const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_rotation_trigger.sql"),
    ),
    (
        3,
        include_str!("../../migrations/sqlite/0003_plans_models.sql"),
    ),
    (
        4,
        include_str!("../../migrations/sqlite/0004_mcp_servers.sql"),
    ),
    (5, include_str!("../../migrations/sqlite/0005_runs.sql")),
];
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_plans_models.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgres/0003_mcp_servers.sql"),
    ),
    (4, include_str!("../../migrations/postgres/0004_runs.sql")),
];
/// Serialises migrations when several processes start at once on one PostgreSQL.
const MIGRATION_LOCK: i64 = 0x006d_6f67_706c_6578;

impl Db {
    pub(super) async fn migrate(&self) -> Result<(), DbError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row;

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
