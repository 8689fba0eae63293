//! Every adapter against a real local HTTP server that checks what it receives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mogplex_auth::{MapEnv, Provider, Resolution};
use mogplex_protocol::ChatMessage;
use mogplex_providers::{
    Api, ChatRequest, ErrorKind, ModelClient, ProviderError, StreamEvent, select,
};
use mogplex_testkit::{
    FakeServer, Reply, anthropic_stream, anthropic_stream_error, openai_stream, openai_stream_error,
};
use std::collections::BTreeMap;

const KEY: &str = "test-key-0123456789abcdef";

/// The path each provider's default base URL puts in front of its endpoints (`/openai/v1` for
/// Groq), kept when the base URL is redirected to the fake server.
fn base_path(p: Provider) -> String {
    let url = mogplex_providers::Url::parse(p.spec().default_base_url).unwrap();
    url.path().trim_end_matches('/').to_owned()
}

struct Run {
    text: String,
    frames: usize,
    result: Result<mogplex_providers::Finish, ProviderError>,
}

fn run(server: &FakeServer, provider: Provider, model: Option<&str>) -> Run {
    let spec = mogplex_providers::spec(provider);
    let env = MapEnv::new([
        (provider.env_var().to_owned(), KEY.to_owned()),
        (
            spec.base_url_var.to_owned(),
            format!("{}{}", server.url(), base_path(provider)),
        ),
    ]);
    let resolution = Resolution::from_env(&env);
    let selection = select(&resolution, model, &BTreeMap::new()).unwrap();
    assert_eq!(selection.provider(), provider);
    let base_url = selection.spec.base_url(&env).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = ModelClient::new().unwrap();
        let model = match selection.model.clone() {
            Some(m) => m,
            None => client
                .account_default_model(&selection, &base_url)
                .await
                .unwrap(),
        };
        let req = ChatRequest {
            selection,
            base_url,
            model,
            messages: vec![ChatMessage::user("Say hi")],
            tools: vec![],
        };
        let mut text = String::new();
        let mut frames = 0;
        let result = client
            .chat(&req, &mut |ev| match ev {
                StreamEvent::Delta(t) => text.push_str(&t),
                StreamEvent::Frame(_) => frames += 1,
            })
            .await;
        Run {
            text,
            frames,
            result,
        }
    })
}

fn chat_path(p: Provider) -> String {
    let endpoint = match p.spec().api {
        Api::MogplexGateway => "/api/cli/inference/chat/completions",
        Api::AnthropicMessages => "/v1/messages",
        Api::OpenAiCompatible => "/chat/completions",
    };
    format!("{}{endpoint}", base_path(p))
}

#[test]
fn openai_compatible_providers_send_exact_requests_and_stream_answers() {
    let openai_compatible: Vec<Provider> = Provider::ALL
        .into_iter()
        .filter(|p| p.spec().api == Api::OpenAiCompatible)
        .collect();
    assert_eq!(openai_compatible.len(), 8);
    for provider in openai_compatible {
        let server = FakeServer::start();
        server.route(
            &chat_path(provider),
            openai_stream(&["Hel", "lo", " there"]),
        );
        let out = run(&server, provider, None);
        let finish = out.result.unwrap();
        assert_eq!(out.text, "Hello there", "{provider}");
        assert_eq!(finish.finish_reason.as_deref(), Some("stop"));
        assert!(out.frames >= 5);

        let reqs = server.requests();
        assert_eq!(reqs.len(), 1, "{provider}");
        let r = &reqs[0];
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", chat_path(provider).as_str()),
            "{provider}"
        );
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("accept"), Some("text/event-stream"));
        assert!(r.header("user-agent").unwrap().starts_with("mogplex/"));
        let body = r.json();
        let spec = mogplex_providers::spec(provider);
        assert_eq!(body["model"], spec.default_model().unwrap(), "{provider}");
        assert_eq!(body["stream"], true);
        assert_eq!(
            body["messages"],
            serde_json::json!([{"role": "user", "content": "Say hi"}])
        );
        if spec.stream_usage {
            assert_eq!(body["stream_options"]["include_usage"], true);
        } else {
            assert!(body.get("stream_options").is_none(), "{provider}");
        }
        assert_eq!(
            finish.usage.map(|u| u.completion_tokens),
            Some(3),
            "the final usage frame is read"
        );
    }
}

