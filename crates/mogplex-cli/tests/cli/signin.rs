//! "Sign in with Mogplex" end to end: the real `mogplex` binary against a real `mogplex-server`
//! on 127.0.0.1, the browser played by a cookie-jar HTTP client.

use crate::common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// The callback ports are shared by every sign-in test in this binary.
pub static PORTS: Mutex<()> = Mutex::new(());
pub const PASSWORD: &str = "correct horse battery";

pub struct Server {
    pub url: String,
    pub state: mogplex_server::AppState,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// [`Self::start`] with the server's configuration adjusted first.
    pub fn start_with(tweak: impl FnOnce(&mut mogplex_server::Config)) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("s.db").display());
        let (url, state) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let mut cfg = mogplex_server::Config::new(&url);
            tweak(&mut cfg);
            let state = mogplex_server::AppState::new(&db, cfg).await.unwrap();
            let hash = mogplex_server::password::hash(PASSWORD.into())
                .await
                .unwrap();
            let ada = state
                .db
                .create_user("ada@example.com", "Ada", &hash)
                .await
                .unwrap();
            // The development model and a plan for it, as `mogplex-server dev` seeds them.
            state
                .db
                .upsert_model(&mogplex_server::gateway::echo_row())
                .await
                .unwrap();
            let plan = state
                .db
                .set_plan("dev", &[mogplex_server::gateway::ECHO_MODEL.to_owned()])
                .await
                .unwrap()
                .unwrap();
            state.db.assign_plan(&ada.id, Some(&plan)).await.unwrap();
            let st = state.clone();
            tokio::spawn(async move {
                mogplex_server::serve(listener, st, std::future::pending())
                    .await
                    .unwrap()
            });
            (url, state)
        });
        Self {
            url,
            state,
            rt,
            _dir: dir,
        }
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// A `mogplex login` in progress: stderr is read on a thread, line by line.
pub struct Login {
    pub child: Child,
    pub lines: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Login {
    pub fn start(home: &TestHome, server: &Server, args: &[&str], browser: &str) -> Self {
        Self::start_env(home, server, args, browser, &[])
    }

    /// [`Login::start`] with more variables.
    pub fn start_env(
        home: &TestHome,
        server: &Server,
        args: &[&str],
        browser: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let mut cmd = home.cmd(args);
        cmd.envs(env.iter().copied());
        cmd.env("MOGPLEX_URL", &server.url)
            .env("BROWSER", browser)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `needle` and returns it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) => panic!("no `{needle}` in:\n{}", self.seen.join("\n")),
            }
        }
    }

    pub fn authorize_url(&mut self) -> String {
        self.wait_for("/api/auth/mcp/authorize?").trim().to_owned()
    }

    pub fn finish(mut self) -> (i32, String, String) {
        drop(self.child.stdin.take());
        let out = self.child.wait_with_output().unwrap();
        let mut err = self.seen.join("\n");
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            err.push('\n');
            err.push_str(&l);
        }
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            err,
        )
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..start + html[start..].find('"').unwrap()].replace("&amp;", "&")
}

/// Plays the browser up to the redirect to the CLI: signs in and returns the callback address.
pub async fn browser_until_callback(server_url: &str, authorize: &str) -> String {
    browser_until_callback_as(server_url, authorize, "ada@example.com").await
}

