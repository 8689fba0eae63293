//! The Mogplex account session in `auth.json`: storing tokens after sign-in, and keeping the
//! access token fresh (SPEC section 4).
//!
//! Refresh happens when under 5 minutes remain, or once after a 401, always under the `auth.json`
//! lock and after re-reading the file, so that when two processes need a refresh at once the
//! second finds the first one's new tokens and uses them instead of spending the old (already
//! rotated) refresh token. `invalid_grant` means signed out: the entry is removed, in one write.
//! A network or server failure keeps everything as it was.

use crate::file::{Account, AuthFile, MogplexEntry};
use crate::oauth::{OAuthClient, OAuthError, TokenResponse, UserInfo};
use crate::secret::Secret;
use crate::store::{AuthStore, StoreError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Refresh when fewer than this many seconds remain.
pub const REFRESH_MARGIN: i64 = 5 * 60;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("not signed in to Mogplex")]
    NotSignedIn,
    #[error("your Mogplex sign-in has ended ({reason}); sign in again")]
    SignedOut { reason: String },
    #[error("could not refresh your Mogplex sign-in: {0}")]
    Transient(OAuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The `mogplex` entry for freshly issued tokens. A response without a refresh token keeps the
/// previous one (SPEC section 4).
pub fn entry_from_tokens(
    issuer: &str,
    t: &TokenResponse,
    user: Option<&UserInfo>,
    previous: Option<&MogplexEntry>,
) -> MogplexEntry {
    let now = OffsetDateTime::now_utc();
    let mut e = previous.cloned().unwrap_or_default();
    e.api_key = None;
    e.issuer = Some(issuer.to_owned());
    e.access_token = Some(t.access_token.clone());
    if let Some(r) = &t.refresh_token {
        e.refresh_token = Some(r.clone());
    }
    if t.id_token.is_some() {
        e.id_token = t.id_token.clone();
    }
    e.token_type = Some(t.token_type.clone());
    if t.scope.is_some() {
        e.scope = t.scope.clone();
    }
    e.expires_at = t
        .expires_in
        .map(|s| rfc3339(now + time::Duration::seconds(s)));
    e.obtained_at = Some(rfc3339(now));
    if let Some(u) = user {
        let mut account = e.account.take().unwrap_or_default();
        account.id = Some(u.id.clone());
        account.email = Some(u.email.clone());
        e.account = Some(account);
    } else if e.account.is_none() {
        e.account = Some(Account::default());
    }
    e
}

/// Seconds until the access token expires; `None` when the file does not say.
pub fn seconds_left(e: &MogplexEntry) -> Option<i64> {
    let at = OffsetDateTime::parse(e.expires_at.as_deref()?, &Rfc3339).ok()?;
    Some((at - OffsetDateTime::now_utc()).whole_seconds())
}

pub fn needs_refresh(e: &MogplexEntry) -> bool {
    e.refresh_token.is_some() && seconds_left(e).is_some_and(|s| s < REFRESH_MARGIN)
}

/// Stores a new sign-in (under the lock), replacing any Mogplex credential.
pub fn store_sign_in(store: &AuthStore, entry: MogplexEntry) -> Result<(), StoreError> {
    replace_sign_in(store, entry).map(drop)
}

/// [`store_sign_in`], returning the Mogplex credential it replaced (read under the same lock), so
/// the caller can say what happened to it.
pub fn replace_sign_in(
    store: &AuthStore,
    entry: MogplexEntry,
) -> Result<Option<MogplexEntry>, StoreError> {
    Ok(store
        .update(|f: &mut AuthFile| Ok(f.mogplex.replace(entry)))?
        .value)
}

/// A current access token for the stored session. `rejected` is the token a server just answered
/// 401 for: it forces a refresh unless another process has already replaced it.
/// `client` is only called when a refresh is needed (it usually means a discovery request).
pub async fn fresh_access_token<F, Fut>(
    store: &AuthStore,
    rejected: Option<&Secret>,
    client: F,
) -> Result<Secret, SessionError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<OAuthClient, OAuthError>>,
{
    let current = store
        .load()?
        .file
        .mogplex
        .filter(|e| e.access_token.is_some())
        .ok_or(SessionError::NotSignedIn)?;
    let stale = |e: &MogplexEntry| match rejected {
        Some(r) => e.access_token.as_ref() == Some(r),
        None => needs_refresh(e),
    };
    if !stale(&current) {
        return current.access_token.ok_or(SessionError::NotSignedIn);
    }
    // Take the lock off the async threads: another process may hold it while it refreshes.
    let s = store.clone();
    let locked = tokio::task::spawn_blocking(move || s.locked())
        .await
        .map_err(|e| {
            SessionError::Store(StoreError::Io {
                op: "lock",
                path: store.path().to_owned(),
                source: std::io::Error::other(e),
            })
        })??;
    let (mut file, _) = locked.read()?;
    let Some(entry) = file.mogplex.clone().filter(|e| e.access_token.is_some()) else {
        return Err(SessionError::NotSignedIn);
    };
    if !stale(&entry) {
        // Another process refreshed while we waited for the lock.
        return entry.access_token.ok_or(SessionError::NotSignedIn);
    }
    let Some(refresh_token) = entry.refresh_token.clone() else {
        file.mogplex = None;
        locked.write(&file)?;
        return Err(SessionError::SignedOut {
            reason: "the stored sign-in cannot be renewed".into(),
        });
    };
    let client = client().await.map_err(SessionError::Transient)?;
    match client.refresh(&refresh_token).await {
        Ok(tokens) => {
            let new = entry_from_tokens(client.issuer(), &tokens, None, Some(&entry));
            let access = tokens.access_token.clone();
            file.mogplex = Some(new);
            locked.write(&file)?;
            Ok(access)
        }
        Err(e) if e.is_permanent() => {
            file.mogplex = None;
            locked.write(&file)?;
            let reason = match &e {
                OAuthError::Rejected { description, .. } if !description.is_empty() => {
                    description.clone()
                }
                _ => "the server no longer accepts it".into(),
            };
            Err(SessionError::SignedOut { reason })
        }
        Err(e) => Err(SessionError::Transient(e)),
    }
}
