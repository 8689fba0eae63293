//! Tokens for remote MCP servers in the credential store (SPEC section 5): one entry per
//! (Mogplex account or none, MCP server) in `mcp_tokens`, its tokens secret fields, so the file
//! and keyring stores, the lock and the atomic writes cover them as they cover account sign-ins;
//! and the OAuth clients registered with their authorization servers, remembered once per issuer
//! in `mcp_clients`.
//!
//! Everything that changes them happens under the `auth.json` lock after a re-read:
//! [`registered_client`] checks, locks, checks again and only then registers, so two processes
//! never register twice; [`fresh_mcp_token`] checks, locks, checks again and refreshes once
//! (naming the resource), so two processes never spend the same refresh token; an `invalid_grant`
//! removes that server's entry and nothing else.

use super::document::{McpClientEntry, McpTokenEntry, Stored, mcp_token_id, normalize_issuer};
use super::ops::{blocking, now};
use super::{CredentialError, CredentialStore, Locked, Updated};
use crate::oauth::{OAuthClient, OAuthError, TokenResponse};
use crate::secret::Secret;
use crate::session::REFRESH_MARGIN;
use std::future::Future;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum McpAuthError {
    /// No tokens are stored for the server (never signed in, signed out, or removed meanwhile).
    #[error("not signed in to this MCP server")]
    NotSignedIn,
    /// The authorization server no longer accepts the sign-in: its entry was removed.
    #[error("the sign-in to this MCP server has ended ({reason})")]
    SignedOut { reason: String },
    /// The client reached a different authorization server than the one that issued the
    /// tokens: nothing was sent.
    #[error(
        "the stored MCP sign-in is from {expected}, but the authorization server answered as {found}"
    )]
    IssuerMismatch { expected: String, found: String },
    /// The authorization server could not be asked (unreachable, 5xx) or refused otherwise.
    #[error(transparent)]
    OAuth(OAuthError),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
}

