//! Plans, the catalog and the inference gateway: echo, and a proxied OpenAI-compatible upstream
//! (a local fake standing in for the provider on the internet).

use crate::both;
use crate::harness::*;
use mogplex_server::db::ModelRow;
use mogplex_testkit::{FakeServer, Reply, openai_stream, openai_stream_error};
use serde_json::json;

const UPSTREAM_KEY_ENV: &str = "MOGPLEX_TEST_UPSTREAM_KEY";
const UPSTREAM_KEY: &str = "sk-upstream-secret-0123456789abcdef";

fn upstream_model(slug: &str, base: &str) -> ModelRow {
    ModelRow {
        slug: slug.into(),
        provider: "openai".into(),
        display_name: "Upstream".into(),
        spec: json!({"slug": slug, "provider": "openai", "displayName": "Upstream", "inputModalities": ["text"],
            "caps": {"toolUse": true, "streaming": true, "reasoningEffort": false, "parallelToolCalls": false},
            "contextWindow": 128000, "pricing": {"inputPerMillion": 2.0, "outputPerMillion": 8.0, "currency": "USD"}})
        .to_string(),
        upstream_kind: "openai".into(),
        upstream_base_url: Some(base.into()),
        upstream_key_env: Some(UPSTREAM_KEY_ENV.into()),
        upstream_model: Some("gpt-real".into()),
    }
}

/// A user with a personal access token, on a plan with `models`.
async fn account(s: &TestServer, email: &str, plan: Option<&[&str]>) -> String {
    let uid = s.user(email).await;
    if let Some(models) = plan {
        let name = format!("plan-{email}");
        let models: Vec<String> = models.iter().map(|m| m.to_string()).collect();
        let pid = s.db().set_plan(&name, &models).await.unwrap().unwrap();
        s.db().assign_plan(&uid, Some(&pid)).await.unwrap();
    }
    let token = mogplex_server::crypto::personal_access_token();
    s.db().create_pat(&uid, "t", &token, None).await.unwrap();
    token
}

