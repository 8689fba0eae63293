//! The HTTP side of the adapters: one client, one streaming chat call per API shape.
//!
//! Tool calls travel in OpenAI's shape everywhere in mogplex ([`mogplex_protocol::ToolCall`]);
//! the Anthropic adapter translates tools, `tool_use` blocks and `tool_result` messages to and
//! from it. A streamed call is gathered whole before it is handed on, in [`Finish::tool_calls`].

use crate::catalog::{Api, join};
use crate::error::{ErrorKind, ProviderError};
use crate::select::Selection;
use mogplex_auth::Provider;
use mogplex_protocol::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage, CliModel, Role,
    SseEvent, SseParser, StreamOptions, Tool, ToolCall, Usage,
};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Response, Url};
use std::time::Duration;

/// Anthropic's API version header; the Messages API shape below is this version's.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`.
const ANTHROPIC_MAX_TOKENS: u32 = 8192;
/// Error bodies are read up to this size.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// What a stream produces, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Text of the answer.
    Delta(String),
    /// A raw `data:` frame as received (for debug logs; may hold anything the provider sent).
    Frame(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Finish {
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    /// The tools the model called, complete, in its order; the turn goes on once their results
    /// are sent back.
    pub tool_calls: Vec<ToolCall>,
}

#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub selection: Selection,
    pub base_url: Url,
    pub model: String,
    pub messages: Vec<ChatMessage>,
    /// The functions the model may call (none: the request has no `tools`).
    pub tools: Vec<Tool>,
}

#[derive(Debug, Clone)]
pub struct ModelClient {
    pub(crate) http: reqwest::Client,
}

impl ModelClient {
    /// Streams have no overall timeout, only one between chunks. Trusts the same extra roots
    /// (`SSL_CERT_FILE`) as the sign-in client.
    pub fn new() -> Result<Self, String> {
        let b = reqwest::Client::builder()
            .user_agent(concat!("mogplex/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .redirect(reqwest::redirect::Policy::none());
        let http = mogplex_auth::oauth::with_extra_roots(b)?
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http })
    }

    /// The Mogplex account's model catalog (`GET /api/models?format=cli`).
    pub async fn account_models(
        &self,
        selection: &Selection,
        base_url: &Url,
    ) -> Result<Vec<CliModel>, ProviderError> {
        let provider = selection.provider();
        let url = join(base_url, mogplex_protocol::MODELS_PATH);
        let resp = self
            .http
            .get(url)
            .query(&[("format", "cli")])
            .header(AUTHORIZATION, bearer(selection.credential.secret.expose())?)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| ProviderError::from_reqwest(provider, &e))?;
        let resp = check_status(provider, resp).await?;
        resp.json().await.map_err(|e| {
            ProviderError::new(
                ErrorKind::Protocol,
                provider,
                format!("the model catalog did not parse: {e}"),
            )
        })
    }

    /// The first model of the Mogplex account's catalog.
    pub async fn account_default_model(
        &self,
        selection: &Selection,
        base_url: &Url,
    ) -> Result<String, ProviderError> {
        let models = self.account_models(selection, base_url).await?;
        models.into_iter().next().map(|m| m.slug).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NoModelAccess,
                selection.provider(),
                "the account's model catalog is empty",
            )
        })
    }

    /// Sends one chat turn and streams the answer to `on_event`.
    pub async fn chat(
        &self,
        req: &ChatRequest,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Finish, ProviderError> {
        let provider = req.selection.provider();
        let secret = req.selection.credential.secret.expose();
        let spec = &req.selection.spec;
        let (url, headers, body) = match spec.api {
            Api::OpenAiCompatible | Api::MogplexGateway => {
                let path = if spec.api == Api::MogplexGateway {
                    mogplex_protocol::INFERENCE_PATH
                } else {
                    "/chat/completions"
                };
                let mut headers = HeaderMap::new();
                headers.insert(AUTHORIZATION, bearer(secret)?);
                let body = ChatCompletionRequest {
                    model: req.model.clone(),
                    messages: req.messages.clone(),
                    stream: true,
                    stream_options: spec.stream_usage.then_some(StreamOptions {
                        include_usage: true,
                    }),
                    max_tokens: None,
                    temperature: None,
                    tools: req.tools.clone(),
                };
                (
                    join(&req.base_url, path),
                    headers,
                    serde_json::to_value(&body),
                )
            }
            Api::AnthropicMessages => {
                let mut headers = HeaderMap::new();
                headers.insert("x-api-key", sensitive(secret)?);
                headers.insert(
                    "anthropic-version",
                    HeaderValue::from_static(ANTHROPIC_VERSION),
                );
                (
                    join(&req.base_url, "/v1/messages"),
                    headers,
                    Ok(anthropic_body(&req.model, &req.messages, &req.tools)),
                )
            }
        };
        let body =
            body.map_err(|e| ProviderError::new(ErrorKind::Protocol, provider, e.to_string()))?;
        let resp = self
            .http
            .post(url)
            .headers(headers)
            .header(ACCEPT, "text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| ProviderError::from_reqwest(provider, &e))?;
        let resp = check_status(provider, resp).await?;
        let is_sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            return whole_answer(provider, spec.api, resp, on_event).await;
        }
        let mut state = match spec.api {
            Api::AnthropicMessages => StreamState::Anthropic(AnthropicState::default()),
            _ => StreamState::OpenAi(OpenAiState::default()),
        };
        read_sse(provider, resp, |ev| {
            on_event(StreamEvent::Frame(ev.data.clone()));
            match &mut state {
                StreamState::OpenAi(s) => s.on(provider, ev, on_event),
                StreamState::Anthropic(s) => s.on(provider, ev, on_event),
            }
        })
        .await?;
        match state {
            StreamState::OpenAi(s) => s.finish(provider),
            StreamState::Anthropic(s) => s.finish(provider),
        }
    }
}