#[test]
fn mogplex_gateway_uses_the_catalog_default_and_bearer() {
    let server = FakeServer::start();
    server.route(
        "/api/models",
        Reply::json(200, serde_json::json!([{"slug": "mogplex/echo", "provider": "mogplex", "displayName": "Echo"}])),
    );
    server.route(
        "/api/cli/inference/chat/completions",
        openai_stream(&["Say", " hi"]),
    );
    let out = run(&server, Provider::Mogplex, None);
    out.result.unwrap();
    assert_eq!(out.text, "Say hi");
    let reqs = server.requests();
    assert_eq!(reqs[0].path, "/api/models");
    assert_eq!(reqs[0].query.as_deref(), Some("format=cli"));
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(reqs[1].json()["model"], "mogplex/echo");
}

#[test]
fn anthropic_uses_its_own_headers_and_body() {
    let server = FakeServer::start();
    server.route("/v1/messages", anthropic_stream(&["Hi", "!"]));
    let out = run(&server, Provider::Anthropic, Some("claude-test"));
    let finish = out.result.unwrap();
    assert_eq!(out.text, "Hi!");
    assert_eq!(finish.finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(finish.usage.unwrap().total_tokens, 9);
    let r = &server.requests()[0];
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("authorization"), None);
    let body = r.json();
    assert_eq!(body["model"], "claude-test");
    assert_eq!(body["max_tokens"], 8192);
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["messages"],
        serde_json::json!([{"role": "user", "content": "Say hi"}])
    );
}

#[test]
fn error_statuses_are_classified() {
    let cases = [
        (
            Reply::json(
                401,
                serde_json::json!({"error": {"message": "Incorrect API key provided"}}),
            ),
            ErrorKind::Unauthorized,
        ),
        (
            Reply::json(403, serde_json::json!({"error": {"message": "forbidden"}})),
            ErrorKind::Forbidden,
        ),
        (
            Reply::json(
                404,
                serde_json::json!({"error": {"message": "The model does not exist"}}),
            ),
            ErrorKind::NotFound,
        ),
        (
            Reply::json(429, serde_json::json!({"error": {"message": "slow down"}}))
                .with_header("retry-after", "7"),
            ErrorKind::RateLimited,
        ),
        (
            Reply::json(503, serde_json::json!({"error": {"message": "overloaded"}})),
            ErrorKind::Unavailable,
        ),
        (
            Reply::Status {
                status: 502,
                body: "<html>bad gateway</html>".into(),
                headers: vec![],
            },
            ErrorKind::Unavailable,
        ),
        (
            Reply::json(400, serde_json::json!({"error": {"message": "bad"}})),
            ErrorKind::BadRequest,
        ),
    ];
    for (reply, kind) in cases {
        let server = FakeServer::start();
        server.route("/v1/chat/completions", reply);
        let err = run(&server, Provider::OpenAi, None).result.unwrap_err();
        assert_eq!(err.kind, kind, "{err:?}");
        if kind == ErrorKind::RateLimited {
            assert_eq!(err.retry_after.as_deref(), Some("7"));
        }
    }
}

#[test]
fn gateway_no_model_access_is_recognised() {
    let server = FakeServer::start();
    server.route(
        "/api/cli/inference/chat/completions",
        Reply::json(400, serde_json::json!({"error": {"message": "Signed in, but this account has no model access. See Plans & Billing.", "code": "no_model_access"}})),
    );
    let err = run(&server, Provider::Mogplex, Some("mogplex/echo"))
        .result
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NoModelAccess);
    assert!(err.message.contains("no model access"));
}

