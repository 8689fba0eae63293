//! The OAuth 2.1 authorization server for the public client `mogplex-cli` (SPEC sections 4, 7):
//! RFC 8414 metadata, authorization code with PKCE S256 only, refresh rotation with reuse
//! detection, RFC 7009 revocation and the RFC 8628 device grant.

use crate::AppState;
use crate::crypto::{self, now};
use crate::db::{CodeRow, Grant, Refresh};
use crate::error::AppError;
use crate::web::{Form, signed_in_user, to_login};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use mogplex_protocol::oauth::{
    AUTHORIZATION_CODE_GRANT, CALLBACK_PATH, CLIENT_ID, DEFAULT_SCOPE, DEVICE_CODE_GRANT,
    LOOPBACK_PORTS, PKCE_METHOD, REFRESH_TOKEN_GRANT, SUPPORTED_SCOPES, error_code,
    loopback_redirect_uri,
};
use mogplex_protocol::{
    AuthorizationServerMetadata, DeviceAuthorizationResponse, TokenResponse, routes,
};

fn strings(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| (*s).to_owned()).collect())
}

/// This server's RFC 8414 document: every endpoint under the issuer.
pub fn metadata_document(issuer: &str) -> AuthorizationServerMetadata {
    let at = |path: &str| format!("{issuer}{path}");
    AuthorizationServerMetadata {
        issuer: issuer.to_owned(),
        authorization_endpoint: at(routes::AUTHORIZE),
        token_endpoint: at(routes::TOKEN),
        revocation_endpoint: Some(at(routes::REVOKE)),
        device_authorization_endpoint: Some(at(routes::DEVICE_AUTHORIZATION)),
        response_types_supported: strings(&["code"]),
        response_modes_supported: strings(&["query"]),
        grant_types_supported: strings(&[
            AUTHORIZATION_CODE_GRANT,
            REFRESH_TOKEN_GRANT,
            DEVICE_CODE_GRANT,
        ]),
        code_challenge_methods_supported: strings(&[PKCE_METHOD]),
        token_endpoint_auth_methods_supported: strings(&["none"]),
        revocation_endpoint_auth_methods_supported: strings(&["none"]),
        scopes_supported: strings(SUPPORTED_SCOPES),
        authorization_response_iss_parameter_supported: true,
        ..Default::default()
    }
}

pub async fn metadata(State(s): State<AppState>) -> Json<AuthorizationServerMetadata> {
    Json(metadata_document(&s.cfg.issuer))
}

/// The client's registered redirects: exactly the two fixed loopback ones, plus any port of a
/// loopback `http` redirect to `/auth/callback` (RFC 8252 §7.3).
pub fn redirect_allowed(uri: &str) -> bool {
    if LOOPBACK_PORTS
        .iter()
        .any(|port| uri == loopback_redirect_uri(*port))
    {
        return true;
    }
    let Ok(u) = url::Url::parse(uri) else {
        return false;
    };
    let loopback = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    u.scheme() == "http"
        && loopback
        && u.port().is_some()
        && u.path() == CALLBACK_PATH
        && u.query().is_none()
        && u.fragment().is_none()
        && u.username().is_empty()
        && u.password().is_none()
        // Reject anything the parser normalised (`/auth/./callback`, `%2F`…): the string itself
        // must be canonical.
        && u.as_str() == uri
}

/// `scope` must be a subset of what the server supports; empty means the default.
fn check_scope(scope: Option<&str>) -> Result<String, ()> {
    let Some(scope) = scope.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(DEFAULT_SCOPE.to_owned());
    };
    let parts: Vec<&str> = scope.split(' ').filter(|p| !p.is_empty()).collect();
    if parts.iter().all(|p| SUPPORTED_SCOPES.contains(p)) {
        Ok(parts.join(" "))
    } else {
        Err(())
    }
}