impl McpAuthError {
    /// Whether a new sign-in (`mogplex mcp login`) is what fixes it.
    pub fn needs_sign_in(&self) -> bool {
        matches!(
            self,
            McpAuthError::NotSignedIn | McpAuthError::SignedOut { .. }
        )
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The entry for freshly issued tokens of `resource` (a refresh passes the entry it renews:
/// its refresh token stays when the response carries none, its scope when none is named).
#[allow(clippy::too_many_arguments)]
pub fn entry_from_tokens(
    account: Option<&str>,
    server: &str,
    resource: &str,
    issuer: &str,
    client_id: &str,
    asked_scope: Option<&str>,
    t: &TokenResponse,
    previous: Option<&McpTokenEntry>,
) -> McpTokenEntry {
    let now = OffsetDateTime::now_utc();
    let mut e = previous.cloned().unwrap_or_else(|| McpTokenEntry {
        id: String::new(),
        account: account.map(str::to_owned),
        server: server.to_owned(),
        resource: resource.to_owned(),
        issuer: issuer.to_owned(),
        client_id: client_id.to_owned(),
        scope: None,
        access_token: None,
        refresh_token: None,
        token_type: None,
        expires_at: None,
        obtained_at: None,
        extra: Default::default(),
    });
    e.id = mcp_token_id(account, resource);
    e.account = account.map(str::to_owned);
    e.server = server.to_owned();
    e.resource = resource.to_owned();
    e.issuer = issuer.to_owned();
    e.client_id = client_id.to_owned();
    e.access_token = Some(Stored::Value(t.access_token.clone()));
    if let Some(r) = &t.refresh_token {
        e.refresh_token = Some(Stored::Value(r.clone()));
    }
    e.token_type = Some(t.token_type.clone());
    if let Some(s) = t.scope.as_deref().or(asked_scope) {
        e.scope = Some(s.to_owned());
    }
    e.expires_at = t
        .expires_in
        .map(|s| rfc3339(now + time::Duration::seconds(s)));
    e.obtained_at = Some(rfc3339(now));
    e
}

/// Seconds until the access token expires; `None` when the entry does not say.
pub fn seconds_left(e: &McpTokenEntry) -> Option<i64> {
    let at = OffsetDateTime::parse(e.expires_at.as_deref()?, &Rfc3339).ok()?;
    Some((at - OffsetDateTime::now_utc()).whole_seconds())
}

/// Refresh when a refresh token is there and under 5 minutes remain.
pub fn needs_refresh(e: &McpTokenEntry) -> bool {
    e.refresh().is_some() && seconds_left(e).is_some_and(|s| s < REFRESH_MARGIN)
}

/// Whether the access token has expired (an entry that does not say has not).
pub fn expired(e: &McpTokenEntry) -> bool {
    seconds_left(e).is_some_and(|s| s <= 0)
}

/// Stores the tokens of one server (replacing the entry of the same account and resource).
/// Returns the entry it replaced (whose refresh token the caller may revoke).
pub fn store_mcp_token(
    store: &dyn CredentialStore,
    entry: McpTokenEntry,
) -> Result<Updated<Option<McpTokenEntry>>, CredentialError> {
    let mut new = entry;
    new.id = mcp_token_id(new.account.as_deref(), &new.resource);
    store.update(
        move |doc| match doc.mcp_tokens.iter_mut().find(|m| m.id == new.id) {
            Some(old) => {
                for (k, v) in &old.extra {
                    new.extra.entry(k.clone()).or_insert_with(|| v.clone());
                }
                Ok(Some(std::mem::replace(old, new)))
            }
            None => {
                doc.mcp_tokens.push(new);
                Ok(None)
            }
        },
    )
}

/// Forgets the tokens of `resource` as `account` reaches it. Returns the entry that was there
/// (its refresh token, for a best-effort revocation).
pub fn forget_mcp_token(
    store: &dyn CredentialStore,
    account: Option<&str>,
    resource: &str,
) -> Result<Updated<Option<McpTokenEntry>>, CredentialError> {
    store.update(|doc| {
        let Some(i) = doc
            .mcp_tokens
            .iter()
            .position(|m| m.is_for(account, resource))
        else {
            return Ok(None);
        };
        Ok(Some(doc.mcp_tokens.remove(i)))
    })
}

/// Forgets the tokens of the MCP server named `server` (its definition's name) as `account`
/// reaches it, whatever its URL. Returns the entries removed.
pub fn forget_mcp_server(
    store: &dyn CredentialStore,
    account: Option<&str>,
    server: &str,
) -> Result<Updated<Vec<McpTokenEntry>>, CredentialError> {
    store.update(|doc| {
        let (gone, kept) = std::mem::take(&mut doc.mcp_tokens)
            .into_iter()
            .partition(|m| m.account.as_deref() == account && m.server == server);
        doc.mcp_tokens = kept;
        Ok(gone)
    })
}

/// Forgets a registered client the authorization server no longer knows (`invalid_client`),
/// so that the next sign-in registers again. Returns whether it was remembered.
pub fn forget_mcp_client(
    store: &dyn CredentialStore,
    issuer: &str,
    client_id: &str,
) -> Result<Updated<bool>, CredentialError> {
    store.update(|doc| {
        let before = doc.mcp_clients.len();
        doc.mcp_clients.retain(|c| {
            !(normalize_issuer(&c.issuer) == normalize_issuer(issuer) && c.client_id == client_id)
        });
        Ok(doc.mcp_clients.len() != before)
    })
}

/// The client registered with the authorization server `issuer`: the one remembered, else one
/// `register` makes, remembered at once. Checked before the lock and again under it, and
/// `register` runs with the lock held, so two processes never register twice. Returns the
/// client and whether it was registered now.
pub async fn registered_client<F, Fut>(
    store: &Arc<dyn CredentialStore>,
    issuer: &str,
    register: F,
) -> Result<(McpClientEntry, bool), McpAuthError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<McpClientEntry, OAuthError>>,
{
    let s = store.clone();
    let loaded = blocking(move || s.load_metadata()).await?;
    if let Some(c) = loaded.doc.mcp_client(issuer) {
        return Ok((c.clone(), false));
    }
    let s = store.clone();
    let locked = blocking(move || s.locked()).await?;
    if let Some(c) = locked.document().mcp_client(issuer) {
        // Another process registered while we waited for the lock.
        return Ok((c.clone(), false));
    }
    let mut client = register().await.map_err(McpAuthError::OAuth)?;
    client.issuer = issuer.to_owned();
    if client.registered_at.is_none() {
        client.registered_at = Some(now());
    }
    let mut doc = locked.document().clone();
    doc.mcp_clients.push(client.clone());
    commit(locked, doc).await?;
    Ok((client, true))
}

async fn commit(locked: Locked, doc: super::Document) -> Result<bool, CredentialError> {
    blocking(move || {
        let mut locked = locked;
        locked.write(doc)
    })
    .await
}

/// A current access token for `resource` as `account` reaches it: refreshes when under 5
/// minutes remain, or when `rejected` (the token the server just answered 401 for) is still the
/// stored one. Under the lock, after re-reading; one refresh between any number of processes;
/// the refresh goes to the entry's own authorization server (`client` is given its issuer and
/// client id, and a client that answers as another issuer is refused before anything is sent)
/// and always names the resource (RFC 8707); `invalid_grant` removes that entry only.
pub async fn fresh_mcp_token<F, Fut>(
    store: &Arc<dyn CredentialStore>,
    account: Option<&str>,
    resource: &str,
    rejected: Option<&Secret>,
    client: F,
) -> Result<Secret, McpAuthError>
where
    F: FnOnce(String, String) -> Fut,
    Fut: Future<Output = Result<OAuthClient, OAuthError>>,
{
    let stale = |e: &McpTokenEntry| match rejected {
        Some(r) => e.access() == Some(r),
        None => needs_refresh(e),
    };
    let find = |doc: &super::Document| {
        doc.mcp_token(account, resource)
            .filter(|e| e.access().is_some())
            .cloned()
    };
    let s = store.clone();
    let loaded = blocking(move || s.load()).await?;
    let current = find(&loaded.doc).ok_or(McpAuthError::NotSignedIn)?;
    if !stale(&current) && !expired(&current) {
        return current.access().cloned().ok_or(McpAuthError::NotSignedIn);
    }
    let s = store.clone();
    let locked = blocking(move || s.locked()).await?;
    let mut doc = locked.document().clone();
    let Some(entry) = find(&doc) else {
        return Err(McpAuthError::NotSignedIn);
    };
    let remove = |doc: &mut super::Document| doc.mcp_tokens.retain(|m| m.id != entry.id);
    if !stale(&entry) && !expired(&entry) {
        // Another process refreshed while we waited for the lock.
        return entry.access().cloned().ok_or(McpAuthError::NotSignedIn);
    }
    let Some(refresh_token) = entry.refresh().cloned() else {
        remove(&mut doc);
        commit(locked, doc).await?;
        return Err(McpAuthError::SignedOut {
            reason: "the stored sign-in cannot be renewed".into(),
        });
    };
    let mut client = client(entry.issuer.clone(), entry.client_id.clone())
        .await
        .map_err(McpAuthError::OAuth)?;
    if normalize_issuer(client.issuer()) != normalize_issuer(&entry.issuer) {
        return Err(McpAuthError::IssuerMismatch {
            expected: entry.issuer.clone(),
            found: client.issuer().to_owned(),
        });
    }
    client.client_id = entry.client_id.clone();
    client.resource = Some(entry.resource.clone());
    match client.refresh(&refresh_token).await {
        Ok(tokens) => {
            let renewed = entry_from_tokens(
                entry.account.as_deref(),
                &entry.server,
                &entry.resource,
                &entry.issuer,
                &entry.client_id,
                None,
                &tokens,
                Some(&entry),
            );
            if let Some(slot) = doc.mcp_tokens.iter_mut().find(|m| m.id == entry.id) {
                *slot = renewed;
            }
            commit(locked, doc).await?;
            Ok(tokens.access_token)
        }
        Err(e) if e.is_permanent() => {
            remove(&mut doc);
            commit(locked, doc).await?;
            let reason = match &e {
                OAuthError::Rejected { description, .. } if !description.is_empty() => {
                    description.clone()
                }
                _ => "the authorization server no longer accepts it".into(),
            };
            Err(McpAuthError::SignedOut { reason })
        }
        Err(e) => Err(McpAuthError::OAuth(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::FileStore;
    use crate::home::MogplexHome;

    fn tokens(access: &str, refresh: Option<&str>, expires_in: Option<i64>) -> TokenResponse {
        serde_json::from_value(serde_json::json!({
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": expires_in,
        }))
        .unwrap()
    }

    fn entry(account: Option<&str>, resource: &str, access: &str) -> McpTokenEntry {
        entry_from_tokens(
            account,
            "demo",
            resource,
            "http://127.0.0.1:9",
            "mcl_1",
            Some("mcp:demo"),
            &tokens(access, Some("rt-1"), Some(3600)),
            None,
        )
    }

    #[test]
    fn entries_are_keyed_by_account_and_resource_and_replace_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn CredentialStore> =
            Arc::new(FileStore::new(&MogplexHome::at(dir.path().join("h"))));
        let r = "http://127.0.0.1:9/mcp/demo";
        let stored = |e| store_mcp_token(&*store, e).unwrap().value;
        assert!(stored(entry(Some("acct_a"), r, "at-a")).is_none());
        assert!(stored(entry(Some("acct_b"), r, "at-b")).is_none());
        assert!(stored(entry(None, r, "at-none")).is_none());
        let old = stored(entry(Some("acct_a"), r, "at-a2")).unwrap();
        assert_eq!(old.access().unwrap().expose(), "at-a");
        let doc = store.load().unwrap().doc;
        assert_eq!(doc.mcp_tokens.len(), 3);
        let a = doc.mcp_token(Some("acct_a"), r).unwrap();
        assert_eq!(a.access().unwrap().expose(), "at-a2");
        assert_eq!(a.scope.as_deref(), Some("mcp:demo"));
        assert_eq!(a.id, mcp_token_id(Some("acct_a"), r));
        assert!(!a.id.contains("at-"));
        assert_eq!(
            doc.mcp_token(None, r).unwrap().access().unwrap().expose(),
            "at-none"
        );
        // Forgetting one leaves the others.
        let gone = forget_mcp_token(&*store, Some("acct_b"), r).unwrap().value;
        assert_eq!(gone.unwrap().access().unwrap().expose(), "at-b");
        assert!(
            forget_mcp_token(&*store, Some("acct_b"), r)
                .unwrap()
                .value
                .is_none()
        );
        assert_eq!(store.load().unwrap().doc.mcp_tokens.len(), 2);
    }

    #[test]
    fn a_refresh_response_without_a_refresh_token_keeps_the_old_one() {
        let old = entry(None, "https://x/mcp", "at-1");
        let new = entry_from_tokens(
            None,
            "demo",
            "https://x/mcp",
            "https://x",
            "mcl_1",
            None,
            &tokens("at-2", None, Some(60)),
            Some(&old),
        );
        assert_eq!(new.access().unwrap().expose(), "at-2");
        assert_eq!(new.refresh().unwrap().expose(), "rt-1");
        assert_eq!(new.scope.as_deref(), Some("mcp:demo"));
        assert!(needs_refresh(&new));
        assert!(!needs_refresh(&old));
    }

    #[tokio::test]
    async fn a_client_is_registered_once_per_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn CredentialStore> =
            Arc::new(FileStore::new(&MogplexHome::at(dir.path().join("h"))));
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let register = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(McpClientEntry {
                issuer: String::new(),
                client_id: "mcl_new".into(),
                redirect_uris: vec!["http://127.0.0.1:24816/auth/callback".into()],
                registered_at: None,
                extra: Default::default(),
            })
        };
        let (c, new) = registered_client(&store, "http://as.example/", register)
            .await
            .unwrap();
        assert!(new);
        assert_eq!(c.client_id, "mcl_new");
        let (c, new) = registered_client(&store, "http://as.example", register)
            .await
            .unwrap();
        assert!(!new);
        assert_eq!(c.client_id, "mcl_new");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A refused registration stores nothing.
        let refused = || async {
            Err(OAuthError::Rejected {
                code: "invalid_client_metadata".into(),
                description: "no".into(),
            })
        };
        assert!(
            registered_client(&store, "http://other.example", refused)
                .await
                .is_err()
        );
        let doc = store.load().unwrap().doc;
        assert_eq!(doc.mcp_clients.len(), 1);
        assert!(
            forget_mcp_client(&*store, "http://as.example", "mcl_new")
                .unwrap()
                .value
        );
        assert!(store.load().unwrap().doc.mcp_clients.is_empty());
    }

    #[tokio::test]
    async fn a_token_that_is_not_due_is_returned_without_asking_anyone() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn CredentialStore> =
            Arc::new(FileStore::new(&MogplexHome::at(dir.path().join("h"))));
        let r = "http://127.0.0.1:9/mcp/demo";
        let e = fresh_mcp_token(&store, None, r, None, |_, _| async {
            Err::<OAuthClient, _>(OAuthError::Protocol("not called".into()))
        })
        .await
        .unwrap_err();
        assert!(matches!(e, McpAuthError::NotSignedIn), "{e}");
        store_mcp_token(&*store, entry(Some("acct_a"), r, "at-a")).unwrap();
        let t = fresh_mcp_token(&store, Some("acct_a"), r, None, |_, _| async {
            Err::<OAuthClient, _>(OAuthError::Protocol("not called".into()))
        })
        .await
        .unwrap();
        assert_eq!(t.expose(), "at-a");
        // Rejected, with the authorization server unreachable: the entry stays.
        let e = fresh_mcp_token(
            &store,
            Some("acct_a"),
            r,
            Some(&Secret::new("at-a")),
            |_, _| async {
                Err::<OAuthClient, _>(OAuthError::Unreachable {
                    url: "u".into(),
                    reason: "down".into(),
                })
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(e, McpAuthError::OAuth(_)), "{e}");
        assert!(
            store
                .load()
                .unwrap()
                .doc
                .mcp_token(Some("acct_a"), r)
                .is_some()
        );
    }
}
