//! The OpenID provider (SPEC section 7): the OpenID Connect discovery document beside the RFC
//! 8414 one, the JWK set, signed ID tokens and the userinfo endpoint. [`keys`] keeps the signing
//! keys. The authorization and token endpoints call in here ([`check_request`],
//! [`save_context`], [`bind_code`], [`id_token`]) so the OAuth code stays about OAuth.
//!
//! OpenID Connect is on when `MOGPLEX_SECRETS_KEY` is set (the private keys are sealed under it):
//! without it the discovery document answers a JSON 404 saying so, and tokens carry no ID token.

pub mod clients;
pub mod consent;
pub mod keys;
pub mod register;
pub mod sso;

use crate::AppState;
use crate::api::{Bearer, bearer};
use crate::db::Grant;
use crate::db::oidc::AuthContext;
use crate::error::{AppError, www_authenticate};
use crate::secrets::SecretBox;
use crate::web::Form;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mogplex_protocol::oauth::{
    ID_TOKEN_SIGNING_ALG, IdTokenClaims, IntrospectionResponse, OpenIdProviderMetadata,
    SUPPORTED_CLAIMS, UserInfo, bearer_error, error_code,
};
use mogplex_protocol::{OAuthErrorBody, routes};

/// The longest `nonce` accepted in an authorization request.
pub const MAX_NONCE: usize = 512;

fn strings(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| (*s).to_owned()).collect())
}

/// The OpenID Connect discovery document: the RFC 8414 one plus the OpenID members.
pub fn discovery_document(issuer: &str) -> OpenIdProviderMetadata {
    let at = |path: &str| format!("{issuer}{path}");
    OpenIdProviderMetadata {
        jwks_uri: Some(at(routes::JWKS)),
        userinfo_endpoint: Some(at(routes::USERINFO)),
        id_token_signing_alg_values_supported: strings(&[ID_TOKEN_SIGNING_ALG]),
        subject_types_supported: strings(&["public"]),
        claims_supported: strings(SUPPORTED_CLAIMS),
        ..crate::oauth::metadata_document(issuer)
    }
}

/// Whether this server issues ID tokens (it has the key that seals its signing keys).
pub fn enabled(s: &AppState) -> bool {
    sealer(s).is_some()
}

/// The sealer of the signing keys, when OpenID Connect is on.
fn sealer(s: &AppState) -> Option<SecretBox> {
    SecretBox::from_config(&s.cfg).ok()
}

fn json_error(status: StatusCode, code: &'static str, description: &str) -> Response {
    let mut r = (status, Json(OAuthErrorBody::new(code, description))).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub async fn discovery(State(s): State<AppState>) -> Response {
    if sealer(&s).is_none() {
        return json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "OpenID Connect is not enabled on this server: its administrator sets MOGPLEX_SECRETS_KEY to turn it on",
        );
    }
    Json(discovery_document(&s.cfg.issuer)).into_response()
}

pub async fn jwks(State(s): State<AppState>) -> Result<Response, AppError> {
    let set = s
        .keys
        .jwks(&s.db, s.cfg.key_cache_secs, s.cfg.id_token_ttl)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let mut r = Json(set).into_response();
    // Caches may keep it a little, never past the key cache time (a rotation's lead is longer).
    let v = format!("public, max-age={}", s.cfg.key_cache_secs.clamp(0, 60));
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    Ok(r)
}

/// RFC 6750 §3: a bearer error with its `WWW-Authenticate` challenge.
fn bearer_failure(status: StatusCode, code: &'static str, description: &str) -> Response {
    let mut r = json_error(status, code, description);
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, www_authenticate(Some(code)));
    r
}