/// Builds the redirect back to the client with `params` and `iss`.
fn back_to_client(
    redirect_uri: &str,
    issuer: &str,
    params: &[(&str, &str)],
    state: Option<&str>,
) -> Response {
    let mut u = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => {
            return AppError::page(
                StatusCode::BAD_REQUEST,
                "Invalid sign-in link",
                "The redirect address is not valid.",
            )
            .into_response();
        }
    };
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(st) = state {
            q.append_pair("state", st);
        }
        q.append_pair("iss", issuer);
    }
    Redirect::to(u.as_str()).into_response()
}

pub async fn authorize(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let raw = query.unwrap_or_default();
    let q = Form::parse(raw.as_bytes()).map_err(|e| {
        AppError::page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in link",
            format!("This sign-in link is malformed: {e}."),
        )
    })?;
    // Errors before the client and its redirect are known are shown here, never redirected.
    if q.get("client_id") != Some(CLIENT_ID) {
        return Err(AppError::page(
            StatusCode::BAD_REQUEST,
            "Unknown application",
            "This sign-in link names an application this server does not know.",
        ));
    }
    let redirect_uri = q.get("redirect_uri").unwrap_or_default();
    if !redirect_allowed(redirect_uri) {
        return Err(AppError::page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in link",
            "The address this sign-in would return to is not registered for the Mogplex CLI.",
        ));
    }
    let state = q.get("state");
    let fail = |code: &str, desc: &str| {
        back_to_client(
            redirect_uri,
            &s.cfg.issuer,
            &[("error", code), ("error_description", desc)],
            state,
        )
    };
    if q.get("response_type") != Some("code") {
        return Ok(fail(
            error_code::UNSUPPORTED_RESPONSE_TYPE,
            "response_type must be code",
        ));
    }
    match q.get("code_challenge_method") {
        Some(PKCE_METHOD) => {}
        Some(_) => {
            return Ok(fail(
                error_code::INVALID_REQUEST,
                "only the S256 code challenge method is supported",
            ));
        }
        None => {
            return Ok(fail(
                error_code::INVALID_REQUEST,
                "code_challenge_method=S256 is required",
            ));
        }
    }
    let challenge = match q.get("code_challenge") {
        Some(c) if crypto::valid_s256_challenge(c) => c.to_owned(),
        Some(_) => {
            return Ok(fail(
                error_code::INVALID_REQUEST,
                "code_challenge must be 43 base64url characters",
            ));
        }
        None => {
            return Ok(fail(
                error_code::INVALID_REQUEST,
                "code_challenge is required",
            ));
        }
    };
    let Ok(scope) = check_scope(q.get("scope")) else {
        return Ok(fail(
            error_code::INVALID_SCOPE,
            "the requested scope is not supported",
        ));
    };

    let Some(user) = signed_in_user(&s, &headers).await? else {
        return Ok(to_login(&format!("{}?{raw}", routes::AUTHORIZE)));
    };
    let code = crypto::token("mog_ac_");
    s.db.create_code(
        &code,
        &CodeRow {
            user_id: user.id,
            client_id: CLIENT_ID.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            code_challenge: challenge,
            scope,
            expires_at: now() + s.cfg.code_ttl,
        },
    )
    .await?;
    Ok(back_to_client(
        redirect_uri,
        &s.cfg.issuer,
        &[("code", &code)],
        state,
    ))
}

