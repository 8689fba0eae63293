//! The HTTP edge under abuse: slow and greedy clients, forms with thousands of fields, NUL
//! characters in every kind of input.

use crate::both;
use crate::harness::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A connection from `from` (any 127/8 address) to the server at `url`.
async fn connect_from(url: &str, from: &str) -> TcpStream {
    let u = url::Url::parse(url).unwrap();
    let to: std::net::SocketAddr = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap())
        .parse()
        .unwrap();
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
    sock.connect(to).await.unwrap()
}

/// What the server sent on `c` until it closed it (end of stream or a reset), waiting at most
/// `bound`; `None` if it was still open then.
async fn answer_then_close(c: &mut TcpStream, bound: Duration) -> Option<String> {
    let mut buf = [0u8; 1024];
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match tokio::time::timeout_at(deadline, c.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// A whole GET from `from`; the status line.
async fn get_from(url: &str, from: &str, path: &str) -> String {
    let mut c = connect_from(url, from).await;
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), c.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// One keep-alive GET on `c`: the status line, with the whole response read.
async fn get_on(c: &mut TcpStream, path: &str) -> String {
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(c.read(&mut byte).await.unwrap(), 1, "closed mid-response");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("a content-length");
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).await.unwrap();
    head.lines().next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_sent_requests_are_bounded_per_address_and_timed_out() {
    const BOUND: usize = 8;
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.edge.max_connections_per_address = BOUND;
        c.edge.header_read_timeout = Duration::from_secs(2);
    })
    .await;
    // One client opens many connections and sends half a request on each.
    let mut held = Vec::new();
    for _ in 0..BOUND + 12 {
        let mut c = connect_from(&s.url, "127.0.0.1").await;
        c.write_all(b"GET /login HTTP/1.1\r\nHost: t\r\nX-Slow: ")
            .await
            .unwrap();
        held.push(c);
    }
    // Those past the bound are answered 503 with Retry-After at once and closed, without
    // waiting for the header timeout...
    let mut over = held.split_off(BOUND);
    for c in &mut over {
        let a = answer_then_close(c, Duration::from_secs(30)).await.unwrap();
        assert!(a.starts_with("HTTP/1.1 503 "), "{a}");
        assert!(
            a.contains("\r\nretry-after: 1\r\n") || a.contains("\r\nRetry-After: 1\r\n"),
            "{a}"
        );
        assert!(a.contains("error: too many connections"), "{a}");
    }
    // ...while another client is served.
    assert_eq!(
        get_from(&s.url, "127.0.0.2", "/login").await,
        "HTTP/1.1 200 OK"
    );
    // The header timeout answers the ones within the bound with 408 and closes them, and the
    // client may connect again.
    for c in &mut held {
        let a = answer_then_close(c, Duration::from_secs(60)).await.unwrap();
        assert!(a.starts_with("HTTP/1.1 408 "), "{a}");
    }
    assert_eq!(
        get_from(&s.url, "127.0.0.1", "/login").await,
        "HTTP/1.1 200 OK"
    );
}

