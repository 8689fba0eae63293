//! The per-account refresh (`credentials::ops::fresh_access_token`) against two real
//! `mogplex-server`s on 127.0.0.1 (SQLite): it rotates the tokens of the entry it was given
//! and of no other, sends nothing to a service that is not the entry's issuer (and deletes
//! nothing because of its answer), and `invalid_grant` removes only that entry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mogplex_auth::MogplexHome;
use mogplex_auth::credentials::ops::{self, RefreshError, fresh_access_token};
use mogplex_auth::credentials::{CredentialStore, Document, FileStore, Stored};
use mogplex_auth::oauth::{OAuthClient, http_client};
use mogplex_auth::secret::Secret;
use mogplex_auth::{Account, AccountEntry};
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
        let state = mogplex_server::AppState::new(&db, mogplex_server::Config::new(&url))
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

    /// A user and a sign-in (token family) for it, as the token endpoint would issue them.
    async fn sign_in(&self, email: &str) -> AccountEntry {
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
            user_id: user.id.clone(),
            client_id: mogplex_server::CLIENT_ID.into(),
            scope: mogplex_auth::oauth::SCOPE.into(),
        };
        let far = i64::MAX / 4;
        let family = mogplex_server::crypto::id("fam_");
        self.state
            .db
            .start_family(&family, &grant, &access, far, &refresh, far)
            .await
            .unwrap();
        AccountEntry {
            issuer: self.url.clone(),
            access_token: Some(Stored::Value(Secret::new(access))),
            refresh_token: Some(Stored::Value(Secret::new(refresh))),
            token_type: Some("Bearer".into()),
            expires_at: Some("2099-01-01T00:00:00Z".into()),
            account: Some(Account {
                id: Some(user.id),
                email: Some(email.into()),
                ..Account::default()
            }),
            ..AccountEntry::default()
        }
    }

    /// The user a bearer token of this server belongs to, if it is live here.
    async fn owner(&self, bearer: &Secret) -> Option<String> {
        let p = self.state.db.principal(bearer.expose()).await.unwrap();
        p.map(|p| p.user_id)
    }
}

async fn client_for(issuer: String) -> Result<OAuthClient, mogplex_auth::oauth::OAuthError> {
    OAuthClient::discover(http_client()?, issuer.parse().unwrap()).await
}

fn value(s: &Option<Stored>) -> String {
    s.as_ref().unwrap().value().unwrap().expose().to_owned()
}

fn doc(store: &Arc<dyn CredentialStore>) -> Document {
    store.load().unwrap().doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_writes_only_its_own_entry_and_only_talks_to_its_issuer() {
    let (one, two) = (Server::start().await, Server::start().await);
    let dir = tempfile::tempdir().unwrap();
    let home = MogplexHome::at(dir.path().join("home"));
    let store: Arc<dyn CredentialStore> = Arc::new(FileStore::new(&home));
    let ada = ops::store_sign_in(&*store, one.sign_in("ada@example.com").await)
        .unwrap()
        .value;
    let bob = ops::store_sign_in(&*store, one.sign_in("bob@example.com").await)
        .unwrap()
        .value;
    let cy = ops::store_sign_in(&*store, two.sign_in("cy@example.com").await)
        .unwrap()
        .value;
    assert_eq!(bob.accounts_on_issuer, 2);
    assert_eq!(cy.accounts_on_issuer, 1);
    let before = doc(&store);

    // The server rejected ada's access token: a refresh, against server one, for ada only.
    let rejected = before
        .account(&ada.entry_id)
        .unwrap()
        .bearer()
        .unwrap()
        .0
        .clone();
    let fresh = fresh_access_token(&store, &ada.entry_id, Some(&rejected), client_for)
        .await
        .unwrap();
    assert_ne!(fresh, rejected);
    let ada_user = before
        .account(&ada.entry_id)
        .unwrap()
        .account_id()
        .unwrap()
        .to_owned();
    assert_eq!(one.owner(&fresh).await.as_deref(), Some(ada_user.as_str()));
    assert_eq!(two.owner(&fresh).await, None);
    let after = doc(&store);
    let a = after.account(&ada.entry_id).unwrap();
    assert_eq!(value(&a.access_token), fresh.expose());
    assert_ne!(
        value(&a.refresh_token),
        value(&before.account(&ada.entry_id).unwrap().refresh_token)
    );
    for other in [&bob.entry_id, &cy.entry_id] {
        assert_eq!(
            after.account(other),
            before.account(other),
            "another entry was written"
        );
    }
    // A second call finds the new token current: no second refresh.
    let again = fresh_access_token(&store, &ada.entry_id, None, client_for)
        .await
        .unwrap();
    assert_eq!(again, fresh);

    // A client that answers as another service (MOGPLEX_URL pointing at server two) gets no
    // token of server one's account, and its answer removes nothing.
    let to_two = |_: String| client_for(two.url.clone());
    let bob_at = Secret::new(value(&before.account(&bob.entry_id).unwrap().access_token));
    let e = fresh_access_token(&store, &bob.entry_id, Some(&bob_at), to_two)
        .await
        .unwrap_err();
    assert!(matches!(e, RefreshError::IssuerMismatch { .. }), "{e}");
    assert_eq!(
        doc(&store).account(&bob.entry_id),
        before.account(&bob.entry_id)
    );

    // invalid_grant (bob's sign-in revoked on the server) removes bob, and only bob; bob was the
    // default, which moves to the most recently used remaining account of that service (ada),
    // never to another service's (cy, used more recently).
    ops::set_default_account(&*store, &cy.entry_id).unwrap();
    ops::set_default_account(&*store, &bob.entry_id).unwrap();
    let bob_rt = value(&before.account(&bob.entry_id).unwrap().refresh_token);
    one.state.db.revoke_token(&bob_rt).await.unwrap();
    let e = fresh_access_token(&store, &bob.entry_id, Some(&bob_at), client_for)
        .await
        .unwrap_err();
    assert!(matches!(e, RefreshError::SignedOut { .. }), "{e}");
    let end = doc(&store);
    assert!(end.account(&bob.entry_id).is_none());
    assert_eq!(end.accounts.len(), 2);
    assert_eq!(
        end.account(&ada.entry_id).unwrap(),
        after.account(&ada.entry_id).unwrap()
    );
    assert_eq!(end.default_account.as_deref(), Some(ada.entry_id.as_str()));

    // An entry that is gone is not signed in, whatever another entry holds.
    let e = fresh_access_token(&store, &bob.entry_id, None, client_for)
        .await
        .unwrap_err();
    assert!(matches!(e, RefreshError::NotSignedIn), "{e}");
}
