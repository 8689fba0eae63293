//! Refresh tokens that survive what clients meet (issue 17): a lost response retried with the
//! previous token inside the grace interval (also across a server killed mid-load, on both
//! backends), reuse outside it still revoking the sign-in, a failed validation that consumes
//! nothing, a narrower scope granted narrower, RFC 7009 on a personal access token, and
//! concurrent refreshes rotated together, each audited once.

use crate::both;
use crate::harness::*;
use futures_util::future::join_all;
use mogplex_server::crypto;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A fresh database as [`empty_database`] makes, named for this branch's tests on PostgreSQL.
pub async fn opsa_database(b: Backend) -> (String, tempfile::TempDir, Option<String>) {
    let (database, dir, pg) = empty_database(b).await;
    let Some(name) = pg else {
        return (database, dir, None);
    };
    // Renamed while nobody is connected: the `opsa_` prefix says whose it is.
    let renamed = name.replacen("mogplex_test_", "opsa_", 1);
    let admin = sqlx::PgPool::connect(ADMIN_PG).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} RENAME TO {renamed}"
    )))
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
    (database.replace(&name, &renamed), dir, Some(renamed))
}

async fn start(b: Backend, tweak: impl FnOnce(&mut mogplex_server::Config)) -> TestServer {
    let (database, dir, pg) = opsa_database(b).await;
    TestServer::on_database(&database, dir, pg, tweak).await
}

/// How many of `tokens` are refresh tokens that could still be used.
pub async fn live(s: &TestServer, tokens: &[String]) -> i64 {
    let hashes: Vec<String> = tokens
        .iter()
        .map(|t| format!("'{}'", crypto::hash(t)))
        .collect();
    s.count(&format!(
        "SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NULL AND token_hash IN ({})",
        hashes.join(",")
    ))
    .await
}

fn rt_of(b: &serde_json::Value) -> String {
    b["refresh_token"].as_str().unwrap().to_owned()
}

async fn refresh_scope(s: &TestServer, rt: &str, scope: &str) -> (u16, serde_json::Value) {
    let (st, b, _) = token(
        s,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "mogplex-cli"),
            ("refresh_token", rt),
            ("scope", scope),
        ],
    )
    .await;
    (st, b)
}