/// The same, signing in as `email` (with the test password).
pub async fn browser_until_callback_as(server_url: &str, authorize: &str, email: &str) -> String {
    let c = browser();
    let r = c.get(authorize).send().await.unwrap();
    let login = r.headers()["location"].to_str().unwrap().to_owned();
    let page = c
        .get(format!("{server_url}{login}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let next = hidden(&page, "next");
    let r = c
        .post(format!("{server_url}/login"))
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("email", email),
            ("password", PASSWORD),
            ("next", next.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    let r = c.get(format!("{server_url}{back}")).send().await.unwrap();
    // The consent page (every loopback authorization asks): allow.
    assert_eq!(r.status(), 200, "the consent page");
    let page = r.text().await.unwrap();
    let r = c
        .post(format!("{server_url}/api/auth/mcp/consent"))
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("request", hidden(&page, "request").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    r.headers()["location"].to_str().unwrap().to_owned()
}

fn raw_get(port: u16, request: &[u8]) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn assert_signed_in(home: &TestHome, code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.trim(), "Signed in as ada@example.com");
    assert_eq!(mode(&home.auth_path()), 0o600);
    let m = &home.account();
    assert!(m["access_token"].as_str().unwrap().starts_with("mog_at_"));
    assert!(m["refresh_token"].as_str().unwrap().starts_with("mog_rt_"));
    assert_eq!(m["account"]["email"], "ada@example.com");
    assert!(m["expires_at"].as_str().is_some() && m["obtained_at"].as_str().is_some());
}

#[test]
fn browser_sign_in_survives_hostile_callbacks() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let home = TestHome::new();
    let mut login = Login::start(&home, &server, &["login", "mogplex"], "true");
    let authorize = login.authorize_url();
    login.wait_for("Waiting for the sign-in");
    let redirect = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    let port = url::Url::parse(&redirect).unwrap().port().unwrap();
    assert_eq!(port, 24816, "busy: {}", crate::common::port_holders(24816));
    let callback = server.block_on(browser_until_callback(&server.url, &authorize));
    let good = url::Url::parse(&callback).unwrap();
    let state = good
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    // Hostile or broken requests first; each gets an answer and the wait goes on.
    let get = |target: &str| {
        raw_get(
            port,
            format!("GET {target} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes(),
        )
    };
    assert!(get("/auth/callback?code=stolen&state=wrong").starts_with("HTTP/1.1 400"));
    assert!(get("/auth/callback?code=stolen").starts_with("HTTP/1.1 400"));
    assert!(
        get(&format!(
            "/auth/callback?code=x&state={state}&state={state}"
        ))
        .starts_with("HTTP/1.1 400")
    );
    let e = get(&format!(
        "/auth/callback?error=access_denied&error_description=%3Cscript%3E&state={state}"
    ));
    assert!(
        e.starts_with("HTTP/1.1 400") && e.contains("&lt;script&gt;") && !e.contains("<script>"),
        "{e}"
    );
    assert!(get("/favicon.ico").starts_with("HTTP/1.1 404"));
    assert!(get("/auth/callback?code=%1b%5b31m&state=%07").starts_with("HTTP/1.1 400"));
    let huge = raw_get(
        port,
        format!(
            "GET /auth/callback?code={} HTTP/1.1\r\n\r\n",
            "a".repeat(1024 * 1024)
        )
        .as_bytes(),
    );
    assert!(
        huge.is_empty() || huge.starts_with("HTTP/1.1 431"),
        "{}",
        &huge[..huge.len().min(100)]
    );
    let silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // The real callback still completes, with the silent connection still open.
    let answer = get(&format!("{}?{}", good.path(), good.query().unwrap()));
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("Signed in to Mogplex"),
        "{answer}"
    );
    drop(silent);
    let (code, out, err) = login.finish();
    assert_signed_in(&home, code, &out, &err);
    assert!(err.contains("state mismatch"), "{err}");
    assert!(err.contains("the browser reported an error"), "{err}");
}

#[test]
fn paste_sign_in_from_another_machine() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let home = TestHome::new();
    let mut login = Login::start(&home, &server, &["login", "mogplex"], "true");
    let authorize = login.authorize_url();
    let callback = server.block_on(browser_until_callback(&server.url, &authorize));
    let stdin = login.child.stdin.as_mut().unwrap();
    stdin.write_all(b"not an address\n").unwrap();
    stdin
        .write_all(format!("{}\n", callback.replace("state=", "state=x")).as_bytes())
        .unwrap();
    stdin.write_all(format!("{callback}\n").as_bytes()).unwrap();
    let (code, out, err) = login.finish();
    assert_signed_in(&home, code, &out, &err);
    assert!(err.contains("that is not an address"), "{err}");
}

#[test]
fn busy_ports_fall_back_and_a_waiting_login_stands_down() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    // Both fixed ports taken by something else: an ephemeral port (our server allows it).
    let a = std::net::TcpListener::bind("127.0.0.1:24816").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:24818").unwrap();
    let home = TestHome::new();
    let mut login = Login::start(&home, &server, &["login", "mogplex"], "true");
    let authorize = login.authorize_url();
    let redirect = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    let port = url::Url::parse(&redirect).unwrap().port().unwrap();
    assert!(port != 24816 && port != 24818, "{redirect}");
    let callback = server.block_on(browser_until_callback(&server.url, &authorize));
    let u = url::Url::parse(&callback).unwrap();
    raw_get(
        port,
        format!("GET {}?{} HTTP/1.1\r\n\r\n", u.path(), u.query().unwrap()).as_bytes(),
    );
    let (code, out, err) = login.finish();
    assert_signed_in(&home, code, &out, &err);
    drop((a, b));

    // A login waiting on 24816 is told to stand down by a new one, which takes the port.
    let home = TestHome::new();
    let mut first = Login::start(&home, &server, &["login", "mogplex"], "true");
    first.authorize_url();
    first.wait_for("Waiting for the sign-in");
    let mut second = Login::start(&home, &server, &["login", "mogplex"], "true");
    let authorize = second.authorize_url();
    assert!(authorize.contains("127.0.0.1%3A24816"), "{authorize}");
    let (code, _, err) = first.finish();
    assert_eq!(code, 1);
    assert!(err.contains("another `mogplex login` started"), "{err}");
    let callback = server.block_on(browser_until_callback(&server.url, &authorize));
    let u = url::Url::parse(&callback).unwrap();
    raw_get(
        24816,
        format!("GET {}?{} HTTP/1.1\r\n\r\n", u.path(), u.query().unwrap()).as_bytes(),
    );
    let (code, out, err) = second.finish();
    assert_signed_in(&home, code, &out, &err);
}

