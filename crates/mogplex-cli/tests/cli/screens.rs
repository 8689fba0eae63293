//! The cockpit's screens as a new user meets them, in a real pseudo-terminal: overlays that lose
//! no key, the command popup, a one-line header, every size down to nothing, one error per
//! failure, the sign-in screens, and the account's state that follows the service.

use crate::cockpit::{WAIT, cockpit, cockpit_sized, expect, submit};
use crate::common::*;
use crate::signin::{PORTS, Server, browser_until_callback_as, signed_in};
use mogplex_testkit::term::{Term, keys};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const OPENAI_KEY: &str = "sk-screens-openai-0123456789abcdef";
const GROQ_KEY: &str = "gsk_screens-groq-0123456789abcdef";

/// A home with stored OpenAI and Groq keys, OpenAI routed to `server`.
fn keys_home(server: &FakeServer) -> TestHome {
    let mut home = TestHome::new();
    home.write_auth(&serde_json::json!({"version": 1, "providers": {
        "openai": {"apiKey": OPENAI_KEY}, "groq": {"apiKey": GROQ_KEY}}}));
    home.env("OPENAI_BASE_URL", &format!("{}/openai", server.url()))
        .env("GROQ_BASE_URL", &format!("{}/groq", server.url()))
        .env("MOGPLEX_URL", "http://127.0.0.1:9");
    server.route(
        "/openai/chat/completions",
        openai_stream(&["fine", " thanks"]),
    );
    home
}

fn chats(server: &FakeServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count()
}

/// Waits for the screen to stop showing `needle`.
fn gone(t: &Term, needle: &str) -> String {
    t.wait_until(|s| !s.contains(needle), WAIT)
        .unwrap_or_else(|s| panic!("`{needle}` stayed:\n{s}"))
}

#[test]
fn typing_on_status_goes_to_the_message_box_and_sends_no_fragment() {
    let server = FakeServer::start();
    let home = keys_home(&server);
    let mut t = cockpit(&home, &[]);
    expect(&t, "mogplex · OpenAI");
    submit(&mut t, "/status");
    expect(&t, "┌ status");
    // Typed on the open overlay: its first key closes it, and nothing is lost or sent.
    submit(&mut t, "/logout openai");
    let screen = expect(&t, "Remove the stored OpenAI key?");
    assert!(!screen.contains("┌ status"), "{screen}");
    assert_eq!(chats(&server), 0, "no prompt went to a provider");
    assert!(!screen.contains("you › "), "{screen}");
    // The question takes only its own keys, and says so.
    t.send("o");
    expect(&t, "Only y or n here: y removes it, n or Esc keeps it.");
    t.send("n");
    gone(&t, "Remove the stored OpenAI key?");
    assert_eq!(home.auth()["providers"]["openai"]["apiKey"], OPENAI_KEY);
    assert_eq!(chats(&server), 0);
    // /help closes on a letter, which starts the next message.
    submit(&mut t, "/help");
    expect(&t, "┌ help");
    submit(&mut t, "hello");
    expect(&t, "fine thanks");
    let screen = t.screen();
    assert!(screen.contains("you › hello"), "{screen}");
    assert_eq!(chats(&server), 1);
}

#[test]
fn the_command_popup_opens_on_a_slash_and_runs_the_choice() {
    let server = FakeServer::start();
    let home = keys_home(&server);
    let mut t = cockpit_sized(&home, &[], &[], 80, 24);
    expect(&t, "mogplex · OpenAI");
    t.type_text("/");
    let screen = expect(&t, "/logout [provider|--all]");
    for line in [
        "/login                    sign in, or use another credential",
        "/status                   which credential is in use, and where it came from",
        "/quit                     leave mogplex",
    ] {
        assert!(screen.contains(line), "{line}:\n{screen}");
    }
    assert!(
        screen.contains("↑/↓ choose · Tab complete · Enter run · Esc close"),
        "{screen}"
    );
    t.type_text("mo");
    let screen = t
        .wait_until(|s| !s.contains("/login "), WAIT)
        .unwrap_or_else(|s| panic!("the popup kept every command:\n{s}"));
    assert!(screen.contains("› /model"), "{screen}");
    // Enter takes the highlighted command and runs it.
    t.send(keys::ENTER);
    expect(&t, "┌ model");
    expect(&t, "openai/gpt-4.1");
    t.send(keys::ESC);
    gone(&t, "┌ model");
    // Esc closes the popup and keeps what was typed.
    t.type_text("/he");
    expect(&t, "› /help");
    t.send(keys::ESC);
    let screen = gone(&t, "› /help");
    assert!(screen.contains("│/he"), "{screen}");
    t.type_text("l");
    let screen = expect(&t, "› /help");
    insta::assert_snapshot!("cockpit_popup_80x24", screen);
}

