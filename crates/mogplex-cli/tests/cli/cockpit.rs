//! The cockpit, the real binary in a real pseudo-terminal: what a person sees and types.

use crate::common::*;
use mogplex_testkit::term::{self, Term, keys};
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(20);

/// Starts bare `mogplex` on a 100×30 terminal with this home's environment.
pub fn cockpit(home: &TestHome, extra: &[(&str, &str)]) -> Term {
    cockpit_with(home, &[], extra)
}

/// Starts `mogplex ARGS` on a 100×30 terminal with this home's environment.
pub fn cockpit_with(home: &TestHome, args: &[&str], extra: &[(&str, &str)]) -> Term {
    cockpit_sized(home, args, extra, 100, 30)
}

/// Starts `mogplex ARGS` on a `cols`×`rows` terminal with this home's environment.
pub fn cockpit_sized(
    home: &TestHome,
    args: &[&str],
    extra: &[(&str, &str)],
    cols: u16,
    rows: u16,
) -> Term {
    let mut cmd = pty_command(home, args);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    Term::spawn(cmd, cols, rows).unwrap()
}

/// `mogplex ARGS` to run on a pty, with nothing of the developer's environment but this home's.
pub fn pty_command(home: &TestHome, args: &[&str]) -> std::process::Command {
    let mut cmd = term::command(bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.dir.path().join("user"))
        .env("MOGPLEX_HOME", &home.home)
        .env("TERM", "xterm-256color");
    for (k, v) in home.env_vars() {
        cmd.env(k, v);
    }
    cmd
}

/// Waits for `needle` on screen, or fails showing the screen.
pub fn expect(t: &Term, needle: &str) -> String {
    match t.wait_for(needle, WAIT) {
        Ok(s) => s,
        Err(s) => panic!("`{needle}` never appeared; the screen:\n{s}"),
    }
}

/// The address a `BROWSER` of `echo >> FILE` was asked to open, once it has been.
pub fn browser_url(file: &std::path::Path) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(u) = std::fs::read_to_string(file)
            && !u.trim().is_empty()
        {
            return u.trim().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the browser was not started"
        );
        std::thread::sleep(Duration::from_millis(20));
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
    assert_eq!(
        chat.header("authorization"),
        Some(&*format!("Bearer {key}"))
    );
    assert_eq!(chat.json()["messages"][0]["content"], "say hello");

    // /model: the pick is used from now on, and remembered for the next session and `exec`.
    submit(&mut t, "/model");
    expect(&t, "openai/gpt-4.1-mini");
    t.send(keys::DOWN);
    t.send(keys::ENTER);
    expect(&t, "Now using gpt-4.1-mini");
    expect(&t, "mogplex · OpenAI · gpt-4.1-mini");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.home.join("state.json")).unwrap())
            .unwrap();
    assert_eq!(state["last_model"]["openai"], "gpt-4.1-mini");
    assert_eq!(mode(&home.home.join("state.json")), 0o600);
    let out = home.run(&["exec", "which model?"]);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    let last = server.requests().into_iter().last().unwrap();
    assert_eq!(
        last.json()["model"],
        "gpt-4.1-mini",
        "exec uses the picked model"
    );

    // Completion of slash commands, then /logout of the stored key, confirmed.
    t.type_text("/logo");
    expect(
        &t,
        "/logout [provider|--all]  sign out of one or all accounts, or remove a key",
    );
    t.send(keys::TAB);
    submit(&mut t, "openai");
    expect(&t, "Remove the stored OpenAI key?");
    t.send("y");
    let screen = expect(&t, "Removed the stored OpenAI API key");
    assert!(
        screen.contains("Sign in with Mogplex"),
        "back to login:\n{screen}"
    );
    assert!(home.auth()["providers"].get("openai").is_none());

    // The key never reached the screen or the log.
    assert!(!t.raw_output().contains(key), "the key was drawn");
    assert!(!home.log_text().contains(key), "the key was logged");
    assert!(home.log_text().contains("\"event\":\"response.done\""));

    t.send("q");
    let status = t.wait_exit(WAIT).expect("quit");
    assert!(status.success());
}

/// `mogplex-server dev` as a process: loopback, a fresh data directory, the demo account.
pub struct DevServer {
    child: std::process::Child,
    pub url: String,
    pub email: String,
    pub password: String,
    _dir: tempfile::TempDir,
}

/// The `mogplex-server` binary that `cargo test --workspace` builds beside this test binary.
pub fn server_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("mogplex-server");
    assert!(
        bin.exists(),
        "{} is missing: run the suite with `cargo test --workspace` (or `cargo build -p mogplex-server` first)",
        bin.display()
    );
    bin
}

