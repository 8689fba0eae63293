//! Input every endpoint refuses, checked once for all of them before any handler runs.
//!
//! NUL characters: PostgreSQL cannot store them in TEXT (a query carrying one fails, which was a
//! 500), SQLite stores them and then compares and displays them surprisingly, and no field of
//! this service has a use for one. A request whose query, path, form body or JSON strings
//! contain NUL is answered 400 in the shape its endpoint speaks: a page for the browser pages
//! and the authorize endpoint, RFC 6749 JSON for the other OAuth endpoints, the OpenAI-style
//! error for the inference endpoints, the `/api/v1/` envelope elsewhere.
//!
//! The body is read here (up to the path's body limit, see `body_limit`) and handed on whole, so
//! handlers read it as before.

use crate::error::AppError;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mogplex_protocol::oauth::error_code;
use mogplex_protocol::routes;

/// Whether `path` is one a browser shows: its errors are pages.
pub fn is_page(path: &str) -> bool {
    [
        routes::HOME_PAGE,
        routes::LOGIN_PAGE,
        routes::LOGOUT,
        routes::DEVICE_PAGE,
        routes::DEVICE_APPROVE,
        routes::MODELS_PAGE,
        routes::PLANS_PAGE,
        routes::AUTHORIZE,
    ]
    .contains(&path)
}

/// A 400 for bad input, in the shape `path`'s clients expect.
pub fn bad_input(path: &str, message: &str) -> Response {
    if is_page(path) {
        AppError::page(StatusCode::BAD_REQUEST, "Invalid input", message).into_response()
    } else if path.starts_with(routes::OAUTH_PREFIX) {
        AppError::oauth(error_code::INVALID_REQUEST, message).into_response()
    } else if path.starts_with(routes::CLI_PREFIX) {
        let body = mogplex_protocol::ApiErrorBody::new(message, "invalid_request_error", None);
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    } else {
        AppError::V1 {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: message.into(),
            bearer_error: None,
        }
        .into_response()
    }
}

/// `%00` in percent-encoded text.
fn encoded_nul(s: &[u8]) -> bool {
    s.windows(3).any(|w| w == b"%00")
}

/// A NUL in any string (key or value) of a JSON document.
fn json_has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(json_has_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        _ => false,
    }
}

/// Whether a body holds a NUL, raw, percent-encoded (forms) or escaped (JSON).
pub fn body_has_nul(body: &[u8]) -> bool {
    if body.contains(&0) || encoded_nul(body) {
        return true;
    }
    // Only a body that mentions `\u0000` (in any case) is parsed; a JSON body whose strings hold
    // that text literally (`\\u0000`) is fine.
    let mentions = body
        .windows(6)
        .any(|w| w[0] == b'\\' && w[1..].eq_ignore_ascii_case(b"u0000"));
    mentions && serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| json_has_nul(&v))
}

/// The middleware: refuses NUL in the path, the query and the body.
pub async fn refuse_nul(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let in_address = encoded_nul(path.as_bytes())
        || req.uri().query().is_some_and(|q| encoded_nul(q.as_bytes()));
    if in_address {
        return bad_input(&path, "the address contains a NUL character");
    }
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, crate::body_limit(&path)).await {
        Ok(b) => b,
        // Over the limit (answered in the path's shape further out) or a broken connection.
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    if body_has_nul(&bytes) {
        return bad_input(&path, "the request contains a NUL character");
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_in_every_encoding() {
        assert!(body_has_nul(b"email=a%00b"));
        assert!(body_has_nul(b"a\0b"));
        assert!(body_has_nul(br#"{"model":"x\u0000"}"#));
        assert!(body_has_nul(br#"{"t":["x\u0000"]}"#));
        assert!(!body_has_nul(br#"{"t":"literally \\u0000"}"#));
        assert!(!body_has_nul(b"email=a%2500"));
        assert!(!body_has_nul(br#"{"t":"ok"}"#));
    }
}
