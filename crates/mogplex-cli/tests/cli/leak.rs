//! Random secrets in the environment and in auth.json, every command run, and none of them in
//! any output or log line.

use crate::common::*;
use serde_json::json;

fn random_token(prefix: &str) -> String {
    let mut buf = [0u8; 18];
    getrandom_fill(&mut buf);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = buf
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect();
    format!("{prefix}{tail}")
}

fn getrandom_fill(buf: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(buf)
        .unwrap();
}

#[test]
fn no_secret_reaches_output_or_logs() {
    let env_secrets: Vec<(&str, String)> = vec![
        ("MOGPLEX_API_KEY", random_token("mog_")),
        ("ANTHROPIC_API_KEY", random_token("sk-ant-")),
        ("OPENAI_API_KEY", random_token("sk-")),
        ("GOOGLE_GENERATIVE_AI_API_KEY", random_token("AIza")),
        ("GROQ_API_KEY", random_token("gsk_")),
        ("MISTRAL_API_KEY", random_token("")),
        ("DEEPSEEK_API_KEY", random_token("sk-")),
        ("XAI_API_KEY", random_token("xai-")),
        ("COHERE_API_KEY", random_token("")),
        ("VERCEL_API_TOKEN", random_token("")),
    ];
    let stored = [
        random_token(""),
        random_token(""),
        random_token(""),
        random_token("sk-"),
        random_token(""),
        random_token("mog_"),
    ];
    let piped = random_token("sk-");
    let mut all: Vec<String> = env_secrets.iter().map(|(_, v)| v.clone()).collect();
    all.extend(stored.iter().cloned());
    all.push(piped.clone());

    let server = FakeServer::start();
    let mut home = TestHome::new();
    route_all_providers(&mut home, &server);
    let write_stored = |home: &TestHome| {
        home.write_auth(&json!({"version": 1,
            "mogplex": {"access_token": stored[0], "refresh_token": stored[1], "id_token": stored[2], "account": {"email": "a@example.com"}},
            "providers": {"openai": {"apiKey": stored[3]}, "groq": {"apiKey": stored[4]}}}));
    };
    write_stored(&home);

    let mut outputs = Vec::new();
    // With only stored credentials.
    for args in [
        vec!["exec", "hi"],
        vec!["exec", "--json", "hi"],
        vec!["--model", "mogplex/echo", "hi"],
    ] {
        outputs.push(home.run(&args));
    }
    // Errors that quote the key back, as real providers do.
    server.route(
        "/groq/chat/completions",
        Reply::json(
            401,
            json!({"error": {"message": format!("Invalid API Key: {}", stored[4])}}),
        ),
    );
    outputs.push(home.run(&["exec", "--model", "groq/llama-3.3-70b-versatile", "hi"]));
    // With every variable set too.
    for (k, v) in &env_secrets {
        home.env(k, v);
    }
    home.env("MOGPLEX_DEBUG", "1");
    server.route("/openai/chat/completions", Reply::json(401, json!({"error": {"message": format!("Incorrect API key provided: {}", env_secrets[2].1)}})));
    server.route(
        "/mogplex/api/cli/inference/chat/completions",
        openai_stream_error(&["x"], &format!("token {} revoked", env_secrets[0].1)),
    );
    let commands: Vec<Vec<&str>> = vec![
        vec!["exec", "hi"],
        vec!["exec", "--json", "hi"],
        vec!["hi"],
        vec!["--model", "gpt-4.1", "hi"],
        vec!["--model", "claude-x", "--json", "hi"],
        vec!["--model", "nosuch/x", "hi"],
        vec!["logout", "openai"],
        vec!["logout"],
        vec!["--logout", "hi"],
        vec!["--attach", "run_x1"],
        vec!["--help"],
        vec!["--version"],
        vec!["login", "openai"],
    ];
    for args in &commands {
        write_stored(&home);
        outputs.push(home.run(args));
    }
    outputs.push(home.run_stdin(&["login", "openai", "--with-api-key"], &piped));
    outputs.push(home.run_stdin(&["login", "mogplex", "--with-api-key"], &stored[5]));
    outputs.push(home.run_stdin(&["login", "mogplex", "--with-api-key"], &piped));
    outputs.push(home.run_stdin(
        &["login", "openai", "--with-api-key"],
        &format!("{piped}\x07"),
    ));

    let logs = home.log_text();
    assert!(logs.lines().count() > 20, "the commands wrote logs");
    for secret in &all {
        for out in &outputs {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                !text.contains(secret.as_str()),
                "a secret was printed:\n{text}"
            );
        }
        assert!(!logs.contains(secret.as_str()), "a secret was logged");
        // Not even the part after a known prefix.
        let tail = &secret[secret.len() - 12..];
        assert!(!logs.contains(tail), "part of a secret was logged");
    }
}
