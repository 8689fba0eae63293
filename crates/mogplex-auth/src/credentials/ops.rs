//! Every credential operation, as a function over a [`CredentialStore`]: the CLI and the
//! cockpit call these and print their outcomes; neither holds store logic (design sections 4
//! and 5).

use super::document::{
    AccountEntry, Document, McpTokenEntry, MogplexCredentialKind, StoreKind, normalize_issuer,
};
use super::{
    CredentialError, CredentialId, CredentialStore, FileStore, KeyringStore, Note, Updated,
};
use crate::home::MogplexHome;
use crate::oauth::{OAuthClient, OAuthError};
use crate::secret::Secret;
use crate::session::{entry_from_tokens, needs_refresh};
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub(crate) fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// An account as lists show it: never a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    /// The entry id (`acct_…`, `pat_…`).
    pub id: String,
    pub issuer: String,
    pub email: Option<String>,
    pub account_id: Option<String>,
    /// A sign-in, or a stored personal access token.
    pub kind: MogplexCredentialKind,
    pub is_default: bool,
    /// RFC 3339, when the file says.
    pub expires_at: Option<String>,
}

impl AccountSummary {
    fn of(doc: &Document, a: &AccountEntry) -> Self {
        Self {
            id: a.id.clone(),
            issuer: a.issuer.clone(),
            email: a.email().map(str::to_owned),
            account_id: a.account_id().map(str::to_owned),
            kind: if a.access_token.is_some() || a.api_key.is_none() {
                MogplexCredentialKind::Session
            } else {
                MogplexCredentialKind::PersonalAccessToken
            },
            is_default: doc.default_account.as_deref() == Some(a.id.as_str()),
            expires_at: a.expires_at.clone(),
        }
    }

    /// The email, else the entry id.
    pub fn name(&self) -> &str {
        self.email.as_deref().unwrap_or(&self.id)
    }
}

/// How lists show `a` (never a token).
pub fn summarize(doc: &Document, a: &AccountEntry) -> AccountSummary {
    AccountSummary::of(doc, a)
}

/// Every stored account, in file order. Works on a [`CredentialStore::load_metadata`] document.
pub fn list_accounts(doc: &Document) -> Vec<AccountSummary> {
    doc.accounts
        .iter()
        .map(|a| AccountSummary::of(doc, a))
        .collect()
}

/// What `--account`, `MOGPLEX_ACCOUNT`, `account use` and `logout --account` named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountMatch {
    One(AccountSummary),
    /// Nothing matches; `known` is every account that could have (of the issuer, when given).
    None {
        known: Vec<AccountSummary>,
    },
    /// Matches exist, but only for other account services than the one asked about.
    OtherIssuer {
        matches: Vec<AccountSummary>,
    },
    /// Several match (the same email on two services, say): the entry id picks one.
    Ambiguous {
        matches: Vec<AccountSummary>,
    },
}

/// Finds accounts by entry id, account id or email (case-insensitive). With `issuer`, only
/// that service's accounts are candidates (a session never uses another service's tokens).
pub fn find_account(doc: &Document, query: &str, issuer: Option<&str>) -> AccountMatch {
    let query = query.trim();
    let matching: Vec<AccountSummary> = doc
        .accounts
        .iter()
        .filter(|a| {
            a.id == query
                || a.account_id() == Some(query)
                || a.email().is_some_and(|e| e.eq_ignore_ascii_case(query))
        })
        .map(|a| AccountSummary::of(doc, a))
        .collect();
    let on_issuer = |s: &AccountSummary| {
        issuer.is_none_or(|i| normalize_issuer(&s.issuer) == normalize_issuer(i))
    };
    let (mut here, elsewhere): (Vec<_>, Vec<_>) = matching.into_iter().partition(on_issuer);
    // An exact entry id is never ambiguous.
    if let Some(i) = here.iter().position(|s| s.id == query) {
        return AccountMatch::One(here.swap_remove(i));
    }
    match here.len() {
        1 => AccountMatch::One(here.remove(0)),
        0 if !elsewhere.is_empty() => AccountMatch::OtherIssuer { matches: elsewhere },
        0 => AccountMatch::None {
            known: list_accounts(doc).into_iter().filter(on_issuer).collect(),
        },
        _ => AccountMatch::Ambiguous { matches: here },
    }
}

