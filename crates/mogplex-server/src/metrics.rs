//! Health and metrics: `/health/live` (the process answers), `/health/ready` (the database
//! answers too) and `/metrics` in the Prometheus text format (version 0.0.4), on the main
//! listener or, with `serve --metrics-listen ADDR`, only on a listener of their own.
//!
//! Series: `mogplex_http_requests_total{route,status}` and the histogram
//! `mogplex_http_request_duration_seconds{route}` (the route template, never a path with ids
//! in it), `mogplex_oauth_grants_total{grant_type,outcome}` (outcome `ok` or the OAuth error
//! code), `mogplex_refresh_reuse_detected_total`, `mogplex_run_subscribers` (live followers
//! now), `mogplex_db_pool_connections{state}` and `mogplex_db_pool_max_connections`.
//! The registry is a few maps behind mutexes held for an increment; rendering reads them.

use crate::AppState;
use crate::db::Db;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

pub const LIVE: &str = "/health/live";
pub const READY: &str = "/health/ready";
pub const METRICS: &str = "/metrics";

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    grants: Mutex<BTreeMap<(String, String), u64>>,
    reuse: AtomicU64,
    subscribers: AtomicI64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        *lock(&self.requests)
            .entry((route.to_owned(), status))
            .or_default() += 1;
        let mut l = lock(&self.latency);
        let h = l.entry(route.to_owned()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// A token request: its grant type and `ok` or the OAuth error code.
    pub fn grant(&self, grant_type: &str, outcome: &str) {
        *lock(&self.grants)
            .entry((grant_type.to_owned(), outcome.to_owned()))
            .or_default() += 1;
    }

    pub fn reuse_detected(&self) {
        self.reuse.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a live run follower until the guard is dropped.
    pub fn subscriber(self: &std::sync::Arc<Self>) -> SubscriberGuard {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        SubscriberGuard(self.clone())
    }

    /// The text exposition of every series, with the pool's state read now.
    pub fn render(&self, db: &Db) -> String {
        let mut o = String::new();
        o.push_str("# HELP mogplex_http_requests_total HTTP requests answered, by route template and status.\n# TYPE mogplex_http_requests_total counter\n");
        for ((route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                o,
                "mogplex_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                esc(route)
            );
        }
        o.push_str("# HELP mogplex_http_request_duration_seconds Time to answer, by route template.\n# TYPE mogplex_http_request_duration_seconds histogram\n");
        for (route, h) in lock(&self.latency).iter() {
            let r = esc(route);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "mogplex_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                o,
                "mogplex_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                o,
                "mogplex_http_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                o,
                "mogplex_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
                h.count
            );
        }
        o.push_str("# HELP mogplex_oauth_grants_total Token requests, by grant type and outcome (ok or the OAuth error code).\n# TYPE mogplex_oauth_grants_total counter\n");
        for ((g, outcome), n) in lock(&self.grants).iter() {
            let _ = writeln!(
                o,
                "mogplex_oauth_grants_total{{grant_type=\"{}\",outcome=\"{}\"}} {n}",
                esc(g),
                esc(outcome)
            );
        }
        let _ = write!(
            o,
            "# HELP mogplex_refresh_reuse_detected_total Refresh tokens presented again, each revoking its sign-in.\n# TYPE mogplex_refresh_reuse_detected_total counter\nmogplex_refresh_reuse_detected_total {}\n",
            self.reuse.load(Ordering::Relaxed)
        );
        let _ = write!(
            o,
            "# HELP mogplex_run_subscribers Live run followers connected now.\n# TYPE mogplex_run_subscribers gauge\nmogplex_run_subscribers {}\n",
            self.subscribers.load(Ordering::Relaxed)
        );
        let (size, idle, max) = match db {
            Db::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
            Db::Postgres(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
        let _ = write!(
            o,
            "# HELP mogplex_db_pool_connections Database connections of this process, by state.\n# TYPE mogplex_db_pool_connections gauge\nmogplex_db_pool_connections{{state=\"in_use\"}} {}\nmogplex_db_pool_connections{{state=\"idle\"}} {idle}\n# HELP mogplex_db_pool_max_connections The pool's bound.\n# TYPE mogplex_db_pool_max_connections gauge\nmogplex_db_pool_max_connections {max}\n",
            size - idle
        );
        o
    }
}

/// Label values as the text format escapes them.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Uncounts a run follower when dropped.
#[derive(Debug)]
pub struct SubscriberGuard(std::sync::Arc<Metrics>);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The middleware that counts every routed request (unrouted ones count as `unmatched`).
pub async fn track(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let start = Instant::now();
    let r = next.run(req).await;
    s.metrics
        .request(&route, r.status().as_u16(), start.elapsed().as_secs_f64());
    r
}

pub async fn live() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

pub async fn ready(State(s): State<AppState>) -> Response {
    match s.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::warn!("readiness: the database does not answer: {e}");
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer\n",
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
    }
}

pub async fn metrics(State(s): State<AppState>) -> Response {
    let mut r = s.metrics.render(&s.db).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// Health and metrics; merged into the main router unless they have a listener of their own.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(LIVE, get(live))
        .route(READY, get(ready))
        .route(METRICS, get(metrics))
}
