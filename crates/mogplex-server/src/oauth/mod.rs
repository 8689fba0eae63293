//! The OAuth 2.1 authorization server for `mogplex-cli` and registered clients (SPEC sections 4, 7):
//! RFC 8414 metadata, authorization code with PKCE S256 only, refresh rotation with reuse
//! detection, RFC 7009 revocation and the RFC 8628 device grant. The token endpoint, one function
//! per grant, is in [`token`].

use crate::AppState;
pub(crate) mod observe;
pub mod resource;
mod token;
pub use token::token;

use crate::crypto::{self, now};
use crate::db::CodeRow;
use crate::error::AppError;
use crate::web::{Form, signed_in_user, to_login};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mogplex_protocol::oauth::{
    AUTHORIZATION_CODE_GRANT, CALLBACK_PATH, DEVICE_CODE_GRANT, LOOPBACK_PORTS, MCP_SCOPES,
    PKCE_METHOD, REFRESH_TOKEN_GRANT, SUPPORTED_SCOPES, error_code, loopback_redirect_uri,
};
use mogplex_protocol::{AuthorizationServerMetadata, DeviceAuthorizationResponse, routes};

fn strings(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| (*s).to_owned()).collect())
}

/// Client authentication: public clients (`none`) and confidential ones; introspection takes
/// the confidential ones only.
const AUTH_METHODS: &[&str] = &[
    mogplex_protocol::oauth::auth_method::NONE,
    mogplex_protocol::oauth::auth_method::CLIENT_SECRET_BASIC,
    mogplex_protocol::oauth::auth_method::CLIENT_SECRET_POST,
];

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
        token_endpoint_auth_methods_supported: strings(AUTH_METHODS),
        revocation_endpoint_auth_methods_supported: strings(AUTH_METHODS),
        introspection_endpoint: Some(at(routes::INTROSPECT)),
        introspection_endpoint_auth_methods_supported: strings(&AUTH_METHODS[1..]),
        registration_endpoint: Some(at(routes::REGISTER)),
        // The account's scopes, and those of the MCP resources (granted only with `resource`).
        scopes_supported: strings(&[SUPPORTED_SCOPES, MCP_SCOPES].concat()),
        authorization_response_iss_parameter_supported: true,
        ..Default::default()
    }
}

/// With OpenID Connect on, the RFC 8414 document carries the OpenID members too (RFC 8414 §2
/// defines `jwks_uri` and `userinfo_endpoint`), so a client that reads either document can check
/// the ID tokens this server issues.
pub async fn metadata(State(s): State<AppState>) -> Json<AuthorizationServerMetadata> {
    if crate::oidc::enabled(&s) {
        Json(crate::oidc::discovery_document(&s.cfg.issuer))
    } else {
        Json(metadata_document(&s.cfg.issuer))
    }
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
    authorize_request(&s, &headers, &query.unwrap_or_default(), None).await
}

