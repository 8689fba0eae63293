//! RFC 7591 dynamic client registration at `/api/auth/mcp/register`, for MCP clients that know
//! no client id for this server: a JSON document of client metadata in, `201` with the new
//! `client_id` (and, for a confidential client, its secret, shown this once) out.
//!
//! Bounded: the body (64 KiB), at most 20 redirect URIs of 2000 characters, a 100-character
//! name, [`PER_ADDRESS`] registrations an hour from one address, and [`MAX_DYNAMIC_CLIENTS`] in
//! all. Redirect URIs are https, or http to a loopback address (127.0.0.1, [::1], localhost:
//! any port at authorization time for a public client, RFC 8252 §7.3), without fragment or
//! wildcard; grants are `authorization_code` and `refresh_token` only (no device grant for a
//! client nobody vouched for). Bad metadata is `400` with `invalid_redirect_uri` or
//! `invalid_client_metadata` (RFC 7591 §3.2.2). Every registration is audited
//! (`client.register`), and `client list` shows these clients as dynamic.

use super::clients::{INVALID_CLIENT_METADATA, check_registration};
use crate::crypto::{self, now};
use crate::db::clients::ClientRow;
use crate::error::AppError;
use crate::{AppState, audit};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mogplex_protocol::OAuthErrorBody;
use mogplex_protocol::oauth::{AUTHORIZATION_CODE_GRANT, REFRESH_TOKEN_GRANT, auth_method};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;

/// Registrations one address may make in [`WINDOW`] seconds.
pub const PER_ADDRESS: i64 = 30;
pub const WINDOW: i64 = 3600;
/// Dynamically registered clients this server keeps at most.
pub const MAX_DYNAMIC_CLIENTS: i64 = 10_000;
/// The longest `client_name`.
pub const MAX_NAME: usize = 100;
/// The name of a client that gives none.
const UNNAMED: &str = "an MCP client";

fn refuse(status: StatusCode, code: &str, description: impl Into<String>) -> Response {
    let mut r = (status, Json(OAuthErrorBody::new(code, description))).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn bad_metadata(description: impl Into<String>) -> Response {
    refuse(
        StatusCode::BAD_REQUEST,
        INVALID_CLIENT_METADATA,
        description,
    )
}

/// Refused metadata: the RFC 7591 error code and its description.
type Bad = (&'static str, String);

fn bad(description: impl Into<String>) -> Bad {
    (INVALID_CLIENT_METADATA, description.into())
}

/// A metadata member that must be a list of strings; `Ok(None)` when absent.
fn strings(m: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, Bad> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| bad(format!("{name} must be an array of strings"))),
        Some(_) => Err(bad(format!("{name} must be an array of strings"))),
    }
}

/// A metadata member that must be a string; `Ok(None)` when absent.
fn string<'a>(m: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Bad> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!("{name} must be a string"))),
    }
}

/// The client the metadata describes, checked, with its secret if it is confidential.
fn client_from(m: &Map<String, Value>) -> Result<(ClientRow, Option<String>), Bad> {
    let redirect_uris = strings(m, "redirect_uris")?.unwrap_or_default();
    let grant_types =
        strings(m, "grant_types")?.unwrap_or_else(|| vec![AUTHORIZATION_CODE_GRANT.to_owned()]);
    if let Some(g) = grant_types
        .iter()
        .find(|g| ![AUTHORIZATION_CODE_GRANT, REFRESH_TOKEN_GRANT].contains(&g.as_str()))
    {
        return Err(bad(format!(
            "grant type {g:?} cannot be registered here (only authorization_code and refresh_token)"
        )));
    }
    if let Some(types) = strings(m, "response_types")?
        && types.iter().any(|t| t != "code")
    {
        return Err(bad("response_types may only contain code"));
    }
    // RFC 7591 §2: client_secret_basic unless the client says otherwise.
    let method = string(m, "token_endpoint_auth_method")?
        .unwrap_or(auth_method::CLIENT_SECRET_BASIC)
        .to_owned();
    let mut grant_types_unique: Vec<String> = Vec::new();
    for g in grant_types {
        if !grant_types_unique.contains(&g) {
            grant_types_unique.push(g);
        }
    }
    check_registration(&redirect_uris, &grant_types_unique, &method)?;
    let name = string(m, "client_name")?.map(str::trim).unwrap_or("");
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(bad(format!(
            "client_name must be at most {MAX_NAME} characters, without control characters"
        )));
    }
    let name = if name.is_empty() { UNNAMED } else { name };
    let secret = (method != auth_method::NONE).then(|| crypto::token("mog_cs_"));
    let row = ClientRow {
        client_id: crypto::id("mcl_"),
        name: name.to_owned(),
        secret_hash: secret.as_deref().map(crypto::hash),
        auth_method: method,
        redirect_uris,
        grant_types: grant_types_unique,
        created_at: now(),
        dynamic: true,
    };
    Ok((row, secret))
}

/// `POST /api/auth/mcp/register` (RFC 7591 §3).
pub async fn register(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_body {
        return Ok(bad_metadata(
            "send the client metadata as a JSON object (Content-Type: application/json)",
        ));
    }
    let Ok(Value::Object(metadata)) = serde_json::from_slice::<Value>(&body) else {
        return Ok(bad_metadata("the body is not a JSON object"));
    };
    let (row, secret) = match client_from(&metadata) {
        Ok(v) => v,
        Err((code, why)) => return Ok(refuse(StatusCode::BAD_REQUEST, code, why)),
    };
    // Taken only for well-formed requests, so a client fixing its metadata is not locked out.
    let key = format!("register:addr:{}", addr.ip());
    if let Err(until) = s.db.throttle_take(&key, WINDOW, PER_ADDRESS).await? {
        let mut r = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "too many client registrations from this address; a client registers once and keeps its client_id",
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from((until - now()).max(1)),
        );
        return Ok(r);
    }
    if s.db.dynamic_client_count().await? >= MAX_DYNAMIC_CLIENTS {
        return Ok(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "this server holds as many registered clients as it allows; ask its administrator",
        ));
    }
    if !s.db.add_client(&row).await? {
        // A 96-bit random id collided: nothing to retry safely here, and it will not happen.
        return Err(AppError::Internal("client id collision".into()));
    }
    let kind = if secret.is_some() {
        "confidential"
    } else {
        "public"
    };
    s.audit
        .record(
            audit::Event::new(audit::kind::CLIENT_REGISTER)
                .client(&addr)
                .detail(format!("{} ({kind}): {}", row.client_id, row.name)),
        )
        .await;
    let mut answer = json!({
        "client_id": row.client_id,
        "client_id_issued_at": row.created_at,
        "client_name": row.name,
        "redirect_uris": row.redirect_uris,
        "grant_types": row.grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": row.auth_method,
    });
    if let Some(secret) = secret {
        answer["client_secret"] = Value::String(secret);
        answer["client_secret_expires_at"] = Value::from(0);
    }
    let mut r = (StatusCode::CREATED, Json(answer)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(r)
}
