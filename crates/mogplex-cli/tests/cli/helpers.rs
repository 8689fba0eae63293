//! Credential helpers (`<PROVIDER>_API_KEY_HELPER`) through the real binary with real scripts:
//! the key in the precedence, each bad output a clear warning with no secret in it, the re-run
//! on a 401 against a local server that rejects the first key, the cache and its expiry in a
//! cockpit session, and the child environment of a
//! helper and of `BROWSER` without the parent's credential variables.

use crate::common::*;
use crate::signin::{Login, PORTS, Server};
use std::os::unix::fs::PermissionsExt;

const PARENT_KEY: &str = "sk-parent-openai-0123456789abcd";

/// Writes an executable script `name` in the home's temp dir and returns its path.
fn script(home: &TestHome, name: &str, body: &str) -> String {
    let p = home.dir.path().join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

fn status_json(home: &TestHome) -> (i32, serde_json::Value, String) {
    let out = home.run(&["status", "--json"]);
    let v = serde_json::from_slice(&out.stdout).unwrap();
    (
        out.status.code().unwrap(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_helper_key_ranks_after_its_variable_and_before_stored_keys() {
    let mut home = TestHome::new();
    let out = home.run_stdin(
        &["login", "openai", "--with-api-key"],
        "sk-stored-openai-0123456789wxyz",
    );
    assert_eq!(out.status.code(), Some(0));
    let helper = script(&home, "helper", "echo sk-from-helper-0123456789efgh");
    // The words are split without a shell: the quoted argument arrives whole.
    home.env("OPENAI_API_KEY_HELPER", &format!("{helper} 'one arg'"));
    let (code, v, _) = status_json(&home);
    assert_eq!(code, 0);
    let c = &v["credentials"][0];
    assert_eq!(
        c["source"],
        serde_json::json!({"type": "helper", "var": "OPENAI_API_KEY_HELPER"})
    );
    assert_eq!(c["masked"], "sk-…efgh");
    assert!(!v.to_string().contains("sk-from-helper-0123456789efgh"));
    assert!(
        v["overrides"][0]
            .as_str()
            .unwrap()
            .starts_with("OPENAI_API_KEY_HELPER in this shell overrides the OpenAI key stored"),
        "{v}"
    );
    // The variable itself still wins over its helper.
    home.env("OPENAI_API_KEY", PARENT_KEY);
    let (_, v, _) = status_json(&home);
    assert_eq!(v["credentials"][0]["source"]["var"], "OPENAI_API_KEY");
}

#[test]
fn every_bad_helper_output_is_a_clear_warning_without_the_secret() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "fails",
            "echo 'vault: permission denied for sk-parent-openai-0123456789abcd' >&2; exit 3",
            "failed (exit status 3); it said: vault: permission denied for [REDACTED]",
        ),
        ("empty", "true", "printed nothing"),
        (
            "huge",
            "head -c 10000000 /dev/zero | tr '\\0' a",
            "printed more than 64 KiB",
        ),
        (
            "control",
            "printf 'sk-abc\\033[2Jdefghijklmnop'",
            "control characters",
        ),
        (
            "expired",
            "echo '{\"token\":\"sk-expired-0123456789\",\"expires_at\":\"2001-01-01T00:00:00Z\"}'",
            "printed a token that expired at 2001-01-01T00:00:00Z",
        ),
        ("not_json", "echo '{\"tok\": 1}'", "printed JSON without"),
        ("missing", "exec /nonexistent/helper", "failed (exit status"),
    ];
    for (name, body, expect) in cases {
        let mut home = TestHome::new();
        home.env("OPENAI_API_KEY", PARENT_KEY);
        let helper = script(&home, name, body);
        home.env("GROQ_API_KEY_HELPER", &helper);
        let (code, v, _) = status_json(&home);
        assert_eq!(code, 0, "{name}: the OpenAI key still resolves");
        let w = v["warnings"][0].as_str().unwrap_or_default();
        assert!(w.contains("GROQ_API_KEY_HELPER"), "{name}: {w}");
        assert!(w.contains(expect), "{name}: {w}");
        assert!(!v.to_string().contains(PARENT_KEY), "{name}");
        assert!(!v.to_string().contains("sk-expired-0123456789"), "{name}");
        // exec says it on stderr, redacted, with the hint.
        let out = home.run(&["exec", "--model", "groq/llama", "hi"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("warning: the credential helper in GROQ_API_KEY_HELPER"),
            "{name}: {err}"
        );
        assert!(
            err.contains("hint: run the command in GROQ_API_KEY_HELPER yourself"),
            "{name}: {err}"
        );
        assert!(!err.contains(PARENT_KEY), "{name}: {err}");
        assert_eq!(out.status.code(), Some(64), "{name}: {err}");
    }
}

#[test]
fn a_helper_that_hangs_is_stopped_after_ten_seconds() {
    let mut home = TestHome::new();
    let helper = script(&home, "hang", "sleep 60");
    home.env("MOGPLEX_API_KEY_HELPER", &helper);
    let (code, v, _) = status_json(&home);
    assert_eq!(code, 64);
    let w = v["warnings"][0].as_str().unwrap();
    assert!(
        w.contains("did not finish within 10 s and was stopped"),
        "{w}"
    );
}

/// An OpenAI-compatible server that accepts only `good` and says 401 to every other key.
fn picky_server(
    good: &'static str,
) -> (
    String,
    tokio::runtime::Runtime,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = seen.clone();
    let url = rt.block_on(async move {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/chat/completions",
            axum::routing::post(move |h: HeaderMap| {
                let s = s.clone();
                async move {
                    let auth = h
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    s.lock().unwrap().push(auth.clone());
                    if auth != format!("Bearer {good}") {
                        return (
                            StatusCode::UNAUTHORIZED,
                            axum::Json(serde_json::json!({"error": {"message": "bad key"}})),
                        )
                            .into_response();
                    }
                    let body = format!(
                        "{}{}data: [DONE]\n\n",
                        mogplex_testkit::openai_frame(
                            serde_json::json!({"content": "hello"}),
                            None
                        ),
                        mogplex_testkit::openai_frame(serde_json::json!({}), Some("stop"))
                    );
                    ([("content-type", "text/event-stream")], body).into_response()
                }
            }),
        );
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        url
    });
    (url, rt, seen)
}

#[test]
fn a_401_runs_the_helper_again_once() {
    const FIRST: &str = "sk-helper-first-0123456789";
    const SECOND: &str = "sk-helper-second-0123456789";
    let (url, _rt, seen) = picky_server(SECOND);
    let mut home = TestHome::new();
    let count = home.dir.path().join("runs");
    let helper = script(
        &home,
        "rotating",
        &format!(
            "echo run >> '{c}'\nif [ $(wc -l < '{c}') -eq 1 ]; then echo {FIRST}; else echo {SECOND}; fi",
            c = count.display()
        ),
    );
    home.env("OPENAI_API_KEY_HELPER", &helper)
        .env("OPENAI_BASE_URL", &url);
    let out = home.run(&["exec", "--model", "openai/gpt-4.1", "hi"]);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");
    assert_eq!(
        *seen.lock().unwrap(),
        vec![format!("Bearer {FIRST}"), format!("Bearer {SECOND}")]
    );
    assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 2);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(FIRST) && !all.contains(SECOND), "{all}");

    // A helper whose every key is refused: re-run once, then a clear failure.
    std::fs::write(&count, "").unwrap();
    let helper = script(
        &home,
        "always_first",
        &format!("echo run >> '{}'; echo {FIRST}", count.display()),
    );
    home.env("OPENAI_API_KEY_HELPER", &helper);
    let out = home.run(&["exec", "--model", "openai/gpt-4.1", "hi"]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&count).unwrap().lines().count(),
        2,
        "run again once only"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("OPENAI_API_KEY_HELPER"), "{err}");
    assert!(!err.contains(FIRST), "{err}");
}

