//! The user's choice wins, visibly (SPEC section 2): among stored credentials the one chosen most
//! recently (remembered in `state.json`) is used; the environment still beats it, and then a
//! notice says which and why, in `exec`'s `note:` lines, `--json` notices and the cockpit header.
//! Every pairing of a stored key, a Mogplex credential and an environment variable.

use crate::cockpit::{cockpit, expect};
use crate::common::*;

const GROQ: &str = "gsk_choice_stored_0123456789";
const PAT: &str = "mog_choice_stored_0123456789";
const ENV_OPENAI: &str = "sk-choice-env-0123456789";
const ENV_PAT: &str = "mog_choice_env_0123456789ab";

/// What the user did, in order.
#[derive(Clone, Copy)]
enum Step {
    StoreGroq,
    SignIn,
}

struct Case {
    name: &'static str,
    steps: &'static [Step],
    env: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    /// The provider path the request must reach, and the bearer it must carry.
    expect: (&'static str, &'static str),
    /// The notices `--json` must carry, by a distinctive part.
    notices: &'static [&'static str],
}

fn run_case(case: &Case) {
    let server = FakeServer::start();
    let mut home = TestHome::new();
    route_all_providers(&mut home, &server);
    for step in case.steps {
        let out = match step {
            Step::StoreGroq => home.run_stdin(&["login", "groq", "--with-api-key"], GROQ),
            // A personal access token stored with `login mogplex` is a sign-in to this service.
            Step::SignIn => home.run_stdin(&["login", "mogplex", "--with-api-key"], PAT),
        };
        assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    }
    for (k, v) in case.env {
        home.env(k, v);
    }
    let mut args = vec!["exec"];
    args.extend(case.args);
    args.push("hi");
    let out = home.run(&args);
    snap!(format!("choice_{}", case.name), home.render(&out));
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    let post = server
        .requests()
        .into_iter()
        .rfind(|r| r.method == "POST")
        .unwrap();
    assert!(
        post.path.starts_with(case.expect.0),
        "{}: {}",
        case.name,
        post.path
    );
    assert_eq!(
        post.header("authorization"),
        Some(format!("Bearer {}", case.expect.1).as_str()),
        "{}",
        case.name
    );
    // The same in --json: the session event's notices.
    let mut args = vec!["exec", "--json"];
    args.extend(case.args);
    args.push("hi");
    let out = home.run(&args);
    let session: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let notices: Vec<String> = session["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        notices.len(),
        case.notices.len(),
        "{}: {notices:?}",
        case.name
    );
    for (n, want) in notices.iter().zip(case.notices) {
        assert!(n.contains(want), "{}: {n}", case.name);
    }
}

#[test]
fn the_last_choice_wins_among_stored_credentials_and_the_environment_says_so() {
    use Step::*;
    let cases = [
        Case {
            name: "groq_then_sign_in",
            steps: &[StoreGroq, SignIn],
            env: &[],
            args: &[],
            expect: ("/mogplex/", PAT),
            notices: &[],
        },
        Case {
            name: "sign_in_then_groq",
            steps: &[SignIn, StoreGroq],
            env: &[],
            args: &[],
            expect: ("/groq/", GROQ),
            notices: &[],
        },
        Case {
            name: "groq_then_sign_in_env_openai",
            steps: &[StoreGroq, SignIn],
            env: &[("OPENAI_API_KEY", ENV_OPENAI)],
            args: &[],
            expect: ("/openai/", ENV_OPENAI),
            notices: &[
                "OPENAI_API_KEY in this shell takes precedence over the Mogplex access token stored in",
            ],
        },
        Case {
            name: "sign_in_then_groq_env_openai",
            steps: &[SignIn, StoreGroq],
            env: &[("OPENAI_API_KEY", ENV_OPENAI)],
            args: &[],
            expect: ("/openai/", ENV_OPENAI),
            notices: &["over the Groq key stored in"],
        },
        Case {
            name: "groq_env_groq",
            steps: &[StoreGroq],
            env: &[("GROQ_API_KEY", "gsk_choice_env_0123456789")],
            args: &[],
            expect: ("/groq/", "gsk_choice_env_0123456789"),
            notices: &["GROQ_API_KEY in this shell overrides the Groq key"],
        },
        Case {
            name: "groq_then_sign_in_env_mogplex",
            steps: &[StoreGroq, SignIn],
            env: &[("MOGPLEX_API_KEY", ENV_PAT)],
            args: &[],
            expect: ("/mogplex/", ENV_PAT),
            notices: &["MOGPLEX_API_KEY in this shell overrides the Mogplex access token"],
        },
        Case {
            name: "sign_in_then_groq_env_mogplex",
            steps: &[SignIn, StoreGroq],
            env: &[("MOGPLEX_API_KEY", ENV_PAT)],
            args: &[],
            expect: ("/mogplex/", ENV_PAT),
            notices: &[
                "MOGPLEX_API_KEY in this shell overrides the Mogplex access token",
                "over the Groq key stored in",
            ],
        },
        Case {
            name: "env_only",
            steps: &[],
            env: &[("OPENAI_API_KEY", ENV_OPENAI)],
            args: &[],
            expect: ("/openai/", ENV_OPENAI),
            notices: &[],
        },
        Case {
            name: "groq_then_sign_in_model_for_this_session",
            steps: &[StoreGroq, SignIn],
            env: &[],
            args: &["--model", "groq/llama-3.3-70b-versatile"],
            expect: ("/groq/", GROQ),
            notices: &[],
        },
    ];
    for case in &cases {
        run_case(case);
    }
}

