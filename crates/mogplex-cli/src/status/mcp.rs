//! The MCP sign-ins `mogplex status` lists (issue 16): for each stored MCP token entry, the
//! server's name, its resource, the authorization server, the account it was obtained for, the
//! scope and the access token's expiry, and whether a refresh token is there to renew it. Never
//! a token: only the entry's metadata is read. Apart from `status.rs` because it is its own
//! concern (and that file is long enough).

use super::{format_time, parse_time, relative};
use mogplex_auth::credentials::Document;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// The `mcp_signins` array of `status --json` and the lines under "MCP sign-ins:" (none when
/// nothing is stored), in the store's order.
pub(super) fn signins(doc: &Document, now: OffsetDateTime) -> (Vec<Value>, Vec<String>) {
    let mut values = Vec::new();
    let mut lines = Vec::new();
    for m in &doc.mcp_tokens {
        let expires = parse_time(m.expires_at.as_deref());
        let expired = expires.is_some_and(|at| at <= now);
        let renews = m.refresh_token.is_some();
        values.push(json!({
            "server": m.server,
            "resource": m.resource,
            "issuer": m.issuer,
            "account_entry": m.account,
            "scope": m.scope,
            "access_token_expires_at": expires.map(format_time),
            "expired": expired,
            "has_refresh_token": renews,
        }));
        let mut text = format!("{} ({}) at {}", m.server, m.resource, m.issuer);
        if let Some(a) = &m.account {
            text.push_str(&format!(" for {a}"));
        }
        text.push_str(&format!(
            ": scope {}",
            m.scope.as_deref().unwrap_or("not recorded")
        ));
        match expires {
            Some(at) => text.push_str(&format!(
                "; access token {} {} ({})",
                if expired { "expired" } else { "expires" },
                relative(at, now),
                format_time(at)
            )),
            None => text.push_str("; no expiry recorded"),
        }
        text.push_str(if renews {
            "; renews itself (refresh token stored)"
        } else {
            "; cannot be renewed: sign in again with `mogplex mcp login` when it ends"
        });
        lines.push(text);
    }
    (values, lines)
}
