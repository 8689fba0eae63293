//! `mogplex-server`: the self-hostable Mogplex account service.
//!
//! A library first, so tests (and the `mogplex-server` binary) start it on any listener:
//! [`AppState::new`] connects the database, [`app`] builds the router, [`serve`] runs it.

pub mod api;
pub mod crypto;
pub mod db;
pub mod error;
pub mod gateway;
pub mod log;
pub mod oauth;
pub mod pages;
pub mod password;
pub mod runs;
pub mod secrets;
pub mod throttle;
pub mod web;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use mogplex_protocol::routes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower_http::set_header::SetResponseHeaderLayer;

/// The one registered client: the Mogplex CLI, a public client (no secret).
pub use mogplex_protocol::CLIENT_ID;
/// Request bodies larger than this are refused with 413.
pub const MAX_BODY: usize = 64 * 1024;
/// Requests whose headers add up to more than this are refused with 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    /// The public base URL, without a trailing slash: the OAuth issuer.
    pub issuer: String,
    /// `__Host-` cookies with `Secure`, when the public URL is https.
    pub secure_cookies: bool,
    pub access_ttl: i64,
    pub refresh_idle_ttl: i64,
    pub code_ttl: i64,
    pub device_ttl: i64,
    pub device_interval: i64,
    /// Variables consulted before the process environment for upstream keys (tests, embedding).
    pub env: std::collections::BTreeMap<String, String>,
    /// Inference requests allowed per bearer token per minute (shared by all processes on PostgreSQL).
    pub gateway_per_minute: u32,
    /// Said on the sign-in page (`dev` names its demo account there).
    pub sign_in_note: Option<String>,
    /// Seconds after a refresh during which the token it replaced may be presented again (the
    /// response was lost) and answered with a fresh successor instead of revoking the sign-in.
    pub refresh_grace: i64,
}

impl Config {
    pub fn new(public_url: &str) -> Self {
        let issuer = public_url.trim_end_matches('/').to_owned();
        Self {
            secure_cookies: issuer.starts_with("https://"),
            issuer,
            access_ttl: 3600,
            refresh_idle_ttl: 30 * 24 * 3600,
            code_ttl: 60,
            device_ttl: 600,
            device_interval: 5,
            env: std::collections::BTreeMap::new(),
            gateway_per_minute: 120,
            sign_in_note: None,
            refresh_grace: 30,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AppState {
    pub db: db::Db,
    pub cfg: Arc<Config>,
    /// Verified against when the email is unknown, so both failures cost the same.
    pub dummy_hash: Arc<str>,
    /// For upstream model providers.
    pub http: reqwest::Client,
    /// Per-token request counts for the gateway's rate limit.
    pub limiter: Arc<gateway::Limiter>,
    /// Announcements of appended run events.
    pub runs: runs::RunBus,
}

impl Config {
    /// A variable from [`Config::env`], else from the process environment; empty counts as unset.
    pub fn var(&self, name: &str) -> Option<String> {
        self.env
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.is_empty())
    }
}

impl AppState {
    pub async fn new(database_url: &str, cfg: Config) -> Result<Self, String> {
        let db = db::Db::connect(database_url)
            .await
            .map_err(|e| e.to_string())?;
        let dummy_hash = password::hash(crypto::b64url(&crypto::random_bytes::<16>())).await?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let runs = runs::RunBus::default();
        let bus = runs.clone();
        db.listen_runs(move |run, seq| bus.announce(run, seq));
        Ok(Self {
            db,
            cfg: Arc::new(cfg),
            dummy_hash: dummy_hash.into(),
            http,
            limiter: Arc::default(),
            runs,
        })
    }
}

/// Refuses requests whose headers are too large in total (hyper's own limit is far higher).
async fn limit_headers(req: Request, next: Next) -> Response {
    let total: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if total > MAX_HEADER_BYTES || req.uri().to_string().len() > 8 * 1024 {
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers or address too large",
        )
            .into_response();
    }
    next.run(req).await
}

/// The body limit of a path: chat requests may be larger than everything else.
fn body_limit(path: &str) -> usize {
    if path.starts_with(routes::CLI_PREFIX) {
        gateway::MAX_CHAT_BODY
    } else {
        MAX_BODY
    }
}

/// Unread request bytes the server will swallow to answer a too-large request cleanly.
const MAX_DRAIN: usize = 1024 * 1024;

/// Body-size rejections answer in the shape the path's clients expect. A declared length over
/// the limit is answered at once, after reading (and discarding, up to 1 MiB) what the client is
/// still sending: closing on unread bytes makes the kernel reset the connection, and the client
/// would lose the 413.
async fn shape_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let resp = match declared {
        Some(n) if n > body_limit(&path) => {
            if n <= MAX_DRAIN {
                let _ = axum::body::to_bytes(req.into_body(), MAX_DRAIN).await;
            }
            StatusCode::PAYLOAD_TOO_LARGE.into_response()
        }
        _ => next.run(req).await,
    };
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let description = format!("the request body is over {} KiB", body_limit(&path) / 1024);
        return if path.starts_with(routes::OAUTH_PREFIX) {
            error::AppError::OAuth {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: mogplex_protocol::oauth::error_code::INVALID_REQUEST,
                description,
            }
            .into_response()
        } else {
            (StatusCode::PAYLOAD_TOO_LARGE, description).into_response()
        };
    }
    resp
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, web::not_found_page()).into_response()
}

pub fn app(state: AppState) -> Router {
    // Each route module lists its own endpoints.
    let api = Router::new()
        .merge(oauth::routes())
        .merge(api::routes())
        .merge(gateway::routes())
        .merge(runs::routes())
        .merge(web::routes())
        .fallback(not_found)
        .with_state(state);

    // Layers wrap from the bottom up, so a request meets them top to bottom:
    // 0. the request's log span and its closing line (status, latency);
    // 1. catch-panic: a bug in any handler becomes a 500, not a dropped connection;
    // 2. security headers on every response (pages can never be framed);
    // 3. header-size limit, before any handler work;
    // 4. a whole-request timeout (408), so slow clients cannot hold a worker;
    // 5. OAuth-shaped 413s for the OAuth endpoints;
    // 6. the body-size limit, enforced when a handler reads the body.
    api.layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(shape_errors))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(middleware::from_fn(limit_headers))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(log::trace_layer())
}

/// Serves until `shutdown` resolves. Client addresses are passed to handlers for throttling.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let db = state.db.clone();
    let served = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    db.checkpoint().await;
    served
}
