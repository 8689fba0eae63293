//! The inference gateway (`POST /api/cli/inference/chat/completions`, alias
//! `/api/cli/openai/chat/completions`) and the CLI model catalog (`GET /api/models?format=cli`).
//!
//! The caller's plan decides which models it may use, checked on every request. A model's
//! upstream is the built-in `mogplex/echo` (restates the last user message, streamed in several
//! chunks; answers `call <server>.<tool> <json arguments>` with exactly that tool call and a tool
//! result with its text, so tests of tool calls are exact) or an OpenAI-compatible provider,
//! proxied with streaming passed through (the request's `tools`, the assistant's `tool_calls` and
//! the `tool` messages go up as sent, streamed `tool_calls` come back as the upstream sends them);
//! its key comes from a server-side environment variable named in the model row and never appears
//! in a response or in the database.

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
    ChunkChoice, ChunkDelta, CliModel, CompletionChoice, FunctionCallDelta, ModelCaps, Role,
    ToolCall, ToolCallDelta, Usage,
};

pub const ECHO_MODEL: &str = "mogplex/echo";

/// Fixed one-minute windows per bearer token. On PostgreSQL the count is in the database
/// (`rate_counters`, one conditional upsert per request), so the limit holds across every process on
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
                .rate_take(&key, 60, i64::from(per_minute))
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
            tool_use: true,
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

/// What the echo model answers.
#[derive(Debug, PartialEq)]
enum EchoAnswer {
    Text(String),
    /// The tool call the user asked for (`call <server>.<tool> <json>`).
    Call(ToolCall),
}

/// The echo model's answer: a tool result's text when the last message is one, else the tool
/// call a `call <server>.<tool> <json object>` prompt asks for, else the last user message.
fn echo_answer(messages: &[ChatMessage]) -> EchoAnswer {
    if let Some(m) = messages.last().filter(|m| m.role == Role::Tool) {
        return EchoAnswer::Text(m.content.clone());
    }
    match messages.iter().rev().find(|m| m.role == Role::User) {
        Some(m) => match requested_call(&m.content) {
            Some(call) => EchoAnswer::Call(call),
            None => EchoAnswer::Text(m.content.clone()),
        },
        None => EchoAnswer::Text("(no user message)".into()),
    }
}

/// `call <server>.<tool> [<json object>]` → that call (arguments as written, `{}` when none).
fn requested_call(prompt: &str) -> Option<ToolCall> {
    let rest = prompt.trim().strip_prefix("call ")?.trim_start();
    let (name, args) = match rest.split_once(char::is_whitespace) {
        Some((name, args)) => (name, args.trim()),
        None => (rest, "{}"),
    };
    let (server, tool) = name.split_once('.')?;
    if server.is_empty() || tool.is_empty() {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(args)
        .ok()
        .filter(serde_json::Value::is_object)?;
    let id = format!(
        "call_{}",
        crate::crypto::hex(&crate::crypto::random_bytes::<8>())
    );
    Some(ToolCall::new(
        id,
        mogplex_protocol::tool_wire_name(server, tool),
        args,
    ))
}

/// Splits text into pieces of at most `n` characters, keeping every character.
fn chunks_of(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
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
    let answer = echo_answer(&req.messages);
    let (text, call) = match answer {
        EchoAnswer::Text(t) => (t, None),
        EchoAnswer::Call(c) => (String::new(), Some(c)),
    };
    let finish_reason = if call.is_some() { "tool_calls" } else { "stop" };
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
                message: ChatMessage::assistant_calls(text, call.into_iter().collect()),
                finish_reason: Some(finish_reason.into()),
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
    let mut frames = Vec::new();
    if let Some(call) = call {
        // The id and name first, then the arguments in pieces, as OpenAI streams a call.
        let piece = |id: Option<String>, name: Option<String>, args: String| ChunkDelta {
            tool_calls: Some(vec![ToolCallDelta {
                index: 0,
                id: id.clone(),
                kind: id.map(|_| "function".to_owned()),
                function: Some(FunctionCallDelta {
                    name,
                    arguments: Some(args),
                }),
            }]),
            ..ChunkDelta::default()
        };
        frames.push(chunk(
            ChunkDelta {
                role: Some(Role::Assistant),
                ..piece(Some(call.id), Some(call.function.name), String::new())
            },
            None,
            None,
        ));
        frames.extend(
            chunks_of(&call.function.arguments, 16)
                .into_iter()
                .map(|p| chunk(piece(None, None, p), None, None)),
        );
    } else {
        frames.push(chunk(
            ChunkDelta {
                role: Some(Role::Assistant),
                content: Some(String::new()),
                ..ChunkDelta::default()
            },
            None,
            None,
        ));
        frames.extend(pieces(&text).into_iter().map(|p| {
            chunk(
                ChunkDelta {
                    content: Some(p),
                    ..ChunkDelta::default()
                },
                None,
                None,
            )
        }));
    }
    frames.push(chunk(ChunkDelta::default(), Some(finish_reason), None));
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

    #[test]
    fn echo_calls_the_tool_a_prompt_names_then_echoes_its_result() {
        let prompt = ChatMessage::user(r#"call everything.echo {"message": "hi"}"#);
        let EchoAnswer::Call(call) = echo_answer(std::slice::from_ref(&prompt)) else {
            panic!("no call")
        };
        assert_eq!(call.function.name, "everything__echo");
        assert_eq!(call.function.arguments, r#"{"message": "hi"}"#);
        assert!(call.id.starts_with("call_"));
        let after = [
            prompt,
            ChatMessage::assistant_calls("", vec![call.clone()]),
            ChatMessage::tool_result(&call.id, "Echo: hi"),
        ];
        assert_eq!(echo_answer(&after), EchoAnswer::Text("Echo: hi".into()));
        assert_eq!(
            requested_call("call a.b").map(|c| c.function.arguments),
            Some("{}".into())
        );
        for not_a_call in [
            "call a.b [1]",
            "call ab {}",
            "call .b {}",
            "recall a.b {}",
            "call a.b {",
        ] {
            assert_eq!(
                echo_answer(&[ChatMessage::user(not_a_call)]),
                EchoAnswer::Text(not_a_call.into()),
                "{not_a_call}"
            );
        }
        assert_eq!(chunks_of("abcde", 2).concat(), "abcde");
    }
}
