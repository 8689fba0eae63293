//! The inference gateway (`POST /api/cli/inference/chat/completions`, alias
//! `/api/cli/openai/chat/completions`) and the CLI model catalog (`GET /api/models?format=cli`).
//!
//! The caller's plan decides which models it may use, checked on every request. A model's
//! upstream is the built-in `mogplex/echo` (restates the last user message, streamed in several
//! chunks) or an OpenAI-compatible provider, proxied with streaming passed through; its key comes
//! from a server-side environment variable named in the model row and never appears in a
//! response or in the database.

use crate::AppState;
use crate::api::{Bearer, bearer};
use crate::error::www_authenticate;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mogplex_protocol::routes;
use mogplex_protocol::{
    ApiErrorBody, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage,
    ChunkChoice, ChunkDelta, CliModel, CompletionChoice, ModelCaps, Role, Usage,
};

pub const ECHO_MODEL: &str = "mogplex/echo";

/// Fixed one-minute windows per bearer token. On PostgreSQL the count is in the database
/// (`throttle`, one conditional upsert per request), so the limit holds across every process on
/// it; a SQLite file has one serving process, whose memory keeps the count.
#[derive(Debug, Default)]
pub struct Limiter {
    windows: std::sync::Mutex<std::collections::HashMap<String, (i64, u32)>>,
}

impl Limiter {
    /// `Ok(Ok(()))` when the request may go ahead, else the seconds until the window ends.
    pub async fn check(
        &self,
        db: &crate::db::Db,
        token_hash: &str,
        per_minute: u32,
    ) -> Result<Result<(), i64>, crate::db::DbError> {
        if let crate::db::Db::Postgres(_) = db {
            let key = format!("gateway:{token_hash}");
            return Ok(db
                .throttle_take(&key, 60, i64::from(per_minute))
                .await?
                .map(|_| ())
                .map_err(|until| (until - crate::crypto::now()).max(1)));
        }
        Ok(self.check_here(token_hash, per_minute))
    }

    /// The count in this process's memory.
    fn check_here(&self, token_hash: &str, per_minute: u32) -> Result<(), i64> {
        let now = crate::crypto::now();
        let window = now - now.rem_euclid(60);
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (w, _)| *w == window);
        }
        let entry = map.entry(token_hash.to_owned()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= per_minute {
            return Err((window + 60 - now).max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}
/// Chat requests may be larger than other bodies.
pub const MAX_CHAT_BODY: usize = 1024 * 1024;

fn echo_model() -> CliModel {
    CliModel {
        slug: ECHO_MODEL.into(),
        provider: "mogplex".into(),
        display_name: "Echo (development)".into(),
        input_modalities: vec!["text".into()],
        caps: ModelCaps {
            tool_use: false,
            streaming: true,
            reasoning_effort: false,
            parallel_tool_calls: false,
        },
        context_window: Some(32_768),
        pricing: None,
    }
}

/// An OpenAI-shaped error.
fn api_error(status: StatusCode, message: &str, code: Option<&str>) -> Response {
    let body = ApiErrorBody::new(message, "invalid_request_error", code);
    let mut r = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            www_authenticate(Some("invalid_token")),
        );
    }
    r
}

async fn authenticate(s: &AppState, headers: &HeaderMap) -> Result<crate::db::Principal, Response> {
    match bearer(s, headers).await {
        Ok(Bearer::Valid(p)) => Ok(p),
        Ok(_) => Err(api_error(
            StatusCode::UNAUTHORIZED,
            "sign in to Mogplex, or send a valid bearer token",
            None,
        )),
        Err(e) => Err(e.into_response()),
    }
}

pub async fn models(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let principal = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match s.db.plan_models(&principal.user_id).await {
        Ok(rows) => {
            axum::Json(rows.iter().filter_map(catalog_entry).collect::<Vec<_>>()).into_response()
        }
        Err(e) => crate::error::AppError::from(e).into_response(),
    }
}

/// The catalog entry stored for a model.
pub fn catalog_entry(m: &crate::db::ModelRow) -> Option<CliModel> {
    serde_json::from_str(&m.spec).ok()
}

