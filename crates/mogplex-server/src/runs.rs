//! Runs, for `mogplex --attach`: create, snapshot, append events, and follow them as server-sent
//! events (history first, then live), each with its sequence number as the SSE id so a client
//! reconnecting with `Last-Event-ID` misses nothing. Only the owner may read or write a run; to
//! anyone else it does not exist (404).
//!
//! Live delivery: every append is announced on an in-process broadcast; with PostgreSQL the
//! append NOTIFYs and every server process LISTENs (`Db::listen_runs`), so subscribers on any
//! process hear it.
//! A subscriber subscribes before it reads history, and always reads from the database what comes
//! after the last event it sent, so nothing falls between history and live.

use crate::AppState;
use crate::api::require_principal;
use crate::error::AppError;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mogplex_protocol::routes;
use mogplex_protocol::{AppendedRunEvent, RunInfo, V1Ok};
use std::time::Duration;
use tokio::sync::broadcast;

/// The largest event (larger ones are 413), and history read per query. The runs an account
/// may create per day (429) and the events a run may hold (413) are in [`crate::Config`].
const MAX_EVENT_BYTES: usize = 64 * 1024;
const PAGE: i64 = 500;
/// The window of the runs-per-account cap, and the wait a refusal advises.
const DAY: i64 = 24 * 3600;
const DAY_RETRY: axum::http::HeaderValue = axum::http::HeaderValue::from_static("3600");

/// The in-process announcement of appended events: `(run_id, seq)`.
#[derive(Debug, Clone)]
pub struct RunBus(broadcast::Sender<(String, i64)>);

impl Default for RunBus {
    fn default() -> Self {
        Self(broadcast::channel(1024).0)
    }
}

impl RunBus {
    pub fn announce(&self, run_id: &str, seq: i64) {
        let _ = self.0.send((run_id.to_owned(), seq));
    }
}

fn not_found() -> AppError {
    AppError::V1 {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: "no such run".into(),
        bearer_error: None,
    }
}

fn valid_run_id(id: &str) -> bool {
    id.len() <= 128
        && id.strip_prefix("run_").is_some_and(|r| {
            !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

pub async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let p = require_principal(&s, &headers).await?;
    let title = if body.is_empty() {
        String::new()
    } else {
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| AppError::V1 {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: "the body must be a JSON object such as {\"title\":\"…\"}".into(),
            bearer_error: None,
        })?;
        v.get("title")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect()
    };
    let made =
        s.db.runs_created_since(&p.user_id, crate::crypto::now() - DAY)
            .await?;
    if made >= s.cfg.runs_per_day {
        let mut r = AppError::V1 {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            message: format!(
                "this account created {} runs in the last 24 hours, the most allowed; try again later",
                s.cfg.runs_per_day
            ),
            bearer_error: None,
        }
        .into_response();
        r.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, DAY_RETRY);
        return Ok(r);
    }
    let (id, created) = s.db.create_run(&p.user_id, &title).await?;
    let run = RunInfo {
        id,
        title,
        created_at: created.into(),
        event_count: None,
        last_event_id: None,
    };
    Ok((StatusCode::CREATED, Json(V1Ok::new(run))).into_response())
}

pub async fn snapshot(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let p = require_principal(&s, &headers).await?;
    if !valid_run_id(&id) {
        return Err(not_found());
    }
    let (title, created, count, last) =
        s.db.run_of(&id, &p.user_id).await?.ok_or_else(not_found)?;
    let run = RunInfo {
        id,
        title,
        created_at: created.into(),
        event_count: Some(count),
        last_event_id: Some(last),
    };
    Ok(Json(V1Ok::new(run)).into_response())
}

pub async fn append(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    let p = require_principal(&s, &headers).await?;
    if !valid_run_id(&id) {
        return Err(not_found());
    }
    let (_, _, count, _) = s.db.run_of(&id, &p.user_id).await?.ok_or_else(not_found)?;
    let bad = |m: &str| AppError::V1 {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_request",
        message: m.into(),
        bearer_error: None,
    };
    let too_large = |m: String| AppError::V1 {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "too_large",
        message: m,
        bearer_error: None,
    };
    if body.len() > MAX_EVENT_BYTES {
        return Err(too_large(format!(
            "an event is at most {} KiB",
            MAX_EVENT_BYTES / 1024
        )));
    }
    if count >= s.cfg.events_per_run {
        return Err(too_large(format!(
            "this run holds {} events, the most a run may; start a new run",
            s.cfg.events_per_run
        )));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| bad("an event is a JSON object"))?;
    if !v.is_object() {
        return Err(bad("an event is a JSON object"));
    }
    let appended = s.db.append_run_event(&id, &v.to_string()).await?;
    if !appended.heard_by_listeners {
        s.runs.announce(&id, appended.seq);
    }
    let appended = AppendedRunEvent { id: appended.seq };
    Ok((StatusCode::CREATED, Json(V1Ok::new(appended))).into_response())
}

struct Follow {
    state: AppState,
    run: String,
    last: i64,
    pending: std::collections::VecDeque<(i64, String)>,
    rx: broadcast::Receiver<(String, i64)>,
    /// Counts this follower in `/metrics` while the stream lives.
    _counted: crate::metrics::SubscriberGuard,
}

pub async fn events(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let p = require_principal(&s, &headers).await?;
    if !valid_run_id(&id) {
        return Err(not_found());
    }
    // Subscribe before reading anything, so an append between the two is not missed.
    let rx = s.runs.0.subscribe();
    s.db.run_of(&id, &p.user_id).await?.ok_or_else(not_found)?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0)
        .max(0);
    let counted = s.metrics.subscriber();
    let follow = Follow {
        state: s,
        run: id,
        last: after,
        pending: Default::default(),
        rx,
        _counted: counted,
    };
    let stream = futures_util::stream::unfold(follow, |mut f| async move {
        loop {
            if let Some((seq, event)) = f.pending.pop_front() {
                f.last = seq;
                let ev = Event::default()
                    .id(seq.to_string())
                    .event("run.event")
                    .data(event);
                return Some((Ok::<_, std::convert::Infallible>(ev), f));
            }
            match f.state.db.run_events_after(&f.run, f.last, PAGE).await {
                Ok(rows) if !rows.is_empty() => {
                    f.pending.extend(rows);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("reading run events failed: {e}");
                    return None;
                }
            }
            // Caught up: wait for an announcement about this run (or a lag, after which we
            // re-read anyway).
            loop {
                let heard = tokio::select! {
                    h = f.rx.recv() => h,
                    // Shutdown: end the stream so the server can close (the client reconnects
                    // with Last-Event-ID to another process, or to this one restarted).
                    () = f.state.closing.wait() => return None,
                };
                match heard {
                    Ok((run, seq)) if run == f.run && seq > f.last => break,
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// The runs endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(routes::RUNS, post(create))
        .route(routes::RUN, get(snapshot))
        .route(routes::RUN_EVENTS, get(events).post(append))
}