/// In a long cockpit session the helper's key is cached: turns within its lifetime run no helper,
/// and the first turn after its `expires_at` runs it again (a pseudo-terminal, real scripts).
#[test]
fn the_cockpit_uses_the_cached_key_until_it_expires_then_runs_the_helper_again() {
    use crate::cockpit::{cockpit, expect, submit};
    const KEY: &str = "sk-helper-cached-0123456789";
    let (url, _rt, seen) = picky_server(KEY);
    let mut home = TestHome::new();
    let count = home.dir.path().join("runs");
    // Each run's key lasts 8 seconds from when it was made; the script notes when it ends.
    let until = home.dir.path().join("until");
    let helper = script(
        &home,
        "short_lived",
        &format!(
            "echo run >> '{c}'\nat=$(( $(date +%s) + 8 ))\necho $at > '{u}'\necho \"{{\\\"token\\\": \\\"{KEY}\\\", \\\"expires_at\\\": $at}}\"",
            c = count.display(),
            u = until.display()
        ),
    );
    home.env("OPENAI_API_KEY_HELPER", &helper)
        .env("OPENAI_BASE_URL", &url);
    let runs = || {
        std::fs::read_to_string(&count)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let mut t = cockpit(&home, &[]);
    expect(&t, "mogplex · OpenAI");
    assert_eq!(runs(), 1, "resolution ran it once");
    submit(&mut t, "one");
    expect(&t, "hello");
    assert_eq!(runs(), 1, "the first turn used the cached key");
    // Past its expiry, the next turn runs it again (and the key still reaches the server).
    let at: u64 = std::fs::read_to_string(&until)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let ends = std::time::UNIX_EPOCH + std::time::Duration::from_secs(at + 1);
    if let Ok(wait) = ends.duration_since(std::time::SystemTime::now()) {
        std::thread::sleep(wait);
    }
    submit(&mut t, "two");
    t.wait_until(|s| s.matches("hello").count() >= 2, crate::cockpit::WAIT)
        .unwrap_or_else(|s| panic!("no second answer:\n{s}"));
    assert_eq!(runs(), 2, "run again after expiry");
    assert_eq!(*seen.lock().unwrap(), vec![format!("Bearer {KEY}"); 2]);
    t.send(mogplex_testkit::term::keys::CTRL_C);
    t.send(mogplex_testkit::term::keys::CTRL_C);
    let _ = t.wait_exit(crate::cockpit::WAIT);
}

#[test]
fn a_helper_and_the_browser_see_none_of_the_parents_credential_variables() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let mut home = TestHome::new();
    let helper_env = home.dir.path().join("helper-env");
    let browser_env = home.dir.path().join("browser-env");
    let helper = script(
        &home,
        "envhelper",
        &format!(
            "env > '{}'; echo mog_envhelper0123456789abcdefghijKLMN",
            helper_env.display()
        ),
    );
    let browser = script(
        &home,
        "envbrowser",
        &format!("env > '{}'", browser_env.display()),
    );
    let parent = [
        ("OPENAI_API_KEY", PARENT_KEY),
        ("ANTHROPIC_API_KEY", "sk-ant-parent-0123456789"),
        ("MY_SERVICE_TOKEN", "parent-token-value"),
        ("GITHUB_TOKEN", "ghp_parentparentparent"),
        ("MOGPLEX_API_KEY_HELPER", helper.as_str()),
        ("KEEP_ME", "visible"),
    ];
    for (k, v) in parent {
        home.env(k, v);
    }
    let (_, v, _) = status_json(&home);
    assert_eq!(v["credentials"][0]["source"]["type"], "helper");

    let mut login = Login::start(&home, &server, &["login", "mogplex"], &browser);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !browser_env.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    login.child.kill().unwrap();
    let _ = login.child.wait();

    for file in [&helper_env, &browser_env] {
        let env = std::fs::read_to_string(file).unwrap();
        assert!(env.contains("KEEP_ME=visible"), "{env}");
        for (k, v) in parent.iter().filter(|(k, _)| *k != "KEEP_ME") {
            assert!(
                !env.contains(&format!("{k}=")),
                "{k} reached {}: {env}",
                file.display()
            );
            assert!(!env.contains(*v) || *k == "MOGPLEX_API_KEY_HELPER", "{k}");
        }
        assert!(!env.contains("MOGPLEX_URL="), "{env}");
    }
}
