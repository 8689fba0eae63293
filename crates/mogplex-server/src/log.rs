//! The server's log: `tracing` events, and a span per request (`tower_http::trace`) with its
//! method and route, closed by one line with the status and the latency.
//!
//! What a request logs is chosen here and nowhere else: the route template (`/api/v1/mogplex/runs/{id}`)
//! or, for a path no route claims, the path cut short; never the query string, a header value, a
//! body, a token, a code or a password.
//!
//! Lines go to stderr through a writer that never fails: a server whose stderr was closed (a
//! supervisor, `2>&-`, a parent that stopped reading) keeps serving instead of losing the task
//! that wanted to say something. `MOGPLEX_LOG` sets the level (`error`, `warn`, `info`, the
//! default, `debug`, `trace` or `off`); other crates' events (sqlx's PostgreSQL notices, hyper)
//! show only from `warn` up, unless the level is `debug` or `trace`.
//!
//! `MOGPLEX_LOG_FORMAT=json` (or `serve --log-json`) writes one JSON object per line instead,
//! for log collectors. Every request gets a random id: a field of its span (so of every line it
//! logs) and the `X-Request-Id` header of its response, so a user's report can be found.

use axum::extract::{MatchedPath, Request};
use std::io::Write;
use tower_http::LatencyUnit;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{
    DefaultOnBodyChunk, DefaultOnEos, DefaultOnFailure, DefaultOnResponse, MakeSpan, TraceLayer,
};
use tracing::Level;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The variable that sets the level.
pub const LEVEL_VAR: &str = "MOGPLEX_LOG";

/// The variable that chooses JSON lines.
pub const FORMAT_VAR: &str = "MOGPLEX_LOG_FORMAT";

/// Installs the process's subscriber (once; later calls change nothing), in the format
/// [`FORMAT_VAR`] names.
pub fn init() {
    init_with(std::env::var(FORMAT_VAR).is_ok_and(|v| v.trim().eq_ignore_ascii_case("json")));
}

/// [`init`], JSON lines if `json`.
pub fn init_with(json: bool) {
    let raw = std::env::var(LEVEL_VAR).unwrap_or_default();
    let parsed = match raw.trim() {
        "" => Ok(LevelFilter::INFO),
        other => other.parse::<LevelFilter>(),
    };
    let level = parsed.clone().unwrap_or(LevelFilter::INFO);
    // Other crates (sqlx's PostgreSQL notices, hyper) only for warnings, unless debugging.
    let others = if level >= LevelFilter::DEBUG {
        level
    } else {
        level.min(LevelFilter::WARN)
    };
    let filter = Targets::new()
        .with_target("mogplex_server", level)
        .with_target("tower_http", level)
        .with_default(others);
    let (text, json) = if json {
        let lines = tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_target(false)
            .with_writer(|| QuietStderr)
            .log_internal_errors(false);
        (None, Some(lines))
    } else {
        let lines = tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(false)
            .with_writer(|| QuietStderr)
            .log_internal_errors(false);
        (Some(lines), None)
    };
    let _ = tracing_subscriber::registry()
        .with(text)
        .with(json)
        .with(filter)
        .try_init();
    if parsed.is_err() {
        tracing::warn!(
            "{LEVEL_VAR}={raw:?} is not a level (error, warn, info, debug, trace, off); logging at info"
        );
    }
}

/// Stderr that swallows its own failures.
struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// The longest unrouted path a request line shows.
const MAX_PATH: usize = 100;

/// The span of one request: method and route only.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, req: &Request<B>) -> tracing::Span {
        let id = req
            .extensions()
            .get::<RequestId>()
            .map_or("-", |r| r.0.as_str());
        match req.extensions().get::<MatchedPath>() {
            Some(route) => tracing::info_span!(
                "request",
                id,
                method = %req.method(),
                route = route.as_str()
            ),
            None => {
                let path = req.uri().path();
                let cut = path
                    .char_indices()
                    .nth(MAX_PATH)
                    .map_or(path, |(i, _)| &path[..i]);
                tracing::info_span!("request", id, method = %req.method(), path = cut)
            }
        }
    }
}

/// The request layer: a [`RequestSpan`], nothing logged on the way in, one line on the way out
/// with the status and the latency (and an error line for a 5xx).
pub fn trace_layer() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    (),
    DefaultOnResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    DefaultOnFailure,
> {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Micros),
        )
        .on_failure(DefaultOnFailure::new().latency_unit(LatencyUnit::Micros))
}

/// A request's id (16 hex digits), in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Gives every request an id, for its log lines and its response's `X-Request-Id`.
pub async fn request_id(
    mut req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let id = crate::crypto::hex(&crate::crypto::random_bytes::<8>());
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut r = next.run(req).await;
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        r.headers_mut().insert("x-request-id", v);
    }
    r
}
