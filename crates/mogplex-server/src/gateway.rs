//! The inference gateway (`POST /api/cli/inference/chat/completions`, alias
//! `/api/cli/openai/chat/completions`) and the CLI model catalog (`GET /api/models?format=cli`).
//!
//! This slice serves the built-in development model `mogplex/echo`, which restates the last user
//! message, streamed in several chunks. Plans, per-plan access and upstream providers come next.

use crate::AppState;
use crate::api::{Bearer, bearer};
use crate::error::www_authenticate;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mogplex_protocol::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage, ChunkChoice,
    ChunkDelta, CliModel, CompletionChoice, ModelCaps, Role, Usage,
};
use serde_json::json;

pub const ECHO_MODEL: &str = "mogplex/echo";
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
    let mut r = (
        status,
        axum::Json(
            json!({"error": {"message": message, "type": "invalid_request_error", "code": code}}),
        ),
    )
        .into_response();
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
    if let Err(r) = authenticate(&s, &headers).await {
        return r;
    }
    axum::Json(vec![echo_model()]).into_response()
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
    if let Err(r) = authenticate(&s, &headers).await {
        return r;
    }
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
    if req.model != ECHO_MODEL {
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
        format!(
            "data: {}\n\n",
            serde_json::to_string(&c).unwrap_or_default()
        )
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
    frames.push("data: [DONE]\n\n".into());
    let stream = futures_util::stream::iter(
        frames
            .into_iter()
            .map(|f| Ok::<_, std::convert::Infallible>(Bytes::from(f))),
    );
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
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