impl Server {
    /// Adds an account with the test password and no plan.
    pub fn add_user(&self, email: &str) -> String {
        self.block_on(async {
            let hash = mogplex_server::password::hash(PASSWORD.into())
                .await
                .unwrap();
            self.state
                .db
                .create_user(email, "Test", &hash)
                .await
                .unwrap()
                .id
        })
    }

    /// Stores `token` as a personal access token of the account `email`, named `name`.
    pub fn add_pat(&self, email: &str, name: &str, token: &str, expires_at: Option<i64>) {
        self.block_on(async {
            let (user, _) = self.state.db.user_by_email(email).await.unwrap().unwrap();
            self.state
                .db
                .create_pat(&user.id, name, token, expires_at)
                .await
                .unwrap();
        });
    }

    /// Adds an MCP server definition for the account `email` (its config stored as given).
    pub fn add_mcp(&self, email: &str, name: &str, config: serde_json::Value) {
        self.block_on(async {
            let (user, _) = self.state.db.user_by_email(email).await.unwrap().unwrap();
            self.state
                .db
                .upsert_mcp(&user.id, name, true, &config.to_string(), None)
                .await
                .unwrap();
        });
    }

    pub fn count(&self, q: &str) -> i64 {
        use sqlx::Row;
        let mogplex_server::db::Db::Sqlite(p) = &self.state.db else {
            unreachable!("the CLI tests use SQLite")
        };
        self.block_on(async {
            sqlx::query(sqlx::AssertSqlSafe(q.to_owned()))
                .fetch_one(p)
                .await
                .unwrap()
                .get(0)
        })
    }

    pub fn sql(&self, q: &str) {
        let mogplex_server::db::Db::Sqlite(p) = &self.state.db else {
            unreachable!("the CLI tests use SQLite")
        };
        self.block_on(async {
            sqlx::query(sqlx::AssertSqlSafe(q.to_owned()))
                .execute(p)
                .await
                .unwrap()
        });
    }
}

/// Signs `home` in through the browser flow.
pub fn signed_in(server: &Server) -> TestHome {
    signed_in_as(server, "ada@example.com")
}

/// Signs a new home in as `email` (an account with the test password).
pub fn signed_in_as(server: &Server, email: &str) -> TestHome {
    let home = TestHome::new();
    let mut login = Login::start(&home, server, &["login", "mogplex"], "true");
    let authorize = login.authorize_url();
    let callback = server.block_on(browser_until_callback_as(&server.url, &authorize, email));
    let stdin = login.child.stdin.as_mut().unwrap();
    stdin.write_all(format!("{callback}\n").as_bytes()).unwrap();
    let (code, out, err) = login.finish();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.trim(), format!("Signed in as {email}"));
    assert_eq!(home.account()["account"]["email"], email);
    home
}

