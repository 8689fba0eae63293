//! Throttles that hold (issue 17): N concurrent attempts check at most the limit, on one process
//! and split over two processes on one database; the owner is not locked out from an address
//! that has not been failing; `/device/approve` is throttled; the gateway's per-token limit is
//! shared by every process on PostgreSQL.

use crate::both;
use crate::harness::*;
use crate::refresh::opsa_database;
use futures_util::future::join_all;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};

/// Two server processes (equivalents) on one fresh database.
async fn two(b: Backend, tweak: fn(&mut mogplex_server::Config)) -> (TestServer, TestServer) {
    let (database, dir, pg) = opsa_database(b).await;
    let s1 = TestServer::on_database(&database, dir, pg, tweak).await;
    let s2 = TestServer::on_database(&database, tempfile::tempdir().unwrap(), None, tweak).await;
    (s1, s2)
}

/// A browser whose requests come from 127.0.0.`n`.
fn browser_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        .build()
        .unwrap()
}

fn tally(statuses: &[u16]) -> std::collections::BTreeMap<u16, usize> {
    let mut m = std::collections::BTreeMap::new();
    for s in statuses {
        *m.entry(*s).or_default() += 1;
    }
    m
}

async fn attempts(servers: [&TestServer; 2], emails: &[String], passwords: &[&str]) -> Vec<u16> {
    join_all(
        emails
            .iter()
            .zip(passwords)
            .enumerate()
            .map(|(i, (e, p))| async move {
                sign_in(servers[i % 2], &browser(), e, p, "/")
                    .await
                    .status()
                    .as_u16()
            }),
    )
    .await
}

async fn password_limits_hold_under_concurrency(b: Backend) {
    let (s1, s2) = two(b, |_| {}).await;
    s1.user("ada@example.com").await;
    // 40 concurrent wrong passwords on one account from one address: at most 5 are checked.
    let emails = vec!["ada@example.com".to_owned(); 40];
    let st = attempts([&s1, &s2], &emails, &["wrong password!"; 40]).await;
    let t = tally(&st);
    assert!(t.get(&401).copied().unwrap_or(0) <= 5, "{t:?}");
    assert!(st.iter().all(|s| [401, 429, 503].contains(s)), "{t:?}");
    assert_eq!(
        sign_in(&s1, &browser(), "ada@example.com", PASSWORD, "/")
            .await
            .status(),
        429
    );

    // 30 concurrent guesses including the right one, on a fresh account: at most 5 checked.
    s1.user("bob@example.com").await;
    let emails = vec!["bob@example.com".to_owned(); 30];
    let mut passwords = vec!["wrong password!"; 30];
    passwords[17] = PASSWORD;
    let st = attempts([&s1, &s2], &emails, &passwords).await;
    let t = tally(&st);
    // (A 503, the hashing pool being full, was not checked and gives its slot back; so does the
    // right password, which leaves at most the limit of wrong ones checked.)
    assert!(t.get(&401).copied().unwrap_or(0) <= 5, "{t:?}");
    assert!(t.get(&303).copied().unwrap_or(0) <= 1, "{t:?}");
    assert!(st.iter().all(|s| [303, 401, 429, 503].contains(s)), "{t:?}");

    // 40 concurrent attempts on 40 accounts from one address: at most 30 checked.
    let emails: Vec<String> = (0..40).map(|i| format!("u{i}@example.com")).collect();
    let st = attempts([&s1, &s2], &emails, &["wrong password!"; 40]).await;
    let t = tally(&st);
    assert!(st.iter().filter(|s| **s == 401).count() <= 30, "{t:?}");
    assert!(st.iter().all(|s| [401, 429, 503].contains(s)), "{t:?}");
    assert!(t.get(&429).copied().unwrap_or(0) > 0, "{t:?}");
}
both!(password_limits_hold_under_concurrency);

async fn the_owner_is_not_locked_out_by_a_guesser(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    // Two addresses guess five times each: each is then refused, even with the right password.
    for n in 2..4 {
        for _ in 0..5 {
            let r = sign_in(
                &s,
                &browser_from(n),
                "ada@example.com",
                "wrong password!",
                "/",
            )
            .await;
            assert_eq!(r.status(), 401);
        }
        let r = sign_in(&s, &browser_from(n), "ada@example.com", PASSWORD, "/").await;
        assert_eq!(r.status(), 429);
        assert!(r.headers().contains_key("retry-after"));
    }
    // The account has had many failures: an address that has been failing on it gets one try.
    assert_eq!(
        sign_in(
            &s,
            &browser_from(5),
            "ada@example.com",
            "wrong password!",
            "/"
        )
        .await
        .status(),
        401
    );
    let r = sign_in(&s, &browser_from(5), "ada@example.com", PASSWORD, "/").await;
    assert_eq!(r.status(), 429);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("owner can still sign in from another device"),
        "{page}"
    );
    // The owner, from an address that has not been failing, signs in.
    let r = sign_in(&s, &browser_from(9), "ada@example.com", PASSWORD, "/").await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
}
both!(the_owner_is_not_locked_out_by_a_guesser);