/// A token response: `Cache-Control: no-store` (RFC 6749 §5.1).
fn token_response(access: String, refresh: String, scope: &str, expires_in: i64) -> Response {
    let mut r = Json(TokenResponse {
        access_token: access,
        token_type: "Bearer".to_owned(),
        expires_in: Some(expires_in),
        refresh_token: Some(refresh),
        scope: Some(scope.to_owned()),
        id_token: None,
    })
    .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// Parses a form POST body for an OAuth endpoint: the content type must be a form, and no
/// parameter may appear twice.
fn oauth_form(headers: &HeaderMap, body: &[u8]) -> Result<Form, AppError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    {
        return Err(AppError::oauth(
            error_code::INVALID_REQUEST,
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    Form::parse(body).map_err(|e| AppError::oauth(error_code::INVALID_REQUEST, e))
}

fn required<'a>(f: &'a Form, name: &str) -> Result<&'a str, AppError> {
    f.get(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AppError::oauth(error_code::INVALID_REQUEST, format!("{name} is required")))
}

struct NewTokens {
    access: String,
    refresh: String,
    access_expires: i64,
    refresh_expires: i64,
}

fn new_tokens(s: &AppState) -> NewTokens {
    let t = now();
    NewTokens {
        access: crypto::token("mog_at_"),
        refresh: crypto::token("mog_rt_"),
        access_expires: t + s.cfg.access_ttl,
        refresh_expires: t + s.cfg.refresh_idle_ttl,
    }
}

/// Starts a new sign-in (token family) for `grant` and answers with its first tokens.
async fn start_sign_in(s: &AppState, family_id: &str, grant: &Grant) -> Result<Response, AppError> {
    let t = new_tokens(s);
    s.db.start_family(
        family_id,
        grant,
        &t.access,
        t.access_expires,
        &t.refresh,
        t.refresh_expires,
    )
    .await?;
    Ok(token_response(
        t.access,
        t.refresh,
        &grant.scope,
        s.cfg.access_ttl,
    ))
}

pub async fn token(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let f = oauth_form(&headers, &body)?;
    let client_id = required(&f, "client_id")?;
    if client_id != CLIENT_ID {
        return Err(AppError::oauth(
            error_code::INVALID_CLIENT,
            "unknown client",
        ));
    }
    match required(&f, "grant_type")? {
        AUTHORIZATION_CODE_GRANT => {
            let code = required(&f, "code")?;
            let redirect_uri = required(&f, "redirect_uri")?;
            let verifier = required(&f, "code_verifier")?;
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
            if row.expires_at <= now()
                || row.client_id != client_id
                || row.redirect_uri != redirect_uri
            {
                return Err(invalid());
            }
            if !crypto::verify_pkce(verifier, &row.code_challenge) {
                return Err(AppError::oauth(
                    error_code::INVALID_GRANT,
                    "the code_verifier does not match the code_challenge",
                ));
            }
            let grant = Grant {
                user_id: row.user_id,
                client_id: row.client_id,
                scope: row.scope,
            };
            start_sign_in(&s, &family_id, &grant).await
        }
        REFRESH_TOKEN_GRANT => {
            let refresh = required(&f, "refresh_token")?;
            let t = new_tokens(&s);
            match s
                .db
                .rotate_refresh(
                    refresh,
                    client_id,
                    &t.access,
                    t.access_expires,
                    &t.refresh,
                    t.refresh_expires,
                )
                .await?
            {
                Refresh::Rotated { grant, .. } => {
                    if let Some(requested) = f.get("scope").filter(|v| !v.is_empty()) {
                        let granted: Vec<&str> = grant.scope.split(' ').collect();
                        if !requested
                            .split(' ')
                            .filter(|p| !p.is_empty())
                            .all(|p| granted.contains(&p))
                        {
                            return Err(AppError::oauth(
                                error_code::INVALID_SCOPE,
                                "a refresh cannot widen the scope",
                            ));
                        }
                    }
                    Ok(token_response(
                        t.access,
                        t.refresh,
                        &grant.scope,
                        s.cfg.access_ttl,
                    ))
                }
                Refresh::Reused => Err(AppError::oauth(
                    error_code::INVALID_GRANT,
                    "the refresh token was already used; every token of this sign-in has been revoked",
                )),
                Refresh::Invalid => Err(AppError::oauth(
                    error_code::INVALID_GRANT,
                    "the refresh token is invalid, expired or revoked",
                )),
            }
        }
        DEVICE_CODE_GRANT => {
            let device_code = required(&f, "device_code")?;
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
            match row.status.as_str() {
                "denied" => {
                    return Err(AppError::oauth(
                        error_code::ACCESS_DENIED,
                        "the sign-in was denied",
                    ));
                }
                "redeemed" => {
                    return Err(AppError::oauth(
                        error_code::INVALID_GRANT,
                        "the device code was already used",
                    ));
                }
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
            let (Some(user_id), "approved") = (row.user_id, row.status.as_str()) else {
                return Err(AppError::oauth(
                    error_code::INVALID_GRANT,
                    "the device code is not usable",
                ));
            };
            let family_id = crypto::id("fam_");
            if !s.db.redeem_device(device_code, &family_id).await? {
                return Err(AppError::oauth(
                    error_code::INVALID_GRANT,
                    "the device code was already used",
                ));
            }
            let grant = Grant {
                user_id,
                client_id: row.client_id,
                scope: row.scope,
            };
            start_sign_in(&s, &family_id, &grant).await
        }
        _ => Err(AppError::oauth(
            error_code::UNSUPPORTED_GRANT_TYPE,
            "grant_type must be authorization_code, refresh_token or the device code grant",
        )),
    }
}

/// RFC 7009: 200 whether or not the token was known.
pub async fn revoke(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let f = oauth_form(&headers, &body)?;
    if let Some(c) = f.get("client_id")
        && c != CLIENT_ID
    {
        return Err(AppError::oauth(
            error_code::INVALID_CLIENT,
            "unknown client",
        ));
    }
    let token = required(&f, "token")?;
    s.db.revoke_token(token).await?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// RFC 8628 §3.1–3.2.
pub async fn device_authorization(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let f = oauth_form(&headers, &body)?;
    if required(&f, "client_id")? != CLIENT_ID {
        return Err(AppError::oauth(
            error_code::INVALID_CLIENT,
            "unknown client",
        ));
    }
    let scope = check_scope(f.get("scope")).map_err(|_| {
        AppError::oauth(
            error_code::INVALID_SCOPE,
            "the requested scope is not supported",
        )
    })?;
    let device_code = crypto::token("mog_dc_");
    let expires_at = now() + s.cfg.device_ttl;
    // User codes are short; on the rare collision with a live one, draw again.
    let mut user_code = crypto::user_code();
    let mut tries = 0;
    while let Err(e) =
        s.db.create_device_code(
            &device_code,
            &user_code,
            CLIENT_ID,
            &scope,
            expires_at,
            s.cfg.device_interval,
        )
        .await
    {
        tries += 1;
        if tries >= 5 {
            return Err(e.into());
        }
        user_code = crypto::user_code();
    }
    let display = crypto::display_user_code(&user_code);
    let verification_uri = format!("{}{}", s.cfg.issuer, routes::DEVICE_PAGE);
    let mut r = Json(DeviceAuthorizationResponse {
        device_code,
        verification_uri_complete: Some(format!("{verification_uri}?user_code={display}")),
        user_code: display,
        verification_uri,
        expires_in: s.cfg.device_ttl.max(0) as u64,
        interval: Some(s.cfg.device_interval.max(0) as u64),
    })
    .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_matching() {
        assert!(redirect_allowed("http://127.0.0.1:24816/auth/callback"));
        assert!(redirect_allowed("http://127.0.0.1:51234/auth/callback"));
        assert!(redirect_allowed("http://[::1]:51234/auth/callback"));
        for bad in [
            "http://127.0.0.1/auth/callback",
            "https://127.0.0.1:5/auth/callback",
            "http://localhost:5/auth/callback",
            "http://example.com:5/auth/callback",
            "http://127.0.0.1:5/auth/callback?x=1",
            "http://127.0.0.1:5/auth/callback#f",
            "http://127.0.0.1:5/auth/./callback",
            "http://127.0.0.1:5/other",
            "http://u@127.0.0.1:5/auth/callback",
            "http://127.0.0.1:5/auth/callback/",
        ] {
            assert!(!redirect_allowed(bad), "{bad}");
        }
    }
}