/// Makes the stored access token look like it expires in `secs` seconds.
pub fn expire_in(home: &TestHome, secs: i64) {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    home.set_account_field(
        "expires_at",
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
            .into(),
    );
}

fn exec(home: &TestHome, server: &Server, prompt: &str) -> std::process::Output {
    run_against(home, server, &["exec", prompt])
}

/// `mogplex <args>` with `MOGPLEX_URL` pointing at `server`.
pub fn run_against(home: &TestHome, server: &Server, args: &[&str]) -> std::process::Output {
    home.cmd(args)
        .env("MOGPLEX_URL", &server.url)
        .output()
        .unwrap()
}

#[test]
fn prompt_through_the_gateway_with_the_signed_in_token() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let home = signed_in(&server);
    let out = exec(&home, &server, "the quick brown fox jumps");
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "the quick brown fox jumps\n"
    );
}

#[test]
fn two_processes_needing_a_refresh_make_one_between_them() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let home = signed_in(&server);
    let before = home.account()["refresh_token"].clone();
    expire_in(&home, 60);
    let a = home
        .cmd(&["exec", "one"])
        .env("MOGPLEX_URL", &server.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = home
        .cmd(&["exec", "two"])
        .env("MOGPLEX_URL", &server.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    }
    // One rotation on the server: the first refresh token used once, one new one issued, and the
    // sign-in (its family) still alive.
    assert_eq!(
        server.count("SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NOT NULL"),
        1
    );
    assert_eq!(server.count("SELECT COUNT(*) FROM refresh_tokens"), 2);
    assert_eq!(
        server.count("SELECT COUNT(*) FROM token_families WHERE revoked_at IS NULL"),
        1
    );
    assert_ne!(home.account()["refresh_token"], before);
    assert_eq!(
        exec(&home, &server, "still signed in").status.code(),
        Some(0)
    );
}

#[test]
fn expired_or_revoked_sign_ins_end_clearly() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    // Expired refresh token (30 days unused), found when the access token needs renewing.
    let home = signed_in(&server);
    server.sql("UPDATE refresh_tokens SET expires_at = 0");
    expire_in(&home, -10);
    let out = exec(&home, &server, "hi");
    snap!(
        "signed_out_expired_refresh",
        home.render(&out).replace(&server.url, "[SERVER]")
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(
        home.account().is_null(),
        "the entry is removed in one write"
    );
    // Revoked on the server (signed out elsewhere): the gateway answers 401, one refresh is
    // tried, it fails for good.
    let home = signed_in(&server);
    let rt = home.account()["refresh_token"].as_str().unwrap().to_owned();
    server.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/api/auth/mcp/revoke", server.url))
            .form(&[("token", rt.as_str())])
            .send()
            .await
            .unwrap()
    });
    let out = exec(&home, &server, "hi");
    assert_eq!(out.status.code(), Some(64), "{}", home.render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("your Mogplex sign-in has ended"));
    assert!(home.account().is_null());
}

#[test]
fn logout_revokes_and_works_with_the_server_down() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let home = signed_in(&server);
    let out = home
        .cmd(&["logout"])
        .env("MOGPLEX_URL", &server.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not confirmed"));
    assert_eq!(
        server.count("SELECT COUNT(*) FROM token_families WHERE revoked_at IS NULL"),
        0,
        "revoked on the server"
    );

    let home = signed_in(&server);
    let url = server.url.clone();
    drop(server);
    let out = home
        .cmd(&["logout"])
        .env("MOGPLEX_URL", &url)
        .output()
        .unwrap();
    snap!(
        "logout_server_down",
        home.render(&out).replace(&url, "[SERVER]")
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(home.account().is_null());
    // A renewal that cannot reach the server keeps the sign-in.
    let server = Server::start();
    let home = signed_in(&server);
    let url = server.url.clone();
    drop(server);
    expire_in(&home, 60);
    let out = home
        .cmd(&["exec", "hi"])
        .env("MOGPLEX_URL", &url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69), "{}", home.render(&out));
    assert!(home.account()["refresh_token"].is_string(), "kept");
}

