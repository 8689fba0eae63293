//! Every message of the command line, as snapshots of exit code, stdout and stderr together.

use crate::common::*;
use serde_json::json;

#[test]
fn no_credential_fails_fast_with_both_ways_out() {
    let home = TestHome::new();
    snap!(
        "exec_no_credential",
        home.render(&home.run(&["exec", "hi"]))
    );
    snap!("prompt_no_credential", home.render(&home.run(&["hi"])));
    // Bare `mogplex` without a terminal behaves like exec.
    let out = home.run(&[]);
    snap!("bare_no_terminal_no_credential", home.render(&out));
    assert_eq!(out.status.code(), Some(64));
    // Nothing was created for a run that did nothing.
    assert!(!home.home.exists());
}

#[test]
fn model_selection_errors() {
    let mut home = TestHome::new();
    home.env("OPENAI_API_KEY", "sk-env-openai-0123456789");
    let out = home.run(&["exec", "--model", "nosuchmodel", "hi"]);
    snap!("unknown_model", home.render(&out));
    assert_eq!(out.status.code(), Some(2));
    let out = home.run(&["exec", "--model", "gpt4.1-mini", "hi"]);
    snap!("unknown_model_close", home.render(&out));
    assert_eq!(out.status.code(), Some(2));
    let out = home.run(&["exec", "--model", "claude-sonnet-4-5", "hi"]);
    snap!("model_without_credential", home.render(&out));
    assert_eq!(out.status.code(), Some(64));
    home.env("OPENAI_BASE_URL", "http://example.com/v1");
    let out = home.run(&["exec", "hi"]);
    snap!("insecure_base_url", home.render(&out));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn prompts_from_stdin() {
    let server = FakeServer::start();
    let mut home = TestHome::new();
    route_all_providers(&mut home, &server);
    home.env("OPENAI_API_KEY", "sk-env-openai-0123456789");
    let out = home.run_stdin(&["exec", "-"], "from stdin\n");
    assert_eq!(out.status.code(), Some(0));
    let out = home.run_stdin(&[], "bare and piped");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        prompts_sent(&server),
        vec![json!("from stdin\n"), json!("bare and piped")]
    );
    let out = home.run_stdin(&["exec"], "   ");
    snap!("empty_prompt", home.render(&out));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn provider_failures_map_to_exit_codes() {
    let cases: Vec<(&str, Reply, i32)> = vec![
        (
            "unauthorized",
            Reply::json(
                401,
                json!({"error": {"message": "Incorrect API key provided: sk-env-o*****6789."}}),
            ),
            65,
        ),
        (
            "forbidden",
            Reply::json(
                403,
                json!({"error": {"message": "Project does not have access to model"}}),
            ),
            65,
        ),
        (
            "rate_limited",
            Reply::json(429, json!({"error": {"message": "Rate limit reached"}}))
                .with_header("retry-after", "20"),
            75,
        ),
        (
            "unavailable",
            Reply::json(
                503,
                json!({"error": {"message": "The server is overloaded"}}),
            ),
            69,
        ),
        (
            "not_found",
            Reply::json(
                404,
                json!({"error": {"message": "The model `gpt-4.1` does not exist"}}),
            ),
            1,
        ),
        (
            "in_stream_error",
            openai_stream_error(&["Partial ", "answer"], "The upstream connection was reset"),
            69,
        ),
    ];
    for (name, reply, code) in cases {
        let server = FakeServer::start();
        let mut home = TestHome::new();
        server.route("/v1/chat/completions", reply);
        home.env("OPENAI_API_KEY", "sk-env-openai-0123456789")
            .env("OPENAI_BASE_URL", &format!("{}/v1", server.url()));
        let out = home.run(&["exec", "hi"]);
        snap!(format!("provider_{name}"), home.render(&out));
        assert_eq!(out.status.code(), Some(code), "{name}");
    }
    let mut home = TestHome::new();
    home.env("OPENAI_API_KEY", "sk-env-openai-0123456789")
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1");
    let out = home.run(&["exec", "hi"]);
    snap!("provider_unreachable", home.render(&out));
    assert_eq!(out.status.code(), Some(69));
}

#[test]
fn gateway_without_model_access() {
    let server = FakeServer::start();
    let mut home = TestHome::new();
    server.route("/api/cli/inference/chat/completions", Reply::json(400, json!({"error": {
        "message": "Signed in, but this account has no access to mogplex/echo.", "code": "no_model_access"}})));
    home.env("MOGPLEX_API_KEY", "mog_env0123456789abcdefghij")
        .env("MOGPLEX_URL", &server.url());
    let out = home.run(&["exec", "--model", "mogplex/echo", "hi"]);
    snap!("gateway_no_model_access", home.render(&out));
    assert_eq!(out.status.code(), Some(65));
    // An empty catalog says the same.
    server.route("/api/models", Reply::json(200, json!([])));
    let out = home.run(&["exec", "hi"]);
    snap!("gateway_empty_catalog", home.render(&out));
    assert_eq!(out.status.code(), Some(65));
    // A JSON error event on stdout with --json.
    let out = home.run(&["exec", "--json", "--model", "mogplex/echo", "hi"]);
    let last: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["exit_code"], 65);
}

