//! Connections against the MCP reference server (`@modelcontextprotocol/server-everything`, the
//! pinned npm peer) over stdio, the child's environment, and servers that misbehave on purpose
//! (`misbehaving-server.mjs`): each an error for that server, in bounded time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mogplex_mcp::{Definition, Limits, McpErrorKind, connect};
use mogplex_testkit::peers::{McpEverything, Peers};
use std::collections::BTreeMap;
use std::time::Duration;

fn everything(env: BTreeMap<String, String>) -> Definition {
    let e = McpEverything::locate();
    let args = e.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Definition::stdio("everything", &e.program().display().to_string(), &args, env)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn lists_and_calls_the_reference_servers_tools() {
    rt().block_on(async {
        let c = connect(&everything(BTreeMap::new()), &Limits::default())
            .await
            .unwrap();
        let names: Vec<&str> = c.tools().iter().map(|t| t.name.as_str()).collect();
        assert!(names.contains(&"echo"), "{names:?}");
        assert!(names.contains(&"get-sum"), "{names:?}");
        let echo = c.tools().iter().find(|t| t.name == "echo").unwrap();
        assert_eq!(echo.wire_name(), "everything__echo");
        assert_eq!(echo.qualified(), "everything.echo");
        assert_eq!(echo.input_schema["type"], "object");
        assert!(echo.input_schema["properties"]["message"].is_object());

        let out = c.call("echo", r#"{"message": "hi there"}"#).await.unwrap();
        assert_eq!(out.text, "Echo: hi there");
        assert!(!out.is_error);
        let out = c.call("get-sum", r#"{"a": 2, "b": 3}"#).await.unwrap();
        assert!(out.text.contains('5'), "{}", out.text);
        // Arguments that do not match the schema: the server's error, the connection goes on.
        let bad = c.call("get-sum", r#"{"a": "two"}"#).await;
        assert!(bad.is_err() || bad.as_ref().unwrap().is_error, "{bad:?}");
        let not_object = c.call("echo", "[1]").await.unwrap_err();
        assert_eq!(not_object.kind, McpErrorKind::BadArguments);
        assert_eq!(
            c.call("echo", r#"{"message": "still"}"#)
                .await
                .unwrap()
                .text,
            "Echo: still"
        );
        c.close().await;
    });
}

const PARENT_SECRETS: [(&str, &str); 5] = [
    ("OPENAI_API_KEY", "sk-parent-openai-0123456789"),
    ("MOGPLEX_API_KEY", "mog_parent0123456789abcdef"),
    ("ANTHROPIC_API_KEY", "sk-ant-parent-0123456789"),
    ("GITHUB_TOKEN", "ghp_parent0123456789abcdef"),
    ("AWS_SECRET_ACCESS_KEY", "parent-aws-secret-0123456789"),
];

/// The child-environment test: run as its own process (`CHILD_ENV_PROBE=1`) with credential
/// variables set in the parent, a stdio server that prints its environment shows none of them,
/// only the variable its definition names.
#[test]
fn a_stdio_server_gets_no_credential_variables_of_the_parent() {
    if std::env::var_os("CHILD_ENV_PROBE").is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "a_stdio_server_gets_no_credential_variables_of_the_parent",
                "--exact",
                "--nocapture",
            ])
            .env("CHILD_ENV_PROBE", "1")
            .envs(PARENT_SECRETS)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
        return;
    }
    for (k, v) in PARENT_SECRETS {
        assert_eq!(std::env::var(k).unwrap(), v, "the parent has {k}");
    }
    rt().block_on(async {
        let named = BTreeMap::from([(
            "EVERYTHING_TOKEN".to_owned(),
            "named-by-definition".to_owned(),
        )]);
        let c = connect(&everything(named), &Limits::default())
            .await
            .unwrap();
        let out = c.call("get-env", "{}").await.unwrap();
        let env: serde_json::Value = serde_json::from_str(&out.text).unwrap();
        for (k, v) in PARENT_SECRETS {
            assert!(env.get(k).is_none(), "{k} reached the child");
            assert!(!out.text.contains(v), "the value of {k} reached the child");
        }
        assert!(
            env.as_object()
                .unwrap()
                .keys()
                .all(|k| !k.starts_with("MOGPLEX_")),
            "{env}"
        );
        assert_eq!(env["EVERYTHING_TOKEN"], "named-by-definition");
        assert!(env.get("PATH").is_some(), "ordinary variables are kept");
        c.close().await;
    });
}

fn misbehaving(mode: &str) -> Definition {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/misbehaving-server.mjs");
    let env = BTreeMap::from([("DEF_SECRET".to_owned(), "def-secret-0123456789".to_owned())]);
    Definition::stdio(
        mode,
        &Peers::get().node().display().to_string(),
        &[script, mode],
        env,
    )
}

#[test]
fn misbehaving_servers_are_errors_for_that_server() {
    let limits = Limits {
        connect_timeout: Duration::from_secs(8),
        call_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    rt().block_on(async {
        for (mode, kind, says) in [
            ("silent", McpErrorKind::Timeout, "did not answer within 8 s"),
            ("crash", McpErrorKind::Protocol, "the handshake failed"),
            ("garbage", McpErrorKind::Timeout, "did not answer"),
            (
                "many-tools",
                McpErrorKind::TooMuch,
                "lists more than 256 tools",
            ),
        ] {
            let err = connect(&misbehaving(mode), &limits).await.unwrap_err();
            assert_eq!((err.kind, mode), (kind, mode), "{err}");
            assert!(err.message.contains(says), "{mode}: {err}");
        }
        let c = connect(&misbehaving("huge"), &limits).await.unwrap();
        let err = c.call("tool0", "{}").await.unwrap_err();
        assert_eq!(err.kind, McpErrorKind::TooMuch);
        assert_eq!(err.message, "the result is larger than 1024 KiB");
        c.close().await;

        let missing = Definition::stdio("missing", "/nonexistent/mcp-server", &[], BTreeMap::new());
        let err = connect(&missing, &limits).await.unwrap_err();
        assert_eq!(err.kind, McpErrorKind::Spawn);
        assert!(
            err.message
                .contains("cannot start `/nonexistent/mcp-server`"),
            "{err}"
        );
    });
}

/// The reference server over Streamable HTTP (its `streamableHttp` mode on a free port).
#[test]
fn streamable_http_servers_connect_with_the_definitions_headers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = McpEverything::locate();
    let mut args = e.args();
    args[1] = "streamableHttp".into();
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Killed(
        std::process::Command::new(e.program())
            .args(&args)
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}/mcp");
    let def = |url: &str| {
        mogplex_mcp::Definition::from_server(
            &serde_json::from_value(serde_json::json!({"name": "remote",
                "config": {"url": url, "http_headers": {"X-Api-Token": "tok-0123456789"}}}))
            .unwrap(),
        )
        .unwrap()
    };
    rt().block_on(async {
        // The server takes a moment to listen.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let c = loop {
            match connect(&def(&url), &Limits::default()).await {
                Ok(c) => break c,
                Err(err) if std::time::Instant::now() < deadline => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(err) => panic!("{err}"),
            }
        };
        assert!(c.tools().iter().any(|t| t.name == "echo"));
        assert_eq!(
            c.call("echo", r#"{"message": "over http"}"#).await.unwrap().text,
            "Echo: over http"
        );
        c.close().await;

        // A server that answers 401 needs sign-in; the definition's headers were sent.
        let fake = mogplex_testkit::FakeServer::start();
        fake.route(
            "/mcp",
            mogplex_testkit::Reply::json(401, serde_json::json!({"error": "invalid_token"}))
                .with_header(
                    "www-authenticate",
                    r#"Bearer resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource""#,
                ),
        );
        let err = connect(&def(&format!("{}/mcp", fake.url())), &Limits::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind, McpErrorKind::NeedsSignIn, "{err}");
        let sent = fake.requests();
        assert_eq!(sent[0].header("x-api-token"), Some("tok-0123456789"));
    });
}
