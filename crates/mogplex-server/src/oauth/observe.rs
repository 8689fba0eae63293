//! What the OAuth endpoints tell the audit log and the metrics, kept out of the grant code: every
//! token request counts in `mogplex_oauth_grants_total{grant_type,outcome}`; tokens issued and
//! refreshed, refused refreshes of tokens this server issued, refresh-token reuse and
//! revocations are audited with the account (when known) and the client address. Device polls
//! that are merely pending, and made-up codes and tokens, are counted, not audited.

use crate::AppState;
use crate::audit::{Event, Subject, kind};
use crate::error::AppError;
use crate::web::Form;
use axum::response::Response;
use mogplex_protocol::oauth::{
    AUTHORIZATION_CODE_GRANT, DEVICE_CODE_GRANT, REFRESH_TOKEN_GRANT, error_code,
};
use std::net::SocketAddr;

/// The grant label of a request: one of the three grants, `none` or `other`.
fn grant_label(f: &Form) -> &'static str {
    match f.get("grant_type") {
        Some(AUTHORIZATION_CODE_GRANT) => "authorization_code",
        Some(REFRESH_TOKEN_GRANT) => "refresh_token",
        Some(DEVICE_CODE_GRANT) => "device_code",
        None => "none",
        Some(_) => "other",
    }
}

/// The audit detail of a token request: its grant, and the resource it named (RFC 8707), so the
/// log shows every refresh of a bound sign-in carried it.
pub fn detail(f: &Form) -> String {
    let grant = grant_label(f);
    match f.get("resource") {
        Some(r) => format!("{grant} resource={r}"),
        None => grant.to_owned(),
    }
}

/// Whether a refused refresh was a reuse (the grant code words it so; see `token.rs`).
fn is_reuse(description: &str) -> bool {
    description.contains("already used")
}

/// What the audit and the metrics need of a token answer, taken before anything is awaited (a
/// response is not `Sync`).
#[derive(Debug)]
pub struct Answered {
    outcome: &'static str,
    description: String,
    subject: Option<String>,
    /// Its audit row is already written (a refresh's, with its rotation).
    audited: bool,
}

impl Answered {
    pub fn of(answer: &Result<Response, AppError>) -> Self {
        match answer {
            Ok(r) => Self {
                outcome: "ok",
                description: String::new(),
                subject: r.extensions().get::<Subject>().map(|s| s.0.clone()),
                audited: r.extensions().get::<crate::audit::Audited>().is_some(),
            },
            Err(AppError::OAuth {
                code, description, ..
            }) => Self {
                outcome: code,
                description: description.clone(),
                subject: None,
                audited: false,
            },
            Err(_) => Self {
                outcome: error_code::SERVER_ERROR,
                description: String::new(),
                subject: None,
                audited: false,
            },
        }
    }
}

pub async fn token_answered(s: &AppState, f: &Form, addr: &SocketAddr, a: Answered) {
    let grant = grant_label(f);
    s.metrics.grant(grant, a.outcome);
    let refresh = grant == "refresh_token";
    let event_kind = if refresh {
        kind::TOKEN_REFRESHED
    } else {
        kind::TOKEN_ISSUED
    };
    if a.outcome == "ok" {
        // A refresh's row was written with its rotation, in its transaction (`db::rotation`).
        if !a.audited {
            let mut e = Event::new(event_kind).client(addr).detail(detail(f));
            if let Some(user) = &a.subject {
                e = e.user(user);
            }
            s.audit.record(e).await;
        }
    } else if a.outcome == error_code::INVALID_GRANT && refresh {
        // Only a refused refresh of a token this server issued is audited: made-up tokens (a
        // flood of them) would grow the table without telling anything about an account.
        let Some(token) = f.get("refresh_token") else {
            return;
        };
        let Ok(Some(user)) = s.db.refresh_token_owner(token).await else {
            return;
        };
        let e = if is_reuse(&a.description) {
            s.metrics.reuse_detected();
            Event::new(kind::REFRESH_REUSE).failed("refresh token reused; its sign-in was revoked")
        } else {
            Event::new(event_kind).failed(a.outcome)
        };
        s.audit
            .record(e.user(&user).client(addr).detail(detail(f)))
            .await;
    }
}

/// Before a revocation: who the token belongs to, if it is a refresh token we know.
pub async fn revoking(s: &AppState, token: &str, addr: &SocketAddr) {
    let mut e = Event::new(kind::TOKEN_REVOKED).client(addr);
    if let Ok(Some(user)) = s.db.refresh_token_owner(token).await {
        e = e.user(&user).detail("refresh token: its sign-in");
    } else {
        e = e.detail("access token or unknown token");
    }
    s.audit.record(e).await;
}