async fn a_lost_response_may_be_retried_within_the_grace_interval(b: Backend) {
    let s = start(b, |_| {}).await;
    s.user("ada@example.com").await;
    let (_, t1) = signed_in_tokens(&s, "ada@example.com").await;
    // The answer to this refresh is lost on the way to the client.
    let (st, lost) = refresh(&s, &t1).await;
    assert_eq!(st, 200, "{lost}");
    let lost_access = lost["access_token"].as_str().unwrap().to_owned();
    // The client retries with the token it still has: a fresh successor, not a revocation.
    let (st, retried) = refresh(&s, &t1).await;
    assert_eq!(st, 200, "{retried}");
    let t2 = rt_of(&retried);
    assert_ne!(t2, rt_of(&lost));
    assert_eq!(
        whoami(&s, retried["access_token"].as_str().unwrap())
            .await
            .0,
        200
    );
    // What nobody received is retired: the lost access token and refresh token.
    assert_eq!(whoami(&s, &lost_access).await.0, 401);
    assert_eq!(live(&s, &[rt_of(&lost), t2.clone()]).await, 1);
    // The sign-in goes on.
    let (st, next) = refresh(&s, &t2).await;
    assert_eq!(st, 200, "{next}");
    let t3 = rt_of(&next);
    // t1 is no longer the immediately previous token (its successor t2 was used): reuse.
    let (st, reuse) = refresh(&s, &t1).await;
    assert_eq!((st, reuse["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(refresh(&s, &t3).await.0, 400, "reuse revokes the sign-in");

    // Outside the interval, a retry of the previous token is reuse too.
    let (_, u1) = signed_in_tokens(&s, "ada@example.com").await;
    let (st, got) = refresh(&s, &u1).await;
    assert_eq!(st, 200);
    s.sql("UPDATE refresh_tokens SET used_at = used_at - 31 WHERE used_at IS NOT NULL")
        .await;
    assert_eq!(refresh(&s, &u1).await.0, 400);
    assert_eq!(
        refresh(&s, &rt_of(&got)).await.0,
        400,
        "the sign-in is revoked"
    );

    // Concurrent retries: every one answered, exactly one successor left alive.
    let (_, v1) = signed_in_tokens(&s, "ada@example.com").await;
    let results = join_all((0..8).map(|_| refresh(&s, &v1))).await;
    let answered: Vec<String> = results
        .iter()
        .filter(|(st, _)| *st == 200)
        .map(|(_, b)| rt_of(b))
        .collect();
    assert!(!answered.is_empty(), "{results:?}");
    assert!(
        results.iter().all(|(st, _)| *st == 200),
        "a concurrent retry revoked the sign-in: {results:?}"
    );
    assert_eq!(live(&s, &answered).await, 1, "{results:?}");
}
both!(a_lost_response_may_be_retried_within_the_grace_interval);

async fn a_refused_refresh_consumes_nothing_and_a_narrower_scope_is_granted(b: Backend) {
    let s = start(b, |_| {}).await;
    s.user("ada@example.com").await;
    let (access, t1) = signed_in_tokens(&s, "ada@example.com").await;
    // Wider than the sign-in: refused, and nothing changes.
    let (st, e) = refresh_scope(&s, &t1, "read admin").await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_scope")),
        "{e}"
    );
    assert_eq!(
        live(&s, std::slice::from_ref(&t1)).await,
        1,
        "the token was consumed"
    );
    assert_eq!(whoami(&s, &access).await.0, 200, "the sign-in was revoked");
    // Narrower: an access token for just that, while the sign-in keeps its scope.
    let (st, narrow) = refresh_scope(&s, &t1, "write read").await;
    assert_eq!(st, 200, "{narrow}");
    assert_eq!(narrow["scope"], "read write");
    let at = narrow["access_token"].as_str().unwrap();
    let q = format!(
        "SELECT COUNT(*) FROM access_tokens WHERE scope = 'read write' AND token_hash = '{}'",
        crypto::hash(at)
    );
    assert_eq!(s.count(&q).await, 1);
    let (st, full) = refresh(&s, &rt_of(&narrow)).await;
    assert_eq!(st, 200, "{full}");
    assert_eq!(
        full["scope"],
        "openid profile email offline_access read write"
    );
    // The same scope as the sign-in is not narrower; an unknown token is still invalid_grant.
    let (st, same) = refresh_scope(
        &s,
        &rt_of(&full),
        "openid profile email offline_access read write",
    )
    .await;
    assert_eq!(st, 200, "{same}");
    let (st, e) = refresh_scope(&s, "mog_rt_unknown", "read").await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")));
}
both!(a_refused_refresh_consumes_nothing_and_a_narrower_scope_is_granted);

async fn rfc7009_revokes_a_personal_access_token(b: Backend) {
    let s = start(b, |_| {}).await;
    let uid = s.user("ada@example.com").await;
    let pat = crypto::personal_access_token();
    s.db().create_pat(&uid, "ci", &pat, None).await.unwrap();
    assert_eq!(whoami(&s, &pat).await.0, 200);
    let r = plain()
        .post(format!("{}/api/auth/mcp/revoke", s.url))
        .form(&[("token", pat.as_str()), ("client_id", "mogplex-cli")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        whoami(&s, &pat).await.0,
        401,
        "the revoked token still works"
    );
}
both!(rfc7009_revokes_a_personal_access_token);

/// A server process of the real binary, killed with SIGKILL when dropped.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn spawn_server(database: &str, log: &std::path::Path) -> (Proc, String) {
    spawn_server_with(database, log, &[])
}

/// [`spawn_server`] with more options for `serve`.
pub fn spawn_server_with(database: &str, log: &std::path::Path, extra: &[&str]) -> (Proc, String) {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mogplex-server"))
        .args(["serve", "--database", database, "--listen", "127.0.0.1:0"])
        .args(extra)
        .env_remove("MOGPLEX_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let child = Proc(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(url) = text.lines().find_map(|l| {
            l.split_once("listening on ")?
                .1
                .split_once(" as ")?
                .1
                .split(' ')
                .next()
        }) {
            return (child, url.to_owned());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not start: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Refreshes `rt` `n` times against whichever process `url` names, retrying the same token after
/// a dropped connection or a 5xx, as the CLI does. The error of a lost sign-in, if any.
async fn chain(
    url: Arc<Mutex<String>>,
    mut rt: String,
    n: usize,
    done: Arc<AtomicUsize>,
    retries: Arc<AtomicUsize>,
) -> Option<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut ok = 0;
    while ok < n {
        let base = url.lock().unwrap().clone();
        let r = client
            .post(format!("{base}/api/auth/mcp/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", "mogplex-cli"),
                ("refresh_token", rt.as_str()),
            ])
            .send()
            .await;
        let r = match r {
            Ok(r) if r.status().is_server_error() => Err(()),
            Ok(r) => Ok(r),
            Err(_) => Err(()),
        };
        let Ok(r) = r else {
            retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let status = r.status();
        let Ok(body) = r.json::<serde_json::Value>().await else {
            retries.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        if status != 200 {
            return Some(format!("{status} {body}"));
        }
        rt = rt_of(&body);
        ok += 1;
        done.fetch_add(1, Ordering::Relaxed);
    }
    None
}

async fn no_sign_in_is_lost_when_the_server_is_killed_mid_refresh(b: Backend) {
    const CHAINS: usize = 16;
    const PER_CHAIN: usize = 30;
    let (database, dir, pg) = opsa_database(b).await;
    // Seeded through the library, served by the binary.
    let seed = TestServer::on_database(&database, tempfile::tempdir().unwrap(), None, |_| {}).await;
    seed.user("ada@example.com").await;
    drop(seed);
    let log = dir.path().join("serve.log");
    let (mut proc, first) = spawn_server(&database, &log);
    let mut tokens = Vec::new();
    for _ in 0..CHAINS {
        tokens.push(signed_in_tokens(first.as_str(), "ada@example.com").await.1);
    }
    let url = Arc::new(Mutex::new(first));
    let done = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|rt| {
            tokio::spawn(chain(
                url.clone(),
                rt,
                PER_CHAIN,
                done.clone(),
                retries.clone(),
            ))
        })
        .collect();
    for kill_at in [CHAINS * PER_CHAIN / 3, 2 * CHAINS * PER_CHAIN / 3] {
        while done.load(Ordering::Relaxed) < kill_at {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(proc); // SIGKILL, mid-load
        let (p, u) = spawn_server(&database, &log);
        proc = p;
        *url.lock().unwrap() = u;
    }
    let lost: Vec<String> = join_all(tasks)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap())
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {CHAINS} sign-ins lost: {lost:?}",
        lost.len()
    );
    assert!(
        retries.load(Ordering::Relaxed) > 0,
        "no request was cut by the kills"
    );
    drop(proc);
    if let Some(name) = pg {
        let admin = sqlx::PgPool::connect(ADMIN_PG).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&admin)
        .await
        .unwrap();
    }
}
both!(no_sign_in_is_lost_when_the_server_is_killed_mid_refresh);

