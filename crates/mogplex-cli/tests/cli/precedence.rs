//! Every row of the precedence rules of SPEC section 2, checked by which fake provider endpoint
//! received the request and with which key.

use crate::common::*;
use serde_json::json;

struct Case {
    name: &'static str,
    env: &'static [(&'static str, &'static str)],
    stored: serde_json::Value,
    /// The request path prefix of the provider that must be used, and the key it must receive.
    expect: Option<(&'static str, &'static str)>,
}

fn signed_in() -> serde_json::Value {
    json!({"version": 1, "mogplex": {"issuer": "https://www.mogplex.com", "access_token": "stored-session-token-1234567890",
        "refresh_token": "stored-refresh-token-1234567890", "token_type": "Bearer",
        "expires_at": "2099-01-01T00:00:00Z", "account": {"id": "u1", "email": "ada@example.com"}}})
}

#[test]
fn precedence_rows() {
    let cases = [
        Case {
            name: "env_mogplex_key_only",
            env: &[("MOGPLEX_API_KEY", "mog_envkey0123456789abcdef")],
            stored: json!({}),
            expect: Some(("/mogplex/", "mog_envkey0123456789abcdef")),
        },
        Case {
            name: "env_provider_key_only",
            env: &[("GROQ_API_KEY", "gsk_env0123456789")],
            stored: json!({}),
            expect: Some(("/groq/", "gsk_env0123456789")),
        },
        Case {
            name: "env_mogplex_before_provider_vars",
            env: &[
                ("OPENAI_API_KEY", "sk-env-openai-0123456789"),
                ("MOGPLEX_API_KEY", "mog_envkey0123456789abcdef"),
            ],
            stored: json!({}),
            expect: Some(("/mogplex/", "mog_envkey0123456789abcdef")),
        },
        Case {
            name: "provider_vars_in_table_order",
            env: &[
                ("OPENAI_API_KEY", "sk-env-openai-0123456789"),
                ("ANTHROPIC_API_KEY", "sk-ant-env-0123456789"),
            ],
            stored: json!({}),
            expect: Some(("/anthropic/", "sk-ant-env-0123456789")),
        },
        Case {
            name: "stored_provider_key_only",
            env: &[],
            stored: json!({"version": 1, "providers": {"mistral": {"apiKey": "stored-mistral-0123456789"}}}),
            expect: Some(("/mistral/", "stored-mistral-0123456789")),
        },
        Case {
            name: "stored_sign_in_only",
            env: &[],
            stored: signed_in(),
            expect: Some(("/mogplex/", "stored-session-token-1234567890")),
        },
        Case {
            name: "stored_provider_key_before_stored_sign_in",
            env: &[],
            stored: {
                let mut s = signed_in();
                s["providers"] = json!({"xai": {"apiKey": "xai-stored-0123456789"}});
                s
            },
            expect: Some(("/xai/", "xai-stored-0123456789")),
        },
        Case {
            name: "env_beats_file_same_provider",
            env: &[("OPENAI_API_KEY", "sk-env-openai-0123456789")],
            stored: json!({"version": 1, "providers": {"openai": {"apiKey": "sk-stored-openai-0123456789"}}}),
            expect: Some(("/openai/", "sk-env-openai-0123456789")),
        },
        Case {
            name: "env_provider_beats_stored_sign_in",
            env: &[("DEEPSEEK_API_KEY", "sk-env-deepseek-0123456789")],
            stored: signed_in(),
            expect: Some(("/deepseek/", "sk-env-deepseek-0123456789")),
        },
        Case {
            name: "env_mogplex_key_beats_stored_sign_in",
            env: &[("MOGPLEX_API_KEY", "mog_envkey0123456789abcdef")],
            stored: signed_in(),
            expect: Some(("/mogplex/", "mog_envkey0123456789abcdef")),
        },
        Case {
            name: "env_beats_stored_key_and_sign_in",
            env: &[("COHERE_API_KEY", "cohere-env-0123456789")],
            stored: {
                let mut s = signed_in();
                s["providers"] = json!({"cohere": {"apiKey": "cohere-stored-0123456789"}});
                s
            },
            expect: Some(("/cohere/", "cohere-env-0123456789")),
        },
        Case {
            name: "empty_variables_count_as_unset",
            env: &[
                ("MOGPLEX_API_KEY", ""),
                ("OPENAI_API_KEY", ""),
                ("VERCEL_API_TOKEN", ""),
            ],
            stored: json!({"version": 1, "providers": {"google": {"apiKey": "AIza-stored-google-0123456789"}}}),
            expect: Some(("/google/", "AIza-stored-google-0123456789")),
        },
        Case {
            name: "all_empty_is_no_credential",
            env: &[("MOGPLEX_API_KEY", ""), ("ANTHROPIC_API_KEY", "")],
            stored: json!({}),
            expect: None,
        },
        Case {
            name: "vercel_token_last_in_table",
            env: &[("VERCEL_API_TOKEN", "vck_env0123456789")],
            stored: json!({}),
            expect: Some(("/vercel/", "vck_env0123456789")),
        },
    ];
    for case in cases {
        let server = FakeServer::start();
        let mut home = TestHome::new();
        route_all_providers(&mut home, &server);
        for (k, v) in case.env {
            home.env(k, v);
        }
        let mut stored = case.stored.clone();
        if stored["mogplex"]["issuer"].is_string() {
            // A sign-in is used only with the service that issued it: this one.
            stored["mogplex"]["issuer"] = format!("{}/mogplex", server.url()).into();
        }
        if stored != json!({}) {
            home.write_auth(&stored);
        }
        let out = home.run(&["exec", "hi"]);
        snap!(format!("precedence_{}", case.name), home.render(&out));
        let reqs: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect();
        match case.expect {
            None => {
                assert_eq!(out.status.code(), Some(64), "{}", case.name);
                assert!(reqs.is_empty());
            }
            Some((prefix, key)) => {
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{}: {}",
                    case.name,
                    home.render(&out)
                );
                assert_eq!(reqs.len(), 1, "{}", case.name);
                assert!(
                    reqs[0].path.starts_with(prefix),
                    "{}: {}",
                    case.name,
                    reqs[0].path
                );
                let sent = reqs[0]
                    .header("authorization")
                    .map(|h| h.trim_start_matches("Bearer ").to_owned())
                    .or_else(|| reqs[0].header("x-api-key").map(str::to_owned));
                assert_eq!(sent.as_deref(), Some(key), "{}", case.name);
            }
        }
    }
}

