//! The Mogplex account session's tokens: the entry freshly issued tokens make, and when the
//! access token is due for a refresh (SPEC section 4). The refresh itself, under the store's
//! lock and per account, is [`crate::credentials::ops::fresh_access_token`].

use crate::file::{Account, MogplexEntry};
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