#[test]
fn the_header_is_one_line_and_one_per_override_without_paths() {
    let server = FakeServer::start();
    let mut home = keys_home(&server);
    // The variable overrides the stored OpenAI key.
    home.env("OPENAI_API_KEY", "sk-screens-env-0123456789abcdef");
    let mut t = cockpit_sized(&home, &[], &[], 60, 20);
    let screen = expect(&t, "mogplex · OpenAI · gpt-4.1");
    let lines: Vec<&str> = screen.lines().collect();
    assert!(
        lines[0].starts_with("mogplex · OpenAI · gpt-4.1"),
        "{screen}"
    );
    assert_eq!(
        lines[1], "! OPENAI_API_KEY overrides the stored OpenAI key",
        "{screen}"
    );
    assert_eq!(
        lines[2], "",
        "the transcript starts on the third row:\n{screen}"
    );
    let home_path = home.home.display().to_string();
    assert!(!screen.contains(&home_path), "{screen}");
    assert!(!screen.contains("auth.json ("), "{screen}");
    insta::assert_snapshot!("cockpit_header_60x20", screen);
    // No path on /model rows or in "Now using" either; /status has them.
    submit(&mut t, "/model");
    let models = expect(&t, "groq/");
    assert!(!models.contains(&home_path), "{models}");
    assert!(models.contains("Groq · auth.json"), "{models}");
    t.type_text("groq/");
    t.send(keys::ENTER);
    let screen = expect(&t, "Now using");
    assert!(screen.contains("(Groq · auth.json)"), "{screen}");
    assert!(!screen.contains(&home_path), "{screen}");
    submit(&mut t, "/status");
    let status = expect(&t, "┌ status");
    assert!(status.contains("(providers.groq.apiKey)"), "{status}");
}

#[test]
fn narrow_and_empty_terminals_draw_every_screen_without_crashing() {
    let server = FakeServer::start();
    let home = keys_home(&server);
    for (cols, rows) in [(30, 8), (35, 10), (12, 3), (0, 0)] {
        let mut t = cockpit_sized(&home, &[], &[], cols, rows);
        // Something is drawn (or, at 0×0, nothing can be), and the program keeps running.
        if cols >= 20 {
            expect(&t, "mogplex · OpenAI");
        } else {
            std::thread::sleep(Duration::from_millis(300));
        }
        for command in ["/status", "/help", "/model", "/mcp", "/logout", "/login"] {
            submit(&mut t, command);
            std::thread::sleep(Duration::from_millis(100));
            t.send(keys::ESC);
            assert_eq!(
                t.wait_exit(Duration::from_millis(200)),
                None,
                "{command} at {cols}×{rows} ended the cockpit:\n{}",
                t.screen()
            );
        }
        if cols == 30 {
            submit(&mut t, "/help");
            let screen = expect(&t, "┌ help");
            assert!(screen.contains("↓ more"), "says there is more:\n{screen}");
            t.send(keys::ESC);
        }
        if cols == 12 {
            let screen = expect(&t, "needs a");
            assert!(screen.contains("bigger"), "{screen}");
        }
        submit(&mut t, "/quit");
        let status = t
            .wait_exit(WAIT)
            .unwrap_or_else(|| panic!("/quit at {cols}×{rows}:\n{}", t.screen()));
        assert!(
            status.success(),
            "{cols}×{rows}: {status:?}\n{}",
            t.screen()
        );
    }
}