#[test]
fn model_flag_picks_a_provider_with_a_credential() {
    let server = FakeServer::start();
    let mut home = TestHome::new();
    route_all_providers(&mut home, &server);
    home.env("MOGPLEX_API_KEY", "mog_envkey0123456789abcdef")
        .env("ANTHROPIC_API_KEY", "sk-ant-env-0123456789");
    let out = home.run(&["exec", "--model", "claude-opus-4-1", "hi"]);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    let r = server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(r.path, "/anthropic/v1/messages");
    assert_eq!(r.json()["model"], "claude-opus-4-1");

    // A gateway slug goes to the gateway whole.
    let out = home.run(&["--model", "mogplex/echo", "hi"]);
    assert_eq!(out.status.code(), Some(0));
    let r = server
        .requests()
        .into_iter()
        .rfind(|r| r.method == "POST")
        .unwrap();
    assert_eq!(r.path, "/mogplex/api/cli/inference/chat/completions");
    assert_eq!(r.json()["model"], "mogplex/echo");
}

#[test]
fn json_output_is_one_event_per_line() {
    let server = FakeServer::start();
    let mut home = TestHome::new();
    route_all_providers(&mut home, &server);
    home.env("OPENAI_API_KEY", "sk-env-openai-0123456789");
    let out = home.run(&["exec", "--json", "hi"]);
    assert_eq!(out.status.code(), Some(0));
    let events: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["type"], "session");
    assert_eq!(events[0]["provider"], "openai");
    assert_eq!(
        events[0]["credential"],
        json!({"kind": "api_key", "source": "env", "from": "OPENAI_API_KEY", "masked": "sk-…6789"})
    );
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "delta")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello from openai");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "done");
    assert_eq!(last["finish_reason"], "stop");
    assert_eq!(last["usage"]["completion_tokens"], 3);
}