/// The account a session with the service at `issuer` uses: `chosen` (an entry id that
/// `--account` or `MOGPLEX_ACCOUNT` named) when it is that service's, else the stored default
/// when it is, else that service's most recently used account. Never another service's.
pub fn active_account<'a>(
    doc: &'a Document,
    issuer: &str,
    chosen: Option<&str>,
) -> Option<&'a AccountEntry> {
    if let Some(id) = chosen {
        return doc.account(id).filter(|a| a.is_for(issuer));
    }
    if let Some(a) = doc.default_entry().filter(|a| a.is_for(issuer)) {
        return Some(a);
    }
    doc.accounts
        .iter()
        .filter(|a| a.is_for(issuer))
        .max_by_key(|a| last_used(a))
}

/// Stores a provider key (keeping whatever else that provider's entry holds). Returns whether
/// a key was replaced.
pub fn store_provider_key(
    store: &dyn CredentialStore,
    provider: &str,
    key: Secret,
) -> Result<Updated<bool>, CredentialError> {
    store.update(|doc| {
        let entry = doc.providers.entry(provider.to_owned()).or_default();
        let replaced = entry.api_key.is_some();
        entry.api_key = Some(super::Stored::Value(key));
        Ok(replaced)
    })
}

/// Removes a provider key. Returns whether one was stored.
pub fn remove_provider_key(
    store: &dyn CredentialStore,
    provider: &str,
) -> Result<Updated<bool>, CredentialError> {
    store
        .remove(&[CredentialId::Provider(provider.to_owned())])
        .map(|u| Updated {
            value: !u.value.is_empty(),
            written: u.written,
            moved_aside: u.moved_aside,
            notes: u.notes,
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInOutcome {
    /// A new account entry.
    Added,
    /// The same account on the same service signed in again: its entry was replaced.
    Replaced,
}

/// What storing a sign-in did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub entry_id: String,
    pub outcome: SignInOutcome,
    pub issuer: String,
    pub email: Option<String>,
    /// Accounts now stored for this issuer, this one included.
    pub accounts_on_issuer: usize,
}

/// Stores a sign-in result (or a personal access token) as an account: replaces the entry of
/// the same account on the same issuer, else adds one, and makes it the default.
pub fn store_sign_in(
    store: &dyn CredentialStore,
    entry: AccountEntry,
) -> Result<Updated<SignedIn>, CredentialError> {
    let mut new = entry;
    // Always the derived id: the same account on the same service replaces its entry.
    new.id = new.derived_id();
    new.used_at = Some(now());
    store.update(move |doc| {
        let id = new.id.clone();
        let outcome = match doc.account_mut(&id) {
            Some(old) => {
                // Keys this version does not know survive a new sign-in.
                for (k, v) in &old.extra {
                    new.extra.entry(k.clone()).or_insert_with(|| v.clone());
                }
                *old = new.clone();
                SignInOutcome::Replaced
            }
            None => {
                doc.accounts.push(new.clone());
                SignInOutcome::Added
            }
        };
        doc.default_account = Some(id.clone());
        Ok(SignedIn {
            accounts_on_issuer: doc.accounts_for(&new.issuer).count(),
            entry_id: id,
            outcome,
            issuer: new.issuer.clone(),
            email: new.email().map(str::to_owned),
        })
    })
}

/// An account that was signed out.
#[derive(Debug, Clone)]
pub struct LoggedOut {
    pub account: AccountSummary,
    /// For best-effort revocation at that account's own issuer.
    pub refresh_token: Option<Secret>,
    /// The default account afterwards.
    pub new_default: Option<String>,
    /// The MCP tokens obtained for this account, forgotten with it (secrets resolved, for
    /// best-effort revocation at their authorization servers).
    pub mcp_tokens: Vec<McpTokenEntry>,
}

impl LoggedOut {
    /// The names of the MCP servers whose tokens went with the account.
    pub fn mcp_servers(&self) -> Vec<String> {
        self.mcp_tokens.iter().map(|m| m.server.clone()).collect()
    }
}

/// What `logout --all` removed: every account, and every MCP token (also those obtained for no
/// stored account), for best-effort revocation.
#[derive(Debug, Clone)]
pub struct AllLoggedOut {
    pub accounts: Vec<LoggedOut>,
    pub mcp_tokens: Vec<McpTokenEntry>,
}

fn last_used(a: &AccountEntry) -> Option<OffsetDateTime> {
    [&a.used_at, &a.obtained_at]
        .into_iter()
        .flatten()
        .filter_map(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .max()
}

/// Removes a credential from `doc`; an account's removal moves the default to the most
/// recently used remaining account of the same issuer (else none). Returns whether it was there.
pub(crate) fn remove_from(doc: &mut Document, id: &CredentialId) -> bool {
    match id {
        CredentialId::Provider(name) => {
            let Some(entry) = doc.providers.get_mut(name) else {
                return false;
            };
            let had = entry.api_key.take().is_some();
            if entry.extra.is_empty() {
                doc.providers.remove(name);
            }
            had
        }
        CredentialId::Account(entry_id) => {
            let Some(i) = doc.accounts.iter().position(|a| &a.id == entry_id) else {
                return false;
            };
            let gone = doc.accounts.remove(i);
            if doc.default_account.as_deref() == Some(entry_id.as_str()) {
                doc.default_account = doc
                    .accounts_for(&gone.issuer)
                    .max_by_key(|a| last_used(a))
                    .map(|a| a.id.clone());
            }
            true
        }
    }
}

fn logged_out(doc: &Document, a: &AccountEntry) -> LoggedOut {
    LoggedOut {
        account: AccountSummary::of(doc, a),
        refresh_token: a.refresh_token.as_ref().and_then(|s| s.value()).cloned(),
        new_default: None,
        mcp_tokens: doc
            .mcp_tokens
            .iter()
            .filter(|m| m.account.as_deref() == Some(a.id.as_str()))
            .cloned()
            .collect(),
    }
}

/// Signs one account out: removes its entry and the MCP tokens obtained for it (their keyring
/// items go after the commit).
pub fn logout(
    store: &dyn CredentialStore,
    entry_id: &str,
) -> Result<Updated<Option<LoggedOut>>, CredentialError> {
    store.update(|doc| {
        let Some(mut out) = doc.account(entry_id).map(|a| logged_out(doc, a)) else {
            return Ok(None);
        };
        remove_from(doc, &CredentialId::Account(entry_id.to_owned()));
        doc.mcp_tokens
            .retain(|m| m.account.as_deref() != Some(entry_id));
        out.new_default = doc.default_account.clone();
        Ok(Some(out))
    })
}

/// Signs every account out and forgets every MCP token; provider keys (and the remembered MCP
/// client registrations, which hold no secret) stay.
pub fn logout_all(store: &dyn CredentialStore) -> Result<Updated<AllLoggedOut>, CredentialError> {
    store.update(|doc| {
        let accounts = doc.accounts.iter().map(|a| logged_out(doc, a)).collect();
        doc.accounts.clear();
        let mcp_tokens = std::mem::take(&mut doc.mcp_tokens);
        doc.default_account = None;
        Ok(AllLoggedOut {
            accounts,
            mcp_tokens,
        })
    })
}

/// Makes an account the stored default.
pub fn set_default_account(
    store: &dyn CredentialStore,
    entry_id: &str,
) -> Result<Updated<AccountSummary>, CredentialError> {
    store.update(|doc| {
        let used = now();
        let Some(a) = doc.account_mut(entry_id) else {
            return Err(CredentialError::NoSuchAccount {
                id: entry_id.to_owned(),
            });
        };
        a.used_at = Some(used);
        doc.default_account = Some(entry_id.to_owned());
        let a = doc.account(entry_id).map(|a| AccountSummary::of(doc, a));
        a.ok_or_else(|| CredentialError::NoSuchAccount {
            id: entry_id.to_owned(),
        })
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The entry is gone (logged out, or replaced meanwhile), or holds no session.
    #[error("not signed in to Mogplex")]
    NotSignedIn,
    #[error("your Mogplex sign-in has ended ({reason}); sign in again")]
    SignedOut { reason: String },
    /// The client reached a different service than the one that issued the tokens: nothing
    /// was sent.
    #[error("the stored sign-in is for {expected}, but the account service answered as {found}")]
    IssuerMismatch { expected: String, found: String },
    #[error("could not refresh your Mogplex sign-in: {0}")]
    Transient(OAuthError),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
}

impl RefreshError {
    pub fn hint(&self) -> Option<String> {
        match self {
            RefreshError::NotSignedIn | RefreshError::SignedOut { .. } => {
                Some("run `mogplex login`".into())
            }
            RefreshError::IssuerMismatch { expected, .. } => Some(format!(
                "set MOGPLEX_URL to {expected} to use this sign-in, or sign in to the other service"
            )),
            RefreshError::Transient(_) => {
                Some("check your connection, and MOGPLEX_URL if you set it".into())
            }
            RefreshError::Credentials(e) => e.hint(),
        }
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CredentialError> + Send + 'static,
) -> Result<T, CredentialError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        CredentialError::Keyring(super::KeyringError::Failed {
            op: "reach",
            detail: e.to_string(),
        })
    })?
}

/// A current access token for account `entry_id` (the per-account [`crate::session`]
/// refresh): refreshes when under 5 minutes remain, or when `rejected` (the token a server just
/// answered 401 for) is still the stored one. Under the lock, after re-reading; writes only to
/// that entry; refreshes only against that entry's issuer (`client` is given it, and a client
/// that answers as another issuer is refused before anything is sent); `invalid_grant` removes
/// that entry only.
pub async fn fresh_access_token<F, Fut>(
    store: &Arc<dyn CredentialStore>,
    entry_id: &str,
    rejected: Option<&Secret>,
    client: F,
) -> Result<Secret, RefreshError>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<OAuthClient, OAuthError>>,
{
    let stale = |e: &AccountEntry| match rejected {
        Some(r) => e.access_token.as_ref().and_then(|s| s.value()) == Some(r),
        None => needs_refresh(e),
    };
    let session = |doc: &Document| {
        doc.account(entry_id)
            .filter(|e| e.access_token.as_ref().and_then(|s| s.value()).is_some())
            .cloned()
    };
    let s = store.clone();
    let loaded = blocking(move || s.load()).await?;
    let current = session(&loaded.doc).ok_or(RefreshError::NotSignedIn)?;
    if !stale(&current) {
        return current
            .access_token
            .and_then(|s| s.value().cloned())
            .ok_or(RefreshError::NotSignedIn);
    }
    let s = store.clone();
    let locked = blocking(move || s.locked()).await?;
    let mut doc = locked.document().clone();
    let Some(entry) = session(&doc) else {
        return Err(RefreshError::NotSignedIn);
    };
    if !stale(&entry) {
        // Another process refreshed while we waited for the lock.
        return entry
            .access_token
            .and_then(|s| s.value().cloned())
            .ok_or(RefreshError::NotSignedIn);
    }
    let commit = |locked: super::Locked, doc: Document| {
        blocking(move || {
            let mut locked = locked;
            locked.write(doc)
        })
    };
    let signed_out = |reason: String| RefreshError::SignedOut { reason };
    let Some(refresh_token) = entry
        .refresh_token
        .as_ref()
        .and_then(|s| s.value())
        .cloned()
    else {
        remove_from(&mut doc, &CredentialId::Account(entry_id.to_owned()));
        commit(locked, doc).await?;
        return Err(signed_out("the stored sign-in cannot be renewed".into()));
    };
    let client = client(entry.issuer.clone())
        .await
        .map_err(RefreshError::Transient)?;
    if normalize_issuer(client.issuer()) != normalize_issuer(&entry.issuer) {
        return Err(RefreshError::IssuerMismatch {
            expected: entry.issuer.clone(),
            found: client.issuer().to_owned(),
        });
    }
    match client.refresh(&refresh_token).await {
        Ok(tokens) => {
            let mut refreshed = entry_from_tokens(&entry.issuer, &tokens, None, Some(&entry));
            refreshed.used_at = Some(now());
            if let Some(slot) = doc.account_mut(entry_id) {
                *slot = refreshed;
            }
            commit(locked, doc).await?;
            Ok(tokens.access_token)
        }
        Err(e) if e.is_permanent() => {
            remove_from(&mut doc, &CredentialId::Account(entry_id.to_owned()));
            commit(locked, doc).await?;
            let reason = match &e {
                OAuthError::Rejected { description, .. } if !description.is_empty() => {
                    description.clone()
                }
                _ => "the server no longer accepts it".into(),
            };
            Err(signed_out(reason))
        }
        Err(e) => Err(RefreshError::Transient(e)),
    }
}

/// What a migration did.
#[derive(Debug)]
pub struct Migrated {
    pub from: StoreKind,
    pub to: StoreKind,
    /// Secret values moved.
    pub moved: usize,
    /// Nothing to do: every secret was already there.
    pub already: bool,
    pub notes: Vec<Note>,
}

/// `mogplex credentials migrate --to keyring|file`: under the lock, the new copy first (keyring
/// items set, or values read), `auth.json` committed pointing at it, the old copy removed last.
pub fn migrate(home: &MogplexHome, to: StoreKind) -> Result<Migrated, CredentialError> {
    let store: Box<dyn CredentialStore> = match &to {
        StoreKind::File => Box::new(FileStore::new(home)),
        StoreKind::Keyring => Box::new(KeyringStore::open(home)?),
        StoreKind::Other(name) => {
            return Err(CredentialError::BadChoice {
                value: name.clone(),
            });
        }
    };
    let mut locked = store.locked()?;
    let (from, done) = locked.placement(&to);
    let doc = locked.document().clone();
    let moved = doc.slots().len();
    let already = !locked.exists() || (from == to && done);
    if !already {
        locked.commit(doc, true)?;
    }
    Ok(Migrated {
        from,
        to,
        moved: if already { 0 } else { moved },
        already,
        notes: locked.take_notes(),
    })
}
