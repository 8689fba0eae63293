//! The one error type of the server, and how each kind becomes a response.
//!
//! OAuth endpoints answer RFC 6749 §5.2 JSON (`{"error","error_description"}`), `/api/v1/` answers
//! the `{"ok":false,"error":{…}}` envelope, pages answer HTML. A storage failure is the only 500,
//! and its detail goes to the log, never to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mogplex_protocol::oauth::error_code;
use mogplex_protocol::{OAuthErrorBody, V1ErrorBody};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// RFC 6749 error for the token, revocation and device endpoints.
    #[error("{code}: {description}")]
    OAuth {
        status: StatusCode,
        code: &'static str,
        description: String,
    },
    /// `/api/v1/…` error envelope.
    #[error("{code}: {message}")]
    V1 {
        status: StatusCode,
        code: &'static str,
        message: String,
        bearer_error: Option<&'static str>,
    },
    /// An HTML page with a message.
    #[error("{title}")]
    Page {
        status: StatusCode,
        title: String,
        message: String,
    },
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn oauth(code: &'static str, description: impl Into<String>) -> Self {
        let status = match code {
            error_code::INVALID_CLIENT => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        };
        AppError::OAuth {
            status,
            code,
            description: description.into(),
        }
    }

    pub fn page(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Page {
            status,
            title: title.into(),
            message: message.into(),
        }
    }

    pub fn unauthorized(bearer_error: Option<&'static str>) -> Self {
        AppError::V1 {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "sign in, or send a valid bearer token".into(),
            bearer_error,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Db(e.into())
    }
}

pub fn www_authenticate(error: Option<&str>) -> HeaderValue {
    let v = match error {
        Some(e) => format!("Bearer realm=\"mogplex\", error=\"{e}\""),
        None => "Bearer realm=\"mogplex\"".to_owned(),
    };
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("Bearer"))
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::OAuth {
                status,
                code,
                description,
            } => {
                let mut r = (status, Json(OAuthErrorBody::new(code, description))).into_response();
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                if status == StatusCode::UNAUTHORIZED {
                    r.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"mogplex\""),
                    );
                }
                r
            }
            AppError::V1 {
                status,
                code,
                message,
                bearer_error,
            } => {
                let mut r = (status, Json(V1ErrorBody::new(code, message))).into_response();
                if status == StatusCode::UNAUTHORIZED {
                    r.headers_mut()
                        .insert(header::WWW_AUTHENTICATE, www_authenticate(bearer_error));
                }
                r
            }
            AppError::Page {
                status,
                title,
                message,
            } => (status, crate::pages::message_page(&title, &message)).into_response(),
            AppError::Db(e) => storage_error(&e),
            AppError::Internal(e) => {
                tracing::error!("internal error: {e}");
                server_error("an internal error occurred")
            }
        }
    }
}

/// Seconds a client is asked to wait when the database is unavailable.
pub const STORAGE_RETRY_AFTER: u32 = 5;

/// A storage failure: nothing was stored, so never a 2xx. A full disk is 507, an unreachable or
/// failing database 503 with `Retry-After` (the client may retry; the write did not happen),
/// anything else a 500. The detail goes to the log only.
fn storage_error(e: &crate::db::DbError) -> Response {
    use crate::db::Outage;
    tracing::error!("storage error: {e}");
    let outage = e.outage();
    if outage == Some(Outage::Unavailable) {
        // Pooled connections may be broken: the pool checks them for a while.
        crate::db::connections_suspect();
    }
    let (status, description) = match outage {
        Some(Outage::Full) => (
            StatusCode::INSUFFICIENT_STORAGE,
            "the server's storage is full; nothing was stored",
        ),
        Some(Outage::Unavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the server's database is unavailable; nothing was stored, try again shortly",
        ),
        None => return server_error("a storage error occurred"),
    };
    let body = OAuthErrorBody::new(error_code::SERVER_ERROR, description);
    let mut r = (status, Json(body)).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(STORAGE_RETRY_AFTER));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A 500 whose detail stays in the log.
fn server_error(description: &str) -> Response {
    let body = OAuthErrorBody::new(error_code::SERVER_ERROR, description);
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}
