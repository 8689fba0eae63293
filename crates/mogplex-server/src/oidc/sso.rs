//! Single sign-on: the server as an OpenID Connect relying party of a company's identity
//! provider (`mogplex-server idp add`). The sign-in page offers "Continue with <name>"; that
//! starts a code + PKCE + nonce authorization at the provider, bound to this browser by a
//! cookie; the callback exchanges the code (client_secret_basic, the secret read from the
//! server's environment), validates the ID token (signature against the provider's JWKS, `iss`,
//! `aud`, `exp`, `nonce`), and signs the browser in to the account linked to that identity, or
//! to the account with that verified email (linking it), or to a new account when the provider
//! allows creating them for the email's domain. Any failure is a page saying what went wrong;
//! no account is touched.

use crate::crypto::{self, now};
use crate::db::idp::{IdpRow, SsoState};
use crate::error::AppError;
use crate::web::{safe_next, start_session};
use crate::{AppState, pages};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine;
use mogplex_protocol::{JwkSet, OpenIdProviderMetadata};
use serde_json::Value;

/// Where providers send the browser back (register `{public URL}/sso/callback` there).
pub const CALLBACK: &str = "/sso/callback";
const START: &str = "/sso/{id}";
const STATE_TTL: i64 = 600;
const BINDING_COOKIE: &str = "mogplex_sso";

fn failure(message: impl Into<String>) -> AppError {
    AppError::page(StatusCode::BAD_REQUEST, "Single sign-on failed", message)
}

/// The "Continue with …" links for the sign-in page (already escaped HTML).
pub async fn buttons(s: &AppState, next: &str) -> String {
    let Ok(idps) = s.db.idps().await else {
        return String::new();
    };
    idps.iter()
        .map(|i| {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish();
            format!(
                "<p><a class=\"sso\" id=\"sso-{id}\" href=\"/sso/{id}?{q}\">Continue with {name}</a></p>",
                id = pages::esc(&i.id),
                q = pages::esc(&q),
                name = pages::esc(&i.name)
            )
        })
        .collect()
}

#[derive(Debug, serde::Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

async fn discover(s: &AppState, idp: &IdpRow) -> Result<OpenIdProviderMetadata, AppError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        idp.issuer.trim_end_matches('/')
    );
    let unreachable = |e: String| {
        failure(format!(
            "{} could not be reached ({e}). Try again later, or sign in with your password.",
            idp.name
        ))
    };
    let r = s
        .http
        .get(&url)
        .send()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if !r.status().is_success() {
        return Err(unreachable(format!(
            "its discovery document answered {}",
            r.status()
        )));
    }
    let m: OpenIdProviderMetadata = r.json().await.map_err(|e| unreachable(e.to_string()))?;
    if m.issuer != idp.issuer {
        return Err(failure(format!(
            "{} answered for another issuer ({})",
            idp.name, m.issuer
        )));
    }
    Ok(m)
}

/// Starts the sign-in at the provider.
pub async fn start(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StartQuery>,
) -> Result<Response, AppError> {
    let Some(idp) = s.db.idp(&id).await? else {
        return Err(AppError::page(
            StatusCode::NOT_FOUND,
            "Unknown sign-in option",
            "This server has no such identity provider.",
        ));
    };
    let meta = discover(&s, &idp).await?;
    let state = crypto::token("");
    let binding = crypto::token("");
    let nonce = crypto::token("");
    let verifier = crypto::b64url(&crypto::random_bytes::<48>());
    let next = safe_next(q.next.as_deref());
    s.db.save_sso_state(
        &state,
        &SsoState {
            idp_id: idp.id.clone(),
            binding_hash: crypto::hash(&binding),
            nonce: nonce.clone(),
            verifier: verifier.clone(),
            next,
            expires_at: now() + STATE_TTL,
        },
    )
    .await?;
    let mut u = url::Url::parse(&meta.authorization_endpoint).map_err(|_| {
        failure(format!(
            "{} published an invalid authorization endpoint",
            idp.name
        ))
    })?;
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &idp.client_id)
        .append_pair("redirect_uri", &format!("{}{CALLBACK}", s.cfg.issuer))
        .append_pair("scope", "openid email profile")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &crypto::pkce_s256(&verifier))
        .append_pair("code_challenge_method", "S256");
    let mut r = Redirect::to(u.as_str()).into_response();
    // Lax: the provider's redirect back is a top-level navigation from another site.
    let secure = if s.cfg.secure_cookies { "; Secure" } else { "" };
    let c = format!(
        "{BINDING_COOKIE}={binding}; Path={CALLBACK}; HttpOnly; SameSite=Lax; Max-Age={STATE_TTL}{secure}"
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

#[derive(Debug, serde::Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn binding_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == BINDING_COOKIE)
        .map(|(_, v)| v.to_owned())
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}

