//! OAuth for a remote MCP server against a real `mogplex-server` serving the demo MCP server:
//! without a sign-in the connection needs one; the sign-in (challenge, RFC 9728 metadata,
//! discovery, one dynamic registration, code + PKCE + resource, the browser played through the
//! paste path) stores tokens the connection then sends; a 403 `insufficient_scope` needs more
//! access and a step-up sign-in reuses the registration; a 401 for a stored token is refreshed
//! once, and a sign-in revoked on the server needs a new one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mogplex_auth::credentials::{CredentialStore, FileStore, Stored};
use mogplex_auth::mcp_signin::{McpLogin, McpSignInError, sign_in};
use mogplex_auth::signin::Progress;
use mogplex_auth::{MapEnv, MogplexHome, Secret};
use mogplex_mcp::{Auth, Definition, Limits, McpErrorKind, connect_with};
use std::sync::Arc;

const PASSWORD: &str = "correct horse battery";

struct Server {
    url: String,
    state: mogplex_server::AppState,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("s.db").display());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut cfg = mogplex_server::Config::new(&url);
        cfg.demo_mcp = true;
        let state = mogplex_server::AppState::new(&db, cfg).await.unwrap();
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
        Self {
            url,
            state,
            _dir: dir,
        }
    }

    async fn count(&self, q: &str) -> i64 {
        use sqlx::Row;
        let mogplex_server::db::Db::Sqlite(p) = &self.state.db else {
            unreachable!("SQLite")
        };
        sqlx::query(sqlx::AssertSqlSafe(q.to_owned()))
            .fetch_one(p)
            .await
            .unwrap()
            .get(0)
    }
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..start + html[start..].find('"').unwrap()].replace("&amp;", "&")
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Plays the user in a browser: signs in as Ada on the server's page, allows the consent page
/// (which names the resource), and returns the address the browser is sent back to.
async fn browser(server: &str, authorize: &str, resource: &str) -> String {
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c.get(authorize).send().await.unwrap();
    let login = location(&r);
    let page = c
        .get(format!("{server}{login}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = c
        .post(format!("{server}/login"))
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("next", hidden(&page, "next").as_str()),
        ])
        .send()
        .await
        .unwrap();
    let back = location(&r);
    let page = c
        .get(format!("{server}{back}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("<code id=\"resource\">{resource}</code>")),
        "the consent page names the resource: {page}"
    );
    let r = c
        .post(format!("{server}/api/auth/mcp/consent"))
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("request", hidden(&page, "request").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    location(&r)
}

