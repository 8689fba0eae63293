//! Runs: owner-only, history then live, reconnect without loss, several subscribers, and live
//! events across two server processes on one PostgreSQL.

use crate::both;
use crate::harness::*;
use mogplex_protocol::SseParser;
use serde_json::json;
use std::time::Duration;

pub(crate) async fn token_for(s: &TestServer, email: &str) -> String {
    let uid = s.user(email).await;
    let t = mogplex_server::crypto::personal_access_token();
    s.db().create_pat(&uid, "t", &t, None).await.unwrap();
    t
}

pub(crate) async fn create(s: &TestServer, t: &str) -> String {
    let r = plain()
        .post(format!("{}/api/v1/mogplex/runs", s.url))
        .bearer_auth(t)
        .json(&json!({"title": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<serde_json::Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn append(base: &str, t: &str, run: &str, n: i64) -> reqwest::StatusCode {
    plain()
        .post(format!("{base}/api/v1/mogplex/runs/{run}/events"))
        .bearer_auth(t)
        .json(&json!({"type": "message", "n": n}))
        .send()
        .await
        .unwrap()
        .status()
}

/// An open event stream.
pub(crate) struct Sub {
    resp: reqwest::Response,
    parser: SseParser,
    buf: Vec<mogplex_protocol::SseEvent>,
}

impl Sub {
    pub(crate) async fn open(base: &str, t: &str, run: &str, last_event_id: Option<i64>) -> Self {
        let mut req = plain()
            .get(format!("{base}/api/v1/mogplex/runs/{run}/events"))
            .bearer_auth(t);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            resp,
            parser: SseParser::new(),
            buf: Vec::new(),
        }
    }

    /// The next `n` events as (id, n).
    pub(crate) async fn next(&mut self, n: usize) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        while out.len() < n {
            if !self.buf.is_empty() {
                let ev = self.buf.remove(0);
                let v: serde_json::Value = serde_json::from_str(&ev.data).unwrap();
                out.push((ev.id.unwrap().parse().unwrap(), v["n"].as_i64().unwrap()));
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.resp.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .unwrap();
            self.parser.push(&chunk, &mut self.buf).unwrap();
        }
        out
    }
}

async fn runs_are_owner_only(b: Backend) {
    let s = TestServer::start(b).await;
    let ada = token_for(&s, "ada@example.com").await;
    let bob = token_for(&s, "bob@example.com").await;
    let run = create(&s, &ada).await;
    assert!(run.starts_with("run_"));
    let snap: serde_json::Value = plain()
        .get(format!("{}/api/v1/mogplex/runs/{run}", s.url))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            snap["data"]["title"].as_str(),
            snap["data"]["eventCount"].as_i64()
        ),
        (Some("demo"), Some(0))
    );
    for (method, path) in [
        ("GET", format!("/api/v1/mogplex/runs/{run}")),
        ("GET", format!("/api/v1/mogplex/runs/{run}/events")),
        ("POST", format!("/api/v1/mogplex/runs/{run}/events")),
        ("GET", "/api/v1/mogplex/runs/run_nosuch".into()),
    ] {
        let req = plain()
            .request(method.parse().unwrap(), format!("{}{path}", s.url))
            .bearer_auth(&bob)
            .json(&json!({"n": 1}));
        assert_eq!(
            req.send().await.unwrap().status(),
            404,
            "{method} {path} for someone else"
        );
        let r = plain()
            .request(method.parse().unwrap(), format!("{}{path}", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = plain()
        .post(format!("{}/api/v1/mogplex/runs/{run}/events", s.url))
        .bearer_auth(&ada)
        .body("[1]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "events are JSON objects");
}
both!(runs_are_owner_only);

async fn history_then_live_and_reconnect(b: Backend) {
    let s = TestServer::start(b).await;
    let t = token_for(&s, "ada@example.com").await;
    let run = create(&s, &t).await;
    for n in 1..=3 {
        assert_eq!(append(&s.url, &t, &run, n).await, 201);
    }
    let mut sub = Sub::open(&s.url, &t, &run, None).await;
    assert_eq!(sub.next(3).await, [(1, 1), (2, 2), (3, 3)], "history first");
    for n in 4..=5 {
        append(&s.url, &t, &run, n).await;
    }
    assert_eq!(sub.next(2).await, [(4, 4), (5, 5)], "then live, in order");
    drop(sub);
    // Events appended while disconnected arrive after a reconnect with Last-Event-ID.
    append(&s.url, &t, &run, 6).await;
    let mut again = Sub::open(&s.url, &t, &run, Some(4)).await;
    assert_eq!(again.next(2).await, [(5, 5), (6, 6)]);
    append(&s.url, &t, &run, 7).await;
    assert_eq!(again.next(1).await, [(7, 7)]);
}
both!(history_then_live_and_reconnect);

async fn two_subscribers_see_the_same_sequence(b: Backend) {
    let s = TestServer::start(b).await;
    let t = token_for(&s, "ada@example.com").await;
    let run = create(&s, &t).await;
    let mut a = Sub::open(&s.url, &t, &run, None).await;
    let mut c = Sub::open(&s.url, &t, &run, None).await;
    // Concurrent appends: numbers are dense and unique, and both see the same order.
    let appends: Vec<_> = (1..=8).map(|n| append(&s.url, &t, &run, n)).collect();
    for st in futures_util::future::join_all(appends).await {
        assert_eq!(st, 201);
    }
    let (x, y) = (a.next(8).await, c.next(8).await);
    assert_eq!(x, y);
    assert_eq!(
        x.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    let mut ns: Vec<i64> = x.iter().map(|(_, n)| *n).collect();
    ns.sort();
    assert_eq!(ns, (1..=8).collect::<Vec<_>>());
}
both!(two_subscribers_see_the_same_sequence);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_events_cross_processes_on_postgres() {
    let s1 = TestServer::start(Backend::Postgres).await;
    let s2 =
        TestServer::on_database(&s1.database, tempfile::tempdir().unwrap(), None, |_| {}).await;
    let t = token_for(&s1, "ada@example.com").await;
    let run = create(&s1, &t).await;
    let mut sub = Sub::open(&s2.url, &t, &run, None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    append(&s1.url, &t, &run, 1).await;
    append(&s1.url, &t, &run, 2).await;
    assert_eq!(
        sub.next(2).await,
        [(1, 1), (2, 2)],
        "appended on one process, heard on the other"
    );
}
