//! Bearer-protected API: `GET /api/auth/user` and the `/api/v1/` family.

use crate::AppState;
use crate::db::Principal;
use crate::error::{AppError, www_authenticate};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use mogplex_protocol::routes;
use mogplex_protocol::{AccountUser, McpServer, McpServers, UserResponse, V1Ok};

/// What the `Authorization` header says.
#[derive(Debug)]
pub enum Bearer {
    None,
    Invalid,
    Valid(Principal),
}

/// The bearer check of this server's own API and gateway: an account token (an OAuth access
/// token bound to no resource, or a personal access token), one indexed lookup. A token bound
/// to a resource (RFC 8707: made for an MCP server) is refused like an invalid one.
pub async fn bearer(s: &AppState, headers: &HeaderMap) -> Result<Bearer, AppError> {
    Ok(match any_bearer(s, headers).await? {
        Bearer::Valid(p) if p.resource.is_some() => {
            tracing::debug!("a token bound to another resource was presented as an account token");
            Bearer::Invalid
        }
        other => other,
    })
}

/// The bearer check of a resource server: any live access token, whatever resource it is bound
/// to (the caller checks [`Principal::resource`]).
pub async fn any_bearer(s: &AppState, headers: &HeaderMap) -> Result<Bearer, AppError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Bearer::None);
    };
    let Some(token) = value.to_str().ok().and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    }) else {
        return Ok(Bearer::Invalid);
    };
    let token = token.trim();
    if token.is_empty() || token.len() > 512 {
        return Ok(Bearer::Invalid);
    }
    Ok(match s.db.principal(token).await? {
        Some(p) => Bearer::Valid(p),
        None => Bearer::Invalid,
    })
}

/// `{"user":{…}}`; `{"user":null}` without credentials (200) or with a bad one (401).
pub async fn user(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let nobody = || Json(UserResponse { user: None });
    match bearer(&s, &headers).await? {
        Bearer::None => Ok(nobody().into_response()),
        Bearer::Invalid => {
            let mut r = (StatusCode::UNAUTHORIZED, nobody()).into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                www_authenticate(Some("invalid_token")),
            );
            Ok(r)
        }
        Bearer::Valid(p) => {
            let Some(u) = s.db.user(&p.user_id).await? else {
                return Ok(nobody().into_response());
            };
            let created_at = time::OffsetDateTime::from_unix_timestamp(u.created_at)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                });
            let user = AccountUser {
                id: u.id,
                email: u.email,
                name: Some(u.name),
                created_at,
            };
            Ok(Json(UserResponse { user: Some(user) }).into_response())
        }
    }
}

/// Requires a valid bearer for anything under `/api/v1/`.
pub async fn require_principal(s: &AppState, headers: &HeaderMap) -> Result<Principal, AppError> {
    match bearer(s, headers).await? {
        Bearer::Valid(p) => Ok(p),
        Bearer::None => Err(AppError::unauthorized(None)),
        Bearer::Invalid => Err(AppError::unauthorized(Some("invalid_token"))),
    }
}

/// `/api/v1/…` paths that no route claims: 401 without a valid bearer, else 404.
pub async fn v1_fallback(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    require_principal(&s, &headers).await?;
    Err(AppError::V1 {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: "no such endpoint".into(),
        bearer_error: None,
    })
}

/// `GET /api/v1/mogplex/mcp/servers`: the caller's MCP definitions, secrets decrypted into place.
pub async fn mcp_servers(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let principal = require_principal(&s, &headers).await?;
    let rows = s.db.list_mcp(&principal.user_id).await?;
    let sealer = rows
        .iter()
        .any(|r| r.3.is_some())
        .then(|| crate::secrets::SecretBox::from_config(&s.cfg));
    let mut servers = Vec::with_capacity(rows.len());
    for (name, enabled, config, secrets) in rows {
        let mut config: serde_json::Value = serde_json::from_str(&config)
            .unwrap_or_else(|_| serde_json::Value::Object(Default::default()));
        if let Some(sealed) = secrets {
            let opened = match &sealer {
                Some(Ok(b)) => b.open(&sealed).ok(),
                _ => None,
            };
            match opened.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()) {
                Some(serde_json::Value::Object(secret)) => {
                    for (section, values) in secret {
                        if let (Some(target), serde_json::Value::Object(values)) = (
                            config.get_mut(&section).and_then(|v| v.as_object_mut()),
                            values,
                        ) {
                            target.extend(values);
                        }
                    }
                }
                _ => tracing::warn!(
                    "the secret values of MCP server {name} could not be decrypted (check MOGPLEX_SECRETS_KEY)"
                ),
            }
        }
        servers.push(McpServer {
            name,
            enabled,
            config,
        });
    }
    Ok(Json(V1Ok::new(McpServers { servers })).into_response())
}

/// The user endpoint and the `/api/v1/` family (runs are in `crate::runs`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(routes::USER, get(user))
        .route(routes::MCP_SERVERS, get(mcp_servers))
        .route("/api/v1/{*rest}", any(v1_fallback))
}