impl DevServer {
    pub fn start() -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(server_bin())
            .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (mut url, mut email, mut password) = (None, None, None);
        for line in out.lines().map_while(Result::ok) {
            if let Some(u) = line.strip_prefix("mogplex-server dev: listening on ") {
                url = Some(u.trim().to_owned());
            } else if let Some(e) = line.trim().strip_prefix("demo account:") {
                email = Some(e.trim().to_owned());
            } else if let Some(p) = line.trim().strip_prefix("demo password:") {
                password = Some(p.trim().to_owned());
                break;
            }
        }
        Self {
            child,
            url: url.expect("the dev server printed its address"),
            email: email.expect("the dev server printed the demo account"),
            password: password.expect("the dev server printed the demo password"),
            _dir: dir,
        }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sign_in_with_mogplex_in_chromium_against_mogplex_server_dev() {
    let _ports = crate::signin::PORTS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let server = DevServer::start();
    let home = TestHome::new();
    let browser = crate::signin::chromium_browser_command();
    let mut t = cockpit(
        &home,
        &[
            ("MOGPLEX_URL", &server.url),
            ("BROWSER", &browser),
            ("CHROMIUM_TEST_EMAIL", &server.email),
            ("CHROMIUM_TEST_PASS", &server.password),
        ],
    );
    expect(&t, "Sign in with Mogplex");
    // The dev server offers device codes, so the choice stays.
    expect(&t, "Sign in with a device code");
    t.send(keys::ENTER);
    // The address is on screen to copy while Chromium (as $BROWSER) signs in.
    let waiting = expect(&t, "Waiting for you to sign in in your browser");
    assert!(waiting.contains("/api/auth/mcp/authorize"), "{waiting}");
    assert!(
        waiting.contains("paste the address it ends on"),
        "{waiting}"
    );
    let screen = t
        .wait_for(
            &format!("Signed in as {}", server.email),
            Duration::from_secs(90),
        )
        .unwrap_or_else(|s| panic!("the sign-in did not finish:\n{s}"));
    assert!(
        screen.contains("Mogplex sign-in (demo@mogplex.local)"),
        "{screen}"
    );
    // The account's default model comes from its catalog.
    expect(&t, "mogplex · Mogplex · mogplex/echo");
    let auth = home.account();
    assert!(auth["access_token"].is_string());
    assert_eq!(auth["account"]["email"], server.email.as_str());
    assert_eq!(mode(&home.auth_path()), 0o600);

    submit(&mut t, "echo, are you there?");
    let screen = t
        .wait_until(|s| s.matches("echo, are you there?").count() >= 2, WAIT)
        .unwrap_or_else(|s| panic!("no echo:\n{s}"));
    assert!(screen.contains("you › echo, are you there?"), "{screen}");
    for secret in ["access_token", "refresh_token"] {
        let value = auth[secret].as_str().unwrap();
        assert!(!t.raw_output().contains(value), "{secret} was drawn");
        assert!(!home.log_text().contains(value), "{secret} was logged");
    }
    submit(&mut t, "/quit");
    assert!(t.wait_exit(WAIT).expect("quit").success());
}

#[test]
fn an_environment_key_overriding_a_sign_in_is_shown_and_survives_logout() {
    let _ports = crate::signin::PORTS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let server = crate::signin::Server::start();
    let mut home = crate::signin::signed_in(&server);
    let upstream = FakeServer::start();
    upstream.route(
        "/openai/chat/completions",
        openai_stream(&["answered by ", "OpenAI"]),
    );
    home.env("OPENAI_BASE_URL", &format!("{}/openai", upstream.url()))
        .env("MOGPLEX_URL", &server.url);
    let key = "sk-env-override-0123456789abcdef";
    let mut t = cockpit(&home, &[("OPENAI_API_KEY", key)]);

    let screen = expect(&t, "mogplex · OpenAI · gpt-4.1");
    assert!(
        screen.contains("OpenAI key sk-…cdef from OPENAI_API_KEY"),
        "{screen}"
    );
    assert!(
        screen.contains("OPENAI_API_KEY in this shell takes precedence over your stored Mogplex"),
        "the override is said out loud:\n{screen}"
    );
    // /login says before signing in that the variable will still win.
    submit(&mut t, "/login");
    let login = expect(&t, "Sign in with Mogplex");
    assert!(
        login.contains("OPENAI_API_KEY is set in this shell and will still take precedence over a"),
        "{login}"
    );
    t.send(keys::ESC);
    expect(&t, "mogplex · OpenAI · gpt-4.1");
    submit(&mut t, "/status");
    let status = expect(&t, "Override");
    assert!(status.contains("signed in as ada@example.com"), "{status}");
    assert!(
        status.contains("Mogplex sign-in (ada@example.com)"),
        "{status}"
    );
    t.send(keys::ESC);
    t.wait_until(|s| !s.contains("┌ status"), WAIT)
        .unwrap_or_else(|s| panic!("the overlay stayed:\n{s}"));

    submit(&mut t, "/logout");
    expect(&t, "Sign out of Mogplex? Stored provider keys are kept.");
    t.send("y");
    let screen = expect(&t, "Signed out of Mogplex");
    let screen = if screen.contains("next session") {
        screen
    } else {
        expect(&t, "next session")
    };
    assert!(
        screen.contains(
            "OPENAI_API_KEY is still set in this shell, so the next session uses OpenAI too"
        ),
        "{screen}"
    );
    // Still in the session, on the variable, and the notice about the sign-in is gone with it.
    assert!(screen.contains("mogplex · OpenAI · gpt-4.1"), "{screen}");
    assert!(
        !screen.contains("takes precedence over your stored Mogplex"),
        "{screen}"
    );
    assert!(home.account().is_null());
    let revoked = || server.count("SELECT COUNT(*) FROM token_families WHERE revoked_at IS NULL");
    let deadline = std::time::Instant::now() + WAIT;
    while revoked() != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(revoked(), 0, "the sign-in was revoked on the server");

    submit(&mut t, "still there?");
    expect(&t, "answered by OpenAI");
    assert!(!t.raw_output().contains(key), "the key was drawn");
    t.send(keys::CTRL_C);
    expect(&t, "Press Ctrl+C again to quit");
    t.send(keys::CTRL_C);
    assert!(t.wait_exit(WAIT).expect("quit").success());
}

#[test]
fn logout_flag_signs_out_first_then_opens_the_login_screen() {
    let home = TestHome::new();
    home.write_auth(&serde_json::json!({"version": 1,
        "mogplex": {"issuer": "http://127.0.0.1:9", "api_key": "mog_flag0123456789abcdef"},
        "providers": {"groq": {"apiKey": "gsk_kept0123456789"}}}));
    // Without the stored Groq key nothing would resolve; with it the session opens on Groq.
    let mut t = cockpit_with(
        &home,
        &["--logout"],
        &[("MOGPLEX_URL", "http://127.0.0.1:9")],
    );
    let screen = expect(&t, "mogplex · Groq");
    assert!(!screen.contains("mog_"), "{screen}");
    assert!(home.account().is_null());
    assert_eq!(
        home.auth()["providers"]["groq"]["apiKey"],
        "gsk_kept0123456789"
    );
    submit(&mut t, "/logout groq");
    expect(&t, "Remove the stored Groq key?");
    t.send(keys::ENTER);
    expect(&t, "Sign in with Mogplex");
    // The dead service answers nothing, so the device choice stays on offer.
    expect(&t, "Sign in with a device code");
    t.send(keys::ESC);
    assert!(
        t.wait_exit(WAIT)
            .expect("Esc on the login screen quits")
            .success()
    );
}

#[test]
fn no_model_access_says_where_to_go() {
    let _ports = crate::signin::PORTS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let server = crate::signin::Server::start();
    let mut home = crate::signin::signed_in(&server);
    home.env("MOGPLEX_URL", &server.url);
    // Signed in, but the account's plan is gone.
    server.sql("UPDATE users SET plan_id = NULL");
    let mut t = cockpit(&home, &[]);
    expect(&t, "mogplex · Mogplex");
    // The empty catalog is explained where the models would be listed.
    submit(&mut t, "/model");
    let models = expect(&t, "Your Mogplex account has no models yet");
    assert!(models.contains("No models to choose from."), "{models}");
    t.send(keys::ESC);
    t.wait_until(|s| !s.contains("┌ model"), WAIT)
        .unwrap_or_else(|s| panic!("the overlay stayed:\n{s}"));
    submit(&mut t, "hello?");
    let screen = expect(&t, "this account cannot use models yet");
    let site = server.url.clone();
    assert!(
        screen.contains(&format!("{site}/web/models")),
        "Available Models:\n{screen}"
    );
    assert!(
        screen.contains(&format!("{site}/plans-and-billing")),
        "Plans & Billing:\n{screen}"
    );
    assert!(screen.contains("error: signed in to Mogplex"), "{screen}");
    // /status wraps long values instead of cutting them.
    submit(&mut t, "/status");
    let status = expect(&t, "┌ status");
    assert!(status.contains(".access_token)"), "{status}");
    assert!(status.contains("signed in as ada@example.com"), "{status}");
}
