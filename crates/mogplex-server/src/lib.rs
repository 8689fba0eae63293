//! `mogplex-server`: the self-hostable Mogplex account service.
//!
//! A library first, so tests (and the `mogplex-server` binary) start it on any listener:
//! [`AppState::new`] connects the database, [`app`] builds the router, [`serve`] runs it.

pub mod api;
pub mod audit;
pub mod crypto;
pub mod db;
pub mod edge;
pub mod error;
pub mod gateway;
pub mod headers;
pub mod input;
pub mod log;
pub mod mcp_demo;
pub mod metrics;
pub mod oauth;
pub mod oidc;
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
    /// Runs an account may create per day, and events a run may hold (see `runs`).
    pub runs_per_day: i64,
    pub events_per_run: i64,
    /// Whether `/health/…` and `/metrics` are served on the main listener (not when they have
    /// their own, `serve --metrics-listen`).
    pub metrics_on_main: bool,
    /// Connection bounds: header read timeout, connections per address, shutdown drain.
    pub edge: edge::Edge,
    /// How long an ID token is valid (and so how long a superseded signing key stays published).
    pub id_token_ttl: i64,
    /// How long a process keeps the signing keys it read before reading them again (less than
    /// any rotation's lead; 0 reads them every time).
    pub key_cache_secs: i64,
    /// Whether the demo MCP server is served at `/mcp/demo` (with its RFC 9728 document), and
    /// so whether it is a resource this server issues tokens for (`dev` turns it on).
    pub demo_mcp: bool,
    /// More RFC 8707 resources (absolute URIs) this server issues tokens for, besides the demo
    /// MCP server: MCP servers elsewhere that trust this server as their authorization server.
    pub resources: Vec<String>,
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
            runs_per_day: 500,
            events_per_run: 20_000,
            metrics_on_main: true,
            edge: edge::Edge::default(),
            id_token_ttl: 3600,
            key_cache_secs: 30,
            demo_mcp: false,
            resources: Vec::new(),
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
    /// Set when shutdown begins, so live streams end instead of holding it up.
    pub closing: edge::Closing,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// The ID token signing keys as last read.
    pub keys: Arc<oidc::keys::KeyCache>,
    /// The audit log's writer (a group commit).
    pub audit: audit::Sink,
    /// Refresh-token rotations, a group commit too (`db::rotation`).
    pub rotations: db::rotation::Batcher,
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
            cfg: Arc::new(cfg),
            dummy_hash: dummy_hash.into(),
            http,
            limiter: Arc::default(),
            runs,
            closing: edge::Closing::default(),
            metrics: Arc::default(),
            keys: Arc::default(),
            audit: audit::Sink::start(db.clone()),
            rotations: db::rotation::Batcher::start(db.clone()),
            db,
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
pub(crate) fn body_limit(path: &str) -> usize {
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
    let shaped = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && !shaped {
        let description = format!("the request body is over {} KiB", body_limit(&path) / 1024);
        return if path.starts_with(routes::OAUTH_PREFIX) {
            error::AppError::OAuth {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: mogplex_protocol::oauth::error_code::INVALID_REQUEST,
                description,
            }
            .into_response()
        } else if path.starts_with(routes::V1_PREFIX) {
            error::AppError::V1 {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "too_large",
                message: description,
                bearer_error: None,
            }
            .into_response()
        } else {
            (StatusCode::PAYLOAD_TOO_LARGE, description).into_response()
        };
    }
    resp
}

/// No route: discovery documents and API paths answer JSON (RFC 6749 §5.2-shaped), pages HTML.
async fn not_found(uri: axum::http::Uri) -> Response {
    let path = uri.path();
    if path.starts_with(routes::WELL_KNOWN_PREFIX) || path.starts_with("/api/") {
        let body = mogplex_protocol::OAuthErrorBody::new(
            "not_found",
            format!("there is nothing at {path}"),
        );
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    (StatusCode::NOT_FOUND, web::not_found_page()).into_response()
}

pub fn app(state: AppState) -> Router {
    let page_headers = middleware::from_fn_with_state(state.clone(), headers::page_headers);
    let track = middleware::from_fn_with_state(state.clone(), metrics::track);
    let health = if state.cfg.metrics_on_main {
        metrics::routes()
    } else {
        Router::new()
    };
    let demo_mcp = if state.cfg.demo_mcp {
        mcp_demo::routes()
    } else {
        Router::new()
    };
    // Each route module lists its own endpoints.
    let api = Router::new()
        .merge(health)
        .merge(demo_mcp)
        .merge(oauth::routes())
        .merge(oidc::routes())
        .merge(api::routes())
        .merge(gateway::routes())
        .merge(runs::routes())
        .merge(web::routes())
        .fallback(not_found)
        .with_state(state);

    // Layers wrap from the bottom up, so a request meets them top to bottom:
    // 0. a request id (log lines, `X-Request-Id`); metrics by route and status, latency;
    // 0. the request's log span and its closing line (status, latency);
    // 1. catch-panic: a bug in any handler becomes a 500, not a dropped connection;
    // 2. security headers on every response (pages can never be framed, nor stored; HSTS);
    // 3. header-size limit, before any handler work;
    // 4. a whole-request timeout (408), so slow clients cannot hold a worker;
    // 5. OAuth-shaped 413s for the OAuth endpoints;
    // 6. input no endpoint accepts (NUL characters), refused in one place (`input`);
    // 7. the body-size limit, enforced when a handler reads the body.
    api.layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(input::refuse_nul))
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
        .layer(page_headers)
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(log::trace_layer())
        .layer(track)
        .layer(middleware::from_fn(log::request_id))
}

/// Health and metrics alone, for `serve --metrics-listen`.
pub fn metrics_app(state: AppState) -> Router {
    metrics::routes().with_state(state)
}

/// Serves until `shutdown` resolves, then closes within the drain bound (see [`edge`]). Client
/// addresses are passed to handlers for throttling.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let db = state.db.clone();
    let edge = state.cfg.edge;
    let closing = state.closing.clone();
    let served = edge::serve(listener, app(state), edge, closing, shutdown).await;
    // The WAL is merged into the database before the process ends (SQLite; a no-op otherwise).
    db.checkpoint().await;
    served
}