#[test]
fn with_the_service_down_a_prompt_gets_one_clear_error() {
    let home = TestHome::new();
    let mut t = cockpit(
        &home,
        &[
            ("MOGPLEX_API_KEY", "mog_screens0123456789abcdef"),
            ("MOGPLEX_URL", "http://127.0.0.1:9"),
        ],
    );
    expect(&t, "mogplex · Mogplex");
    submit(&mut t, "hello?");
    expect(&t, "error: ");
    // Both failures have happened (the answer's, shown; the run's, logged) before looking.
    let deadline = std::time::Instant::now() + WAIT;
    while !home.log_text().contains("\"run.failed\"") {
        assert!(std::time::Instant::now() < deadline, "the run never failed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let screen = t.wait_until(|_| true, WAIT).unwrap();
    assert_eq!(
        screen.matches("error: ").count(),
        1,
        "one failure, one error:\n{screen}"
    );
    assert!(!screen.contains("the run a new run"), "{screen}");
    assert!(screen.contains("Mogplex is unavailable at"), "{screen}");
}

#[test]
fn the_sign_in_address_is_drawn_without_a_border_to_copy_it_cleanly() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let home = TestHome::new();
    let mut t = cockpit_sized(
        &home,
        &[],
        &[("MOGPLEX_URL", &server.url), ("BROWSER", "true")],
        80,
        24,
    );
    expect(&t, "Sign in with Mogplex");
    t.send(keys::ENTER);
    let screen = expect(&t, "Waiting for you to sign in in your browser");
    let rows: Vec<&str> = screen.lines().collect();
    let first = rows
        .iter()
        .position(|r| r.starts_with("http://"))
        .unwrap_or_else(|| panic!("the address starts a row:\n{screen}"));
    let mut address = String::new();
    for r in &rows[first..] {
        if r.is_empty() {
            break;
        }
        assert!(
            !r.contains(['│', '┌', '└', '─', ' ']),
            "a row of the address holds only the address: {r:?}\n{screen}"
        );
        address.push_str(r);
    }
    assert!(
        address.contains("/api/auth/mcp/authorize?") && address.contains("state="),
        "{address}"
    );
    assert!(!screen.contains('│'), "no box:\n{screen}");
    // Only the keys that work: nothing to submit yet.
    assert!(
        screen.ends_with("Ctrl+Y copy the address · Esc cancel"),
        "{screen}"
    );
    t.send(keys::ESC);
    expect(&t, "Sign in with a device code");
}

#[test]
fn the_device_screen_shows_the_address_with_the_code() {
    let server = Server::start();
    let home = TestHome::new();
    let mut t = cockpit(&home, &[("MOGPLEX_URL", &server.url)]);
    expect(&t, "Sign in with a device code");
    t.send(keys::DOWN);
    t.send(keys::ENTER);
    let screen = expect(&t, "and enter the code");
    let screen = if screen.contains("user_code=") {
        screen
    } else {
        expect(&t, "user_code=")
    };
    let code = screen
        .lines()
        .find_map(|l| l.strip_prefix("and enter the code"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{screen}"))
        .to_owned();
    assert!(
        screen.contains(&format!("{}/device?user_code={code}", server.url)),
        "the complete address, as the shell shows it:\n{screen}"
    );
    t.send(keys::ESC);
}

#[test]
fn login_while_signed_in_says_who_and_what_signing_in_again_does() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let mut home = signed_in(&server);
    home.env("MOGPLEX_URL", &server.url);
    let mut t = cockpit(
        &home,
        &[("OPENAI_API_KEY", "sk-screens-env-0123456789abcdef")],
    );
    expect(&t, "mogplex · OpenAI");
    submit(&mut t, "/login");
    let screen = expect(&t, "You are signed in to Mogplex as ada@example.com.");
    assert!(
        screen.contains("Signing in again replaces that sign-in"),
        "{screen}"
    );
    // The override is said once here, and the footer offers Esc back, not quit.
    assert_eq!(
        screen.matches("OPENAI_API_KEY").count(),
        1,
        "one warning:\n{screen}"
    );
    assert!(
        screen.ends_with("↑/↓ choose · Enter select · Esc back"),
        "{screen}"
    );
    t.send(keys::ESC);
    expect(&t, "mogplex · OpenAI");
}

#[test]
fn now_using_is_said_only_when_the_credential_in_use_changes() {
    let server = FakeServer::start();
    let home = keys_home(&server);
    let mut t = cockpit(&home, &[]);
    expect(&t, "mogplex · OpenAI");
    // Groq's key is not the one in use: removing it changes nothing in use.
    submit(&mut t, "/logout groq");
    expect(&t, "Remove the stored Groq key?");
    t.send("y");
    let screen = expect(&t, "Removed the stored Groq");
    assert!(!screen.contains("Now using"), "{screen}");
    assert!(home.auth()["providers"].get("groq").is_none());
    // Removing the OpenAI key, in use, leaves nothing: the login screen says so instead.
    submit(&mut t, "/logout openai");
    expect(&t, "Remove the stored OpenAI key?");
    t.send("y");
    let screen = expect(&t, "Removed the stored OpenAI");
    assert!(screen.contains("Sign in with Mogplex"), "{screen}");
}

#[test]
fn after_switching_accounts_the_last_conversation_is_not_shown_as_this_ones() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    server.add_user("bob@example.com");
    // Bob's plan, so that he can use the echo model too.
    server.sql("UPDATE users SET plan_id = (SELECT id FROM plans WHERE name = 'dev')");
    let mut home = signed_in(&server);
    home.env("MOGPLEX_URL", &server.url);
    let url_file = home.dir.path().join("browser-url");
    let browser = format!("echo >> {}", url_file.display());
    let mut t = cockpit(&home, &[("BROWSER", &browser)]);
    expect(&t, "mogplex · Mogplex · mogplex/echo");
    submit(&mut t, "ada's secret plan");
    t.wait_until(|s| s.matches("ada's secret plan").count() >= 2, WAIT)
        .unwrap_or_else(|s| panic!("no echo:\n{s}"));
    submit(&mut t, "/login");
    expect(&t, "You are signed in to Mogplex as ada@example.com.");
    t.send(keys::ENTER);
    expect(&t, "Waiting for you to sign in in your browser");
    let authorize = crate::cockpit::browser_url(&url_file);
    let callback = server.block_on(browser_until_callback_as(
        &server.url,
        &authorize,
        "bob@example.com",
    ));
    t.send(&keys::paste(&callback));
    t.send(keys::ENTER);
    let screen = expect(&t, "Signed in as bob@example.com");
    assert!(!screen.contains("ada's secret plan"), "{screen}");
    assert!(
        screen.contains("A new conversation with Mogplex sign-in (bob@example.com)"),
        "{screen}"
    );
    submit(&mut t, "bob here");
    t.wait_until(|s| s.matches("bob here").count() >= 2, WAIT)
        .unwrap_or_else(|s| panic!("no echo:\n{s}"));
    assert!(!t.screen().contains("ada's secret plan"));
}

/// A TCP relay to the account service that can be switched off (connections are then closed as
/// they arrive) and on again: the service going away and coming back, on the same address.
struct Relay {
    url: String,
    on: Arc<AtomicBool>,
    /// The connections it relays, to cut when it goes off (pooled ones would carry on).
    open: Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let on = Arc::new(AtomicBool::new(true));
        let open = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (switch, conns) = (on.clone(), open.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                if !switch.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                conns.lock().unwrap().push(client.try_clone().unwrap());
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                };
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Self { url, on, open }
    }

    fn set(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
        if !on {
            for c in self.open.lock().unwrap().drain(..) {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

#[test]
fn the_stale_mark_clears_and_the_catalog_follows_the_plan() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let relay = Relay::start(&server.url);
    let mut home = signed_in(&server);
    home.env("MOGPLEX_URL", &relay.url);
    // A sign-in is used only with the address that issued it: as if it came through the relay.
    home.set_account_field("issuer", relay.url.trim_end_matches('/').into());
    // No plan yet: no models.
    server.sql("UPDATE users SET plan_id = NULL");
    // Wide enough for the whole header, the run included.
    let mut t = cockpit_sized(&home, &[], &[], 160, 30);
    expect(&t, "0 models");
    // The plan arrives; an answer with mogplex/echo brings the catalog along.
    server.sql("UPDATE users SET plan_id = (SELECT id FROM plans WHERE name = 'dev')");
    submit(&mut t, "hello plan");
    t.wait_until(|s| s.matches("hello plan").count() >= 2, WAIT)
        .unwrap_or_else(|s| panic!("no echo:\n{s}"));
    expect(&t, "· 1 model");
    // The service goes away: /model shows the saved catalog, and the header says it is stale.
    relay.set(false);
    submit(&mut t, "/model");
    expect(
        &t,
        "The Mogplex model catalog is not available (showing the saved one)",
    );
    let screen = expect(&t, "1 model (stale)");
    assert!(screen.contains("mogplex/echo"), "{screen}");
    t.send(keys::ESC);
    gone(&t, "┌ model");
    // It comes back: the next answer clears the mark.
    relay.set(true);
    submit(&mut t, "back again");
    t.wait_until(|s| s.matches("back again").count() >= 2, WAIT)
        .unwrap_or_else(|s| panic!("no echo:\n{s}"));
    let screen = gone(&t, "(stale)");
    assert!(screen.contains("· 1 model"), "{screen}");
    // The plan goes: opening /model fetches the catalog again.
    server.sql("UPDATE users SET plan_id = NULL");
    submit(&mut t, "/model");
    expect(&t, "Your Mogplex account has no models yet");
    expect(&t, "· 0 models");
}
