//! Response headers that depend on what a response is: pages are never stored by a browser or a
//! proxy (they carry a CSRF token and the account's email), and when the public URL is https
//! every response tells browsers to use https only (HSTS). A server error on a browser page is a
//! page too (the storage error's JSON body is for API clients).

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// A year, with subdomains left alone (the server may share a domain with others).
const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000");

pub async fn page_headers(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let page = crate::input::is_page(req.uri().path());
    let mut r = next.run(req).await;
    if page && r.status().is_server_error() {
        let status = r.status();
        let retry = r.headers().get(header::RETRY_AFTER).cloned();
        r = (
            status,
            crate::pages::message_page(
                "Something went wrong",
                "The server could not complete this request. Try again in a moment; if it keeps happening, tell the administrator of this Mogplex service.",
            ),
        )
            .into_response();
        if let Some(v) = retry {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    let html = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if s.cfg.issuer.starts_with("https://") {
        r.headers_mut()
            .insert(header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    r
}
