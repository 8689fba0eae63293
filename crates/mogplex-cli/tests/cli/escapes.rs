//! Terminal control sequences from a provider (a window title, clearing the screen, a hyperlink,
//! a clipboard write, C1 controls) are shown as text, never obeyed: in the cockpit's transcript
//! and errors, and on `mogplex exec`'s stdout when it is a terminal. To a pipe, `exec` passes
//! the answer's bytes on as they came.

use crate::cockpit::{WAIT, cockpit, expect, pty_command, submit};
use crate::common::*;
use mogplex_testkit::term::Term;

const KEY: &str = "sk-escapes-0123456789abcdef";

/// What a hostile or broken provider streams back.
const PIECES: [&str; 4] = [
    "title\x1b]0;pwned\x07 ",
    "clear\x1b[2J\x1b[H ",
    "link\x1b]8;;https://evil.example\x1b\\here\x1b]8;;\x1b\\ ",
    "clip\x1b]52;c;cHduZWQ=\x07 c1\u{9b}31m end",
];

/// The same, as the user sees it.
const SHOWN: &str = "title^[]0;pwned^G clear^[[2J^[[H link^[]8;;https://evil.example^[\\here^[]8;;^[\\ clip^[]52;c;cHduZWQ=^G c1\\u{9b}31m end";

/// Pieces of the raw sequences that must never reach a terminal.
const RAW: [&str; 5] = [
    "\x1b]0;pwned",
    "\x1b]8;;https://evil",
    "\x1b]52;c;cHduZWQ=",
    "\u{9b}31m",
    "\x1b[2J\x1b[H link",
];

fn home(server: &FakeServer) -> TestHome {
    server.route("/openai/chat/completions", openai_stream(&PIECES));
    let mut home = TestHome::new();
    home.env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", &format!("{}/openai", server.url()));
    home
}

#[test]
fn the_cockpit_shows_control_sequences_in_an_answer_as_text() {
    let server = FakeServer::start();
    let home = home(&server);
    let mut t = cockpit(&home, &[]);
    expect(&t, "mogplex · OpenAI");
    submit(&mut t, "say something odd");
    let screen = expect(&t, " end");
    let shown: String = screen.lines().collect::<Vec<_>>().join(" ");
    assert!(
        shown.contains("title^[]0;pwned^G clear^[[2J^[[H"),
        "{screen}"
    );
    assert!(shown.contains("clip^[]52;c;cHduZWQ=^G"), "{screen}");
    assert!(shown.contains("c1\\u{9b}31m end"), "{screen}");
    let raw = t.raw_output();
    for r in RAW {
        assert!(!raw.contains(r), "{r:?} reached the terminal");
    }
}

#[test]
fn a_provider_error_with_control_sequences_is_shown_as_text() {
    let server = FakeServer::start();
    server.route(
        "/openai/chat/completions",
        Reply::json(
            401,
            serde_json::json!({"error": {"message": "bad key\x1b]0;pwned\x07\x1b[2J", "type": "invalid_request_error"}}),
        ),
    );
    let mut home = TestHome::new();
    home.env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", &format!("{}/openai", server.url()));
    // On stderr, to a pipe or not.
    let out = home.run(&["exec", "hi"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad key^[]0;pwned^G^[[2J"), "{err}");
    assert!(!err.contains('\x1b'), "{err:?}");
    // In the cockpit.
    let mut t = cockpit(&home, &[]);
    expect(&t, "mogplex · OpenAI");
    submit(&mut t, "hi");
    expect(&t, "bad key^[]0;pwned^G^[[2J");
    assert!(!t.raw_output().contains("\x1b]0;pwned"));
}

#[test]
fn exec_to_a_terminal_shows_them_and_to_a_pipe_passes_the_bytes_on() {
    let server = FakeServer::start();
    let home = home(&server);

    let cmd = pty_command(&home, &["exec", "say something odd"]);
    let mut t = Term::spawn(cmd, 400, 10).unwrap();
    let status = t.wait_exit(WAIT).expect("exec ends");
    assert!(status.success(), "{}", t.screen());
    // The reader may still be taking the last bytes in.
    t.wait_until(|s| s.contains(" end"), WAIT)
        .unwrap_or_else(|s| panic!("{s}"));
    let raw = t.raw_output();
    assert!(raw.contains(SHOWN), "{raw:?}");
    for r in RAW {
        assert!(!raw.contains(r), "{r:?} reached the terminal");
    }

    let out = home.run(&["exec", "say something odd"]);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}\n", PIECES.concat()),
        "a pipe gets the bytes as they came"
    );
}