/// `sign_in` with the browser played through the paste path. Returns the authorization request.
async fn signed_in(
    s: &Server,
    store: &Arc<dyn CredentialStore>,
    login: &McpLogin,
) -> (
    Result<mogplex_auth::mcp_signin::McpSignedIn, McpSignInError>,
    String,
) {
    let (paste_tx, paste_rx) = tokio::sync::mpsc::channel(4);
    let (url_tx, mut url_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut progress = move |p: Progress| {
        if let Progress::Browser { url, .. } = p {
            let _ = url_tx.send(url);
        }
    };
    let env = MapEnv::new([("BROWSER", "true")]);
    let resource = format!("{}/mcp/demo", s.url);
    let server = s.url.clone();
    let player = tokio::spawn(async move {
        let authorize = url_rx.recv().await.unwrap();
        let callback = browser(&server, &authorize, &resource).await;
        paste_tx.send(callback).await.unwrap();
        authorize
    });
    let r = sign_in(&env, store, login, Some(paste_rx), &mut progress).await;
    (r, player.await.unwrap_or_default())
}

fn query(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_server_signed_in_refreshed_and_stepped_up() {
    let s = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CredentialStore> =
        Arc::new(FileStore::new(&MogplexHome::at(dir.path().join("home"))));
    let auth = Auth {
        store: store.clone(),
        account: Some("acct_ada".into()),
    };
    let demo_url = format!("{}/mcp/demo", s.url);
    let def = Definition::http("demo", &demo_url);
    let limits = Limits::default();

    // Nothing stored: the server needs a sign-in, and says for which scope.
    let e = connect_with(&def, &limits, Some(&auth)).await.unwrap_err();
    assert_eq!(e.kind, McpErrorKind::NeedsSignIn, "{e}");
    assert_eq!(e.scope.as_deref(), Some("mcp:demo"));

    let login = McpLogin {
        server: "demo".into(),
        url: demo_url.clone(),
        account: Some("acct_ada".into()),
        client_id: None,
        scope: None,
        device: false,
    };
    let (done, authorize) = signed_in(&s, &store, &login).await;
    let done = done.unwrap();
    assert!(done.registered);
    assert_eq!(done.issuer, s.url);
    assert_eq!(done.scope.as_deref(), Some("mcp:demo"));
    // The authorization request names the resource, the scope and PKCE S256.
    assert_eq!(
        query(&authorize, "resource").as_deref(),
        Some(demo_url.as_str())
    );
    assert_eq!(query(&authorize, "scope").as_deref(), Some("mcp:demo"));
    assert_eq!(
        query(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let doc = store.load().unwrap().doc;
    let entry = doc.mcp_token(Some("acct_ada"), &demo_url).unwrap();
    assert!(entry.access().is_some() && entry.refresh().is_some());
    assert_eq!(doc.mcp_clients.len(), 1);

    // Connected with the stored token: the tools, a call, and admin_stats needing more access.
    let c = connect_with(&def, &limits, Some(&auth)).await.unwrap();
    let names: Vec<&str> = c.tools().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["whoami", "time", "admin_stats"]);
    assert_eq!(
        c.call("whoami", "{}").await.unwrap().text,
        "ada@example.com"
    );
    let e = c.call("admin_stats", "{}").await.unwrap_err();
    assert_eq!(e.kind, McpErrorKind::NeedsMoreAccess, "{e}");
    assert_eq!(e.scope.as_deref(), Some("mcp:demo mcp:admin"));
    c.close().await;

    // Step-up: the wider scope, the same registered client.
    let step_up = McpLogin {
        scope: e.scope.clone(),
        ..login.clone()
    };
    let (done, _) = signed_in(&s, &store, &step_up).await;
    let done = done.unwrap();
    assert!(!done.registered && done.replaced);
    assert_eq!(done.scope.as_deref(), Some("mcp:demo mcp:admin"));
    let c = connect_with(&def, &limits, Some(&auth)).await.unwrap();
    assert!(
        c.call("admin_stats", "{}")
            .await
            .unwrap()
            .text
            .starts_with("live sign-ins")
    );
    c.close().await;
    assert_eq!(
        s.count("SELECT COUNT(*) FROM oauth_clients WHERE dynamic = 1")
            .await,
        1
    );

    // The server refuses the stored access token (here: it is not one it issued): one refresh,
    // naming the resource (the bound grant refuses any other), and the connection works.
    let set_access = |value: &str| {
        store
            .update(|doc| {
                for m in &mut doc.mcp_tokens {
                    m.access_token = Some(Stored::Value(Secret::new(value)));
                }
                Ok(())
            })
            .unwrap();
    };
    set_access("mog_at_not_a_token_of_this_server");
    let used = s
        .count("SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NOT NULL")
        .await;
    let c = connect_with(&def, &limits, Some(&auth)).await.unwrap();
    assert_eq!(c.tools().len(), 3);
    c.close().await;
    assert_eq!(
        s.count("SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NOT NULL")
            .await,
        used + 1
    );
    let doc = store.load().unwrap().doc;
    assert_ne!(
        doc.mcp_token(Some("acct_ada"), &demo_url)
            .unwrap()
            .access()
            .unwrap()
            .expose(),
        "mog_at_not_a_token_of_this_server"
    );

    // Revoked on the server: refused, the refresh answered invalid_grant, a new sign-in needed,
    // and the entry gone.
    let rt = doc
        .mcp_token(Some("acct_ada"), &demo_url)
        .unwrap()
        .refresh()
        .unwrap()
        .clone();
    reqwest::Client::new()
        .post(format!("{}/api/auth/mcp/revoke", s.url))
        .form(&[("token", rt.expose())])
        .send()
        .await
        .unwrap();
    set_access("mog_at_not_a_token_of_this_server");
    let e = connect_with(&def, &limits, Some(&auth)).await.unwrap_err();
    assert_eq!(e.kind, McpErrorKind::NeedsSignIn, "{e}");
    assert!(e.message.contains("sign-in has ended"), "{e}");
    assert!(store.load().unwrap().doc.mcp_tokens.is_empty());
    assert_eq!(store.load().unwrap().doc.mcp_clients.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_ask_or_names_another_resource_is_refused() {
    let s = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CredentialStore> =
        Arc::new(FileStore::new(&MogplexHome::at(dir.path().join("home"))));
    let env = MapEnv::new([("BROWSER", "true")]);
    let mut progress = |_: Progress| {};
    // A server that answers without a challenge needs no sign-in.
    let open = mogplex_testkit::FakeServer::start();
    open.route(
        "/mcp",
        mogplex_testkit::Reply::json(
            200,
            serde_json::json!({"jsonrpc": "2.0", "id": 0, "result": {}}),
        ),
    );
    let login = McpLogin {
        server: "open".into(),
        url: format!("{}/mcp", open.url()),
        account: None,
        client_id: None,
        scope: None,
        device: false,
    };
    let e = sign_in(&env, &store, &login, None, &mut progress)
        .await
        .unwrap_err();
    assert!(matches!(e, McpSignInError::NotNeeded { .. }), "{e}");
    // A server whose challenge points at the demo server's metadata: its resource is not this
    // server, so nothing is asked of the authorization server.
    let impostor = mogplex_testkit::FakeServer::start();
    impostor.route(
        "/mcp",
        mogplex_testkit::Reply::json(401, serde_json::json!({"error": "invalid_token"}))
            .with_header(
                "www-authenticate",
                &format!(
                    "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp/demo\"",
                    s.url
                ),
            ),
    );
    let login = McpLogin {
        url: format!("{}/mcp", impostor.url()),
        ..login
    };
    let e = sign_in(&env, &store, &login, None, &mut progress)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not for this server"), "{e}");
    let doc = store.load().unwrap().doc;
    assert!(doc.mcp_tokens.is_empty() && doc.mcp_clients.is_empty());
    assert_eq!(
        s.count("SELECT COUNT(*) FROM oauth_clients WHERE dynamic = 1")
            .await,
        0
    );
}