/// Verifies a compact JWS against `keys` (RS256 or ES256) and returns its claims.
fn verify_jwt(jwt: &str, keys: &JwkSet) -> Option<Value> {
    use aws_lc_rs::signature;
    let (input, sig) = jwt.rsplit_once('.')?;
    let (h, c) = input.split_once('.')?;
    let header: Value = serde_json::from_slice(&b64(h)?).ok()?;
    let sig = b64(sig)?;
    let alg = header["alg"].as_str()?;
    let kid = header["kid"].as_str();
    let ok = keys
        .keys
        .iter()
        .filter(|k| kid.is_none_or(|kid| k.kid == kid))
        .any(|k| match (alg, k.kty.as_str()) {
            ("RS256", "RSA") => (|| {
                let n = b64(k.n.as_deref()?)?;
                let e = b64(k.e.as_deref()?)?;
                signature::RsaPublicKeyComponents { n: &n, e: &e }
                    .verify(
                        &signature::RSA_PKCS1_2048_8192_SHA256,
                        input.as_bytes(),
                        &sig,
                    )
                    .ok()
            })()
            .is_some(),
            ("ES256", "EC") => (|| {
                let mut point = vec![4u8];
                point.extend(b64(k.x.as_deref()?)?);
                point.extend(b64(k.y.as_deref()?)?);
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(input.as_bytes(), &sig)
                    .ok()
            })()
            .is_some(),
            _ => false,
        });
    if !ok {
        return None;
    }
    serde_json::from_slice(&b64(c)?).ok()
}