/// Not a test on its own: `BROWSER` for the Chromium tests re-runs this test binary with only this
/// test selected and the address as the last argument; it then plays the user in headless
/// Chromium: signs in on the real page (or, with `CHROMIUM_TEST_SSO=<idp id>`, through
/// that identity provider's pages), allows the consent page (the account's, or an MCP
/// server's), and on `/device` continues and approves.
#[test]
fn chromium_browser() {
    let (Ok(email), Ok(password)) = (
        std::env::var("CHROMIUM_TEST_EMAIL"),
        std::env::var("CHROMIUM_TEST_PASS"),
    ) else {
        return;
    };
    let url = std::env::args().next_back().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let b = mogplex_testkit::webdriver::Browser::start().await.unwrap();
        b.goto(&url).await.unwrap();
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            let page = b.source().await.unwrap_or_default();
            // The loopback listener's page (the account's or an MCP server's), or the device
            // page's end.
            if page.contains("You can close this window") || page.contains("Device connected") {
                return;
            }
            let sso = std::env::var("CHROMIUM_TEST_SSO").ok();
            if let Some(idp) = sso.filter(|i| page.contains(&format!("id=\"sso-{i}\""))) {
                // Our sign-in page: "Continue with" the company's identity provider.
                b.click(&format!("#sso-{idp}")).await.unwrap();
            } else if page.contains("name=\"login\"") {
                // The identity provider's own sign-in page.
                b.type_into("input[name=login]", &email).await.unwrap();
                b.type_into("input[name=password]", &password)
                    .await
                    .unwrap();
                b.click("#submit").await.unwrap();
            } else if page.contains("id=\"allow\"") {
                // The identity provider's consent page.
                b.click("#allow").await.unwrap();
            } else if page.contains("id=\"password\"") {
                b.type_into("#email", &email).await.unwrap();
                b.type_into("#password", &password).await.unwrap();
                b.click("#submit").await.unwrap();
            } else if page.contains("id=\"approve\"") {
                b.click("#approve").await.unwrap();
            } else if page.contains("id=\"continue\"") {
                b.click("#continue").await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        panic!(
            "the browser did not finish: {}",
            b.source().await.unwrap_or_default()
        );
    });
}

/// The `BROWSER` command that plays the user in headless Chromium (see [`chromium_browser`]).
/// Fails at once, rather than leaving a sign-in waiting, when Chromium is not installed.
pub fn chromium_browser_command() -> String {
    assert!(
        mogplex_testkit::webdriver::chromium_path().is_some()
            && mogplex_testkit::webdriver::chromedriver_path().is_some(),
        "the browser tests need Debian's chromium and chromium-driver (scripts/test installs them)"
    );
    format!(
        "{} --exact signin::chromium_browser --nocapture --test-threads=1",
        std::env::current_exe().unwrap().display()
    )
}

fn chromium_login(args: &[&str]) {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let home = TestHome::new();
    let browser = chromium_browser_command();
    let mut cmd = home.cmd(args);
    cmd.env("MOGPLEX_URL", &server.url)
        .env("BROWSER", browser)
        .env("CHROMIUM_TEST_EMAIL", "ada@example.com")
        .env("CHROMIUM_TEST_PASS", PASSWORD);
    let out = cmd.output().unwrap();
    let (code, stdout, stderr) = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_signed_in(&home, code, &stdout, &stderr);
    let session = exec(&home, &server, "signed in through Chromium");
    assert_eq!(
        String::from_utf8_lossy(&session.stdout),
        "signed in through Chromium\n"
    );
}

#[test]
fn browser_sign_in_in_chromium() {
    chromium_login(&["login", "mogplex"]);
}

#[test]
fn device_sign_in_approved_in_chromium() {
    chromium_login(&["login", "--device"]);
}

