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
            let state = mogplex_server::AppState::new(&db, mogplex_server::Config::new(&url))
                .await
                .unwrap();
            let hash = mogplex_server::password::hash(PASSWORD.into())
                .await
                .unwrap();
            state
                .db
                .create_user("ada@example.com", "Ada", &hash)
                .await
                .unwrap();
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
        let mut cmd = home.cmd(args);
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
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("next", next.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    let r = c.get(format!("{server_url}{back}")).send().await.unwrap();
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
    let m = &home.auth()["mogplex"];
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
    assert_eq!(port, 24816);
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
