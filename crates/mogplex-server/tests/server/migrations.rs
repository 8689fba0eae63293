//! Migrations through sqlx: every one applies on both backends, concurrent starts migrate once,
//! and a database created by the code before sqlx (its own `schema_migrations` table, PostgreSQL
//! numbered without version 2) is adopted: nothing runs twice, nothing is lost.

use crate::both;
use crate::harness::*;
use mogplex_server::db::{Db, migrate};
use mogplex_server::{AppState, Config, crypto};

/// The migrations of the code before sqlx, in its numbering (version N is element N - 1).
const LEGACY_SQLITE: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_rotation_trigger.sql"),
    include_str!("../../migrations/sqlite/0003_plans_models.sql"),
    include_str!("../../migrations/sqlite/0004_mcp_servers.sql"),
    include_str!("../../migrations/sqlite/0005_runs.sql"),
];
const LEGACY_POSTGRES: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0003_plans_models.sql"),
    include_str!("../../migrations/postgres/0004_mcp_servers.sql"),
    include_str!("../../migrations/postgres/0005_runs.sql"),
];

/// What the old code did on start, for its first `applied` migrations; then an account and a
/// personal access token, as an old server would have stored them.
macro_rules! legacy_setup {
    ($pool:expr, $files:expr, $applied:expr, $pat:expr) => {{
        let pool = $pool;
        let q = "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";
        sqlx::query(q).execute(&pool).await.unwrap();
        for (i, sql) in $files[..$applied].iter().enumerate() {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(i as i64 + 1)
                .bind(crypto::now())
                .execute(&pool)
                .await
                .unwrap();
        }
        let hash = mogplex_server::password::hash(PASSWORD.into()).await.unwrap();
        sqlx::query("INSERT INTO users (id, email, name, password_hash, created_at) VALUES ('usr_old', 'ada@example.com', 'Ada', $1, 1)")
            .bind(hash)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO personal_access_tokens (token_hash, id, user_id, name, prefix, created_at) VALUES ($1, 'pat_old', 'usr_old', 'ci', 'mog_…', 1)")
            .bind(crypto::hash($pat))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }};
}

/// A database as the code before sqlx left it after `applied` of its migrations; the new code
/// has not touched it yet.
async fn legacy_database(
    b: Backend,
    applied: usize,
    pat: &str,
) -> (String, tempfile::TempDir, Option<String>) {
    let (database, dir, pg_db) = empty_database(b).await;
    match b {
        Backend::Sqlite => {
            let opts: sqlx::sqlite::SqliteConnectOptions = database.parse().unwrap();
            let pool = sqlx::SqlitePool::connect_with(opts.create_if_missing(true))
                .await
                .unwrap();
            legacy_setup!(pool, LEGACY_SQLITE, applied, pat);
            // As an administrator upgrading would, after the server refused its 0644 file.
            let path = database.strip_prefix("sqlite://").unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&database).await.unwrap();
            legacy_setup!(pool, LEGACY_POSTGRES, applied, pat);
        }
    }
    (database, dir, pg_db)
}

fn migrator(b: Backend) -> &'static sqlx::migrate::Migrator {
    match b {
        Backend::Sqlite => &migrate::SQLITE,
        Backend::Postgres => &migrate::POSTGRES,
    }
}

