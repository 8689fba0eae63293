//! The token endpoint: client authentication once, then one function per grant
//! (authorization code with PKCE, refresh token with rotation, device code), each answering a
//! token response or an RFC 6749 §5.2 error.

use super::{oauth_form, required};
use crate::AppState;
use crate::crypto::{self, now};
use crate::db::{Grant, NextTokens, Refresh};
use crate::error::AppError;
use crate::web::Form;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use mogplex_protocol::TokenResponse;
use mogplex_protocol::oauth::{
    AUTHORIZATION_CODE_GRANT, DEVICE_CODE_GRANT, REFRESH_TOKEN_GRANT, error_code,
};
use std::net::SocketAddr;

pub async fn token(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let f = oauth_form(&headers, &body)?;
    let answer = grant(&s, &headers, &f, &addr).await;
    let answered = crate::oauth::observe::Answered::of(&answer);
    crate::oauth::observe::token_answered(&s, &f, &addr, answered).await;
    answer
}

async fn grant(
    s: &AppState,
    headers: &HeaderMap,
    f: &Form,
    addr: &SocketAddr,
) -> Result<Response, AppError> {
    let client = crate::oidc::clients::require(s, headers, f).await?;
    let client_id = client.id.as_str();
    let grant_type = required(f, "grant_type")?;
    if [
        AUTHORIZATION_CODE_GRANT,
        REFRESH_TOKEN_GRANT,
        DEVICE_CODE_GRANT,
    ]
    .contains(&grant_type)
    {
        crate::oidc::clients::check_grant(&client, grant_type)?;
    }
    // RFC 8707: a resource, if named, must be one this server issues tokens for; each grant
    // then checks it against the resource its authorization was bound to.
    let asked = super::resource::check(&s.cfg, f.get("resource")).map_err(invalid_target);
    match grant_type {
        AUTHORIZATION_CODE_GRANT => authorization_code(s, f, client_id, asked?).await,
        REFRESH_TOKEN_GRANT => refresh_token(s, f, client_id, asked?, addr).await,
        DEVICE_CODE_GRANT => device_code(s, f, client_id, asked?).await,
        _ => Err(AppError::oauth(
            error_code::UNSUPPORTED_GRANT_TYPE,
            "grant_type must be authorization_code, refresh_token or the device code grant",
        )),
    }
}

fn invalid_target(description: String) -> AppError {
    AppError::oauth(error_code::INVALID_TARGET, description)
}

/// RFC 6749 §4.1.3 with RFC 7636: a single-use code, its redirect URI, and the PKCE verifier;
/// with RFC 8707, the resource of the authorization request (if the token request names one,
/// it must be that one).
async fn authorization_code(
    s: &AppState,
    f: &Form,
    client_id: &str,
    asked: Option<String>,
) -> Result<Response, AppError> {
    let code = required(f, "code")?;
    let redirect_uri = required(f, "redirect_uri")?;
    let verifier = required(f, "code_verifier")?;
    if !crypto::valid_pkce_string(verifier) {
        return Err(AppError::oauth(
            error_code::INVALID_REQUEST,
            "code_verifier must be 43 to 128 unreserved characters",
        ));
    }
    let family_id = crypto::id("fam_");
    let invalid = || {
        AppError::oauth(
            error_code::INVALID_GRANT,
            "the authorization code is invalid, expired or already used",
        )
    };
    let row =
        s.db.redeem_code(code, &family_id)
            .await?
            .ok_or_else(invalid)?;
    if row.expires_at <= now() || row.client_id != client_id || row.redirect_uri != redirect_uri {
        return Err(invalid());
    }
    if !crypto::verify_pkce(verifier, &row.code_challenge) {
        return Err(AppError::oauth(
            error_code::INVALID_GRANT,
            "the code_verifier does not match the code_challenge",
        ));
    }
    if asked.is_some() {
        super::resource::matches(row.resource.as_deref(), asked.as_deref())
            .map_err(invalid_target)?;
    }
    let grant = Grant {
        user_id: row.user_id,
        client_id: row.client_id,
        scope: row.scope,
    };
    let ctx = crate::oidc::bind_code(s, code, &family_id).await?;
    start_sign_in(s, &family_id, &grant, row.resource.as_deref(), ctx).await
}