/// Refreshes that arrive together are rotated together (one commit, `db::rotation`): every chain
/// still gets its own successors, exactly one audit row per refresh is written with it, only
/// each chain's newest token stays live, and an old token is still reuse for its own sign-in
/// only.
async fn concurrent_refreshes_share_commits_and_each_is_audited(b: Backend) {
    const CHAINS: usize = 8;
    const STEPS: usize = 15;
    let s = start(b, |_| {}).await;
    let uid = s.user("ada@example.com").await;
    let mut chains = Vec::new();
    for _ in 0..CHAINS {
        chains.push(signed_in_tokens(&s, "ada@example.com").await.1);
    }
    let s = &s;
    let ends = join_all(chains.into_iter().map(|first| async move {
        let mut seen = vec![first];
        let mut access = String::new();
        for _ in 0..STEPS {
            let (st, body) = refresh(s, seen.last().unwrap()).await;
            assert_eq!(st, 200, "{body}");
            access = body["access_token"].as_str().unwrap().to_owned();
            seen.push(rt_of(&body));
        }
        (access, seen)
    }))
    .await;
    let mut all = Vec::new();
    for (access, seen) in &ends {
        assert_eq!(whoami(s, access).await.0, 200);
        assert_eq!(
            live(s, seen).await,
            1,
            "only a chain's newest token is live"
        );
        all.extend(seen.iter().cloned());
    }
    let distinct: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(
        distinct.len(),
        CHAINS * (STEPS + 1),
        "every successor is new"
    );
    let audited = s
        .count(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE kind = 'token.refreshed' AND outcome = 'ok' AND user_id = '{uid}'"
        ))
        .await;
    assert_eq!(audited, (CHAINS * STEPS) as i64);
    // An old token of the first chain (its successor long used) is reuse: that sign-in ends,
    // the others go on.
    let (st, body) = refresh(s, &ends[0].1[3]).await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(refresh(s, ends[0].1.last().unwrap()).await.0, 400);
    assert_eq!(refresh(s, ends[1].1.last().unwrap()).await.0, 200);
}
both!(concurrent_refreshes_share_commits_and_each_is_audited);