/// The header timeout bounds sending a request, not waiting between requests: a kept-alive
/// connection idle for longer than it still takes the next request (a client's pool reuses
/// it), and is closed only after the idle bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kept_alive_connections_outlive_the_header_timeout() {
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.edge.header_read_timeout = Duration::from_secs(1);
        c.edge.idle_timeout = Duration::from_secs(8);
    })
    .await;
    let mut c = connect_from(&s.url, "127.0.0.3").await;
    assert_eq!(get_on(&mut c, "/health/live").await, "HTTP/1.1 200 OK");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(get_on(&mut c, "/health/live").await, "HTTP/1.1 200 OK");
    // Idle past the idle bound: closed, without an answer nobody asked for.
    assert_eq!(
        answer_then_close(&mut c, Duration::from_secs(60))
            .await
            .as_deref(),
        Some("")
    );
    // A request begun on a kept-alive connection has the header bound again.
    let mut c = connect_from(&s.url, "127.0.0.3").await;
    assert_eq!(get_on(&mut c, "/health/live").await, "HTTP/1.1 200 OK");
    c.write_all(b"GET /health/live HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .await
        .unwrap();
    let a = answer_then_close(&mut c, Duration::from_secs(6)).await;
    assert!(
        a.as_deref().is_some_and(|a| a.starts_with("HTTP/1.1 408 ")),
        "{a:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forms_with_too_many_fields_are_refused_everywhere() {
    let s = TestServer::start(Backend::Sqlite).await;
    let many: String = (0..8_000)
        .map(|i| format!("{i}="))
        .collect::<Vec<_>>()
        .join("&");
    assert!(many.len() < mogplex_server::MAX_BODY);
    let form = "application/x-www-form-urlencoded";
    for path in [
        "/api/auth/mcp/token",
        "/api/auth/mcp/revoke",
        "/api/auth/mcp/device",
    ] {
        let r = plain()
            .post(format!("{}{path}", s.url))
            .header("content-type", form)
            .body(many.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let b: serde_json::Value = r.json().await.unwrap();
        assert_eq!(b["error"], "invalid_request", "{path}");
        assert!(
            b["error_description"]
                .as_str()
                .unwrap()
                .contains("more than 64 fields"),
            "{b}"
        );
    }
    let c = browser();
    for path in ["/login", "/device", "/device/approve", "/logout"] {
        let r = c
            .post(format!("{}{path}", s.url))
            .header("content-type", form)
            .body(many.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    let r = c
        .get(format!(
            "{}/api/auth/mcp/authorize?{}",
            s.url,
            &many[..7000]
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A normal form still works.
    s.user("ann@example.com").await;
    let r = sign_in(&s, &c, "ann@example.com", PASSWORD, "/").await;
    assert_eq!(r.status(), 303);
}

async fn nul_bytes_are_bad_input(b: Backend) {
    let s = TestServer::start(b).await;
    let uid = s.user("nul@example.com").await;
    // The sign-in form: a page, 400, not a JSON 500.
    let c = browser();
    let r = sign_in(&s, &c, "nul\0@example.com", PASSWORD, "/").await;
    assert_eq!(r.status(), 400);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("NUL"));
    // A query string.
    let r = c
        .get(format!("{}/login?next=%2F%00", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The token endpoint.
    let (status, body, _) = token(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "mogplex-cli"),
            ("refresh_token", "a\0b"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_request");
    // The chat model and a run title, with a signed-in token.
    s.db()
        .upsert_model(&mogplex_server::gateway::echo_row())
        .await
        .unwrap();
    let pid = s
        .db()
        .set_plan("p", &[mogplex_server::gateway::ECHO_MODEL.to_owned()])
        .await
        .unwrap()
        .unwrap();
    s.db().assign_plan(&uid, Some(&pid)).await.unwrap();
    let (access, _) = signed_in_tokens(&s, "nul@example.com").await;
    let r = plain()
        .post(format!("{}/api/cli/inference/chat/completions", s.url))
        .bearer_auth(&access)
        .header("content-type", "application/json")
        .body(r#"{"model":"mogplex/echo\u0000","messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("NUL"),
        "{v}"
    );
    let r = plain()
        .post(format!("{}/api/v1/mogplex/runs", s.url))
        .bearer_auth(&access)
        .header("content-type", "application/json")
        .body(r#"{"title":"a\u0000b"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["code"], "invalid_request", "{v}");
    // The same text written out, not as a NUL, is fine.
    let r = plain()
        .post(format!("{}/api/v1/mogplex/runs", s.url))
        .bearer_auth(&access)
        .header("content-type", "application/json")
        .body(r#"{"title":"a\\u0000b"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(s.count("SELECT COUNT(*) FROM runs").await, 1);
}
both!(nul_bytes_are_bad_input);

async fn runs_have_size_caps(b: Backend) {
    let s = TestServer::start_with(b, |c| {
        c.runs_per_day = 2;
        c.events_per_run = 3;
    })
    .await;
    s.user("runs@example.com").await;
    let (access, _) = signed_in_tokens(&s, "runs@example.com").await;
    let c = plain();
    let create = || {
        c.post(format!("{}/api/v1/mogplex/runs", s.url))
            .bearer_auth(&access)
            .header("content-type", "application/json")
            .body(r#"{"title":"t"}"#)
            .send()
    };
    let r = create().await.unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    let run = v["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(create().await.unwrap().status(), 201);
    let r = create().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("2 runs"));
    assert_eq!(s.count("SELECT COUNT(*) FROM runs").await, 2);
    let append = |body: String| {
        c.post(format!("{}/api/v1/mogplex/runs/{run}/events", s.url))
            .bearer_auth(&access)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // Too large an event: 413, stored nowhere.
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(70 * 1024));
    assert_eq!(append(big).await.unwrap().status(), 413);
    for _ in 0..3 {
        assert_eq!(append("{}".into()).await.unwrap().status(), 201);
    }
    let r = append("{}".into()).await.unwrap();
    assert_eq!(r.status(), 413);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("new run"),
        "{v}"
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM run_events").await, 3);
}
both!(runs_have_size_caps);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_are_not_stored_and_https_gets_hsts() {
    let s = TestServer::start(Backend::Sqlite).await;
    s.user("page@example.com").await;
    let c = browser();
    for path in ["/login", "/device", "/"] {
        let r = c.get(format!("{}{path}", s.url)).send().await.unwrap();
        if r.status() == 200 {
            assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
        }
        assert!(!r.headers().contains_key("strict-transport-security"));
    }
    let r = sign_in(&s, &c, "page@example.com", PASSWORD, "/").await;
    assert_eq!(r.status(), 303);
    for path in ["/", "/device", "/web/models", "/plans-and-billing"] {
        let r = c.get(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    }
    // A server whose public URL is https (TLS terminated in front of it).
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        *c = mogplex_server::Config::new("https://accounts.example.com");
    })
    .await;
    let r = plain()
        .get(format!("{}/login", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trust_proxy_keys_on_the_forwarded_address() {
    for trust in [false, true] {
        let s = TestServer::start_with(Backend::Sqlite, |c| c.edge.trust_proxy = trust).await;
        s.user("px@example.com").await;
        let c = browser();
        let page = c
            .get(format!("{}/login", s.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = hidden(&page, "csrf");
        let r = c
            .post(format!("{}/login", s.url))
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", "px@example.com"),
                ("password", "not the password"),
                ("next", "/"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let rows = s.db().audit_since(0, None, 10).await.unwrap();
        let expected = if trust { "203.0.113.7" } else { "127.0.0.1" };
        assert_eq!(rows[0].client.as_deref(), Some(expected), "trust {trust}");
        let key = format!("login:addr:{expected}");
        assert_eq!(
            s.count(&format!(
                "SELECT COUNT(*) FROM throttle WHERE key = '{key}'"
            ))
            .await,
            1,
            "trust {trust}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storage_error_on_a_page_is_a_page() {
    let s = TestServer::start(Backend::Sqlite).await;
    s.user("se@example.com").await;
    let c = browser();
    let page = c
        .get(format!("{}/login", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf");
    // The database goes away under the server.
    if let mogplex_server::db::Db::Sqlite(p) = s.db() {
        p.close().await;
    }
    let r = c
        .post(format!("{}/login", s.url))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "se@example.com"),
            ("password", PASSWORD),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_server_error());
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("Something went wrong"));
    // An API client still gets JSON.
    let (status, body, _) = token(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "mogplex-cli"),
            ("refresh_token", "x"),
        ],
    )
    .await;
    assert!(status >= 500);
    assert_eq!(body["error"], "server_error");
}