fn sensitive(value: &str) -> Result<HeaderValue, ProviderError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        ProviderError::new(
            ErrorKind::BadRequest,
            Provider::Mogplex,
            "the credential contains characters that cannot be sent in a header",
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

pub(crate) fn bearer(token: &str) -> Result<HeaderValue, ProviderError> {
    sensitive(&format!("Bearer {token}"))
}

pub(crate) async fn check_status(
    provider: Provider,
    resp: Response,
) -> Result<Response, ProviderError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_capped(resp, MAX_ERROR_BODY).await;
    Err(ProviderError::from_status(
        provider,
        status.as_u16(),
        &body,
        retry_after,
    ))
}

async fn read_capped(mut resp: Response, cap: usize) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.extend_from_slice(&chunk);
        if buf.len() >= cap {
            buf.truncate(cap);
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Drives an SSE body through `on` until it ends or `on` says it is done.
pub(crate) async fn read_sse(
    provider: Provider,
    mut resp: Response,
    mut on: impl FnMut(&SseEvent) -> Result<Flow, ProviderError>,
) -> Result<(), ProviderError> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    loop {
        let chunk = resp.chunk().await.map_err(|e| {
            let mut err = ProviderError::from_reqwest(provider, &e);
            err.message = format!("the stream broke off: {}", err.message);
            err
        })?;
        let Some(chunk) = chunk else { return Ok(()) };
        parser.push(&chunk, &mut events).map_err(|_| {
            ProviderError::new(
                ErrorKind::Protocol,
                provider,
                "the stream sent a line over 4 MiB",
            )
        })?;
        for ev in events.drain(..) {
            if on(&ev)? == Flow::Done {
                return Ok(());
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    More,
    Done,
}

/// Parses one `data:` frame as JSON.
fn parse_frame(provider: Provider, data: &str) -> Result<serde_json::Value, ProviderError> {
    serde_json::from_str(data).map_err(|e| {
        ProviderError::new(
            ErrorKind::Protocol,
            provider,
            format!("a stream frame did not parse: {e}"),
        )
    })
}

/// The error an in-stream error frame carries.
fn in_stream_error(provider: Provider, data: &str) -> ProviderError {
    let (message, _) = crate::error::error_message(data);
    ProviderError::new(
        ErrorKind::InStream,
        provider,
        message.unwrap_or_else(|| "the stream reported an error".into()),
    )
}

/// The error for a stream that ended without its end marker.
fn ended_early(provider: Provider) -> ProviderError {
    ProviderError::new(
        ErrorKind::Protocol,
        provider,
        "the stream ended before the answer was complete",
    )
}

enum StreamState {
    OpenAi(OpenAiState),
    Anthropic(AnthropicState),
}

#[derive(Default)]
struct OpenAiState {
    done: bool,
    finish: Finish,
    /// Tool calls being streamed, by their `index`.
    calls: std::collections::BTreeMap<u32, ToolCall>,
}

/// Streams larger than this many tool calls in one answer are malformed.
const MAX_TOOL_CALLS: usize = 128;

impl OpenAiState {
    fn on(
        &mut self,
        provider: Provider,
        ev: &SseEvent,
        out: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Flow, ProviderError> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(Flow::Done);
        }
        if data.is_empty() {
            return Ok(Flow::More);
        }
        let value = parse_frame(provider, data)?;
        if value.get("error").is_some_and(|e| !e.is_null()) || ev.event.as_deref() == Some("error")
        {
            return Err(in_stream_error(provider, data));
        }
        let chunk: ChatCompletionChunk = serde_json::from_value(value).map_err(|e| {
            ProviderError::new(
                ErrorKind::Protocol,
                provider,
                format!("a stream frame had an unexpected shape: {e}"),
            )
        })?;
        for choice in chunk.choices {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                out(StreamEvent::Delta(text));
            }
            for d in choice.delta.tool_calls.unwrap_or_default() {
                if !self.calls.contains_key(&d.index) && self.calls.len() >= MAX_TOOL_CALLS {
                    return Err(ProviderError::new(
                        ErrorKind::Protocol,
                        provider,
                        format!("the answer called more than {MAX_TOOL_CALLS} tools"),
                    ));
                }
                let call = self
                    .calls
                    .entry(d.index)
                    .or_insert_with(|| ToolCall::new("", "", ""));
                if let Some(id) = d.id {
                    call.id = id;
                }
                if let Some(f) = d.function {
                    if let Some(name) = f.name {
                        call.function.name.push_str(&name);
                    }
                    if let Some(args) = f.arguments {
                        call.function.arguments.push_str(&args);
                    }
                }
            }
            if choice.finish_reason.is_some() {
                self.finish.finish_reason = choice.finish_reason;
            }
        }
        if chunk.usage.is_some() {
            self.finish.usage = chunk.usage;
        }
        Ok(Flow::More)
    }

    fn finish(mut self, provider: Provider) -> Result<Finish, ProviderError> {
        if self.done || self.finish.finish_reason.is_some() {
            self.finish.tool_calls = self.calls.into_values().collect();
            Ok(self.finish)
        } else {
            Err(ended_early(provider))
        }
    }
}

#[derive(Default)]
struct AnthropicState {
    done: bool,
    finish: Finish,
    input_tokens: u64,
    /// `tool_use` blocks being streamed, by block index.
    calls: std::collections::BTreeMap<u64, ToolCall>,
}

impl AnthropicState {
    fn on(
        &mut self,
        provider: Provider,
        ev: &SseEvent,
        out: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Flow, ProviderError> {
        let value = parse_frame(provider, &ev.data)?;
        let kind = ev
            .event
            .as_deref()
            .or_else(|| value.get("type").and_then(|t| t.as_str()))
            .unwrap_or("");
        match kind {
            "message_start" => {
                self.input_tokens = value
                    .pointer("/message/usage/input_tokens")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0);
            }
            "content_block_start" => {
                let block = value.get("content_block");
                if block.and_then(|b| b.get("type")).and_then(|t| t.as_str()) == Some("tool_use") {
                    if self.calls.len() >= MAX_TOOL_CALLS {
                        return Err(ProviderError::new(
                            ErrorKind::Protocol,
                            provider,
                            format!("the answer called more than {MAX_TOOL_CALLS} tools"),
                        ));
                    }
                    let field = |k: &str| {
                        block
                            .and_then(|b| b.get(k))
                            .and_then(|v| v.as_str())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let index = value.get("index").and_then(|v| v.as_u64()).unwrap_or(0);
                    self.calls
                        .insert(index, ToolCall::new(field("id"), field("name"), ""));
                }
            }
            "content_block_delta" => {
                if let Some(text) = value
                    .pointer("/delta/text")
                    .and_then(|t| t.as_str())
                    .filter(|t| !t.is_empty())
                {
                    out(StreamEvent::Delta(text.to_owned()));
                }
                if let Some(json) = value
                    .pointer("/delta/partial_json")
                    .and_then(|t| t.as_str())
                {
                    let index = value.get("index").and_then(|v| v.as_u64()).unwrap_or(0);
                    if let Some(call) = self.calls.get_mut(&index) {
                        call.function.arguments.push_str(json);
                    }
                }
            }
            "message_delta" => {
                if let Some(r) = value.pointer("/delta/stop_reason").and_then(|v| v.as_str()) {
                    self.finish.finish_reason = Some(r.to_owned());
                }
                if let Some(o) = value
                    .pointer("/usage/output_tokens")
                    .and_then(|v| v.as_u64())
                {
                    self.finish.usage = Some(Usage {
                        prompt_tokens: self.input_tokens,
                        completion_tokens: o,
                        total_tokens: self.input_tokens + o,
                    });
                }
            }
            "message_stop" => {
                self.done = true;
                return Ok(Flow::Done);
            }
            "error" => return Err(in_stream_error(provider, &ev.data)),
            _ => {}
        }
        Ok(Flow::More)
    }

    fn finish(mut self, provider: Provider) -> Result<Finish, ProviderError> {
        if self.done {
            self.finish.tool_calls = self
                .calls
                .into_values()
                .map(|mut c| {
                    // A tool_use with no input streams no delta: its input is `{}`.
                    if c.function.arguments.is_empty() {
                        c.function.arguments = "{}".into();
                    }
                    c
                })
                .collect();
            Ok(self.finish)
        } else {
            Err(ended_early(provider))
        }
    }
}

/// The Messages API body: system messages joined into `system`, an assistant's tool calls as
/// `tool_use` blocks (after its text), and the results that follow them as `tool_result` blocks
/// of one user message (the API wants every result of a turn in the next user message).
fn anthropic_body(model: &str, messages: &[ChatMessage], tools: &[Tool]) -> serde_json::Value {
    use serde_json::{Value, json};
    let system: Vec<&str> = messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect();
    let mut turns: Vec<Value> = Vec::new();
    for m in messages.iter().filter(|m| m.role != Role::System) {
        match m.role {
            Role::Assistant if !m.tool_calls.is_empty() => {
                let mut blocks = Vec::new();
                if !m.content.is_empty() {
                    blocks.push(json!({"type": "text", "text": m.content}));
                }
                for c in &m.tool_calls {
                    let input: Value = serde_json::from_str(&c.function.arguments)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({}));
                    blocks.push(json!({"type": "tool_use", "id": c.id, "name": c.function.name, "input": input}));
                }
                turns.push(json!({"role": "assistant", "content": blocks}));
            }
            Role::Tool => {
                let block = json!({
                    "type": "tool_result",
                    "tool_use_id": m.tool_call_id.as_deref().unwrap_or_default(),
                    "content": m.content,
                });
                let follows_result = turns.last().is_some_and(|t| {
                    t["role"] == "user"
                        && t["content"]
                            .as_array()
                            .is_some_and(|b| b.iter().all(|b| b["type"] == "tool_result"))
                });
                match turns.last_mut() {
                    Some(last) if follows_result => {
                        if let Some(blocks) = last["content"].as_array_mut() {
                            blocks.push(block);
                        }
                    }
                    _ => turns.push(json!({"role": "user", "content": [block]})),
                }
            }
            Role::Assistant => turns.push(json!({"role": "assistant", "content": m.content})),
            _ => turns.push(json!({"role": "user", "content": m.content})),
        }
    }
    let mut body = json!({
        "model": model,
        "max_tokens": ANTHROPIC_MAX_TOKENS,
        "messages": turns,
        "stream": true,
    });
    if !system.is_empty() {
        body["system"] = Value::String(system.join("\n\n"));
    }
    if !tools.is_empty() {
        body["tools"] = tools
            .iter()
            .map(|t| {
                let mut v = json!({"name": t.function.name, "input_schema": t.function.parameters});
                if let Some(d) = &t.function.description {
                    v["description"] = json!(d);
                }
                v
            })
            .collect();
    }
    body
}

/// A provider that ignored `stream: true` and answered with one JSON document.
async fn whole_answer(
    provider: Provider,
    api: Api,
    resp: Response,
    on_event: &mut (dyn FnMut(StreamEvent) + Send),
) -> Result<Finish, ProviderError> {
    let text = resp
        .text()
        .await
        .map_err(|e| ProviderError::from_reqwest(provider, &e))?;
    let protocol = |what: String| ProviderError::new(ErrorKind::Protocol, provider, what);
    if api == Api::AnthropicMessages {
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| protocol(format!("the answer did not parse: {e}")))?;
        let content = v
            .get("content")
            .and_then(|c| c.as_array())
            .cloned()
            .unwrap_or_default();
        let mut tool_calls = Vec::new();
        for block in content {
            if block.get("type").and_then(|t| t.as_str()) == Some("tool_use") {
                let field = |k: &str| block.get(k).and_then(|v| v.as_str()).unwrap_or_default();
                let input = block
                    .get("input")
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!({}));
                tool_calls.push(ToolCall::new(field("id"), field("name"), input.to_string()));
            } else if let Some(t) = block.get("text").and_then(|t| t.as_str()) {
                on_event(StreamEvent::Delta(t.to_owned()));
            }
        }
        let reason = v
            .get("stop_reason")
            .and_then(|r| r.as_str())
            .map(str::to_owned);
        return Ok(Finish {
            finish_reason: reason,
            usage: None,
            tool_calls,
        });
    }
    let c: ChatCompletion = serde_json::from_str(&text)
        .map_err(|e| protocol(format!("the answer did not parse: {e}")))?;
    let mut finish = Finish {
        finish_reason: None,
        usage: c.usage,
        tool_calls: Vec::new(),
    };
    if let Some(choice) = c.choices.into_iter().next() {
        if !choice.message.content.is_empty() {
            on_event(StreamEvent::Delta(choice.message.content));
        }
        finish.finish_reason = choice.finish_reason;
        finish.tool_calls = choice.message.tool_calls;
    }
    Ok(finish)
}