/// The built-in development model's row.
pub fn echo_row() -> crate::db::ModelRow {
    crate::db::ModelRow {
        slug: ECHO_MODEL.into(),
        provider: "mogplex".into(),
        display_name: "Echo (development)".into(),
        spec: serde_json::to_string(&echo_model()).unwrap_or_default(),
        upstream_kind: "echo".into(),
        upstream_base_url: None,
        upstream_key_env: None,
        upstream_model: None,
    }
}

/// The echo model's answer: the last user message, restated.
fn echo_text(messages: &[ChatMessage]) -> String {
    match messages.iter().rev().find(|m| m.role == Role::User) {
        Some(m) => m.content.clone(),
        None => "(no user message)".into(),
    }
}

/// Splits text into pieces of a few words, keeping every character.
fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, word) in text.split_inclusive(char::is_whitespace).enumerate() {
        cur.push_str(word);
        if i % 3 == 2 {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

pub async fn chat_completions(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let principal = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let req: ChatCompletionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                &format!("the request body is not a chat completion request: {e}"),
                None,
            );
        }
    };
    let limited = s
        .limiter
        .check(&s.db, &principal.token_hash, s.cfg.gateway_per_minute)
        .await;
    let limited = match limited {
        Ok(l) => l,
        Err(e) => return crate::error::AppError::from(e).into_response(),
    };
    if let Err(wait) = limited {
        let mut r = api_error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("too many requests with this token; try again in {wait} seconds"),
            Some("rate_limited"),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return r;
    }
    let model = match s.db.allowed_model(&principal.user_id, &req.model).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            let base = &s.cfg.issuer;
            return api_error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "Signed in, but this account has no access to the model `{}`. See Available Models ({base}/web/models) and Plans & Billing ({base}/plans-and-billing).",
                    req.model
                ),
                Some(mogplex_protocol::NO_MODEL_ACCESS_CODE),
            );
        }
        Err(e) => return crate::error::AppError::from(e).into_response(),
    };
    match model.upstream_kind.as_str() {
        "echo" => echo(&req),
        "openai" => proxy(&s, &model, &body).await,
        other => {
            tracing::warn!(
                "model {} has an unknown upstream kind `{other}`",
                model.slug
            );
            api_error(
                StatusCode::BAD_GATEWAY,
                "this model's upstream is not configured correctly on the server",
                None,
            )
        }
    }
}

fn echo(req: &ChatCompletionRequest) -> Response {
    let text = echo_text(&req.messages);
    let id = format!(
        "chatcmpl-{}",
        crate::crypto::hex(&crate::crypto::random_bytes::<8>())
    );
    let created = crate::crypto::now().max(0) as u64;
    let usage = Usage {
        prompt_tokens: req
            .messages
            .iter()
            .map(|m| m.content.split_whitespace().count() as u64)
            .sum(),
        completion_tokens: text.split_whitespace().count() as u64,
        total_tokens: 0,
    };
    let usage = Usage {
        total_tokens: usage.prompt_tokens + usage.completion_tokens,
        ..usage
    };
    if !req.stream {
        return axum::Json(ChatCompletion {
            id,
            object: "chat.completion".into(),
            created,
            model: ECHO_MODEL.into(),
            choices: vec![CompletionChoice {
                index: 0,
                message: ChatMessage::assistant(text),
                finish_reason: Some("stop".into()),
            }],
            usage: Some(usage),
        })
        .into_response();
    }
    let chunk = |delta: ChunkDelta, finish: Option<&str>, usage: Option<Usage>| {
        let c = ChatCompletionChunk {
            id: id.clone(),
            object: "chat.completion.chunk".into(),
            created,
            model: ECHO_MODEL.into(),
            choices: if usage.is_some() {
                vec![]
            } else {
                vec![ChunkChoice {
                    index: 0,
                    delta,
                    finish_reason: finish.map(str::to_owned),
                }]
            },
            usage,
        };
        Event::default().data(serde_json::to_string(&c).unwrap_or_default())
    };
    let mut frames = vec![chunk(
        ChunkDelta {
            role: Some(Role::Assistant),
            content: Some(String::new()),
        },
        None,
        None,
    )];
    frames.extend(pieces(&text).into_iter().map(|p| {
        chunk(
            ChunkDelta {
                role: None,
                content: Some(p),
            },
            None,
            None,
        )
    }));
    frames.push(chunk(ChunkDelta::default(), Some("stop"), None));
    if req.stream_options.as_ref().is_some_and(|o| o.include_usage) {
        frames.push(chunk(ChunkDelta::default(), None, Some(usage)));
    }
    frames.push(Event::default().data("[DONE]"));
    let frames = frames.into_iter().map(Ok::<_, std::convert::Infallible>);
    Sse::new(futures_util::stream::iter(frames)).into_response()
}