async fn chat(
    s: &TestServer,
    token: &str,
    body: serde_json::Value,
) -> (u16, String, reqwest::header::HeaderMap) {
    let r = plain()
        .post(format!("{}/api/cli/inference/chat/completions", s.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.text().await.unwrap(), headers)
}

/// The text of an SSE completion, and whether it ended with [DONE].
fn reassemble(sse: &str) -> (String, bool, Option<String>) {
    let mut text = String::new();
    let mut done = false;
    let mut error = None;
    for line in sse.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if line == "[DONE]" {
            done = true;
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(m) = v["error"]["message"].as_str() {
            error = Some(m.to_owned());
        }
        if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
    }
    (text, done, error)
}

async fn catalog_follows_the_plan(b: Backend) {
    let s = TestServer::start(b).await;
    s.db()
        .upsert_model(&mogplex_server::gateway::echo_row())
        .await
        .unwrap();
    s.db()
        .upsert_model(&upstream_model("mogplex/upstream", "http://127.0.0.1:9"))
        .await
        .unwrap();
    let both_models = account(
        &s,
        "both@example.com",
        Some(&["mogplex/echo", "mogplex/upstream"]),
    )
    .await;
    let echo_only = account(&s, "echo@example.com", Some(&["mogplex/echo"])).await;
    let no_plan = account(&s, "none@example.com", None).await;
    let list = |t: String| {
        let url = format!("{}/api/models?format=cli", s.url);
        async move {
            plain()
                .get(url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let all = list(both_models).await;
    assert_eq!(
        all.as_array()
            .unwrap()
            .iter()
            .map(|m| m["slug"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["mogplex/echo", "mogplex/upstream"]
    );
    assert_eq!(all[1]["pricing"]["outputPerMillion"], 8.0);
    assert_eq!(all[1]["caps"]["toolUse"], true);
    assert!(
        all.to_string().find("UPSTREAM").is_none() && !all.to_string().contains("127.0.0.1:9"),
        "no upstream details leak: {all}"
    );
    assert_eq!(list(echo_only).await.as_array().unwrap().len(), 1);
    assert_eq!(list(no_plan).await, json!([]));
    let r = plain()
        .get(format!("{}/api/models?format=cli", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
both!(catalog_follows_the_plan);

async fn no_access_is_a_clear_400(b: Backend) {
    let s = TestServer::start(b).await;
    s.db()
        .upsert_model(&mogplex_server::gateway::echo_row())
        .await
        .unwrap();
    let no_plan = account(&s, "none@example.com", None).await;
    let (status, body, _) = chat(
        &s,
        &no_plan,
        json!({"model": "mogplex/echo", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "no_model_access");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("Signed in")
            && m.contains("Available Models")
            && m.contains("Plans & Billing")
            && m.contains("/web/models"),
        "{m}"
    );
}
both!(no_access_is_a_clear_400);

async fn echo_streams_and_answers(b: Backend) {
    let s = TestServer::start(b).await;
    s.db()
        .upsert_model(&mogplex_server::gateway::echo_row())
        .await
        .unwrap();
    let t = account(&s, "ada@example.com", Some(&["mogplex/echo"])).await;
    let prompt = "one two three four five six seven";
    let (status, body, headers) = chat(&s, &t, json!({"model": "mogplex/echo", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": prompt}]})).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let (text, done, error) = reassemble(&body);
    assert_eq!((text.as_str(), done, error), (prompt, true, None));
    assert!(
        body.matches("data: ").count() >= 5,
        "several chunks: {body}"
    );
    let (status, body, _) = chat(
        &s,
        &t,
        json!({"model": "mogplex/echo", "messages": [{"role": "user", "content": "whole"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["choices"][0]["message"]["content"],
        "whole"
    );
    // The alias answers the same.
    let r = plain()
        .post(format!("{}/api/cli/openai/chat/completions", s.url))
        .bearer_auth(&t)
        .json(&json!({"model": "mogplex/echo", "messages": [{"role": "user", "content": "alias"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
both!(echo_streams_and_answers);

async fn proxies_an_openai_compatible_upstream(b: Backend) {
    let up = FakeServer::start();
    let s = TestServer::start_with(b, |c| {
        c.env.insert(UPSTREAM_KEY_ENV.into(), UPSTREAM_KEY.into());
    })
    .await;
    s.db()
        .upsert_model(&upstream_model(
            "mogplex/upstream",
            &format!("{}/v1", up.url()),
        ))
        .await
        .unwrap();
    let t = account(&s, "ada@example.com", Some(&["mogplex/upstream"])).await;
    let ask = |stream: bool| json!({"model": "mogplex/upstream", "stream": stream, "messages": [{"role": "user", "content": "hi"}]});

    up.route("/v1/chat/completions", openai_stream(&["Hel", "lo"]));
    let (status, body, _) = chat(&s, &t, ask(true)).await;
    assert_eq!(status, 200);
    assert_eq!(reassemble(&body), ("Hello".into(), true, None));
    let sent = up.requests().pop().unwrap();
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );
    assert_eq!(sent.json()["model"], "gpt-real", "renamed for the upstream");

    up.route("/v1/chat/completions", Reply::json(200, json!({"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-real",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole answer"}, "finish_reason": "stop"}]})));
    let (status, body, _) = chat(&s, &t, ask(false)).await;
    assert_eq!(status, 200);
    assert!(body.contains("whole answer"));

    // Errors before streaming: clear, and never the key even when the upstream quotes it.
    up.route(
        "/v1/chat/completions",
        Reply::json(
            401,
            json!({"error": {"message": format!("Incorrect API key provided: {UPSTREAM_KEY}")}}),
        ),
    );
    let (status, body, _) = chat(&s, &t, ask(true)).await;
    assert_eq!(status, 502);
    assert!(
        !body.contains(UPSTREAM_KEY) && body.contains("administrator"),
        "{body}"
    );
    up.route(
        "/v1/chat/completions",
        Reply::json(429, json!({"error": {"message": "slow down"}}))
            .with_header("retry-after", "12"),
    );
    let (status, _, headers) = chat(&s, &t, ask(true)).await;
    assert_eq!(
        (status, headers["retry-after"].to_str().unwrap()),
        (429, "12")
    );
    up.route(
        "/v1/chat/completions",
        Reply::json(
            500,
            json!({"error": {"message": format!("boom {UPSTREAM_KEY}")}}),
        ),
    );
    let (status, body, _) = chat(&s, &t, ask(true)).await;
    assert_eq!(status, 502);
    assert!(!body.contains(UPSTREAM_KEY), "{body}");
    // An error during streaming arrives as an in-stream error frame.
    up.route(
        "/v1/chat/completions",
        openai_stream_error(&["par", "tial"], "upstream fell over"),
    );
    let (status, body, _) = chat(&s, &t, ask(true)).await;
    assert_eq!(status, 200);
    let (text, done, error) = reassemble(&body);
    assert_eq!(
        (text.as_str(), done, error.as_deref()),
        ("partial", false, Some("upstream fell over"))
    );
    // The upstream connection breaking mid-answer: the gateway's own in-stream error frame.
    let Reply::Sse { frames, pause } = openai_stream(&["cut", " short"]) else {
        unreachable!()
    };
    up.route(
        "/v1/chat/completions",
        Reply::SseThenCut {
            frames: frames[..3].to_vec(),
            pause,
        },
    );
    let (status, body, _) = chat(&s, &t, ask(true)).await;
    assert_eq!(status, 200);
    let (text, done, error) = reassemble(&body);
    assert_eq!((text.as_str(), done), ("cut short", false));
    assert!(
        error.is_some_and(|e| e.contains("the model's provider stream failed")),
        "{body}"
    );
    // The key is in no database row.
    assert_eq!(s.count(&format!("SELECT COUNT(*) FROM models WHERE spec LIKE '%{UPSTREAM_KEY}%' OR upstream_key_env LIKE '%{UPSTREAM_KEY}%'")).await, 0);
}
both!(proxies_an_openai_compatible_upstream);

async fn tokens_are_rate_limited(b: Backend) {
    let s = TestServer::start_with(b, |c| c.gateway_per_minute = 3).await;
    s.db()
        .upsert_model(&mogplex_server::gateway::echo_row())
        .await
        .unwrap();
    let t = account(&s, "ada@example.com", Some(&["mogplex/echo"])).await;
    let other = account(&s, "bob@example.com", Some(&["mogplex/echo"])).await;
    let ask = json!({"model": "mogplex/echo", "messages": [{"role": "user", "content": "hi"}]});
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(chat(&s, &t, ask.clone()).await);
    }
    // Three fit in a minute's window unless the minute turned over during the loop.
    let limited: Vec<_> = statuses.iter().filter(|(st, _, _)| *st == 429).collect();
    assert!(
        limited.len() <= 1,
        "{:?}",
        statuses.iter().map(|x| x.0).collect::<Vec<_>>()
    );
    if let Some((_, body, headers)) = limited.first() {
        let wait: i64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait));
        assert!(body.contains("rate_limited"));
    } else {
        // The window rolled over mid-loop: the fifth and sixth requests of the new window prove it.
        for _ in 0..3 {
            chat(&s, &t, ask.clone()).await;
        }
        assert_eq!(chat(&s, &t, ask.clone()).await.0, 429);
    }
    assert_eq!(
        chat(&s, &other, ask.clone()).await.0,
        200,
        "limits are per token"
    );
}
both!(tokens_are_rate_limited);

async fn mcp_definitions_shape_and_encryption_at_rest(b: Backend) {
    let key = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
    let s = TestServer::start_with(b, |c| {
        c.env.insert("MOGPLEX_SECRETS_KEY".into(), key.into());
    })
    .await;
    let t = account(&s, "ada@example.com", None).await;
    let sealer = mogplex_server::secrets::SecretBox::from_config(&s.state.cfg).unwrap();
    let sealed = sealer
        .seal(&json!({"env": {"API_TOKEN": "tok-very-secret-42"}}).to_string())
        .unwrap();
    let uid = s
        .db()
        .user_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap()
        .0
        .id;
    s.db()
        .upsert_mcp(
            &uid,
            "tools",
            true,
            &json!({"command": "tools-mcp", "args": [], "env": {"MODE": "fast"}}).to_string(),
            Some(&sealed),
        )
        .await
        .unwrap();
    let v: serde_json::Value = plain()
        .get(format!("{}/api/v1/mogplex/mcp/servers", s.url))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(
        v["data"]["servers"][0]["config"],
        json!({"command": "tools-mcp", "args": [], "env": {"MODE": "fast", "API_TOKEN": "tok-very-secret-42"}})
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM mcp_servers WHERE secrets LIKE '%tok-very-secret%' OR config LIKE '%tok-very-secret%'").await, 0);
    // Another account sees none of them.
    let other = account(&s, "bob@example.com", None).await;
    let v: serde_json::Value = plain()
        .get(format!("{}/api/v1/mogplex/mcp/servers", s.url))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"]["servers"], json!([]));
}
both!(mcp_definitions_shape_and_encryption_at_rest);

async fn account_pages_show_plan_and_models(b: Backend) {
    let s = TestServer::start(b).await;
    s.db()
        .upsert_model(&mogplex_server::gateway::echo_row())
        .await
        .unwrap();
    account(&s, "ada@example.com", Some(&["mogplex/echo"])).await;
    account(&s, "bob@example.com", None).await;
    let c = browser();
    // Signed out: through sign-in and back.
    let r = c.get(format!("{}/web/models", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let r = sign_in(&s, &c, "ada@example.com", PASSWORD, "/web/models").await;
    assert_eq!(location(&r), "/web/models");
    let page = c
        .get(format!("{}/web/models", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("mogplex/echo") && page.contains("plan-ada@example.com"),
        "{page}"
    );
    let page = c
        .get(format!("{}/plans-and-billing", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Your plan is plan-ada@example.com"), "{page}");
    let c = browser();
    sign_in(&s, &c, "bob@example.com", PASSWORD, "/").await;
    let page = c
        .get(format!("{}/web/models", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("no plan yet"), "{page}");
    let page = c
        .get(format!("{}/plans-and-billing", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("plan assign"), "{page}");
}
both!(account_pages_show_plan_and_models);

/// The streamed tool call of an SSE completion: (id, name, arguments) and the finish reason.
fn reassemble_call(sse: &str) -> (String, String, String, Option<String>) {
    let (mut id, mut name, mut args, mut finish) =
        (String::new(), String::new(), String::new(), None);
    for line in sse.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if line == "[DONE]" {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let choice = &v["choices"][0];
        if let Some(r) = choice["finish_reason"].as_str() {
            finish = Some(r.to_owned());
        }
        let call = &choice["delta"]["tool_calls"][0];
        id.push_str(call["id"].as_str().unwrap_or_default());
        name.push_str(call["function"]["name"].as_str().unwrap_or_default());
        args.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
    }
    (id, name, args, finish)
}

async fn tool_calls_through_echo_and_an_upstream(b: Backend) {
    let up = FakeServer::start();
    let s = TestServer::start_with(b, |c| {
        c.env.insert(UPSTREAM_KEY_ENV.into(), UPSTREAM_KEY.into());
    })
    .await;
    s.db()
        .upsert_model(&mogplex_server::gateway::echo_row())
        .await
        .unwrap();
    s.db()
        .upsert_model(&upstream_model(
            "mogplex/upstream",
            &format!("{}/v1", up.url()),
        ))
        .await
        .unwrap();
    let t = account(
        &s,
        "ada@example.com",
        Some(&["mogplex/echo", "mogplex/upstream"]),
    )
    .await;
    let tools = json!([{"type": "function", "function": {"name": "everything__echo",
        "parameters": {"type": "object", "properties": {"message": {"type": "string"}}}}}]);
    let prompt = r#"call everything.echo {"message": "a longer message to stream"}"#;

    // The echo model answers the prompt with exactly that call, streamed in pieces…
    let (status, body, _) = chat(
        &s,
        &t,
        json!({"model": "mogplex/echo", "stream": true, "tools": tools,
        "messages": [{"role": "user", "content": prompt}]}),
    )
    .await;
    assert_eq!(status, 200);
    let (id, name, args, finish) = reassemble_call(&body);
    assert!(id.starts_with("call_"), "{body}");
    assert_eq!(name, "everything__echo");
    assert_eq!(args, r#"{"message": "a longer message to stream"}"#);
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    assert!(
        body.matches("\"arguments\"").count() > 2,
        "arguments in pieces: {body}"
    );

    // …and the tool's result with its text (the assistant's call has `content: null`, as OpenAI
    // clients send it).
    let history = json!([{"role": "user", "content": prompt},
        {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
            "function": {"name": name, "arguments": args}}]},
        {"role": "tool", "tool_call_id": id, "content": "Echo: a longer message to stream"}]);
    let (status, body, _) = chat(
        &s,
        &t,
        json!({"model": "mogplex/echo", "stream": true, "tools": tools, "messages": history}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        reassemble(&body),
        ("Echo: a longer message to stream".into(), true, None)
    );
    let (status, body, _) = chat(
        &s,
        &t,
        json!({"model": "mogplex/echo", "messages": [{"role": "user", "content": prompt}]}),
    )
    .await;
    assert_eq!(status, 200);
    let whole: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(whole["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        whole["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "everything__echo"
    );

    // An upstream gets the tools, the call and the result as sent, and its streamed call comes back.
    up.route(
        "/v1/chat/completions",
        mogplex_testkit::openai_tool_call_stream(
            "call_up",
            "everything__echo",
            &["{\"message\"", ":\"x\"}"],
        ),
    );
    let (status, body, _) = chat(
        &s,
        &t,
        json!({"model": "mogplex/upstream", "stream": true, "tools": tools, "messages": history}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        reassemble_call(&body),
        (
            "call_up".into(),
            "everything__echo".into(),
            "{\"message\":\"x\"}".into(),
            Some("tool_calls".into())
        )
    );
    let sent = up.requests().pop().unwrap().json();
    assert_eq!(sent["tools"], tools);
    assert_eq!(sent["messages"], history);
    assert_eq!(sent["model"], "gpt-real");
}
both!(tool_calls_through_echo_and_an_upstream);
