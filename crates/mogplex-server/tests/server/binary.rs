//! The `mogplex-server` binary: `dev` keeps its data across restarts; admin commands.

use crate::harness::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mogplex-server"));
    c.stdin(Stdio::null());
    c
}

struct Dev {
    child: Child,
    url: String,
    email: String,
    password: String,
    printed: String,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_dev(dir: &std::path::Path) -> Dev {
    let mut child = bin()
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "dev exited: {printed}"
        );
        printed.push_str(&line);
        if line.contains("MOGPLEX_URL=") {
            break;
        }
    }
    let field = |name: &str| {
        printed
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap()
            .split_once(':')
            .unwrap()
            .1
            .trim()
            .to_owned()
    };
    let url = printed
        .lines()
        .find(|l| l.contains("MOGPLEX_URL="))
        .unwrap()
        .trim()
        .trim_start_matches("MOGPLEX_URL=")
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    Dev {
        child,
        email: field("demo account"),
        password: field("demo password"),
        url,
        printed,
    }
}

/// The demo account's MCP definitions as the CLI reads them, and the demo MCP server's answer
/// without a token: the definition `demo` points at this server's `/mcp/demo`, which asks for
/// its own OAuth.
async fn demo_mcp_definition(url: &str, pat: &str) -> serde_json::Value {
    let v: serde_json::Value = plain()
        .get(format!("{url}/api/v1/mogplex/mcp/servers"))
        .bearer_auth(pat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let demo = v["data"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "demo")
        .unwrap_or_else(|| panic!("no demo MCP server in {v}"))
        .clone();
    let r = plain()
        .post(demo["config"]["url"].as_str().unwrap())
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        format!(
            "Bearer resource_metadata=\"{url}/.well-known/oauth-protected-resource/mcp/demo\", scope=\"mcp:demo\""
        )
        .as_str()
    );
    demo
}

fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dev_restarted_on_the_same_directory_keeps_accounts_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("mogplex.db").display());
    let first = start_dev(dir.path());
    assert!(
        first.printed.contains("Point the CLI at it"),
        "{}",
        first.printed
    );
    assert!(first.url.starts_with("http://127.0.0.1:"));
    // A PAT made by the admin command while the server runs, and an OAuth sign-in.
    let (code, pat, err) = run(
        &[
            "pat",
            "create",
            "--database",
            &database,
            "--email",
            &first.email,
            "--name",
            "laptop",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let pat = pat.trim().to_owned();
    assert!(mogplex_server::crypto::is_personal_access_token(&pat));
    assert!(err.contains("shown once") && !err.contains(&pat), "{err}");
    assert_eq!(whoami(first.url.as_str(), &pat).await.0, 200);
    let demo = demo_mcp_definition(&first.url, &pat).await;
    assert_eq!(demo["enabled"], true);
    assert_eq!(
        demo["config"],
        serde_json::json!({"type": "http", "url": format!("{}/mcp/demo", first.url), "http_headers": {}})
    );
    let client = browser();
    let r = sign_in(
        first.url.as_str(),
        &client,
        &first.email,
        &first.password,
        "/",
    )
    .await;
    assert_eq!(r.status(), 303, "the printed demo password works");
    let (code_, p) = get_code_as(first.url.as_str(), &first.email, &first.password).await;
    let (st, tokens) = exchange(first.url.as_str(), &code_, &p, REDIRECT).await;
    assert_eq!(st, 200, "{tokens}");
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (email, password, url1) = (
        first.email.clone(),
        first.password.clone(),
        first.url.clone(),
    );
    drop(first);

    let second = start_dev(dir.path());
    assert_eq!(
        (second.email.as_str(), second.password.as_str()),
        (email.as_str(), password.as_str())
    );
    assert_ne!(second.url, url1, "a new port, the same data");
    assert_eq!(
        whoami(second.url.as_str(), &pat).await,
        (200, Some(email.clone()))
    );
    assert_eq!(
        sign_in(second.url.as_str(), &browser(), &email, &password, "/")
            .await
            .status(),
        303
    );
    let (st, rotated) = refresh(second.url.as_str(), &rt).await;
    assert_eq!(st, 200, "the refresh token survived the restart: {rotated}");
    // The demo MCP server's definition follows the new address.
    let demo = demo_mcp_definition(&second.url, &pat).await;
    assert_eq!(demo["config"]["url"], format!("{}/mcp/demo", second.url));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_commands() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("a.db").display());
    let (code, out, err) = run(
        &[
            "user",
            "add",
            "--database",
            &database,
            "--email",
            "Bob@Example.com",
            "--password-stdin",
        ],
        Some("a long password\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Created account bob@example.com"), "{out}");
    let (code, _, err) = run(
        &[
            "user",
            "add",
            "--database",
            &database,
            "--email",
            "bob@example.com",
            "--password-stdin",
        ],
        Some("another password"),
    );
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = run(
        &[
            "user",
            "add",
            "--database",
            &database,
            "--email",
            "x@example.com",
            "--password-stdin",
        ],
        Some("short"),
    );
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(
        &[
            "user",
            "add",
            "--database",
            &database,
            "--email",
            "not-an-email",
            "--password-stdin",
        ],
        Some("long enough pw"),
    );
    assert_eq!(code, 2, "{err}");
    let (code, token, _) = run(
        &[
            "pat",
            "create",
            "--database",
            &database,
            "--email",
            "bob@example.com",
        ],
        None,
    );
    assert_eq!(code, 0);
    let (code, list, _) = run(
        &[
            "pat",
            "list",
            "--database",
            &database,
            "--email",
            "bob@example.com",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert!(
        list.contains("active") && !list.contains(token.trim()),
        "{list}"
    );
    let id = list.split('\t').next().unwrap().to_owned();
    let (code, out, _) = run(
        &[
            "pat",
            "revoke",
            "--database",
            &database,
            "--email",
            "bob@example.com",
            "--id",
            &id,
        ],
        None,
    );
    assert_eq!((code, out.trim()), (0, "Revoked the personal access token"));
    let (code, list, _) = run(
        &[
            "pat",
            "list",
            "--database",
            &database,
            "--email",
            "bob@example.com",
        ],
        None,
    );
    assert!(code == 0 && list.contains("revoked"));
    let (code, _, err) = run(
        &[
            "pat",
            "create",
            "--database",
            &database,
            "--email",
            "nobody@example.com",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("no account"), "{err}");
    let (code, _, err) = run(
        &[
            "serve",
            "--database",
            "mysql://x",
            "--listen",
            "127.0.0.1:0",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("sqlite://") && err.contains("postgres://"),
        "{err}"
    );
    let (code, _, err) = run(&["dev", "--listen", "0.0.0.0:0"], None);
    assert_eq!(code, 2);
    assert!(err.contains("loopback"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn model_and_plan_commands() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("m.db").display());
    run(
        &[
            "user",
            "add",
            "--database",
            &database,
            "--email",
            "ada@example.com",
            "--password-stdin",
        ],
        Some("a long password"),
    );
    let (code, out, err) = run(
        &[
            "model",
            "add",
            "--database",
            &database,
            "--slug",
            "mogplex/echo",
            "--display-name",
            "Echo",
            "--echo",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Stored the model mogplex/echo");
    let (code, _, err) = run(
        &[
            "model",
            "add",
            "--database",
            &database,
            "--slug",
            "mogplex/gpt",
            "--display-name",
            "GPT",
            "--upstream-url",
            "https://api.example.com/v1",
            "--upstream-key-env",
            "OPENAI_KEY",
            "--caps",
            "toolUse,streaming",
            "--input-price",
            "2",
            "--output-price",
            "8",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(
        &[
            "model",
            "add",
            "--database",
            &database,
            "--slug",
            "x",
            "--display-name",
            "X",
        ],
        None,
    );
    assert_eq!(code, 2, "where requests go is required: {err}");
    let (code, _, err) = run(
        &[
            "model",
            "add",
            "--database",
            &database,
            "--slug",
            "x",
            "--display-name",
            "X",
            "--echo",
            "--caps",
            "flying",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("unknown capability"), "{err}");
    let (code, out, err) = run(
        &[
            "plan",
            "create",
            "--database",
            &database,
            "--name",
            "pro",
            "--model",
            "mogplex/echo",
            "--model",
            "mogplex/gpt",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("mogplex/echo, mogplex/gpt"), "{out}");
    let (code, _, err) = run(
        &[
            "plan",
            "create",
            "--database",
            &database,
            "--name",
            "bad",
            "--model",
            "nope",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("there is no model nope"), "{err}");
    let (code, out, _) = run(
        &[
            "plan",
            "assign",
            "--database",
            &database,
            "--email",
            "ada@example.com",
            "--plan",
            "pro",
        ],
        None,
    );
    assert_eq!(
        (code, out.trim()),
        (0, "ada@example.com is now on the plan pro")
    );
    let (code, _, err) = run(
        &[
            "plan",
            "assign",
            "--database",
            &database,
            "--email",
            "ada@example.com",
            "--plan",
            "missing",
        ],
        None,
    );
    assert_eq!(code, 2, "{err}");
    let db = mogplex_server::db::Db::connect(&database).await.unwrap();
    let uid = db
        .user_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap()
        .0
        .id;
    let models: Vec<String> = db
        .plan_models(&uid)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.slug)
        .collect();
    assert_eq!(models, ["mogplex/echo", "mogplex/gpt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mcp_definitions_with_encrypted_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("mcp.db").display());
    let key = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
    run(
        &[
            "user",
            "add",
            "--database",
            &database,
            "--email",
            "ada@example.com",
            "--password-stdin",
        ],
        Some("a long password"),
    );
    let (_, pat, _) = run(
        &[
            "pat",
            "create",
            "--database",
            &database,
            "--email",
            "ada@example.com",
        ],
        None,
    );
    let with_key = |args: &[&str]| {
        let out = bin()
            .args(args)
            .env("MOGPLEX_SECRETS_KEY", key)
            .env("GITHUB_TOKEN", "ghp_secretvalue123")
            .env("MCP_AUTH", "Bearer supersecret-header-99")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Without the key, secret values are refused, with the fix.
    let (code, _, err) = run(
        &[
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
            "GITHUB_TOKEN=-",
        ],
        Some("ghp_secretvalue123\n"),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("MOGPLEX_SECRETS_KEY") && err.contains("openssl rand -base64 32"),
        "{err}"
    );
    let (code, out, err) = with_key(&[
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
        "--arg",
        "--stdio",
        "--env",
        "LOG=debug",
        "--secret-env",
        "GITHUB_TOKEN",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("secret values encrypted"), "{out}");
    let (code, _, err) = with_key(&[
        "mcp",
        "add",
        "--database",
        &database,
        "--email",
        "ada@example.com",
        "--name",
        "docs",
        "--url",
        "https://mcp.example.com/sse",
        "--header",
        "X-Team=core",
        "--secret-header",
        "Authorization=env:MCP_AUTH",
        "--disabled",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = run(
        &[
            "mcp",
            "add",
            "--database",
            &database,
            "--email",
            "ada@example.com",
            "--name",
            "bad",
            "--command",
            "x",
            "--env",
            "NOEQUALS",
        ],
        None,
    );
    assert_eq!(code, 2);

    let s = TestServer::on_database(&database, tempfile::tempdir().unwrap(), None, |c| {
        c.env.insert("MOGPLEX_SECRETS_KEY".into(), key.into());
    })
    .await;
    let v: serde_json::Value = plain()
        .get(format!("{}/api/v1/mogplex/mcp/servers", s.url))
        .bearer_auth(pat.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v,
        serde_json::json!({"ok": true, "data": {"servers": [
            {"name": "docs", "enabled": false, "config": {"url": "https://mcp.example.com/sse",
                "http_headers": {"X-Team": "core", "Authorization": "Bearer supersecret-header-99"}}},
            {"name": "gh", "enabled": true, "config": {"command": "gh-mcp", "args": ["--stdio"],
                "env": {"LOG": "debug", "GITHUB_TOKEN": "ghp_secretvalue123"}}},
        ]}})
    );
    // At rest: no secret value in the database file.
    let raw = std::fs::read(dir.path().join("mcp.db")).unwrap();
    let wal = std::fs::read(dir.path().join("mcp.db-wal")).unwrap_or_default();
    for needle in ["ghp_secretvalue123", "supersecret-header-99"] {
        assert!(
            !String::from_utf8_lossy(&raw).contains(needle)
                && !String::from_utf8_lossy(&wal).contains(needle),
            "{needle} at rest"
        );
    }
    assert!(
        String::from_utf8_lossy(&[raw, wal].concat()).contains("LOG"),
        "plain values are stored as they are"
    );
    // Someone else's token sees nothing; no token is a 401.
    let r = plain()
        .get(format!("{}/api/v1/mogplex/mcp/servers", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn dev_keeps_serving_when_nobody_reads_its_output() {
    // A parent that stops reading (`| head`, a test harness, the demo) closes the pipe before the
    // banner is written; the server must not die of it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args([
            "dev",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let url = format!("http://127.0.0.1:{port}/.well-known/oauth-authorization-server");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut served = false;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("dev exited with {status} once its output was closed");
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let body = raw_get(&url);
            if body.contains("\"issuer\"") {
                served = true;
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Several requests later it is still there.
    for _ in 0..3 {
        assert!(raw_get(&url).contains("\"issuer\""));
    }
    assert!(served, "dev never answered");
    assert!(child.try_wait().unwrap().is_none(), "still running");
    let _ = child.kill();
    let _ = child.wait();
}

/// A plain HTTP/1.1 GET on loopback, the body as text.
fn raw_get(url: &str) -> String {
    use std::io::Read;
    let u = url::Url::parse(url).unwrap();
    let mut s = std::net::TcpStream::connect((u.host_str().unwrap(), u.port().unwrap())).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    write!(
        s,
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        u.path()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A server process, stopped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `serve` on port 0 with its stderr in a file: the public URL from its first line.
fn start_serve(database: &str, log: &std::path::Path) -> (Running, String) {
    let child = Running(
        bin()
            .args(["serve", "--database", database, "--listen", "127.0.0.1:0"])
            .env_remove("MOGPLEX_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
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
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_lines_name_routes_and_never_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("l.db").display());
    let log = dir.path().join("stderr.log");
    let (code, _, err) = run(
        &[
            "user",
            "add",
            "--database",
            &database,
            "--email",
            "ada@example.com",
            "--password-stdin",
        ],
        Some(PASSWORD),
    );
    assert_eq!(code, 0, "{err}");
    let (server, url) = start_serve(&database, &log);
    let (code, p) = get_code(url.as_str(), "ada@example.com", REDIRECT).await;
    let (status, tokens) = exchange(url.as_str(), &code, &p, REDIRECT).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(whoami(url.as_str(), &access).await.0, 200);
    let (status, rotated) = refresh(url.as_str(), &refresh_token).await;
    assert_eq!(status, 200);
    // Secrets in a query string, on a path no route claims.
    let probe = "mog_probe_secret_value";
    let r = plain()
        .get(format!("{url}/nowhere?code={probe}&token={probe}"))
        .bearer_auth(probe)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Wait for the last request's line, then stop the server.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("path=\"/nowhere\"") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    drop(server);
    for expected in [
        "method=POST route=\"/api/auth/mcp/token\"",
        "method=GET route=\"/api/auth/user\"",
        "method=POST route=\"/login\"",
        "method=GET path=\"/nowhere\"",
        "status=200",
        "status=404",
        "latency=",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    let secrets = [
        PASSWORD,
        &code,
        &p.verifier,
        &access,
        &refresh_token,
        rotated["access_token"].as_str().unwrap(),
        probe,
    ];
    for secret in secrets {
        assert!(!text.contains(secret), "a secret in the log:\n{text}");
    }
    assert!(!text.contains("Bearer") && !text.contains("mog_"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_says_where_it_listens_first_on_a_migrated_postgres() {
    // Another crate's chatter (PostgreSQL's notice that the migrations table exists) is not the
    // operator's first line: supervisors and the benchmark wait for "listening".
    let s = TestServer::start(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let (server, _url) = start_serve(&s.database, &log);
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    let first = text.lines().next().unwrap_or_default();
    assert!(first.contains(" INFO listening on 127.0.0.1:"), "{text}");
}
