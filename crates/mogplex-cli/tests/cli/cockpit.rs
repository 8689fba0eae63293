//! The cockpit, the real binary in a real pseudo-terminal: what a person sees and types.

use crate::common::*;
use mogplex_testkit::term::{self, Term, keys};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Starts bare `mogplex` on a 100×30 terminal with this home's environment.
pub fn cockpit(home: &TestHome, extra: &[(&str, &str)]) -> Term {
    let mut cmd = term::command(bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.dir.path().join("user"))
        .env("MOGPLEX_HOME", &home.home)
        .env("TERM", "xterm-256color");
    for (k, v) in home.env_vars() {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    Term::spawn(cmd, 100, 30).unwrap()
}

/// Waits for `needle` on screen, or fails showing the screen.
pub fn expect(t: &Term, needle: &str) -> String {
    match t.wait_for(needle, WAIT) {
        Ok(s) => s,
        Err(s) => panic!("`{needle}` never appeared; the screen:\n{s}"),
    }
}

/// Types a line into the composer and sends it.
pub fn submit(t: &mut Term, text: &str) {
    t.type_text(text);
    t.send(keys::ENTER);
}

#[test]
fn store_a_key_chat_and_log_out_back_to_the_login_screen() {
    let server = FakeServer::start();
    server.route(
        "/openai/chat/completions",
        openai_stream(&["Hello", " from ", "the fake OpenAI"]),
    );
    let mut home = TestHome::new();
    home.env("OPENAI_BASE_URL", &format!("{}/openai", server.url()));
    let mut t = cockpit(&home, &[]);

    // Nothing resolves: the login screen.
    expect(&t, "Sign in with Mogplex");
    expect(&t, "Use a provider API key");
    t.send(keys::DOWN);
    t.send(keys::DOWN);
    t.send(keys::ENTER);
    expect(&t, "Which provider is the key for?");
    t.send(keys::DOWN); // Anthropic → OpenAI
    t.send(keys::ENTER);
    expect(&t, "Paste your OpenAI API key");
    let key = "sk-cockpit-test-0123456789abcdef";
    t.send(&keys::paste(key));
    t.send(keys::ENTER);

    // Stored, resolved, and the session shows where the credential came from, masked.
    let screen = expect(&t, "Stored the OpenAI API key");
    assert!(screen.contains("mogplex · OpenAI · gpt-4.1"), "{screen}");
    assert!(screen.contains("OpenAI key sk-…cdef from"), "{screen}");
    let auth = home.auth();
    assert_eq!(auth["providers"]["openai"]["apiKey"], key);
    assert_eq!(mode(&home.auth_path()), 0o600);

    submit(&mut t, "say hello");
    let screen = expect(&t, "Hello from the fake OpenAI");
    assert!(screen.contains("you › say hello"), "{screen}");
    let sent = server.requests();
    let chat = sent
        .iter()
        .find(|r| r.path == "/openai/chat/completions")
        .expect("the prompt reached the provider");
    assert_eq!(chat.header("authorization"), Some(&*format!("Bearer {key}")));
    assert_eq!(chat.json()["messages"][0]["content"], "say hello");

    // Completion of slash commands, then /logout of the stored key, confirmed.
    t.type_text("/logo");
    expect(&t, "/logout  sign out");
    t.send(keys::TAB);
    submit(&mut t, "openai");
    expect(&t, "Remove the stored OpenAI key?");
    t.send("y");
    let screen = expect(&t, "Removed the stored OpenAI API key");
    assert!(screen.contains("Sign in with Mogplex"), "back to login:\n{screen}");
    assert!(home.auth()["providers"].get("openai").is_none());

    // The key never reached the screen or the log.
    assert!(!t.raw_output().contains(key), "the key was drawn");
    assert!(!home.log_text().contains(key), "the key was logged");
    assert!(home.log_text().contains("\"event\":\"response.done\""));

    t.send("q");
    let status = t.wait_exit(WAIT).expect("quit");
    assert!(status.success());
}