#[test]
fn in_stream_errors_are_reported_not_swallowed() {
    let server = FakeServer::start();
    server.route(
        "/v1/chat/completions",
        openai_stream_error(&["partial"], "upstream exploded"),
    );
    let out = run(&server, Provider::OpenAi, None);
    assert_eq!(out.text, "partial");
    let err = out.result.unwrap_err();
    assert_eq!(
        (err.kind, err.message.as_str()),
        (ErrorKind::InStream, "upstream exploded")
    );

    let server = FakeServer::start();
    server.route(
        "/v1/messages",
        anthropic_stream_error(&["par"], "Overloaded"),
    );
    let out = run(&server, Provider::Anthropic, None);
    assert_eq!(out.text, "par");
    let err = out.result.unwrap_err();
    assert_eq!(
        (err.kind, err.message.as_str()),
        (ErrorKind::InStream, "Overloaded")
    );
}

#[test]
fn a_stream_cut_short_is_an_error() {
    let server = FakeServer::start();
    let Reply::Sse { mut frames, pause } = openai_stream(&["a", "b"]) else {
        unreachable!()
    };
    frames.truncate(2);
    server.route("/v1/chat/completions", Reply::Sse { frames, pause });
    let err = run(&server, Provider::OpenAi, None).result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Protocol);
}

#[test]
fn an_unreachable_server_is_unavailable() {
    let server = FakeServer::start();
    let url = server.url();
    drop(server);
    let env = MapEnv::new([("OPENAI_API_KEY", KEY), ("OPENAI_BASE_URL", url.as_str())]);
    let resolution = Resolution::from_env(&env);
    let selection = select(&resolution, None, &BTreeMap::new()).unwrap();
    let base_url = selection.spec.base_url(&env).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt
        .block_on(async {
            let req = ChatRequest {
                selection,
                base_url,
                model: "m".into(),
                messages: vec![ChatMessage::user("x")],
                tools: vec![],
            };
            ModelClient::new().unwrap().chat(&req, &mut |_| {}).await
        })
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
}

#[test]
fn anthropic_error_statuses_use_its_error_envelope() {
    let cases = [
        (
            401,
            "authentication_error",
            "invalid x-api-key",
            ErrorKind::Unauthorized,
        ),
        (
            529,
            "overloaded_error",
            "Overloaded",
            ErrorKind::Unavailable,
        ),
        (
            429,
            "rate_limit_error",
            "Number of requests has exceeded your rate limit",
            ErrorKind::RateLimited,
        ),
    ];
    for (status, kind, message, expected) in cases {
        let server = FakeServer::start();
        server.route(
            "/v1/messages",
            Reply::json(
                status,
                serde_json::json!({"type": "error", "error": {"type": kind, "message": message}}),
            ),
        );
        let err = run(&server, Provider::Anthropic, None).result.unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str(), err.status),
            (expected, message, Some(status))
        );
    }
}

#[test]
fn every_adapter_reports_an_error_status_and_an_in_stream_error() {
    for provider in Provider::ALL {
        // `provider/model` routes to that provider (a `mogplex/…` slug goes to the gateway whole).
        let model = format!("{}/some-model", provider.id());
        // An error status.
        let server = FakeServer::start();
        let status_reply = if provider == Provider::Anthropic {
            Reply::json(
                529,
                serde_json::json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}),
            )
        } else {
            Reply::json(503, serde_json::json!({"error": {"message": "busy"}}))
        };
        server.route(&chat_path(provider), status_reply);
        let err = run(&server, provider, Some(model.as_str()))
            .result
            .unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str()),
            (ErrorKind::Unavailable, "busy"),
            "{provider}"
        );

        // An error frame after part of the answer.
        let server = FakeServer::start();
        let reply = if provider == Provider::Anthropic {
            anthropic_stream_error(&["part"], "stream broke")
        } else {
            openai_stream_error(&["part"], "stream broke")
        };
        server.route(&chat_path(provider), reply);
        let out = run(&server, provider, Some(model.as_str()));
        assert_eq!(out.text, "part", "{provider}");
        let err = out.result.unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str()),
            (ErrorKind::InStream, "stream broke"),
            "{provider}"
        );
    }
}
