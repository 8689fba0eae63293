//! Every screen and overlay at every size: snapshots at 80×24, 60×20 and 30×8, every size up to
//! 40×12 drawn in turn, and a property test over sizes up to 200×70. Drawing never panics, and a
//! screen too small for its parts says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{draw, key, type_text};
use mogplex_auth::Provider;
use mogplex_tui::{App, Event, Header, ModelChoice};
use proptest::prelude::*;
use ratatui::crossterm::event::KeyCode;

fn header() -> Header {
    Header {
        provider: Some("Mogplex".into()),
        model: Some("mogplex/echo".into()),
        credential: Some("Mogplex sign-in (ada@example.com)".into()),
        credential_short: Some("ada@example.com".into()),
        notices: vec![
            "OPENAI_API_KEY in this shell takes precedence over your stored Mogplex sign-in"
                .into(),
        ],
        stored: vec![Provider::Mogplex, Provider::OpenAi],
        login_notice: Some("OPENAI_API_KEY is set in this shell and will still take precedence over a Mogplex sign-in, so OpenAI stays in use; unset it and restart to use your account".into()),
        signed_in: Some("You are signed in to Mogplex as ada@example.com. Signing in again replaces that sign-in with the account you sign in with; stored provider keys are kept.".into()),
        models: Some("3 models".into()),
        mcp: Some("MCP: github, docs".into()),
        stale: true,
        run: Some("run_0123456789abcdef0123".into()),
    }
}

const AUTHORIZE: &str = "http://127.0.0.1:8787/api/auth/mcp/authorize?response_type=code&client_id=mogplex-cli&redirect_uri=http%3A%2F%2F127.0.0.1%3A24816%2Fauth%2Fcallback&state=abcdef0123456789&code_challenge=0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";

fn session() -> App {
    let mut app = App::new(Some(header()));
    type_text(
        &mut app,
        "a question that wraps over the width of a narrow terminal",
    );
    key(&mut app, KeyCode::Enter);
    app.update(Event::Delta(
        "An answer \x1b]0;with a title\x07 in it, and ".into(),
    ));
    app.update(Event::Delta(
        "more words than fit on one row of thirty columns.".into(),
    ));
    app.update(Event::AnswerDone);
    app.update(Event::Notice(
        "Now using mogplex/echo (Mogplex · auth.json)".into(),
    ));
    app
}