/// The provider's answer: exchange, validate, link or create, sign in.
pub async fn callback(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, AppError> {
    let Some(state) = q.state.filter(|v| !v.is_empty() && v.len() < 256) else {
        return Err(failure(
            "The identity provider's answer has no state. Start again from the sign-in page.",
        ));
    };
    let Some(flight) = s.db.take_sso_state(&state).await? else {
        return Err(failure(
            "This sign-in is unknown, expired or already used. Start again from the sign-in page.",
        ));
    };
    let bound = binding_cookie(&headers)
        .is_some_and(|b| crypto::ct_eq(&crypto::hash(&b), &flight.binding_hash));
    if !bound || flight.expires_at <= now() {
        return Err(failure(
            "This sign-in was not started in this browser, or has expired. Start again from the sign-in page.",
        ));
    }
    let Some(idp) = s.db.idp(&flight.idp_id).await? else {
        return Err(failure("This identity provider was removed."));
    };
    if let Some(e) = q.error {
        let detail = q
            .error_description
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        return Err(failure(format!(
            "{} refused the sign-in ({e}{detail}).",
            idp.name
        )));
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return Err(failure(format!("{} sent no authorization code.", idp.name)));
    };
    let Some(secret) = s.cfg.var(&idp.secret_env) else {
        tracing::error!(
            "identity provider {}: {} is not set",
            idp.id,
            idp.secret_env
        );
        return Err(AppError::page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Single sign-on unavailable",
            format!(
                "Sign-in with {} is not configured completely on this server. Tell its administrator.",
                idp.name
            ),
        ));
    };
    let meta = discover(&s, &idp).await?;
    let token: Value = s
        .http
        .post(&meta.token_endpoint)
        .basic_auth(
            url::form_urlencoded::byte_serialize(idp.client_id.as_bytes()).collect::<String>(),
            Some(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()),
        )
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", &format!("{}{CALLBACK}", s.cfg.issuer)),
            ("code_verifier", flight.verifier.as_str()),
        ])
        .send()
        .await
        .map_err(|e| failure(format!("{} could not be reached ({e}).", idp.name)))?
        .json()
        .await
        .map_err(|e| {
            failure(format!(
                "{} answered the code exchange unreadably ({e}).",
                idp.name
            ))
        })?;
    if let Some(e) = token["error"].as_str() {
        return Err(failure(format!(
            "{} refused the code exchange ({e}).",
            idp.name
        )));
    }
    let (Some(id_token), access) = (token["id_token"].as_str(), token["access_token"].as_str())
    else {
        return Err(failure(format!("{} sent no ID token.", idp.name)));
    };
    let jwks_uri = meta.jwks_uri.clone().unwrap_or_default();
    let keys: JwkSet = s
        .http
        .get(&jwks_uri)
        .send()
        .await
        .map_err(|e| failure(format!("{}'s keys could not be fetched ({e}).", idp.name)))?
        .json()
        .await
        .map_err(|e| failure(format!("{}'s keys are unreadable ({e}).", idp.name)))?;
    let invalid = || {
        failure(format!(
            "{} sent an ID token that is not valid for this server.",
            idp.name
        ))
    };
    let claims = verify_jwt(id_token, &keys).ok_or_else(invalid)?;
    let aud_ok = match &claims["aud"] {
        Value::String(a) => *a == idp.client_id,
        Value::Array(a) => a.iter().any(|v| v == idp.client_id.as_str()),
        _ => false,
    };
    let t = now();
    if claims["iss"] != idp.issuer.as_str()
        || !aud_ok
        || claims["exp"].as_i64().is_none_or(|e| e + 60 <= t)
        || claims["nonce"] != flight.nonce.as_str()
    {
        return Err(invalid());
    }
    let subject = claims["sub"]
        .as_str()
        .filter(|v| !v.is_empty())
        .ok_or_else(invalid)?
        .to_owned();
    // Providers may keep email claims for userinfo.
    let mut profile = claims.clone();
    if profile["email"].as_str().is_none()
        && let (Some(access), Some(ui)) = (access, meta.userinfo_endpoint.as_deref())
        && let Ok(r) = s.http.get(ui).bearer_auth(access).send().await
        && let Ok(v) = r.json::<Value>().await
        && v["sub"] == subject.as_str()
    {
        profile = v;
    }
    let user_id = account_for(&s, &idp, &subject, &profile).await?;
    start_session(&s, &user_id, &flight.next).await
}

/// The account the identity signs in to, per the provider's rules.
async fn account_for(
    s: &AppState,
    idp: &IdpRow,
    subject: &str,
    profile: &Value,
) -> Result<String, AppError> {
    if let Some(uid) = s.db.sso_user(&idp.id, subject).await? {
        return Ok(uid);
    }
    let email = profile["email"]
        .as_str()
        .map(|e| e.trim().to_lowercase())
        .filter(|e| e.contains('@'));
    let Some(email) = email else {
        return Err(failure(format!(
            "{} did not say your email address, so this server cannot find your account.",
            idp.name
        )));
    };
    if profile["email_verified"] != true {
        return Err(failure(format!(
            "{} has not verified the email address {email}, so this server cannot use it to find your account.",
            idp.name
        )));
    }
    let domain = email.rsplit('@').next().unwrap_or_default();
    if !idp.allowed_domains.is_empty() && !idp.allowed_domains.iter().any(|d| d == domain) {
        return Err(failure(format!(
            "Accounts of {domain} cannot sign in with {} here. Ask this server's administrator.",
            idp.name
        )));
    }
    let uid = match s.db.user_by_email(&email).await? {
        Some((u, _)) => u.id,
        None if idp.create_accounts && !idp.allowed_domains.is_empty() => {
            // An account without a usable password: it signs in through the provider.
            let unusable = crate::password::hash(crypto::token(""))
                .await
                .map_err(AppError::Internal)?;
            let name = profile["name"].as_str().unwrap_or_default();
            s.db.create_user(&email, name, &unusable).await?.id
        }
        None => {
            return Err(failure(format!(
                "There is no account for {email} on this server. Ask its administrator to create one."
            )));
        }
    };
    s.db.set_email_verified(&uid, true).await?;
    s.db.link_sso(&idp.id, subject, &uid).await?;
    Ok(uid)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(START, get(start))
        .route(CALLBACK, get(callback))
}
