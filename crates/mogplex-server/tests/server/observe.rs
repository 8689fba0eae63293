//! What an operator watches: health checks, `/metrics` read by a Prometheus text parser, and
//! the audit log of a sign-in, a refresh, a replayed token and a revocation.

use crate::both;
use crate::harness::*;
use prometheus_parse::{Scrape, Value};

async fn scrape(s: &TestServer) -> Scrape {
    let r = plain()
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of the sample `name` whose labels include `labels` (0 when absent).
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(h) => h.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

async fn metrics_move_with_the_flows(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("m@example.com").await;
    let before = scrape(&s).await;
    let (access, rt) = signed_in_tokens(&s, "m@example.com").await;
    let (status, rotated) = refresh(&s, &rt).await;
    assert_eq!(status, 200);
    let (status, _) = refresh(&s, rotated["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    // Replaying the first refresh token (two rotations back, so no retry grace applies) is
    // reuse: its sign-in is revoked.
    let (status, _) = refresh(&s, &rt).await;
    assert_eq!(status, 400);
    // A live follower counts while it is connected.
    let r = plain()
        .post(format!("{}/api/v1/mogplex/runs", s.url))
        .bearer_auth(signed_in_tokens(&s, "m@example.com").await.0)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let _ = access;
    let after = scrape(&s).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let grants = "mogplex_oauth_grants_total";
    assert_eq!(
        delta(
            grants,
            &[("grant_type", "authorization_code"), ("outcome", "ok")]
        ),
        2.0
    );
    assert_eq!(
        delta(
            grants,
            &[("grant_type", "refresh_token"), ("outcome", "ok")]
        ),
        2.0
    );
    assert_eq!(
        delta(
            grants,
            &[
                ("grant_type", "refresh_token"),
                ("outcome", "invalid_grant")
            ]
        ),
        1.0
    );
    assert_eq!(delta("mogplex_refresh_reuse_detected_total", &[]), 1.0);
    let token_route = [("route", "/api/auth/mcp/token"), ("status", "200")];
    assert_eq!(delta("mogplex_http_requests_total", &token_route), 4.0);
    assert_eq!(
        delta(
            "mogplex_http_requests_total",
            &[("route", "/api/auth/mcp/token"), ("status", "400")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "mogplex_http_request_duration_seconds",
            &[("route", "/api/auth/mcp/token")]
        ),
        5.0
    );
    assert!(value(&after, "mogplex_db_pool_max_connections", &[]) >= 1.0);
    assert!(
        after
            .samples
            .iter()
            .any(|x| x.metric == "mogplex_db_pool_connections"
                && x.labels.get("state") == Some("in_use"))
    );
}
both!(metrics_move_with_the_flows);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_subscribers_and_health() {
    let s = TestServer::start(Backend::Sqlite).await;
    s.user("h@example.com").await;
    let c = plain();
    let r = c
        .get(format!("{}/health/live", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{}/health/ready", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (access, _) = signed_in_tokens(&s, "h@example.com").await;
    let r = c
        .post(format!("{}/api/v1/mogplex/runs", s.url))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let run = v["data"]["id"].as_str().unwrap().to_owned();
    let follower = c
        .get(format!("{}/api/v1/mogplex/runs/{run}/events", s.url))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(follower.status(), 200);
    let m = scrape(&s).await;
    assert_eq!(value(&m, "mogplex_run_subscribers", &[]), 1.0);
    drop(follower);
    // The stream notices the closed connection at its next write (an event or a keep-alive):
    // append one.
    let r = c
        .post(format!("{}/api/v1/mogplex/runs/{run}/events", s.url))
        .bearer_auth(&access)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while value(&scrape(&s).await, "mogplex_run_subscribers", &[]) != 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the follower still counts"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Not ready once the database is gone; still live.
    match s.db() {
        mogplex_server::db::Db::Sqlite(p) => p.close().await,
        mogplex_server::db::Db::Postgres(p) => p.close().await,
    }
    let r = c
        .get(format!("{}/health/ready", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let r = c
        .get(format!("{}/health/live", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn audit_rows_for_security_events(b: Backend) {
    let s = TestServer::start(b).await;
    let uid = s.user("au@example.com").await;
    let c = browser();
    let r = sign_in(&s, &c, "au@example.com", "wrong password!", "/").await;
    assert_eq!(r.status(), 401);
    let r = sign_in(&s, &c, "nobody@example.com", "whatever pw", "/").await;
    assert_eq!(r.status(), 401);
    let (code, p) = get_code(&s, "au@example.com", REDIRECT).await;
    let (status, tokens) = exchange(&s, &code, &p, REDIRECT).await;
    assert_eq!(status, 200);
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, rotated) = refresh(&s, &rt).await;
    assert_eq!(status, 200);
    let (status, _) = refresh(&s, rotated["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    // Two rotations back: reuse, whatever the retry grace.
    let (status, _) = refresh(&s, &rt).await;
    assert_eq!(status, 400);
    let (code2, p2) = get_code(&s, "au@example.com", REDIRECT).await;
    let (_, tokens2) = exchange(&s, &code2, &p2, REDIRECT).await;
    let rt2 = tokens2["refresh_token"].as_str().unwrap().to_owned();
    let r = plain()
        .post(format!("{}/api/auth/mcp/revoke", s.url))
        .form(&[("token", rt2.as_str()), ("client_id", "mogplex-cli")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let rows = s.db().audit_since(0, None, 1000).await.unwrap();
    let has = |kind: &str, outcome: &str, user: Option<&str>, detail: &str| {
        rows.iter().any(|r| {
            r.kind == kind
                && r.outcome == outcome
                && (user.is_none() || r.user_id.as_deref() == user)
                && r.detail.contains(detail)
        })
    };
    assert!(
        has("sign_in", "failed", None, "wrong password"),
        "{rows:#?}"
    );
    assert!(has("sign_in", "failed", None, "unknown account"));
    assert!(has("sign_in", "ok", Some(&uid), ""));
    assert!(
        rows.iter()
            .filter(|r| r.kind == "sign_in")
            .all(|r| r.client.as_deref() == Some("127.0.0.1"))
    );
    assert!(has("token.issued", "ok", Some(&uid), "authorization_code"));
    assert!(has("token.refreshed", "ok", Some(&uid), "refresh_token"));
    assert!(has("token.reuse_detected", "failed", Some(&uid), "reused"));
    assert!(has("token.revoked", "ok", Some(&uid), "refresh token"));
    // No secret in any row.
    let all = format!("{rows:?}");
    for secret in [
        PASSWORD,
        "wrong password!",
        "whatever pw",
        &code,
        &p.verifier,
        tokens["access_token"].as_str().unwrap(),
        &rt,
        rotated["refresh_token"].as_str().unwrap(),
        &rt2,
    ] {
        assert!(!all.contains(secret), "a secret in the audit log: {all}");
    }
    // Append-only.
    let q = sqlx::AssertSqlSafe("UPDATE audit_log SET outcome = 'ok'".to_owned());
    let refused = match s.db() {
        mogplex_server::db::Db::Sqlite(p) => sqlx::query(q).execute(p).await.is_err(),
        mogplex_server::db::Db::Postgres(p) => sqlx::query(q).execute(p).await.is_err(),
    };
    assert!(refused, "the audit log accepted an UPDATE");
    // Retention deletes old rows only.
    s.db()
        .append_audit(1, "sign_in", "ok", None, None, None, "ancient")
        .await
        .unwrap();
    let n = mogplex_server::audit::prune(s.db(), 30).await.unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        s.db().audit_since(0, None, 1000).await.unwrap().len(),
        rows.len()
    );
}
both!(audit_rows_for_security_events);

/// The server's audit writer commits events in groups, and each `record` returns only once its
/// event is stored.
async fn audit_group_commit_stores_every_event(b: Backend) {
    let s = TestServer::start(b).await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let sink = s.state.audit.clone();
            tokio::spawn(async move {
                sink.record(
                    mogplex_server::audit::Event::new(mogplex_server::audit::kind::ADMIN)
                        .detail(format!("event {i}")),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.count("SELECT COUNT(*) FROM audit_log").await, 200);
    assert_eq!(
        s.count("SELECT COUNT(DISTINCT detail) FROM audit_log")
            .await,
        200
    );
}
both!(audit_group_commit_stores_every_event);

/// A device approval and a denial, each audited with the account and the address; the grant
/// that follows the approval is audited and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn device_decisions_are_audited() {
    let s = TestServer::start(Backend::Sqlite).await;
    let uid = s.user("dv@example.com").await;
    let client = browser();
    let r = sign_in(&s, &client, "dv@example.com", PASSWORD, "/device").await;
    assert_eq!(r.status(), 303);
    let mut device_codes = Vec::new();
    for decision in ["approve", "deny"] {
        let r = plain()
            .post(format!("{}/api/auth/mcp/device", s.url))
            .form(&[
                ("client_id", "mogplex-cli"),
                ("scope", "openid offline_access"),
            ])
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        let user_code = v["user_code"].as_str().unwrap().to_owned();
        device_codes.push(v["device_code"].as_str().unwrap().to_owned());
        let page = client
            .get(format!("{}/device", s.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = hidden(&page, "csrf");
        let confirm = client
            .post(format!("{}/device", s.url))
            .form(&[("csrf", csrf.as_str()), ("user_code", user_code.as_str())])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let r = client
            .post(format!("{}/device/approve", s.url))
            .form(&[
                ("csrf", hidden(&confirm, "csrf").as_str()),
                ("user_code", hidden(&confirm, "user_code").as_str()),
                ("decision", decision),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (status, body, _) = token(
        &s,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", "mogplex-cli"),
            ("device_code", &device_codes[0]),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rows = s.db().audit_since(0, Some(&uid), 100).await.unwrap();
    let kinds: Vec<(&str, &str, Option<&str>)> = rows
        .iter()
        .map(|r| (r.kind.as_str(), r.outcome.as_str(), r.client.as_deref()))
        .collect();
    for expected in [
        ("device.approved", "ok", Some("127.0.0.1")),
        ("device.denied", "ok", Some("127.0.0.1")),
        ("token.issued", "ok", Some("127.0.0.1")),
    ] {
        assert!(kinds.contains(&expected), "{expected:?} not in {kinds:?}");
    }
    let m = scrape(&s).await;
    assert_eq!(
        value(
            &m,
            "mogplex_oauth_grants_total",
            &[("grant_type", "device_code"), ("outcome", "ok")]
        ),
        1.0
    );
}

/// Made-up tokens and throttled sign-ins are counted, not written to the audit log: a flood of
/// them cannot grow the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn floods_do_not_fill_the_audit_log() {
    let s = TestServer::start(Backend::Sqlite).await;
    s.user("fl@example.com").await;
    for i in 0..20 {
        let (status, _) = refresh(&s, &format!("mog_rt_madeup{i}")).await;
        assert_eq!(status, 400);
    }
    let c = browser();
    let mut checked = 0;
    let mut throttled = 0;
    // Until the throttle has refused a few (whatever its limits are).
    for _ in 0..60 {
        match sign_in(&s, &c, "fl@example.com", "not the password", "/")
            .await
            .status()
            .as_u16()
        {
            401 => checked += 1,
            429 => throttled += 1,
            other => panic!("{other}"),
        }
        if throttled == 3 {
            break;
        }
    }
    assert!(throttled > 0, "the throttle never applied");
    let rows = s.db().audit_since(0, None, 1000).await.unwrap();
    assert!(rows.iter().all(|r| r.kind == "sign_in"), "{rows:#?}");
    // The checked attempts only.
    assert_eq!(rows.len(), checked, "{rows:#?}");
    let m = scrape(&s).await;
    assert_eq!(
        value(
            &m,
            "mogplex_oauth_grants_total",
            &[
                ("grant_type", "refresh_token"),
                ("outcome", "invalid_grant")
            ]
        ),
        20.0
    );
}