/// Every screen and overlay, by name.
fn screens() -> Vec<(&'static str, App)> {
    let mut all = Vec::new();
    let login = App::new(None);
    all.push(("login", login.clone()));

    let mut relogin = App::new(Some(header()));
    type_text(&mut relogin, "/login");
    key(&mut relogin, KeyCode::Enter);
    all.push(("login_while_signed_in", relogin.clone()));

    let mut starting = login.clone();
    key(&mut starting, KeyCode::Enter);
    all.push(("login_starting", starting.clone()));

    let mut browser = starting.clone();
    browser.update(Event::SignInUrl(AUTHORIZE.into()));
    browser.update(Event::SignInNote(
        "no browser could be started here; open the address yourself".into(),
    ));
    all.push(("login_browser", browser));

    let mut device = login.clone();
    key(&mut device, KeyCode::Down);
    key(&mut device, KeyCode::Enter);
    device.update(Event::DeviceCode {
        uri: "http://127.0.0.1:8787/device".into(),
        code: "BCDF-GHJK".into(),
        complete: Some("http://127.0.0.1:8787/device?user_code=BCDF-GHJK".into()),
    });
    all.push(("login_device", device));

    let mut pick = login.clone();
    key(&mut pick, KeyCode::Down);
    key(&mut pick, KeyCode::Down);
    key(&mut pick, KeyCode::Enter);
    all.push(("login_pick_provider", pick.clone()));
    let mut enter_key = pick;
    key(&mut enter_key, KeyCode::Enter);
    enter_key.update(Event::Paste("sk-0123456789abcdef0123456789".into()));
    all.push(("login_key", enter_key));

    let mut failed = login;
    failed.update(Event::SignInFailed {
        message: "cannot reach the Mogplex account service at http://127.0.0.1:9".into(),
        hint: "check your network connection, and MOGPLEX_URL if you set it".into(),
    });
    all.push(("login_error", failed));

    let s = session();
    all.push(("session", s.clone()));

    let mut popup = s.clone();
    type_text(&mut popup, "/");
    all.push(("popup", popup));

    let mut status = s.clone();
    status.update(Event::StatusReady(vec![
        ("In use".into(), "Mogplex · mogplex/echo".into()),
        ("Mogplex".into(), "Mogplex sign-in (ada@example.com) mog_…x1y2 from /home/ada/.mogplex/auth.json (mogplex.access_token)".into()),
        ("OpenAI".into(), "OpenAI key sk-…abcd from OPENAI_API_KEY".into()),
        ("Override".into(), "OPENAI_API_KEY in this shell takes precedence over your stored Mogplex sign-in, so OpenAI is used; unset it to use your Mogplex account".into()),
        ("Home".into(), "/home/ada/.mogplex".into()),
        ("Log".into(), "/home/ada/.mogplex/logs/20261122T080000Z-ab12cd34.jsonl".into()),
    ]));
    all.push(("status", status));

    let mut model = s.clone();
    type_text(&mut model, "/model");
    key(&mut model, KeyCode::Enter);
    model.update(Event::ModelsReady(vec![
        ModelChoice::new("mogplex/echo", "Echo · Mogplex account"),
        ModelChoice::new(
            "mogplex/gpt-4.1",
            "GPT-4.1 · 1047k context · tools · USD 2/8 per M tokens · Mogplex account",
        ),
        ModelChoice::new("openai/gpt-4.1", "OpenAI · OPENAI_API_KEY"),
        ModelChoice::new("openai/gpt-4.1-mini", "OpenAI · OPENAI_API_KEY"),
    ]));
    all.push(("model", model.clone()));
    let mut filtered = model;
    type_text(&mut filtered, "gpt");
    all.push(("model_filtered", filtered));

    let mut mcp = s.clone();
    mcp.update(Event::ListReady {
        title: "MCP servers".into(),
        rows: vec![
            (
                "github".into(),
                "stdio · enabled · github-mcp --stdio · GITHUB_TOKEN=…cdef".into(),
            ),
            (
                "docs".into(),
                "http · disabled · https://mcp.example.com/sse".into(),
            ),
        ],
    });
    all.push(("mcp", mcp));

    let mut help = s.clone();
    type_text(&mut help, "/help");
    key(&mut help, KeyCode::Enter);
    all.push(("help", help));

    let mut switch = s.clone();
    switch.update(Event::AskSwitch {
        provider: mogplex_auth::Provider::Groq,
        keep: "Mogplex (auth.json)".into(),
    });
    all.push(("switch", switch));

    let mut confirm = s;
    type_text(&mut confirm, "/logout");
    key(&mut confirm, KeyCode::Enter);
    type_text(&mut confirm, "x");
    all.push(("logout_refused", confirm));
    all
}

#[test]
fn every_screen_at_80x24_60x20_and_30x8() {
    for (name, app) in screens() {
        let mut text = String::new();
        for (w, h) in [(80, 24), (60, 20), (30, 8)] {
            let mut app = app.clone();
            app.update(Event::Resize(w, h));
            text.push_str(&format!("── {w}×{h} ──\n{}", draw(&app, w, h)));
        }
        insta::assert_snapshot!(name, text);
    }
}

#[test]
fn every_screen_draws_at_every_small_size() {
    for (name, app) in screens() {
        for w in 0..=40 {
            for h in 0..=12 {
                let mut app = app.clone();
                app.update(Event::Resize(w, h));
                let screen = draw(&app, w, h);
                assert_eq!(screen.lines().count(), usize::from(h), "{name} at {w}×{h}");
            }
        }
    }
}

#[test]
fn a_session_too_small_says_so() {
    let screen = draw(&session(), 19, 5);
    assert!(
        screen.contains("mogplex needs a") && screen.contains("bigger window"),
        "{screen}"
    );
    let mut help = session();
    type_text(&mut help, "/help");
    key(&mut help, KeyCode::Enter);
    let screen = draw(&help, 12, 3);
    assert!(
        screen.contains("help: needs") && screen.contains("bigger"),
        "{screen}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn drawing_never_panics(which in 0usize..16, w in 0u16..=200, h in 0u16..=70) {
        let all = screens();
        let (name, app) = &all[which % all.len()];
        let mut app = app.clone();
        app.update(Event::Resize(w, h));
        let screen = draw(&app, w, h);
        prop_assert_eq!(screen.lines().count(), usize::from(h), "{} at {}×{}", name, w, h);
    }
}
