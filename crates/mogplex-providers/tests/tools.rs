//! Tool calls through both API shapes against a local fake upstream: the exact `tools` and
//! message bodies each adapter sends (the call and its result on the second request), and the
//! streamed call gathered whole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mogplex_auth::{MapEnv, Provider, Resolution};
use mogplex_protocol::{ChatMessage, Tool, ToolCall};
use mogplex_providers::{ChatRequest, Finish, ModelClient, StreamEvent, select};
use mogplex_testkit::{FakeServer, anthropic_tool_use_stream, openai_tool_call_stream};
use serde_json::json;
use std::collections::BTreeMap;

const KEY: &str = "test-key-0123456789abcdef";

fn echo_tool() -> Tool {
    Tool::function(
        "everything__echo",
        Some("Echoes back the input".into()),
        json!({"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}),
    )
}

/// One chat call with `messages` and the echo tool; the streamed text and the finish.
fn chat(
    server: &FakeServer,
    provider: Provider,
    base: &str,
    messages: Vec<ChatMessage>,
) -> (String, Finish) {
    let spec = mogplex_providers::spec(provider);
    let env = MapEnv::new([
        (provider.env_var().to_owned(), KEY.to_owned()),
        (
            spec.base_url_var.to_owned(),
            format!("{}{base}", server.url()),
        ),
    ]);
    let resolution = Resolution::from_env(&env);
    let selection = select(&resolution, None, &BTreeMap::new()).unwrap();
    assert_eq!(selection.provider(), provider);
    let base_url = selection.spec.base_url(&env).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let req = ChatRequest {
            selection,
            base_url,
            model: "test-model".into(),
            messages,
            tools: vec![echo_tool()],
        };
        let mut text = String::new();
        let finish = ModelClient::new()
            .unwrap()
            .chat(&req, &mut |ev| {
                if let StreamEvent::Delta(t) = ev {
                    text.push_str(&t);
                }
            })
            .await
            .unwrap();
        (text, finish)
    })
}

fn history(call: &ToolCall) -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("be brief"),
        ChatMessage::user("call everything.echo {\"message\":\"hi\"}"),
        ChatMessage::assistant_calls("Calling.", vec![call.clone()]),
        ChatMessage::tool_result(&call.id, "Echo: hi"),
    ]
}

#[test]
fn openai_compatible_sends_tools_and_gathers_a_streamed_call() {
    let server = FakeServer::start();
    server.route(
        "/v1/chat/completions",
        openai_tool_call_stream("call_1", "everything__echo", &["{\"mess", "age\":\"hi\"}"]),
    );
    let (text, finish) = chat(
        &server,
        Provider::OpenAi,
        "/v1",
        vec![ChatMessage::user(
            "call everything.echo {\"message\":\"hi\"}",
        )],
    );
    assert_eq!(text, "");
    assert_eq!(finish.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(
        finish.tool_calls,
        vec![ToolCall::new(
            "call_1",
            "everything__echo",
            "{\"message\":\"hi\"}"
        )]
    );
    let body = server.requests()[0].json();
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {"name": "everything__echo",
            "description": "Echoes back the input",
            "parameters": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}}}])
    );

    // The second request carries the call and its result in OpenAI's shape.
    let call = finish.tool_calls[0].clone();
    chat(&server, Provider::OpenAi, "/v1", history(&call));
    let body = server.requests()[1].json();
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "call everything.echo {\"message\":\"hi\"}"},
            {"role": "assistant", "content": "Calling.", "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "everything__echo", "arguments": "{\"message\":\"hi\"}"}}]},
            {"role": "tool", "content": "Echo: hi", "tool_call_id": "call_1"}
        ])
    );
}

#[test]
fn anthropic_translates_tools_tool_use_and_tool_result() {
    let server = FakeServer::start();
    server.route(
        "/v1/messages",
        anthropic_tool_use_stream(
            "Calling.",
            "toolu_1",
            "everything__echo",
            &["{\"message\":", "\"hi\"}"],
        ),
    );
    let (text, finish) = chat(
        &server,
        Provider::Anthropic,
        "",
        vec![ChatMessage::user(
            "call everything.echo {\"message\":\"hi\"}",
        )],
    );
    assert_eq!(text, "Calling.");
    assert_eq!(finish.finish_reason.as_deref(), Some("tool_use"));
    assert_eq!(
        finish.tool_calls,
        vec![ToolCall::new(
            "toolu_1",
            "everything__echo",
            "{\"message\":\"hi\"}"
        )]
    );
    let body = server.requests()[0].json();
    assert_eq!(
        body["tools"],
        json!([{"name": "everything__echo", "description": "Echoes back the input",
            "input_schema": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}}])
    );

    let mut messages = history(&finish.tool_calls[0]);
    // A second result of the same turn joins the first in one user message.
    messages.push(ChatMessage::tool_result("toolu_2", "second"));
    chat(&server, Provider::Anthropic, "", messages);
    let body = server.requests()[1].json();
    assert_eq!(body["system"], "be brief");
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "call everything.echo {\"message\":\"hi\"}"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Calling."},
                {"type": "tool_use", "id": "toolu_1", "name": "everything__echo", "input": {"message": "hi"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Echo: hi"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "second"}]}
        ])
    );
}