#[test]
fn login_and_logout_messages() {
    let mut home = TestHome::new();
    let out = home.run_stdin(
        &["login", "openai", "--with-api-key"],
        "sk-login-test-0123456789\n",
    );
    snap!("login_openai", home.render(&out));
    let out = home.run_stdin(
        &["login", "mogplex", "--with-api-key"],
        "mog_login0123456789abcdefghij",
    );
    snap!("login_mogplex_pat", home.render(&out));
    let account = home.account();
    assert_eq!(account["api_key"], "mog_login0123456789abcdefghij");
    assert!(
        account["id"].as_str().unwrap().starts_with("pat_"),
        "{account}"
    );
    let out = home.run_stdin(
        &["login", "mogplex", "--with-api-key"],
        "sk-not-a-pat-0123456789",
    );
    snap!("login_mogplex_wrong_prefix", home.render(&out));
    assert_eq!(out.status.code(), Some(2));
    let out = home.run_stdin(&["login", "nosuch", "--with-api-key"], "k");
    snap!("login_unknown_provider", home.render(&out));
    assert_eq!(out.status.code(), Some(2));
    let out = home.run(&["login", "openai"]);
    snap!("login_without_flag", home.render(&out));
    assert_eq!(out.status.code(), Some(2));

    home.env("OPENAI_API_KEY", "sk-env-openai-0123456789");
    let out = home.run_stdin(
        &["login", "openai", "--with-api-key"],
        "sk-login-test2-0123456789",
    );
    snap!("login_env_still_wins", home.render(&out));

    let out = home.run(&["logout"]);
    snap!("logout_mogplex_keeps_provider_keys", home.render(&out));
    assert!(home.account().is_null());
    assert_eq!(
        home.auth()["providers"]["openai"]["apiKey"],
        "sk-login-test2-0123456789"
    );
    let out = home.run(&["logout"]);
    snap!("logout_nothing_stored", home.render(&out));
    assert_eq!(out.status.code(), Some(0));
    let out = home.run(&["logout", "openai"]);
    snap!("logout_provider_env_still_set", home.render(&out));
    assert!(home.auth().get("providers").is_none());
}

#[test]
fn logout_of_a_session_and_flag_logout() {
    let server = FakeServer::start();
    let mut home = TestHome::new();
    route_all_providers(&mut home, &server);
    let issuer = format!("{}/mogplex", server.url());
    let session = json!({"version": 1, "mogplex": {"issuer": issuer, "access_token": "session-token-0123456789", "account": {"email": "ada@example.com"}},
        "providers": {"groq": {"apiKey": "gsk_stored0123456789"}}});
    home.write_auth(&session);
    let out = home.run(&["logout"]);
    snap!("logout_session", home.render(&out));
    // --logout clears the sign-in, then the prompt runs with what still resolves.
    home.write_auth(&session);
    let out = home.run(&["--logout", "hi"]);
    snap!("flag_logout_then_prompt", home.render(&out));
    assert_eq!(out.status.code(), Some(0));
    assert!(home.account().is_null());
    assert_eq!(
        home.auth()["providers"]["groq"]["apiKey"],
        "gsk_stored0123456789"
    );
}

#[test]
fn login_refuses_a_terminal() {
    let home = TestHome::new();
    let pty = Pty::open();
    let out = home
        .cmd(&["login", "anthropic", "--with-api-key"])
        .stdin(pty.stdio())
        .output()
        .unwrap();
    snap!("login_stdin_is_terminal", home.render(&out));
    assert_eq!(out.status.code(), Some(2));
    assert!(!home.auth_path().exists());
}

