//! MCP tokens in the credential store against a real `mogplex-server` (SQLite) serving the demo
//! MCP server: a client registered once per issuer, refreshes that name the resource (a bound
//! grant refuses any other) and rotate once between two processes refreshing at the same time,
//! `invalid_grant` removing only that server's entry, and logout forgetting the account's MCP
//! tokens.
//!
//! The concurrent refreshes are this test binary re-run with `MOGPLEX_TEST_CHILD` set, so they go
//! through exactly the library code under test, in processes of their own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mogplex_auth::credentials::mcp::{
    self, McpAuthError, entry_from_tokens, fresh_mcp_token, registered_client, store_mcp_token,
};
use mogplex_auth::credentials::{CredentialStore, FileStore, McpClientEntry, ops};
use mogplex_auth::oauth::{ClientSettings, OAuthClient, OAuthError, TokenResponse, http_client};
use mogplex_auth::{Account, AccountEntry, MogplexHome, Secret};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

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

    fn demo(&self) -> String {
        format!("{}/mcp/demo", self.url)
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

    /// A sign-in of a new user to the demo MCP server for `client_id`, bound to its resource,
    /// as the token endpoint would issue it.
    async fn mcp_tokens(&self, email: &str, client_id: &str) -> TokenResponse {
        let user = self
            .state
            .db
            .create_user(email, email, "not-a-password-hash")
            .await
            .unwrap();
        let (access, refresh) = (
            mogplex_server::crypto::token("mog_at_"),
            mogplex_server::crypto::token("mog_rt_"),
        );
        let grant = mogplex_server::db::Grant {
            user_id: user.id,
            client_id: client_id.into(),
            scope: "mcp:demo".into(),
        };
        let far = i64::MAX / 4;
        let family = mogplex_server::crypto::id("fam_");
        self.state
            .db
            .start_bound_family(
                &family,
                &grant,
                Some(&self.demo()),
                (&access, far, &refresh, far),
            )
            .await
            .unwrap();
        serde_json::from_value(serde_json::json!({
            "access_token": access, "refresh_token": refresh, "token_type": "Bearer",
            "expires_in": 3600, "scope": "mcp:demo",
        }))
        .unwrap()
    }

    /// The status of a `tools/list` at the demo server with `bearer`.
    async fn demo_status(&self, bearer: &Secret) -> u16 {
        reqwest::Client::new()
            .post(self.demo())
            .bearer_auth(bearer.expose())
            .header("accept", "application/json, text/event-stream")
            .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

/// The authorization server at `issuer`, as `fresh_mcp_token` is given it.
async fn client_for(issuer: String, client_id: String) -> Result<OAuthClient, OAuthError> {
    let settings = ClientSettings {
        client_id,
        scopes: vec!["mcp:demo".into()],
        scopes_from_env: false,
    };
    OAuthClient::discover_with(http_client()?, issuer.parse().unwrap(), &settings).await
}

/// Registers a public client at `s` through the library, remembered in `store`.
async fn register(s: &Server, store: &Arc<dyn CredentialStore>) -> (McpClientEntry, bool) {
    let issuer = s.url.clone();
    registered_client(store, &issuer, || async {
        let c = client_for(issuer.clone(), "unused".into()).await?;
        let (client_id, redirect_uris) = mogplex_auth::oauth::mcp::register(
            &http_client()?,
            &c.meta,
            "http://127.0.0.1:24816/auth/callback",
            false,
        )
        .await?;
        Ok(McpClientEntry {
            issuer: issuer.clone(),
            client_id,
            redirect_uris,
            registered_at: None,
            extra: Default::default(),
        })
    })
    .await
    .unwrap()
}

fn store_at(home: &Path) -> Arc<dyn CredentialStore> {
    Arc::new(FileStore::new(&MogplexHome::at(home)))
}

/// Makes the stored MCP token look like it expires in `secs` seconds.
fn expire_in(store: &Arc<dyn CredentialStore>, secs: i64) {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    let at = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    store
        .update(|doc| {
            for m in &mut doc.mcp_tokens {
                m.expires_at = Some(at.clone());
            }
            Ok(())
        })
        .unwrap();
}

/// In a child: one `fresh_mcp_token` for the demo server of the home and server it is given.
#[test]
fn child_fresh_mcp_token() {
    let (Ok(home), Ok(resource)) = (
        std::env::var("MOGPLEX_TEST_HOME"),
        std::env::var("MOGPLEX_TEST_RESOURCE"),
    ) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = store_at(Path::new(&home));
    rt.block_on(async {
        fresh_mcp_token(&store, Some("acct_a"), &resource, None, client_for)
            .await
            .unwrap();
    });
    println!("child refreshed");
}

fn is_child() -> bool {
    std::env::var_os("MOGPLEX_TEST_HOME").is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_refreshing_one_mcp_token_make_one_refresh_that_names_the_resource() {
    if is_child() {
        return;
    }
    let s = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = store_at(&home);

    // Registered once: the second ask (and a second home's process would too) reuses it.
    let (client, new) = register(&s, &store).await;
    assert!(new);
    assert!(client.client_id.starts_with("mcl_"), "{}", client.client_id);
    let (again, new) = register(&s, &store).await;
    assert!(!new);
    assert_eq!(again.client_id, client.client_id);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM oauth_clients WHERE dynamic = 1")
            .await,
        1
    );

    let tokens = s.mcp_tokens("ada@example.com", &client.client_id).await;
    let resource = s.demo();
    let entry = entry_from_tokens(
        Some("acct_a"),
        "demo",
        &resource,
        &s.url,
        &client.client_id,
        Some("mcp:demo"),
        &tokens,
        None,
    );
    store_mcp_token(&*store, entry).unwrap();
    assert_eq!(s.demo_status(&tokens.access_token).await, 200);
    expire_in(&store, 60);

    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child_fresh_mcp_token", "--nocapture"])
                .env("MOGPLEX_TEST_HOME", &home)
                .env("MOGPLEX_TEST_RESOURCE", &resource)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = tokio::task::spawn_blocking(move || c.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("child refreshed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // One rotation on the server: the first refresh token used once, one new one issued, the
    // sign-in (its family) alive, and still bound to the demo server.
    assert_eq!(
        s.count("SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NOT NULL")
            .await,
        1
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM refresh_tokens").await, 2);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM token_families WHERE revoked_at IS NULL")
            .await,
        1
    );
    let doc = store.load().unwrap().doc;
    let renewed = doc.mcp_token(Some("acct_a"), &resource).unwrap();
    assert_ne!(renewed.access(), Some(&tokens.access_token));
    assert_ne!(renewed.refresh(), tokens.refresh_token.as_ref());
    assert_eq!(renewed.scope.as_deref(), Some("mcp:demo"));
    assert!(!mcp::needs_refresh(renewed));
    // The new token is bound to the demo server (the refresh named it), and works there.
    assert_eq!(s.demo_status(renewed.access().unwrap()).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_removes_only_that_server_and_logout_forgets_the_accounts_mcp_tokens() {
    if is_child() {
        return;
    }
    let s = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(&dir.path().join("home"));
    let (client, _) = register(&s, &store).await;
    let resource = s.demo();
    // Two accounts with a token each for the demo server, and one reached without an account.
    let mut issued = Vec::new();
    for (account, email) in [
        (Some("acct_a"), "ada@example.com"),
        (Some("acct_b"), "bob@example.com"),
        (None, "cy@example.com"),
    ] {
        let t = s.mcp_tokens(email, &client.client_id).await;
        let e = entry_from_tokens(
            account,
            "demo",
            &resource,
            &s.url,
            &client.client_id,
            None,
            &t,
            None,
        );
        store_mcp_token(&*store, e).unwrap();
        issued.push(t);
    }
    // Ada's sign-in is revoked on the server: her rejected token is refreshed once, the server
    // answers invalid_grant, and only her entry goes.
    let rt = issued[0].refresh_token.clone().unwrap();
    reqwest::Client::new()
        .post(format!("{}/api/auth/mcp/revoke", s.url))
        .form(&[("token", rt.expose())])
        .send()
        .await
        .unwrap();
    let e = fresh_mcp_token(
        &store,
        Some("acct_a"),
        &resource,
        Some(&issued[0].access_token),
        client_for,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, McpAuthError::SignedOut { .. }), "{e}");
    assert!(e.needs_sign_in());
    let doc = store.load().unwrap().doc;
    assert!(doc.mcp_token(Some("acct_a"), &resource).is_none());
    assert!(doc.mcp_token(Some("acct_b"), &resource).is_some());
    assert!(doc.mcp_token(None, &resource).is_some());
    assert_eq!(doc.mcp_clients.len(), 1, "the registration stays");

    // Logging an account out forgets its MCP tokens, and no other's.
    let bob = AccountEntry {
        id: "acct_b".into(),
        issuer: s.url.clone(),
        access_token: Some(mogplex_auth::credentials::Stored::Value(Secret::new(
            "mog_at_bob",
        ))),
        account: Some(Account {
            id: Some("u_b".into()),
            ..Account::default()
        }),
        ..AccountEntry::default()
    };
    store
        .update(|doc| {
            doc.accounts.push(bob.clone());
            Ok(())
        })
        .unwrap();
    let out = ops::logout(&*store, "acct_b").unwrap().value.unwrap();
    assert_eq!(out.mcp_servers(), ["demo"]);
    // Handed back with its secrets, for revocation at the authorization server.
    assert_eq!(
        out.mcp_tokens[0].refresh().map(Secret::expose),
        issued[1].refresh_token.as_ref().map(Secret::expose)
    );
    let doc = store.load().unwrap().doc;
    assert!(doc.mcp_token(Some("acct_b"), &resource).is_none());
    assert!(doc.mcp_token(None, &resource).is_some());
    // `logout --all` forgets every MCP token; the registration (no secret) stays.
    let all = ops::logout_all(&*store).unwrap().value;
    // Every removed MCP token comes back, also the one obtained for no stored account.
    assert_eq!(all.mcp_tokens.len(), 1);
    assert_eq!(all.mcp_tokens[0].account, None);
    assert!(all.mcp_tokens[0].refresh().is_some());
    let doc = store.load().unwrap().doc;
    assert!(doc.mcp_tokens.is_empty());
    assert_eq!(doc.mcp_clients.len(), 1);
}
