//! The Mogplex account session's tokens: the entry freshly issued tokens make, and when the
//! access token is due for a refresh (SPEC section 4). The refresh itself, under the store's
//! lock and per account, is [`crate::credentials::ops::fresh_access_token`].

use crate::credentials::document::{Account, AccountEntry, Stored};
use crate::oauth::{TokenResponse, UserInfo};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Refresh when fewer than this many seconds remain.
pub const REFRESH_MARGIN: i64 = 5 * 60;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The `mogplex` entry for freshly issued tokens. A response without a refresh token keeps the
/// previous one (SPEC section 4).
pub fn entry_from_tokens(
    issuer: &str,
    t: &TokenResponse,
    user: Option<&UserInfo>,
    previous: Option<&AccountEntry>,
) -> AccountEntry {
    let now = OffsetDateTime::now_utc();
    let mut e = previous.cloned().unwrap_or_default();
    e.api_key = None;
    e.issuer = issuer.to_owned();
    e.access_token = Some(Stored::Value(t.access_token.clone()));
    if let Some(r) = &t.refresh_token {
        e.refresh_token = Some(Stored::Value(r.clone()));
    }
    if let Some(id) = &t.id_token {
        e.id_token = Some(Stored::Value(id.clone()));
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
    if e.id.is_empty() {
        e.id = e.derived_id();
    }
    e
}

/// Seconds until the access token expires; `None` when the file does not say.
pub fn seconds_left(e: &AccountEntry) -> Option<i64> {
    let at = OffsetDateTime::parse(e.expires_at.as_deref()?, &Rfc3339).ok()?;
    Some((at - OffsetDateTime::now_utc()).whole_seconds())
}

pub fn needs_refresh(e: &AccountEntry) -> bool {
    e.refresh_token.as_ref().and_then(Stored::value).is_some()
        && seconds_left(e).is_some_and(|s| s < REFRESH_MARGIN)
}