/// The authorization request `raw` (a query string). `consent` is the user's answer on the
/// consent page (`None` for the GET, which shows that page when it is needed).
pub(crate) async fn authorize_request(
    s: &AppState,
    headers: &HeaderMap,
    raw: &str,
    consent: Option<bool>,
) -> Result<Response, AppError> {
    let q = Form::parse(raw.as_bytes()).map_err(|e| {
        AppError::page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in link",
            format!("This sign-in link is malformed: {e}."),
        )
    })?;
    // Errors before the client and its redirect are known are shown here, never redirected.
    let Some(client) =
        crate::oidc::clients::find(s, q.get("client_id").unwrap_or_default()).await?
    else {
        return Err(AppError::page(
            StatusCode::BAD_REQUEST,
            "Unknown application",
            "This sign-in link names an application this server does not know.",
        ));
    };
    let redirect_uri = q.get("redirect_uri").unwrap_or_default();
    if !client.redirect_allowed(redirect_uri) {
        return Err(AppError::page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in link",
            format!(
                "The address this sign-in would return to is not registered for {}.",
                client.name
            ),
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
    if !client.allows_grant(AUTHORIZATION_CODE_GRANT) {
        return Ok(fail(
            error_code::UNAUTHORIZED_CLIENT,
            "this client is not registered for the authorization_code grant",
        ));
    }
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
    let target = match resource::check(&s.cfg, q.get("resource")) {
        Ok(r) => r,
        Err(desc) => return Ok(fail(error_code::INVALID_TARGET, &desc)),
    };
    let Ok(scope) = resource::check_scope(q.get("scope"), target.as_deref()) else {
        return Ok(fail(
            error_code::INVALID_SCOPE,
            "the requested scope is not supported (the MCP scopes only with a resource)",
        ));
    };

    let (nonce, ask_consent) = match crate::oidc::check_request(&q) {
        Ok(v) => v,
        Err((code, desc)) => return Ok(fail(code, &desc)),
    };

    let Some(user) = signed_in_user(s, headers).await? else {
        return Ok(to_login(&format!("{}?{raw}", routes::AUTHORIZE)));
    };
    use crate::oidc::consent;
    match consent {
        Some(false) => {
            return Ok(fail(
                error_code::ACCESS_DENIED,
                "the user denied the request",
            ));
        }
        Some(true) if target.is_none() => {
            consent::remember(s, &user, &client, redirect_uri, &scope).await?
        }
        Some(true) => {}
        None => {
            // A grant for a resource is always asked about (it is never remembered).
            let ask = ask_consent || target.is_some();
            if consent::needed(s, &user, &client, redirect_uri, &scope, ask).await? {
                return Ok(consent::page(
                    s,
                    headers,
                    &user,
                    &client,
                    (&scope, target.as_deref()),
                    redirect_uri,
                    raw,
                ));
            }
        }
    }
    let code = crypto::token("mog_ac_");
    let expires_at = now() + s.cfg.code_ttl;
    crate::oidc::save_context(s, headers, &code, &scope, nonce, expires_at).await?;
    s.db.create_code(
        &code,
        &CodeRow {
            user_id: user.id,
            client_id: client.id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            code_challenge: challenge,
            scope,
            expires_at,
            resource: target,
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

/// Parses a form POST body for an OAuth endpoint: the content type must be a form, and no
/// parameter may appear twice.
pub(crate) fn oauth_form(headers: &HeaderMap, body: &[u8]) -> Result<Form, AppError> {
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

pub(crate) fn required<'a>(f: &'a Form, name: &str) -> Result<&'a str, AppError> {
    f.get(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AppError::oauth(error_code::INVALID_REQUEST, format!("{name} is required")))
}

/// RFC 7009: 200 whether or not the token was known.
pub async fn revoke(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let f = oauth_form(&headers, &body)?;
    let client = crate::oidc::clients::authenticate(&s, &headers, &f).await?;
    let token = required(&f, "token")?;
    observe::revoking(&s, token, &addr).await;
    // A token of a confidential client is revoked only by that client, authenticated; others'
    // tokens are left alone, answered alike (RFC 7009 §2.1, §2.2).
    if crate::oidc::may_act_on(&s, client.as_ref(), token).await? {
        s.db.revoke_token(token).await?;
    }
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
    let client = crate::oidc::clients::require(&s, &headers, &f).await?;
    crate::oidc::clients::check_grant(&client, DEVICE_CODE_GRANT)?;
    let target = resource::check(&s.cfg, f.get("resource"))
        .map_err(|d| AppError::oauth(error_code::INVALID_TARGET, d))?;
    let scope = resource::check_scope(f.get("scope"), target.as_deref()).map_err(|_| {
        AppError::oauth(
            error_code::INVALID_SCOPE,
            "the requested scope is not supported (the MCP scopes only with a resource)",
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
            (&client.id, &scope, target.as_deref()),
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

/// The authorization server's endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(routes::AUTHORIZATION_SERVER_METADATA, get(metadata))
        .route(routes::AUTHORIZE, get(authorize))
        .route(routes::CONSENT, post(crate::oidc::consent::submit))
        .route(routes::TOKEN, post(token))
        .route(routes::REVOKE, post(revoke))
        .route(routes::DEVICE_AUTHORIZATION, post(device_authorization))
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