impl Server {
    /// Adds a model (answered like the echo model) to the plan `dev`, which Ada has.
    pub fn add_model_to_plan(&self, slug: &str) {
        self.block_on(async {
            let mut row = mogplex_server::gateway::echo_row();
            row.spec = row.spec.replace(mogplex_server::gateway::ECHO_MODEL, slug);
            row.slug = slug.to_owned();
            row.display_name = format!("{slug} (test)");
            self.state.db.upsert_model(&row).await.unwrap();
            let slugs = [
                mogplex_server::gateway::ECHO_MODEL.to_owned(),
                slug.to_owned(),
            ];
            self.state
                .db
                .set_plan("dev", &slugs)
                .await
                .unwrap()
                .unwrap();
        });
    }
}

fn exec_model(home: &TestHome, server: &Server, model: &str) -> std::process::Output {
    run_against(home, server, &["exec", "--model", model, "hi"])
}

#[test]
fn an_unknown_model_is_a_usage_error_naming_the_closest() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    server.add_model_to_plan("mogplex/gpt-4.1");
    let mut home = signed_in(&server);
    let out = exec_model(&home, &server, "nope");
    snap!("unknown_model_account", home.render(&out));
    assert_eq!(out.status.code(), Some(2));
    // A provider's name for a model the account has under its own slug.
    let out = exec_model(&home, &server, "gpt-4.1");
    snap!("unknown_model_account_close", home.render(&out));
    assert_eq!(out.status.code(), Some(2));
    let out = exec_model(&home, &server, "mogplex/gpt-4.1");
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    // Known models of the providers with a key are named too.
    home.env("GROQ_API_KEY", "gsk_env0123456789abcdef");
    let out = exec_model(&home, &server, "mogplex/ecoh");
    snap!("unknown_model_account_and_key", home.render(&out));
    assert_eq!(out.status.code(), Some(2));
    let out = run_against(&home, &server, &["exec", "--json", "--model", "nope", "hi"]);
    let last: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(
        (last["type"].as_str(), last["exit_code"].as_i64()),
        (Some("error"), Some(2))
    );

    // An account whose plan gives it no model: "no model access", as before.
    server.add_user("bob@example.com");
    let bob = signed_in_as(&server, "bob@example.com");
    let out = exec_model(&bob, &server, "mogplex/echo");
    snap!("no_model_access_account", bob.render(&out));
    assert_eq!(out.status.code(), Some(65));
}

#[test]
fn a_waiting_browser_sign_in_says_once_where_to_go_and_ends_cleanly_on_ctrl_c() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let home = TestHome::new();
    // Nothing can start a browser here (no `sh` on this PATH): the address is the way to go.
    let mut login = Login::start_env(
        &home,
        &server,
        &["login", "mogplex"],
        "no-such-browser",
        &[("PATH", "/nonexistent")],
    );
    let authorize = login.authorize_url();
    login.wait_for("Waiting for the sign-in");
    let shown = login.seen.join("\n").replace(&authorize, "[AUTHORIZE URL]");
    snap!("login_browser_not_opened", shown);
    let before = login.seen.len();
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&login.child),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let (code, out, err) = login.finish();
    let after: Vec<&str> = err.lines().skip(before).collect();
    snap!(
        "login_cancelled",
        format!(
            "exit_code: {code}\n----- stdout -----\n{out}----- stderr -----\n{}\n",
            after.join("\n")
        )
    );
    assert_eq!(code, 130);
    assert!(!home.auth_path().exists(), "nothing stored");
    // The callback listener is gone with it.
    std::net::TcpListener::bind("127.0.0.1:24816").expect("port 24816 is free again");
}