/// A signed-in browser on the device page: the client and the page's CSRF token.
async fn device_session(s: &TestServer, email: &str) -> (reqwest::Client, String) {
    let client = browser();
    let r = sign_in(s, &client, email, PASSWORD, "/device").await;
    assert_eq!(r.status(), 303);
    let page = client
        .get(format!("{}/device", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf");
    (client, csrf)
}

async fn device_code_limits_hold_under_concurrency(b: Backend) {
    let (s1, s2) = two(b, |_| {}).await;
    s1.user("ada@example.com").await;
    let (client, csrf) = device_session(&s1, "ada@example.com").await;
    // The session cookie is valid on both processes (same database, same cookie names).
    let st: Vec<u16> = join_all((0..40).map(|i| {
        let (client, csrf) = (client.clone(), csrf.clone());
        let base = if i % 2 == 0 {
            s1.url.clone()
        } else {
            s2.url.clone()
        };
        async move {
            client
                .post(format!("{base}/device"))
                .form(&[("csrf", csrf.as_str()), ("user_code", "BCDF-BCDF")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    }))
    .await;
    let t = tally(&st);
    assert!(t.get(&400).copied().unwrap_or(0) <= 10, "{t:?}");
    assert_eq!(
        t.get(&400).copied().unwrap_or(0) + t.get(&429).copied().unwrap_or(0),
        40,
        "{t:?}"
    );

    // /device/approve counts wrong codes too.
    s1.user("bob@example.com").await;
    let (client, csrf) = device_session(&s1, "bob@example.com").await;
    let st: Vec<u16> = join_all((0..20).map(|i| {
        let (client, csrf) = (client.clone(), csrf.clone());
        let base = if i % 2 == 0 {
            s1.url.clone()
        } else {
            s2.url.clone()
        };
        async move {
            client
                .post(format!("{base}/device/approve"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("user_code", "ZZZZ-ZZZZ"),
                    ("decision", "approve"),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    }))
    .await;
    let t = tally(&st);
    assert!(t.get(&400).copied().unwrap_or(0) <= 10, "{t:?}");
    assert!(t.get(&429).copied().unwrap_or(0) >= 10, "{t:?}");
}
both!(device_code_limits_hold_under_concurrency);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_limit_is_shared_by_processes_on_postgres() {
    let (s1, s2) = two(Backend::Postgres, |c| c.gateway_per_minute = 5).await;
    s1.db()
        .upsert_model(&mogplex_server::gateway::echo_row())
        .await
        .unwrap();
    let uid = s1.user("ada@example.com").await;
    let pid = s1
        .db()
        .set_plan("p", &["mogplex/echo".to_owned()])
        .await
        .unwrap()
        .unwrap();
    s1.db().assign_plan(&uid, Some(&pid)).await.unwrap();
    let token = mogplex_server::crypto::personal_access_token();
    s1.db().create_pat(&uid, "t", &token, None).await.unwrap();
    let ask = json!({"model": "mogplex/echo", "messages": [{"role": "user", "content": "hi"}]});
    let st: Vec<u16> = join_all((0..12).map(|i| {
        let base = if i % 2 == 0 {
            s1.url.clone()
        } else {
            s2.url.clone()
        };
        let (token, ask) = (token.clone(), ask.clone());
        async move {
            plain()
                .post(format!("{base}/api/cli/inference/chat/completions"))
                .bearer_auth(&token)
                .json(&ask)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    }))
    .await;
    let t = tally(&st);
    assert_eq!(t.get(&200).copied(), Some(5), "{t:?}");
    assert_eq!(t.get(&429).copied(), Some(7), "{t:?}");
}

/// VmRSS and VmHWM of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_sign_ins_keeps_memory_bounded_and_is_answered() {
    const BOUND_KIB: u64 = 256 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("b.db").display());
    let seed = TestServer::on_database(&database, tempfile::tempdir().unwrap(), None, |_| {}).await;
    seed.user("ada@example.com").await;
    drop(seed);
    let (proc, url) = crate::refresh::spawn_server(&database, &dir.path().join("serve.log"));
    let pid = proc.0.id();
    // Each attempt from its own address, so no throttle stops it before the hash. The clients
    // are built before any connects: building one reads the system's certificates (tens of
    // milliseconds on a busy machine), and built inside the burst, 200 of them held the first
    // connections silent past the server's header timeout, which then (rightly) closed them.
    let browsers: Vec<reqwest::Client> = (0..200u8)
        .map(|i| browser_from(i.wrapping_add(2).max(2)))
        .collect();
    let clients: Vec<(reqwest::Client, String)> = join_all(browsers.into_iter().map(|c| {
        let url = url.clone();
        async move {
            let page = c
                .get(format!("{url}/login"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            (c, hidden(&page, "csrf"))
        }
    }))
    .await;
    let before = memory_kib(pid);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut largest = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                largest = largest.max(memory_kib(pid).0);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            largest
        })
    };
    let statuses: Vec<u16> = join_all(clients.iter().enumerate().map(|(i, (c, csrf))| {
        let url = url.clone();
        async move {
            // Known and unknown accounts, right and wrong passwords: every one costs a hash.
            let (email, password) = match i % 3 {
                0 => ("ada@example.com".to_owned(), PASSWORD),
                1 => ("ada@example.com".to_owned(), "wrong password!"),
                _ => (format!("ghost{i}@example.com"), "wrong password!"),
            };
            c.post(format!("{url}/login"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("email", &email),
                    ("password", password),
                    ("next", "/"),
                ])
                .send()
                .await
                .expect("every request is answered")
                .status()
                .as_u16()
        }
    }))
    .await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let largest_rss = watcher.await.unwrap();
    let t = tally(&statuses);
    assert!(
        statuses.iter().all(|s| [303, 401, 503].contains(s)),
        "{t:?}"
    );
    assert!(t.contains_key(&303) && t.contains_key(&401), "{t:?}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (rss, hwm) = memory_kib(pid);
    eprintln!(
        "burst: {t:?}; before (VmRSS, VmHWM) {before:?} KiB; resident {largest_rss} KiB at most during, {rss} KiB after, peak {hwm} KiB"
    );
    assert!(
        hwm < BOUND_KIB,
        "the server's resident memory peaked at {hwm} KiB"
    );
    assert!(rss < BOUND_KIB);
    drop(proc);
}