/// Replaces the upstream key wherever an upstream echoes it back.
fn scrub(text: &str, key: &str) -> String {
    if key.len() >= 6 {
        text.replace(key, "[REDACTED]")
    } else {
        text.to_owned()
    }
}

/// Proxies to an OpenAI-compatible upstream: the caller's request with the model renamed, the
/// server's key, and the answer streamed back as it arrives. An upstream failure before the
/// stream starts is a clear error; one after it started is an in-stream error frame.
async fn proxy(s: &AppState, m: &crate::db::ModelRow, body: &[u8]) -> Response {
    let misconfigured = || {
        api_error(
            StatusCode::BAD_GATEWAY,
            "this model's upstream is not configured on the server; tell the server's administrator",
            None,
        )
    };
    let (Some(base), Some(key_env)) = (
        m.upstream_base_url.as_deref(),
        m.upstream_key_env.as_deref(),
    ) else {
        return misconfigured();
    };
    let Some(key) = s.cfg.var(key_env) else {
        tracing::warn!(
            "model {} needs the environment variable {key_env}, which is not set",
            m.slug
        );
        return misconfigured();
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "the request body is not JSON",
            None,
        );
    };
    value["model"] =
        serde_json::Value::String(m.upstream_model.clone().unwrap_or_else(|| m.slug.clone()));
    let url = format!("{}/chat/completions", base.trim_end_matches('/'));
    let upstream = match s
        .http
        .post(&url)
        .bearer_auth(&key)
        .json(&value)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("upstream {url} unreachable: {e}");
            return api_error(
                StatusCode::BAD_GATEWAY,
                "the model's provider could not be reached; try again shortly",
                None,
            );
        }
    };
    let status = upstream.status();
    if !status.is_success() {
        let retry_after = upstream.headers().get(header::RETRY_AFTER).cloned();
        let text = upstream.text().await.unwrap_or_default();
        let detail: String = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| text.chars().take(300).collect());
        let detail = scrub(&detail, &key);
        let (code, message) = match status.as_u16() {
            429 => (StatusCode::TOO_MANY_REQUESTS, format!("the model's provider is rate limiting: {detail}")),
            401 | 403 => (StatusCode::BAD_GATEWAY, "the server's credentials for this model's provider were refused; tell the server's administrator".to_owned()),
            400..=499 => (StatusCode::BAD_REQUEST, format!("the model's provider refused the request: {detail}")),
            _ => (StatusCode::BAD_GATEWAY, format!("the model's provider failed (HTTP {}): {detail}", status.as_u16())),
        };
        let mut r = api_error(code, &message, None);
        if let Some(ra) = retry_after.filter(|_| code == StatusCode::TOO_MANY_REQUESTS) {
            r.headers_mut().insert(header::RETRY_AFTER, ra);
        }
        return r;
    }
    let content_type = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/json"));
    use futures_util::StreamExt;
    let stream = upstream.bytes_stream().map(move |chunk| match chunk {
        Ok(b) => Ok::<_, std::convert::Infallible>(b),
        Err(e) => {
            let frame = ApiErrorBody::new(
                format!("the model's provider stream failed: {e}"),
                "upstream_error",
                None,
            );
            let frame = serde_json::to_string(&frame).unwrap_or_default();
            Ok(Bytes::from(format!("data: {frame}\n\n")))
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(header::CONTENT_TYPE, content_type);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The catalog and the chat completions endpoints (chat bodies may be larger).
pub fn routes() -> Router<AppState> {
    let chat = || post(chat_completions).layer(DefaultBodyLimit::max(MAX_CHAT_BODY));
    Router::new()
        .route(routes::MODELS, get(models))
        .route(routes::INFERENCE, chat())
        .route(routes::INFERENCE_ALIAS, chat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_keep_every_character() {
        for t in ["", "one", "a b c d e f g", "  spaced   out\n\ttext  "] {
            let p = pieces(t);
            assert_eq!(p.concat(), t);
            assert!(t.split_whitespace().count() < 4 || p.len() > 1);
        }
    }
}
