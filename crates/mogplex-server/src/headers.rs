//! Response headers that depend on what a response is: pages are never stored by a browser or a
//! proxy (they carry a CSRF token and the account's email), and when the public URL is https
//! every response tells browsers to use https only (HSTS).

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// A year, with subdomains left alone (the server may share a domain with others).
const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000");

pub async fn page_headers(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
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