/// The versions sqlx records as applied, in order.
async fn applied(s: &TestServer) -> Vec<i64> {
    let q = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
    match s.db() {
        Db::Sqlite(p) => sqlx::query_scalar(q).fetch_all(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_scalar(q).fetch_all(p).await.unwrap(),
    }
}

fn all_versions(b: Backend) -> Vec<i64> {
    migrator(b).iter().map(|m| m.version).collect()
}

async fn every_migration_applies(b: Backend) {
    let s = TestServer::start(b).await;
    assert_eq!(applied(&s).await, all_versions(b));
    assert_eq!(
        all_versions(b),
        [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15]
    );
    // The gateway's request counts write no WAL on PostgreSQL (db/throttle.rs, `rate_take`).
    if let Db::Postgres(p) = s.db() {
        let persistence: String = sqlx::query_scalar(
            "SELECT relpersistence::text FROM pg_class WHERE relname = 'rate_counters'",
        )
        .fetch_one(p)
        .await
        .unwrap();
        assert_eq!(persistence, "u", "rate_counters is not UNLOGGED");
    }
    // A restart on the same database applies nothing twice.
    let again = AppState::new(&s.database, Config::new("http://127.0.0.1:1")).await;
    assert!(again.is_ok(), "{:?}", again.err());
    assert_eq!(applied(&s).await, all_versions(b));
}
both!(every_migration_applies);

async fn concurrent_starts_migrate_once(b: Backend) {
    let (database, dir, pg_db) = empty_database(b).await;
    let starts = futures_util::future::join_all(
        (0..4).map(|_| AppState::new(&database, Config::new("http://127.0.0.1:1"))),
    )
    .await;
    for st in &starts {
        assert!(st.is_ok(), "{:?}", st.as_ref().err());
    }
    drop(starts);
    let s = TestServer::on_database(&database, dir, pg_db, |_| {}).await;
    assert_eq!(applied(&s).await, all_versions(b));
}
both!(concurrent_starts_migrate_once);

async fn legacy_database_is_adopted_in_place(b: Backend) {
    let pat = crypto::personal_access_token();
    let legacy_count = match b {
        Backend::Sqlite => LEGACY_SQLITE.len(),
        Backend::Postgres => LEGACY_POSTGRES.len(),
    };
    let (database, dir, pg_db) = legacy_database(b, legacy_count, &pat).await;
    // Re-running any migration would fail (its tables exist), so starting at all proves nothing
    // ran twice.
    let s = TestServer::on_database(&database, dir, pg_db, |_| {}).await;
    assert_eq!(applied(&s).await, all_versions(b));
    let kept = s
        .count("SELECT COUNT(*) FROM schema_migrations_legacy")
        .await;
    assert_eq!(kept, legacy_count as i64, "the old history is kept");
    // What the old server stored still works: the token, the account's password, and the
    // refresh rotation (on SQLite, its trigger from legacy version 2).
    assert_eq!(
        whoami(&s, &pat).await,
        (200, Some("ada@example.com".into()))
    );
    let (access, refresh_token) = signed_in_tokens(&s, "ada@example.com").await;
    assert_eq!(whoami(&s, &access).await.0, 200);
    let (status, body) = refresh(&s, &refresh_token).await;
    assert_eq!(status, 200, "{body}");
    // A restart sees an ordinary sqlx database.
    let again = AppState::new(&s.database, Config::new("http://127.0.0.1:1")).await;
    assert!(again.is_ok(), "{:?}", again.err());
    assert_eq!(applied(&s).await, all_versions(b));
}
both!(legacy_database_is_adopted_in_place);

async fn partly_migrated_legacy_database_is_finished(b: Backend) {
    let pat = crypto::personal_access_token();
    // Legacy version 2: the rotation trigger on SQLite, plans and models on PostgreSQL.
    let (database, dir, pg_db) = legacy_database(b, 2, &pat).await;
    let s = TestServer::on_database(&database, dir, pg_db, |_| {}).await;
    assert_eq!(applied(&s).await, all_versions(b));
    assert_eq!(
        s.count("SELECT COUNT(*) FROM schema_migrations_legacy")
            .await,
        2
    );
    // The migrations it lacked were applied: runs (legacy version 5 or 4) work.
    let r = plain()
        .post(format!("{}{}", s.url, mogplex_protocol::routes::RUNS))
        .bearer_auth(&pat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}
both!(partly_migrated_legacy_database_is_finished);

async fn a_database_from_a_newer_release_is_refused(b: Backend) {
    let s = TestServer::start(b).await;
    let checksum = match b {
        Backend::Sqlite => "X'00'",
        Backend::Postgres => "'\\x00'::bytea",
    };
    s.sql(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99, 'from the future', TRUE, {checksum}, 0)"
    ))
    .await;
    let err = AppState::new(&s.database, Config::new("http://127.0.0.1:1"))
        .await
        .unwrap_err();
    assert!(
        err.contains("cannot migrate the database") && err.contains("99"),
        "{err}"
    );
}
both!(a_database_from_a_newer_release_is_refused);