/// OpenID Connect Core §5.3: the claims of the token's account, per its scope. The token must
/// carry `openid`.
pub async fn userinfo(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let p = match bearer(&s, &headers).await? {
        Bearer::Valid(p) => p,
        Bearer::None => {
            let mut r = json_error(
                StatusCode::UNAUTHORIZED,
                bearer_error::INVALID_TOKEN,
                "send an access token as a bearer",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, www_authenticate(None));
            return Ok(r);
        }
        Bearer::Invalid => {
            return Ok(bearer_failure(
                StatusCode::UNAUTHORIZED,
                bearer_error::INVALID_TOKEN,
                "the access token is invalid, expired or revoked",
            ));
        }
    };
    let scopes: Vec<&str> = p.scope.split(' ').collect();
    if !scopes.contains(&"openid") {
        return Ok(bearer_failure(
            StatusCode::FORBIDDEN,
            bearer_error::INSUFFICIENT_SCOPE,
            "the access token's scope does not include openid",
        ));
    }
    let Some(info) = profile(&s, &p.user_id, &p.scope).await? else {
        return Ok(bearer_failure(
            StatusCode::UNAUTHORIZED,
            bearer_error::INVALID_TOKEN,
            "the token's account no longer exists",
        ));
    };
    let mut r = Json(info).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// The account's claims allowed by `scope`.
async fn profile(s: &AppState, user_id: &str, scope: &str) -> Result<Option<UserInfo>, AppError> {
    Ok(s.db.user_claims(user_id).await?.map(|c| allowed(c, scope)))
}

/// Of the account's claims, those `scope` allows.
fn allowed(c: crate::db::oidc::Claims, scope: &str) -> UserInfo {
    let has = |n: &str| scope.split(' ').any(|p| p == n);
    UserInfo {
        sub: c.id,
        email: has("email").then(|| c.email.clone()),
        email_verified: has("email").then_some(c.email_verified),
        name: has("profile").then(|| c.name.clone()),
    }
}

/// The OpenID parameters of an authorization request: the `nonce` (bounded), and `prompt` and
/// `max_age`, of which this server supports `prompt=consent` only. `Err` is the error to send
/// back to the client. Returns the nonce and whether consent was asked for.
pub fn check_request(q: &Form) -> Result<(Option<String>, bool), (&'static str, String)> {
    let nonce = q.get("nonce").filter(|n| !n.is_empty());
    if nonce.is_some_and(|n| n.len() > MAX_NONCE) {
        return Err((
            error_code::INVALID_REQUEST,
            format!("nonce is over {MAX_NONCE} characters"),
        ));
    }
    if q.get("max_age").is_some() {
        return Err((
            error_code::INVALID_REQUEST,
            "max_age is not supported by this server".into(),
        ));
    }
    let mut consent = false;
    for p in q
        .get("prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|p| !p.is_empty())
    {
        if p == "consent" {
            consent = true;
        } else {
            return Err((
                error_code::INVALID_REQUEST,
                format!("prompt={p} is not supported by this server (only prompt=consent)"),
            ));
        }
    }
    Ok((nonce.map(str::to_owned), consent))
}

/// Keeps what the ID token of `code` will need: the nonce and when this browser signed in.
pub async fn save_context(
    s: &AppState,
    headers: &HeaderMap,
    code: &str,
    scope: &str,
    nonce: Option<String>,
    expires_at: i64,
) -> Result<(), AppError> {
    if !scope.split(' ').any(|p| p == "openid") {
        return Ok(());
    }
    let auth_time = match crate::web::session_token(s, headers) {
        Some(t) => s.db.web_session_started(&t).await?,
        None => None,
    };
    s.db.save_auth_context(code, &AuthContext { nonce, auth_time }, expires_at)
        .await?;
    Ok(())
}

/// Binds a redeemed code's context to its new token family.
pub async fn bind_code(
    s: &AppState,
    code: &str,
    family_id: &str,
) -> Result<Option<AuthContext>, AppError> {
    Ok(s.db.bind_auth_context(code, family_id).await?)
}

/// The ID token of a token response, when the grant has `openid` and OpenID Connect is on.
/// `ctx` is the authorization request's context (code grant); refreshes and device grants pass
/// `None` and get the family's `auth_time` and no nonce.
pub async fn id_token(
    s: &AppState,
    family_id: &str,
    grant: &Grant,
    ctx: Option<AuthContext>,
) -> Result<Option<String>, AppError> {
    if !grant.scope.split(' ').any(|p| p == "openid") {
        return Ok(None);
    }
    let Some(sealer) = sealer(s) else {
        return Ok(None);
    };
    // A refresh reads the account and when it signed in with one query.
    let (ctx, claims) = match ctx {
        Some(c) => (c, s.db.user_claims(&grant.user_id).await?),
        None => match s.db.claims_and_auth_time(&grant.user_id, family_id).await? {
            Some((claims, auth_time)) => (
                AuthContext {
                    nonce: None,
                    auth_time,
                },
                Some(claims),
            ),
            None => return Ok(None),
        },
    };
    sign_id_token(s, &sealer, grant, ctx, claims).await
}

/// The ID token of a refresh whose rotation read the account's `claims` and the sign-in's
/// `auth_time` already (`db::rotation`): no query.
pub async fn refreshed_id_token(
    s: &AppState,
    grant: &Grant,
    claims: crate::db::oidc::Claims,
    auth_time: Option<i64>,
) -> Result<Option<String>, AppError> {
    if !grant.scope.split(' ').any(|p| p == "openid") {
        return Ok(None);
    }
    let Some(sealer) = sealer(s) else {
        return Ok(None);
    };
    let ctx = AuthContext {
        nonce: None,
        auth_time,
    };
    sign_id_token(s, &sealer, grant, ctx, Some(claims)).await
}

async fn sign_id_token(
    s: &AppState,
    sealer: &SecretBox,
    grant: &Grant,
    ctx: AuthContext,
    claims: Option<crate::db::oidc::Claims>,
) -> Result<Option<String>, AppError> {
    let Some(profile) = claims.map(|c| allowed(c, &grant.scope)) else {
        return Ok(None);
    };
    let signer = s
        .keys
        .signer(&s.db, sealer, s.cfg.key_cache_secs)
        .await
        .map_err(|e| AppError::Internal(format!("ID token signing key: {e}")))?;
    let t = crate::crypto::now();
    let claims = IdTokenClaims {
        iss: s.cfg.issuer.clone(),
        sub: grant.user_id.clone(),
        aud: grant.client_id.clone(),
        exp: t + s.cfg.id_token_ttl,
        iat: t,
        auth_time: ctx.auth_time,
        nonce: ctx.nonce,
        profile: UserInfo {
            sub: String::new(),
            ..profile
        },
    };
    signer
        .sign(&claims)
        .map(Some)
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// Whether `client` (authenticated, or `None` for a request naming no client) may revoke
/// `token`: a confidential client's tokens only by that client; a public client's by anyone
/// holding them (naming no client, or naming that one).
pub async fn may_act_on(
    s: &AppState,
    client: Option<&clients::Client>,
    token: &str,
) -> Result<bool, AppError> {
    if token.len() > 512 {
        return Ok(false);
    }
    let Some(owner) = s.db.token_client(token).await? else {
        return Ok(true);
    };
    let owner_confidential = clients::find(s, &owner)
        .await?
        .is_some_and(|c| c.is_confidential());
    Ok(match client {
        Some(c) => c.id == owner,
        None => !owner_confidential,
    })
}

/// RFC 7662: a confidential client asks about one of its own tokens. Anything else it asks
/// about (unknown, expired, revoked, another client's) is `{"active": false}`.
pub async fn introspect(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let f = crate::oauth::oauth_form(&headers, &body)?;
    let client = clients::require(&s, &headers, &f).await?;
    if !client.is_confidential() {
        return Err(AppError::oauth(
            error_code::INVALID_CLIENT,
            "introspection is for confidential clients: authenticate with the client's secret",
        ));
    }
    let token = crate::oauth::required(&f, "token")?;
    let mut answer = IntrospectionResponse::default();
    if token.len() <= 512 {
        let found = match s.db.access_token_info(token).await? {
            Some(info) => Some((info, Some("Bearer"))),
            None => s.db.refresh_token_info(token).await?.map(|i| (i, None)),
        };
        if let Some(((client_id, user_id, scope, exp, resource), token_type)) = found
            && client_id == client.id
        {
            let username = s.db.user_claims(&user_id).await?.map(|c| c.email);
            answer = IntrospectionResponse {
                active: true,
                scope: Some(scope),
                client_id: Some(client_id.clone()),
                username,
                token_type: token_type.map(str::to_owned),
                exp: Some(exp),
                iat: None,
                sub: Some(user_id),
                // The audience: the resource a bound sign-in's tokens are for, else the client.
                aud: Some(resource.unwrap_or(client_id)),
                iss: Some(s.cfg.issuer.clone()),
            };
        }
    }
    let mut r = Json(answer).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// The OpenID provider's endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(routes::OPENID_CONFIGURATION, get(discovery))
        .route(routes::JWKS, get(jwks))
        .route(routes::USERINFO, get(userinfo).post(userinfo))
        .route(routes::INTROSPECT, axum::routing::post(introspect))
        .route(routes::REGISTER, axum::routing::post(register::register))
        .merge(sso::routes())
}