#[test]
fn the_cockpit_header_follows_the_last_choice_and_names_the_variable_that_beats_it() {
    let server = FakeServer::start();
    let mut home = TestHome::new();
    route_all_providers(&mut home, &server);
    for (p, key) in [("groq", GROQ), ("mogplex", PAT)] {
        let out = home.run_stdin(&["login", p, "--with-api-key"], key);
        assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    }
    let mut t = cockpit(&home, &[]);
    let screen = expect(&t, "mogplex · Mogplex");
    assert!(!screen.contains("! "), "no notice:\n{screen}");
    t.send(mogplex_testkit::term::keys::CTRL_C);
    let _ = t.wait_exit(crate::cockpit::WAIT);
    let mut t = cockpit(&home, &[("OPENAI_API_KEY", ENV_OPENAI)]);
    let screen = expect(&t, "mogplex · OpenAI");
    assert!(
        screen.contains(
            "! OPENAI_API_KEY in this shell takes precedence over the stored Mogplex access token"
        ),
        "{screen}"
    );
    t.send(mogplex_testkit::term::keys::CTRL_C);
    let _ = t.wait_exit(crate::cockpit::WAIT);
}

/// The case that started it: a Groq key stored, then "Signed in as demo@…" left `exec` on Groq
/// with no notice. Now the sign-in is the last choice, and `exec` uses it.
#[test]
fn a_groq_key_then_a_real_sign_in_uses_the_sign_in() {
    use crate::signin::{PORTS, Server, run_against, signed_in_again};
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let home = TestHome::new();
    let out = home.run_stdin(&["login", "groq", "--with-api-key"], GROQ);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    signed_in_again(&home, &server, "ada@example.com");
    let out = run_against(&home, &server, &["exec", "--json", "hi"]);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    let session: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(session["provider"], "mogplex", "{session}");
    assert_eq!(session["account"], "ada@example.com", "{session}");
    assert_eq!(session["notices"], serde_json::json!([]), "{session}");
    assert!(out.stderr.is_empty(), "{}", home.render(&out));
}

/// A key stored from the cockpit's login screen does not take over unasked: the cockpit asks;
/// no keeps the credential in use (this session and the next), yes switches to the new key and
/// makes it the remembered choice.
#[test]
fn a_key_stored_in_the_cockpit_asks_before_it_is_used() {
    use crate::cockpit::{cockpit, expect, submit};
    use mogplex_testkit::term::{Term, keys};
    let server = FakeServer::start();
    let mut home = TestHome::new();
    route_all_providers(&mut home, &server);
    let out = home.run_stdin(&["login", "mogplex", "--with-api-key"], PAT);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    let store_groq = |t: &mut Term| {
        submit(t, "/login");
        expect(t, "Use a provider API key");
        t.send(keys::DOWN);
        t.send(keys::DOWN);
        t.send(keys::ENTER);
        expect(t, "Which provider is the key for?");
        for _ in 0..3 {
            t.send(keys::DOWN); // Anthropic → OpenAI → Google → Groq
        }
        t.send(keys::ENTER);
        expect(t, "Paste your Groq API key");
        t.send(&keys::paste(GROQ));
        t.send(keys::ENTER);
        expect(
            t,
            "Use the new Groq key now? Mogplex (auth.json) stays in use otherwise.",
        )
    };
    let session_provider = |home: &TestHome| {
        let out = home.run(&["exec", "--json", "hi"]);
        let session: serde_json::Value =
            serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
        session["provider"].as_str().unwrap_or_default().to_owned()
    };

    // No: the sign-in stays, and the note says how to switch later.
    let mut t = cockpit(&home, &[]);
    expect(&t, "mogplex · Mogplex");
    let screen = store_groq(&mut t);
    assert!(screen.contains("y / Enter: yes · n / Esc: no"), "{screen}");
    // A letter of a prompt typed meanwhile is refused, not typed anywhere.
    t.send("h");
    expect(&t, "Only y or n here: y switches to it");
    t.send("n");
    let screen = expect(&t, "choose a Groq model with /model to switch later");
    assert!(
        screen
            .lines()
            .next()
            .unwrap_or_default()
            .contains("Mogplex"),
        "{screen}"
    );
    assert!(!screen.contains("›h"), "{screen}");
    t.send(keys::CTRL_C);
    t.send(keys::CTRL_C);
    let _ = t.wait_exit(crate::cockpit::WAIT);
    assert_eq!(
        session_provider(&home),
        "mogplex",
        "the sign-in is still the last choice"
    );

    // Yes: the header switches at once, and the next session uses the key too.
    let mut t = cockpit(&home, &[]);
    expect(&t, "mogplex · Mogplex");
    store_groq(&mut t);
    t.send("y");
    let screen = expect(&t, "Now using Groq");
    assert!(
        screen.lines().next().unwrap_or_default().contains("Groq"),
        "{screen}"
    );
    t.send(keys::CTRL_C);
    t.send(keys::CTRL_C);
    let _ = t.wait_exit(crate::cockpit::WAIT);
    assert_eq!(
        session_provider(&home),
        "groq",
        "the key is now the last choice"
    );
}