#[test]
fn attach_is_validated_and_needs_a_mogplex_account() {
    let mut home = TestHome::new();
    home.write_auth(&json!({"version": 1, "mogplex": {"api_key": "mog_keep0123456789abcdef"}}));
    // A prompt or a command with --attach is refused before anything changes.
    let out = home.run(&["--attach", "run_abc123", "say hi"]);
    snap!("attach_with_a_prompt", home.render(&out));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(home.account()["api_key"], "mog_keep0123456789abcdef");
    // --logout comes first (as asked); without a terminal there is then no way to sign in.
    let out = home.run(&["--attach", "run_abc123", "--logout"]);
    snap!("attach_after_logout_without_a_terminal", home.render(&out));
    assert_eq!(out.status.code(), Some(64));
    assert!(home.account().is_null());
    let out = home.run(&["--attach", "abc"]);
    snap!("attach_invalid", home.render(&out));
    assert_eq!(out.status.code(), Some(2));
    home.env("MOGPLEX_ATTACH_RUN_ID", "run_bad id");
    let out = home.run(&["logout"]);
    snap!("attach_env_invalid", home.render(&out));
    assert_eq!(out.status.code(), Some(2));
    let mut home = TestHome::new();
    home.env("MOGPLEX_ATTACH_RUN_ID", "");
    let out = home.run(&["logout"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "an empty variable counts as unset"
    );
}

#[test]
fn logs_are_written_and_redacted() {
    let server = FakeServer::start();
    let mut home = TestHome::new();
    route_all_providers(&mut home, &server);
    home.env("OPENAI_API_KEY", "sk-env-openai-0123456789")
        .env("MOGPLEX_DEBUG", "1");
    let out = home.run(&["exec", "hi"]);
    assert_eq!(out.status.code(), Some(0));
    let logs = home.log_text();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events.first(), Some(&"session.start"));
    assert!(
        events.contains(&"stream.chunk"),
        "MOGPLEX_DEBUG=1 logs chunks: {events:?}"
    );
    assert_eq!(events.last(), Some(&"response.done"));
    for l in &lines {
        for k in ["ts", "level", "event", "message", "data"] {
            assert!(l.get(k).is_some(), "{k} in {l}");
        }
    }
    assert!(!logs.contains("sk-env-openai-0123456789"));
    // Without MOGPLEX_DEBUG there are no chunk lines.
    let mut home2 = TestHome::new();
    route_all_providers(&mut home2, &server);
    home2.env("OPENAI_API_KEY", "sk-env-openai-0123456789");
    home2.run(&["exec", "hi"]);
    assert!(!home2.log_text().contains("stream.chunk"));
}

#[test]
fn a_bad_extra_ca_bundle_is_a_configuration_error() {
    let mut home = TestHome::new();
    home.env("OPENAI_API_KEY", "sk-env-openai-0123456789")
        .env("SSL_CERT_FILE", "/nonexistent/ca.pem");
    let out = home.run(&["exec", "hi"]);
    snap!("bad_ssl_cert_file", home.render(&out));
    assert_eq!(out.status.code(), Some(78));
}

#[test]
fn login_help_lists_only_what_login_takes() {
    let home = TestHome::new();
    let out = home.run(&["login", "--help"]);
    snap!("login_help", home.render(&out));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for other in ["--attach", "--logout", "--model", "--json", "PROMPT"] {
        assert!(!text.contains(other), "`{other}` in login's help:\n{text}");
    }
}

/// The prompts a fake provider received.
fn prompts_sent(server: &FakeServer) -> Vec<serde_json::Value> {
    server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.json()["messages"][0]["content"].clone())
        .collect()
}

#[test]
fn a_lone_word_near_a_command_is_not_sent() {
    let server = FakeServer::start();
    let mut home = TestHome::new();
    route_all_providers(&mut home, &server);
    home.env("OPENAI_API_KEY", "sk-env-openai-0123456789");
    for (name, word) in [
        ("lone_word_typo", "logni"),
        ("lone_word_planned_typo", "credentails"),
    ] {
        let out = home.run(&[word]);
        snap!(name, home.render(&out));
        assert_eq!(out.status.code(), Some(2), "{word}");
    }
    let out = home.run(&["--json", "Exce"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `mogplex exec`?"));
    assert_eq!(prompts_sent(&server), Vec::<serde_json::Value>::new());

    // On purpose: after `--`, with `exec`, or more than one word; and a word near no command.
    for args in [
        &["--", "status"][..],
        &["exec", "status"],
        &["exec", "logni"],
        &["status of the build"],
        &["hello"],
    ] {
        let out = home.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            home.render(&out)
        );
    }
    assert_eq!(
        prompts_sent(&server),
        vec![
            json!("status"),
            json!("status"),
            json!("logni"),
            json!("status of the build"),
            json!("hello")
        ]
    );
}

#[test]
fn where_a_personal_access_token_comes_from() {
    // The hosted service has a settings page; a self-hosted mogplex-server has an admin command.
    let mut home = TestHome::new();
    home.env("MOGPLEX_URL", "http://127.0.0.1:9");
    let out = home.run_stdin(
        &["login", "mogplex", "--with-api-key"],
        "sk-not-a-pat-0123456789",
    );
    snap!("login_mogplex_wrong_prefix_self_hosted", home.render(&out));
    assert_eq!(out.status.code(), Some(2));
}
