//! Bearer-protected API: `GET /api/auth/user` and the `/api/v1/` family.

use crate::AppState;
use crate::db::Principal;
use crate::error::{AppError, www_authenticate};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What the `Authorization` header says.
#[derive(Debug)]
pub enum Bearer {
    None,
    Invalid,
    Valid(Principal),
}

/// The bearer check: an OAuth access token or a personal access token, one indexed lookup.
pub async fn bearer(s: &AppState, headers: &HeaderMap) -> Result<Bearer, AppError> {
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
    match bearer(&s, &headers).await? {
        Bearer::None => Ok(axum::Json(json!({"user": null})).into_response()),
        Bearer::Invalid => {
            let mut r =
                (StatusCode::UNAUTHORIZED, axum::Json(json!({"user": null}))).into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                www_authenticate(Some("invalid_token")),
            );
            Ok(r)
        }
        Bearer::Valid(p) => {
            let Some(u) = s.db.user(&p.user_id).await? else {
                return Ok(axum::Json(json!({"user": null})).into_response());
            };
            let created = time::OffsetDateTime::from_unix_timestamp(u.created_at)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                });
            Ok(axum::Json(json!({"user": {"id": u.id, "email": u.email, "name": u.name, "createdAt": created}})).into_response())
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