/// RFC 6749 §6: rotation on every use; a reused token revokes its sign-in, except a retry of the
/// previous token within the grace interval (`Config::refresh_grace`). A refresh may narrow the
/// scope of the access token it issues, never widen it; a sign-in bound to a resource (RFC 8707)
/// must name it on every refresh (`invalid_target` otherwise). A request that fails validation
/// leaves the token as it was.
async fn refresh_token(
    s: &AppState,
    f: &Form,
    client_id: &str,
    asked: Option<String>,
    addr: &SocketAddr,
) -> Result<Response, AppError> {
    let refresh = required(f, "refresh_token")?;
    let requested: Option<Vec<&str>> = f
        .get("scope")
        .map(|v| v.split(' ').filter(|p| !p.is_empty()).collect())
        .filter(|v: &Vec<&str>| !v.is_empty());
    let mut access_scope = None;
    // A narrower scope is checked before the rotation, so a refusal consumes nothing. The
    // resource is checked by the rotation itself (only a family bound to it can win).
    if let Some(requested) = requested {
        let binding = s.db.refresh_binding(refresh).await?;
        if let Some((_, bound)) = &binding {
            super::resource::matches(bound.as_deref(), asked.as_deref()).map_err(invalid_target)?;
        }
        if let Some((granted, _)) = binding {
            let granted: Vec<&str> = granted.split(' ').collect();
            if !requested.iter().all(|p| granted.contains(p)) {
                return Err(AppError::oauth(
                    error_code::INVALID_SCOPE,
                    "a refresh cannot widen the scope; ask for the sign-in's scope or less",
                ));
            }
            // In the sign-in's order, without repeats.
            let narrowed: Vec<&str> = granted
                .iter()
                .copied()
                .filter(|p| requested.contains(p))
                .collect();
            if narrowed.len() < granted.len() {
                access_scope = Some(narrowed.join(" "));
            }
        }
    }
    let mut t = new_tokens(s);
    t.access_scope = access_scope;
    // Rotated with the other refreshes arriving meanwhile, in one commit with its audit row.
    let audit = crate::db::rotation::AuditNote {
        client: Some(addr.ip().to_string()),
        detail: crate::oauth::observe::detail(f),
    };
    let job = crate::db::Db::rotation(refresh, client_id, &t, asked.as_deref(), Some(audit));
    let won = s.rotations.rotate(job).await?;
    let rotated =
        s.db.settle_rotation(
            refresh,
            client_id,
            &t,
            s.cfg.refresh_grace,
            asked.as_deref(),
            won,
        )
        .await?;
    match rotated {
        Refresh::Rotated {
            grant,
            family_id,
            claims,
            audited,
        } => {
            let scope = t
                .access_scope
                .clone()
                .unwrap_or_else(|| grant.scope.clone());
            let id_token = match claims {
                Some((claims, auth_time)) => {
                    crate::oidc::refreshed_id_token(s, &grant, claims, auth_time).await?
                }
                None => crate::oidc::id_token(s, &family_id, &grant, None).await?,
            };
            let mut r = with_subject(response(s, t, &scope, id_token), &grant);
            if audited {
                r.extensions_mut().insert(crate::audit::Audited);
            }
            Ok(r)
        }
        Refresh::Reused => Err(AppError::oauth(
            error_code::INVALID_GRANT,
            "the refresh token was already used; every token of this sign-in has been revoked",
        )),
        Refresh::Invalid => Err(AppError::oauth(
            error_code::INVALID_GRANT,
            "the refresh token is invalid, expired or revoked",
        )),
        Refresh::OtherResource(bound) => {
            match super::resource::matches(bound.as_deref(), asked.as_deref()) {
                Err(description) => Err(invalid_target(description)),
                // Not reached: the rotation said the resources differ.
                Ok(()) => Err(AppError::oauth(
                    error_code::INVALID_GRANT,
                    "the refresh token is invalid, expired or revoked",
                )),
            }
        }
    }
}

