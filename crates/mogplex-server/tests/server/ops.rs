//! The `mogplex-server` binary as an operator runs it: shutdown with live streams open, the
//! configuration it refuses, what it says when PostgreSQL is unreachable, secrets kept off the
//! command line.

use crate::harness::*;
use futures_util::StreamExt;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mogplex-server"));
    c.stdin(Stdio::null()).env_remove("MOGPLEX_LOG");
    c
}

/// Runs an admin command: (exit code, stdout, stderr).
pub fn admin(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub struct Serving {
    pub child: Child,
    pub url: String,
    pub log: std::path::PathBuf,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` on port 0 with `extra` arguments; its stderr in `dir`.
pub fn serve(database: &str, dir: &std::path::Path, extra: &[&str]) -> Serving {
    let log = dir.join(format!(
        "serve-{}.log",
        mogplex_server::crypto::hex(&mogplex_server::crypto::random_bytes::<4>())
    ));
    let child = bin()
        .args(["serve", "--database", database, "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut s = Serving {
        child,
        url: String::new(),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&s.log).unwrap_or_default();
        if let Some(url) = text.lines().find_map(|l| {
            l.split_once("listening on ")?
                .1
                .split_once(" as ")?
                .1
                .split(' ')
                .next()
        }) {
            s.url = url.to_owned();
            return s;
        }
        assert!(Instant::now() < deadline, "serve did not start: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn add_user(database: &str, email: &str) {
    let (code, _, err) = admin(
        &[
            "user",
            "add",
            "--database",
            database,
            "--email",
            email,
            "--password-stdin",
        ],
        Some(PASSWORD),
    );
    assert_eq!(code, 0, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_ends_live_event_streams() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("s.db").display());
    add_user(&database, "ada@example.com");
    for signal in ["TERM", "INT"] {
        let mut server = serve(&database, dir.path(), &[]);
        let url = server.url.clone();
        let (access, _) = signed_in_tokens(url.as_str(), "ada@example.com").await;
        let r = plain()
            .post(format!("{url}/api/v1/mogplex/runs"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        let run = v["data"]["id"].as_str().unwrap().to_owned();
        let r = plain()
            .post(format!("{url}/api/v1/mogplex/runs/{run}/events"))
            .bearer_auth(&access)
            .body("{\"n\":1}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        // A follower, connected and caught up.
        let follower = plain()
            .get(format!("{url}/api/v1/mogplex/runs/{run}/events"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(follower.status(), 200);
        let mut stream = follower.bytes_stream();
        let first = stream.next().await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&first).contains("\"n\":1"));
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // The follower's stream ends, and the process exits cleanly by itself.
        let ended = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(chunk) = stream.next().await {
                if chunk.is_err() {
                    break;
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "the follower was not closed on SIG{signal}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let exit = loop {
            if let Some(st) = server.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "still running after SIG{signal}");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(exit.success(), "SIG{signal}: {exit:?}");
        let log = std::fs::read_to_string(&server.log).unwrap();
        assert!(log.contains("shutting down"), "{log}");
    }
}

#[test]
fn a_plain_http_public_url_is_refused_unless_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("p.db").display());
    let (code, _, err) = admin(
        &[
            "serve",
            "--database",
            &database,
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            "http://accounts.example.com",
        ],
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("error: the public URL http://accounts.example.com is http://"));
    assert!(err.contains("hint:") && err.contains("--insecure-http") && err.contains("https://"));
    // Loopback http, an https URL, and an explicit --insecure-http all start.
    for extra in [
        &["--public-url", "http://localhost:9"][..],
        &["--public-url", "https://accounts.example.com"][..],
        &[
            "--public-url",
            "http://accounts.example.com",
            "--insecure-http",
        ][..],
    ] {
        let s = serve(&database, dir.path(), extra);
        assert!(s.url.starts_with("http"), "{extra:?}");
    }
}

#[test]
fn an_unreachable_postgres_is_named_with_what_to_check() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let database = format!("postgres://postgres:hunter2pw@127.0.0.1:{port}/opsb_nowhere");
    let (code, _, err) = admin(
        &["serve", "--database", &database, "--listen", "127.0.0.1:0"],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("127.0.0.1:") && err.contains("opsb_nowhere") && err.contains("postgres"),
        "{err}"
    );
    assert!(err.contains("hint:") && err.contains("pg_isready"), "{err}");
    assert!(!err.contains("hunter2pw"), "{err}");
}

#[test]
fn mcp_secret_values_never_come_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("m.db").display());
    add_user(&database, "ada@example.com");
    let base = [
        "mcp",
        "add",
        "--database",
        &database,
        "--email",
        "ada@example.com",
        "--name",
        "gh",
        "--command",
        "gh-mcp",
        "--secret-env",
    ];
    let mut literal = base.to_vec();
    literal.push("GITHUB_TOKEN=ghp_onthecommandline");
    let (code, _, err) = admin(&literal, None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("never from the command line"), "{err}");
    assert!(err.contains("GITHUB_TOKEN=env:VAR") && err.contains("GITHUB_TOKEN=-"));
    let mut unset = base.to_vec();
    unset.push("OPSB_SURELY_UNSET_VAR");
    let (code, _, err) = admin(&unset, None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not set"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_log_lines_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("j.db").display());
    add_user(&database, "ada@example.com");
    let server = serve(&database, dir.path(), &["--log-json"]);
    let url = server.url.as_str();
    let (access, refresh_token) = signed_in_tokens(url, "ada@example.com").await;
    let r = plain()
        .get(format!("{url}/api/auth/user"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 16);
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&server.log).unwrap();
        if text.contains(&id) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let line = lines
        .iter()
        .find(|l| l["span"]["id"] == id.as_str())
        .unwrap_or_else(|| panic!("no line with request id {id}:\n{text}"));
    assert_eq!(line["span"]["route"], "/api/auth/user");
    assert_eq!(line["fields"]["status"], 200);
    for secret in [PASSWORD, access.as_str(), refresh_token.as_str()] {
        assert!(!text.contains(secret), "a secret in the log");
    }
}