#[test]
fn signing_in_beside_another_credential_says_so_and_keeps_it() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    server.add_user("bob@example.com");
    let home = signed_in(&server);
    // Bob signs in where Ada is signed in: he is added beside her.
    let mut login = Login::start(&home, &server, &["login", "mogplex"], "true");
    let authorize = login.authorize_url();
    let callback = server.block_on(browser_until_callback_as(
        &server.url,
        &authorize,
        "bob@example.com",
    ));
    let before = {
        login.wait_for("Waiting for the sign-in");
        login.seen.len()
    };
    login
        .child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(format!("{callback}\n").as_bytes())
        .unwrap();
    let (code, out, err) = login.finish();
    let after: Vec<&str> = err.lines().skip(before).collect();
    snap!(
        "login_adds_another_account",
        home.render(&std::process::Output {
            status: std::os::unix::process::ExitStatusExt::from_raw(code << 8),
            stdout: out.into_bytes(),
            stderr: format!("{}\n", after.join("\n")).into_bytes(),
        })
    );
    assert_eq!(code, 0);
    assert_eq!(home.account()["account"]["email"], "bob@example.com");
    let emails = |home: &TestHome| -> Vec<String> {
        home.auth()["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["account"]["email"].as_str().unwrap_or("-").to_owned())
            .collect()
    };
    assert_eq!(emails(&home), ["ada@example.com", "bob@example.com"]);
    // Signing in again as the same account replaces its own entry, and says nothing about it.
    let again = signed_in_again(&home, &server, "bob@example.com");
    assert!(!again.contains("added"), "{again}");
    assert_eq!(emails(&home), ["ada@example.com", "bob@example.com"]);
    // A stored personal access token stays beside a sign-in.
    let out = home.run_stdin(
        &["login", "mogplex", "--with-api-key"],
        "mog_stored0123456789abcdefgh",
    );
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    let err = signed_in_again(&home, &server, "ada@example.com");
    assert!(!err.contains("added"), "{err}");
    assert_eq!(home.account()["account"]["email"], "ada@example.com");
    assert!(
        home.auth()["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["api_key"] == "mog_stored0123456789abcdefgh"),
        "the token is kept"
    );
}

/// Signs `home` in again as `email`; returns what `mogplex login` printed on stderr.
pub fn signed_in_again(home: &TestHome, server: &Server, email: &str) -> String {
    let mut login = Login::start(home, server, &["login", "mogplex"], "true");
    let authorize = login.authorize_url();
    let callback = server.block_on(browser_until_callback_as(&server.url, &authorize, email));
    let stdin = login.child.stdin.as_mut().unwrap();
    stdin.write_all(format!("{callback}\n").as_bytes()).unwrap();
    let (code, _, err) = login.finish();
    assert_eq!(code, 0, "{err}");
    err
}

/// Single sign-on end to end: `mogplex login` in the browser, where the user picks "Continue with
/// Acme" on the sign-in page, signs in at the company's identity provider (node-oidc-provider),
/// gets an account (an allowed domain), allows the CLI on the consent page, and the CLI is
/// signed in as that user.
#[test]
fn browser_sign_in_through_single_sign_on_in_chromium() {
    use mogplex_testkit::peers::{Account, OidcConfig, OidcProvider, confidential_client};
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start_with(|c| {
        c.env
            .insert("ACME_SECRET".into(), "acme-client-secret".into());
    });
    let callback = format!("{}/sso/callback", server.url);
    let idp = OidcProvider::start(OidcConfig {
        accounts: vec![
            Account::new("alice", "alice@example.com", "Alice Example").with_password("idp-pass"),
        ],
        clients: vec![confidential_client(
            "mogplex",
            "acme-client-secret",
            &[&callback],
        )],
        ..Default::default()
    });
    let row = mogplex_server::db::idp::IdpRow {
        id: "acme".into(),
        name: "Acme".into(),
        issuer: idp.issuer().into(),
        client_id: "mogplex".into(),
        secret_env: "ACME_SECRET".into(),
        allowed_domains: vec!["example.com".into()],
        create_accounts: true,
        created_at: 0,
    };
    assert!(server.block_on(server.state.db.add_idp(&row)).unwrap());
    let home = TestHome::new();
    let mut cmd = home.cmd(&["login", "mogplex"]);
    cmd.env("MOGPLEX_URL", &server.url)
        .env("BROWSER", chromium_browser_command())
        .env("CHROMIUM_TEST_EMAIL", "alice@example.com")
        .env("CHROMIUM_TEST_PASS", "idp-pass")
        .env("CHROMIUM_TEST_SSO", "acme");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Signed in as alice@example.com"
    );
    assert_eq!(home.account()["account"]["email"], "alice@example.com");
    let created = server
        .block_on(server.state.db.user_by_email("alice@example.com"))
        .unwrap();
    assert!(created.is_some(), "the account was created just in time");
}