/// RFC 8628 §3.4–3.5: pending, `slow_down` for polls faster than the interval, denied, expired,
/// and tokens once, after the user approved. A resource named here must be the one the device
/// authorization request named.
async fn device_code(
    s: &AppState,
    f: &Form,
    client_id: &str,
    asked: Option<String>,
) -> Result<Response, AppError> {
    let device_code = required(f, "device_code")?;
    let Some(row) = s.db.poll_device(device_code).await? else {
        return Err(AppError::oauth(
            error_code::INVALID_GRANT,
            "unknown device code",
        ));
    };
    if row.client_id != client_id {
        return Err(AppError::oauth(
            error_code::INVALID_GRANT,
            "the device code was issued to another client",
        ));
    }
    let t0 = now();
    if row.expires_at <= t0 {
        return Err(AppError::oauth(
            error_code::EXPIRED_TOKEN,
            "the device code has expired; start again",
        ));
    }
    let already_used = || {
        AppError::oauth(
            error_code::INVALID_GRANT,
            "the device code was already used",
        )
    };
    match row.status.as_str() {
        "denied" => {
            return Err(AppError::oauth(
                error_code::ACCESS_DENIED,
                "the sign-in was denied",
            ));
        }
        "redeemed" => return Err(already_used()),
        _ => {}
    }
    if row
        .last_polled_at
        .is_some_and(|last| t0 - last < row.interval_secs)
    {
        return Err(AppError::oauth(
            error_code::SLOW_DOWN,
            format!("poll at most every {} seconds", row.interval_secs + 5),
        ));
    }
    if row.status == "pending" {
        return Err(AppError::oauth(
            error_code::AUTHORIZATION_PENDING,
            "waiting for the user to approve",
        ));
    }
    if asked.is_some() {
        super::resource::matches(row.resource.as_deref(), asked.as_deref())
            .map_err(invalid_target)?;
    }
    let (Some(user_id), "approved") = (row.user_id, row.status.as_str()) else {
        return Err(AppError::oauth(
            error_code::INVALID_GRANT,
            "the device code is not usable",
        ));
    };
    let family_id = crypto::id("fam_");
    if !s.db.redeem_device(device_code, &family_id).await? {
        return Err(already_used());
    }
    let grant = Grant {
        user_id,
        client_id: row.client_id,
        scope: row.scope,
    };
    start_sign_in(s, &family_id, &grant, row.resource.as_deref(), None).await
}

/// A new pair of tokens and when each expires.
fn new_tokens(s: &AppState) -> NextTokens {
    let t = now();
    NextTokens {
        access: crypto::token("mog_at_"),
        refresh: crypto::token("mog_rt_"),
        access_expires: t + s.cfg.access_ttl,
        refresh_expires: t + s.cfg.refresh_idle_ttl,
        access_scope: None,
    }
}

/// The token response: `Cache-Control: no-store` (RFC 6749 §5.1).
fn response(s: &AppState, t: NextTokens, scope: &str, id_token: Option<String>) -> Response {
    let mut r = Json(TokenResponse {
        access_token: t.access,
        token_type: "Bearer".to_owned(),
        expires_in: Some(s.cfg.access_ttl),
        refresh_token: Some(t.refresh),
        scope: Some(scope.to_owned()),
        id_token,
    })
    .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// Starts a new sign-in (token family) for `grant`, bound to `resource` if one was named, and
/// answers with its first tokens (and an ID token, for `openid`; `ctx` is the authorization
/// request's nonce and sign-in time).
async fn start_sign_in(
    s: &AppState,
    family_id: &str,
    grant: &Grant,
    resource: Option<&str>,
    ctx: Option<crate::db::oidc::AuthContext>,
) -> Result<Response, AppError> {
    let t = new_tokens(s);
    s.db.start_bound_family(
        family_id,
        grant,
        resource,
        (&t.access, t.access_expires, &t.refresh, t.refresh_expires),
    )
    .await?;
    let id_token = crate::oidc::id_token(s, family_id, grant, ctx).await?;
    Ok(with_subject(response(s, t, &grant.scope, id_token), grant))
}

/// Names the account in the response's extensions, for the audit record (`oauth::observe`).
fn with_subject(mut r: Response, grant: &Grant) -> Response {
    r.extensions_mut()
        .insert(crate::audit::Subject(grant.user_id.clone()));
    r
}
