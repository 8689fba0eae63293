//! A real server on 127.0.0.1:0, on a fresh SQLite file or a fresh PostgreSQL database, and a
//! browser-like client (cookie jar, no automatic redirects) to drive it.
#![allow(dead_code)]

use mogplex_server::{AppState, Config, crypto, db::Db};
use reqwest::redirect::Policy;
use std::sync::Arc;

pub const ADMIN_PG: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const PASSWORD: &str = "correct horse battery";
pub const REDIRECT: &str = "http://127.0.0.1:24816/auth/callback";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug)]
pub struct TestServer {
    pub url: String,
    pub database: String,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
    pg_db: Option<String>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let (database, dir, pg_db) = empty_database(backend).await;
        Self::on_database(&database, dir, pg_db, tweak).await
    }

    /// A second server process-equivalent on the same database.
    pub async fn on_database(
        database: &str,
        dir: tempfile::TempDir,
        pg_db: Option<String>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut cfg = Config::new(&url);
        // OpenID Connect on, as a deployment with its secrets key has it (a tweak may remove it).
        cfg.env.insert(
            "MOGPLEX_SECRETS_KEY".into(),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
        );
        tweak(&mut cfg);
        let state = AppState::new(database, cfg).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        tokio::spawn(async move {
            mogplex_server::serve(listener, st, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            url,
            database: database.to_owned(),
            state,
            stop: Some(stop),
            _dir: dir,
            pg_db,
        }
    }

    pub fn db(&self) -> &Db {
        &self.state.db
    }

    pub async fn user(&self, email: &str) -> String {
        let hash = mogplex_server::password::hash(PASSWORD.into())
            .await
            .unwrap();
        self.db()
            .create_user(email, "Test", &hash)
            .await
            .unwrap()
            .id
    }

    /// Runs raw SQL against the test database (to move clocks, inspect rows).
    pub async fn sql(&self, q: &str) -> u64 {
        let q = sqlx::AssertSqlSafe(q.to_owned());
        match self.db() {
            Db::Sqlite(p) => sqlx::query(q).execute(p).await.unwrap().rows_affected(),
            Db::Postgres(p) => sqlx::query(q).execute(p).await.unwrap().rows_affected(),
        }
    }

    pub async fn count(&self, q: &str) -> i64 {
        use sqlx::Row;
        let q = sqlx::AssertSqlSafe(q.to_owned());
        match self.db() {
            Db::Sqlite(p) => sqlx::query(q).fetch_one(p).await.unwrap().get(0),
            Db::Postgres(p) => sqlx::query(q).fetch_one(p).await.unwrap().get(0),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(name) = self.pg_db.take() {
            // Best effort, on its own runtime: the test's runtime may be shutting down.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(admin) = sqlx::PgPool::connect(ADMIN_PG).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&admin)
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

/// A new, empty database: its URL, the directory that holds it (SQLite) and its name (PostgreSQL),
/// for [`TestServer::on_database`], which drops it with the server.
pub async fn empty_database(backend: Backend) -> (String, tempfile::TempDir, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    match backend {
        Backend::Sqlite => {
            let database = format!("sqlite://{}", dir.path().join("t.db").display());
            (database, dir, None)
        }
        Backend::Postgres => {
            let name = format!("mogplex_test_{}", crypto::hex(&crypto::random_bytes::<6>()));
            let admin = sqlx::PgPool::connect(ADMIN_PG)
                .await
                .expect("PostgreSQL at 127.0.0.1:5432 (scripts/test starts it)");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            let database = format!("postgres://postgres@127.0.0.1:5432/{name}");
            (database, dir, Some(name))
        }
    }
}

/// Anything with a base URL the helpers can talk to: a test server, or a URL string.
pub trait Base {
    fn base(&self) -> &str;
}

impl Base for TestServer {
    fn base(&self) -> &str {
        &self.url
    }
}

impl Base for str {
    fn base(&self) -> &str {
        self
    }
}

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

pub fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The value of a hidden input in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].replace("&amp;", "&")
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no location: {}", r.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn query_param(u: &str, name: &str) -> Option<String> {
    let u = url::Url::parse(u).unwrap();
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[derive(Debug)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = crypto::b64url(&crypto::random_bytes::<64>());
    let challenge = crypto::pkce_s256(&verifier);
    Pkce {
        verifier,
        challenge,
    }
}

pub fn authorize_url(
    server: &(impl Base + ?Sized),
    redirect: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut u = url::Url::parse(&format!("{}/api/auth/mcp/authorize", server.base())).unwrap();
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("client_id", "mogplex-cli")
            .append_pair("redirect_uri", redirect);
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    u.to_string()
}

/// Signs in through the real page, as a browser would.
pub async fn sign_in(
    server: &(impl Base + ?Sized),
    client: &reqwest::Client,
    email: &str,
    password: &str,
    next: &str,
) -> reqwest::Response {
    let page = client
        .get(format!("{}/login?next={}", server.base(), urlencode(next)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf");
    client
        .post(format!("{}/login", server.base()))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", password),
            ("next", next),
        ])
        .send()
        .await
        .unwrap()
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The whole browser part of the code flow: returns the code and the PKCE verifier.
pub async fn get_code(
    server: &(impl Base + ?Sized),
    email: &str,
    redirect: &str,
) -> (String, Pkce) {
    get_code_with(server, email, PASSWORD, redirect).await
}

/// [`get_code`] for an account with another password.
pub async fn get_code_as(
    server: &(impl Base + ?Sized),
    email: &str,
    password: &str,
) -> (String, Pkce) {
    get_code_with(server, email, password, REDIRECT).await
}

async fn get_code_with(
    server: &(impl Base + ?Sized),
    email: &str,
    password: &str,
    redirect: &str,
) -> (String, Pkce) {
    let client = browser();
    let p = pkce();
    let state = crypto::b64url(&crypto::random_bytes::<32>());
    let authorize = authorize_url(
        server,
        redirect,
        &[
            ("response_type", "code"),
            ("scope", "openid profile email offline_access read write"),
            ("state", &state),
            ("code_challenge", &p.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let r = client.get(&authorize).send().await.unwrap();
    assert_eq!(r.status(), 303, "unauthenticated authorize goes to sign-in");
    let login = location(&r);
    let next = query_param(&format!("{}{}", server.base(), login), "next").unwrap();
    let r = sign_in(server, &client, email, password, &next).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let back = location(&r);
    assert!(back.starts_with("/api/auth/mcp/authorize?"), "{back}");
    let r = client
        .get(format!("{}{}", server.base(), back))
        .send()
        .await
        .unwrap();
    let r = approve_consent(server, &client, r).await;
    assert!(r.status().is_redirection());
    let cb = location(&r);
    assert!(cb.starts_with(redirect), "{cb}");
    assert_eq!(query_param(&cb, "state").as_deref(), Some(state.as_str()));
    assert_eq!(query_param(&cb, "iss").as_deref(), Some(server.base()));
    (query_param(&cb, "code").unwrap(), p)
}

/// Answers "Allow" on the consent page `r` (an authorization's answer), as the user would.
pub async fn approve_consent(
    server: &(impl Base + ?Sized),
    client: &reqwest::Client,
    r: reqwest::Response,
) -> reqwest::Response {
    answer_consent(server, client, r, "allow").await
}

/// Answers `decision` ("allow" or "deny") on the consent page `r`.
pub async fn answer_consent(
    server: &(impl Base + ?Sized),
    client: &reqwest::Client,
    r: reqwest::Response,
    decision: &str,
) -> reqwest::Response {
    assert_eq!(r.status(), 200, "the consent page");
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"consent\""), "{page}");
    client
        .post(format!("{}/api/auth/mcp/consent", server.base()))
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("request", hidden(&page, "request").as_str()),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap()
}

pub async fn token(
    server: &(impl Base + ?Sized),
    form: &[(&str, &str)],
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let r = plain()
        .post(format!("{}/api/auth/mcp/token", server.base()))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(serde_json::Value::Null);
    (status, body, headers)
}

pub async fn exchange(
    server: &(impl Base + ?Sized),
    code: &str,
    p: &Pkce,
    redirect: &str,
) -> (u16, serde_json::Value) {
    let (s, b, _) = token(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "mogplex-cli"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", &p.verifier),
        ],
    )
    .await;
    (s, b)
}

pub async fn refresh(server: &(impl Base + ?Sized), rt: &str) -> (u16, serde_json::Value) {
    let (s, b, _) = token(
        server,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "mogplex-cli"),
            ("refresh_token", rt),
        ],
    )
    .await;
    (s, b)
}

/// `GET /api/auth/user` with a bearer: the status and the email, if any.
pub async fn whoami(server: &(impl Base + ?Sized), bearer: &str) -> (u16, Option<String>) {
    let r = plain()
        .get(format!("{}/api/auth/user", server.base()))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap();
    (s, v["user"]["email"].as_str().map(str::to_owned))
}

/// Signed-in tokens for `email`: (access, refresh).
pub async fn signed_in_tokens(server: &(impl Base + ?Sized), email: &str) -> (String, String) {
    let (code, p) = get_code(server, email, REDIRECT).await;
    let (s, b) = exchange(server, &code, &p, REDIRECT).await;
    assert_eq!(s, 200, "{b}");
    (
        b["access_token"].as_str().unwrap().to_owned(),
        b["refresh_token"].as_str().unwrap().to_owned(),
    )
}

pub type Shared = Arc<TestServer>;

/// Runs an async test body against both backends, as two tests.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name($crate::harness::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name($crate::harness::Backend::Postgres).await
            }
        }
    };
}
