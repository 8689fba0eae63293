//! Every screen and notice of the cockpit, drawn on ratatui's test backend and snapshotted, and
//! the transitions that lead there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{draw, key, type_text};
use mogplex_auth::Provider;
use mogplex_tui::{
    App, Ask, Effect, Event, Header, LoginMode, ModelChoice, Overlay, Screen, SlashCommand,
};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn render(app: &App) -> String {
    draw(app, 80, 24)
}

/// The effect of a slash command the runtime carries out, without arguments.
fn command(command: SlashCommand) -> Effect {
    Effect::Command {
        command,
        args: Vec::new(),
    }
}

fn stored() -> Header {
    Header {
        provider: Some("Mogplex".into()),
        model: Some("mogplex/echo".into()),
        credential: Some("Mogplex sign-in (ada@example.com)".into()),
        models: Some("1 model".into()),
        stored: vec![Provider::Mogplex, Provider::OpenAi],
        ..Header::default()
    }
}

fn overridden() -> Header {
    Header {
        provider: Some("OpenAI".into()),
        model: Some("gpt-4.1".into()),
        credential: Some("OpenAI key sk-…abcd from OPENAI_API_KEY".into()),
        notices: vec!["OPENAI_API_KEY in this shell takes precedence over your stored Mogplex sign-in (see /status)".into()],
        stored: vec![Provider::Mogplex],
        ..Header::default()
    }
}

#[test]
fn login_screen_and_its_modes() {
    let mut app = App::new(None);
    insta::assert_snapshot!("login", render(&app));
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::StartBrowserSignIn]
    );
    insta::assert_snapshot!("login_starting", render(&app));
    assert!(
        key(&mut app, KeyCode::Enter).is_empty(),
        "a second Enter while starting does not start a second sign-in"
    );
    app.update(Event::SignInUrl(
        "http://127.0.0.1:8787/api/auth/mcp/authorize?response_type=code&client_id=mogplex-cli"
            .into(),
    ));
    type_text(
        &mut app,
        "http://127.0.0.1:24816/auth/callback?code=abc&state=xyz",
    );
    insta::assert_snapshot!("login_waiting_for_browser", render(&app));
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::SubmitCallback(
            "http://127.0.0.1:24816/auth/callback?code=abc&state=xyz".into()
        )]
    );
    assert_eq!(key(&mut app, KeyCode::Esc), vec![Effect::CancelSignIn]);

    key(&mut app, KeyCode::Down);
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::StartDeviceSignIn]
    );
    app.update(Event::DeviceCode {
        uri: "http://127.0.0.1:8787/device".into(),
        code: "BCDF-GHJK".into(),
        complete: Some("http://127.0.0.1:8787/device?user_code=BCDF-GHJK".into()),
    });
    insta::assert_snapshot!("login_device_code", render(&app));
    key(&mut app, KeyCode::Esc);

    app.update(Event::SignInFailed {
        message: "cannot reach the Mogplex account service at http://127.0.0.1:9".into(),
        hint: "check your network connection, and MOGPLEX_URL if you set it".into(),
    });
    insta::assert_snapshot!("login_error", render(&app));
}

#[test]
fn provider_key_entry_never_shows_the_key() {
    let mut app = App::new(None);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    insta::assert_snapshot!("login_pick_provider", render(&app));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    assert!(matches!(
        app.screen(),
        Screen::Login {
            mode: LoginMode::EnterKey {
                provider: Provider::OpenAi,
                ..
            },
            ..
        }
    ));
    app.update(Event::Paste("sk-supersecretvalue-0123456789".into()));
    let screen = render(&app);
    insta::assert_snapshot!("login_provider_key", screen);
    assert!(!screen.contains("supersecret"));
    let effects = key(&mut app, KeyCode::Enter);
    match &effects[..] {
        [Effect::StoreKey { provider, key }] => {
            assert_eq!(*provider, Provider::OpenAi);
            assert_eq!(key.expose(), "sk-supersecretvalue-0123456789");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn session_with_a_stored_credential_and_a_streamed_answer() {
    let mut app = App::new(Some(stored()));
    type_text(&mut app, "hello there");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::SendPrompt("hello there".into())]
    );
    app.update(Event::Delta("hello ".into()));
    app.update(Event::Delta("there".into()));
    insta::assert_snapshot!("session_streaming", render(&app));
    app.update(Event::AnswerDone);
    insta::assert_snapshot!("session_stored_credential", render(&app));
}

#[test]
fn session_with_an_environment_override() {
    let app = App::new(Some(overridden()));
    let screen = render(&app);
    insta::assert_snapshot!("session_env_override", screen);
    assert!(screen.contains("OPENAI_API_KEY in this shell takes precedence"));
}

#[test]
fn slash_commands() {
    let mut app = App::new(Some(stored()));
    type_text(&mut app, "/st");
    insta::assert_snapshot!("session_completion", render(&app));
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.composer().text(), "/status ");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![command(SlashCommand::Status)]
    );
    app.update(Event::StatusReady(vec![
        (
            "Mogplex".into(),
            "sign-in (ada@example.com) mog_…x1y2 from auth.json".into(),
        ),
        ("OpenAI".into(), "key sk-…abcd from OPENAI_API_KEY".into()),
        ("Anthropic".into(), "none".into()),
        ("Home".into(), "/home/ada/.mogplex".into()),
        (
            "Log".into(),
            "/home/ada/.mogplex/logs/20261122T080000Z-ab12cd34.jsonl".into(),
        ),
    ]));
    insta::assert_snapshot!("status", render(&app));
    key(&mut app, KeyCode::Esc);

    type_text(&mut app, "/model");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![command(SlashCommand::Model)]
    );
    assert!(render(&app).contains("Loading the models"));
    app.update(Event::ModelsReady(vec![
        ModelChoice::new("mogplex/echo", "Echo · Mogplex account"),
        ModelChoice::new("openai/gpt-4.1", "OpenAI key"),
        ModelChoice::new("anthropic/claude-sonnet-4-5", "Anthropic key"),
    ]));
    insta::assert_snapshot!("model", render(&app));
    key(&mut app, KeyCode::Down);
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::PickModel("openai/gpt-4.1".into())]
    );

    type_text(&mut app, "/logout");
    assert!(key(&mut app, KeyCode::Enter).is_empty(), "asks first");
    insta::assert_snapshot!("logout_confirmation", render(&app));
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        vec![Effect::Logout(None)]
    );
    type_text(&mut app, "/logout openai");
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Logout(Some(Provider::OpenAi))]
    );

    type_text(&mut app, "/help");
    key(&mut app, KeyCode::Enter);
    insta::assert_snapshot!("help", render(&app));
    key(&mut app, KeyCode::Esc);
    type_text(&mut app, "/clear");
    key(&mut app, KeyCode::Enter);
    assert!(app.transcript().is_empty());
    type_text(&mut app, "/login");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![command(SlashCommand::Login)]
    );
    assert!(matches!(app.screen(), Screen::Login { .. }));
    assert!(
        key(&mut app, KeyCode::Esc).is_empty(),
        "back to the session: a credential still resolves"
    );
    assert_eq!(app.screen(), &Screen::Session);
    type_text(&mut app, "/quit");
    assert_eq!(key(&mut app, KeyCode::Enter), vec![Effect::Quit]);
}

#[test]
fn no_model_access_is_shown_with_where_to_go() {
    let mut app = App::new(Some(stored()));
    type_text(&mut app, "hi");
    key(&mut app, KeyCode::Enter);
    app.update(Event::AnswerFailed {
        message: "signed in to Mogplex, but this account cannot use models yet".into(),
        hint: Some("see Available Models: http://127.0.0.1:8787/web/models · add access under Plans & Billing: http://127.0.0.1:8787/plans-and-billing".into()),
    });
    insta::assert_snapshot!("no_model_access", render(&app));
}

#[test]
fn double_ctrl_c_quits_and_logout_to_nothing_shows_login() {
    let mut app = App::new(Some(stored()));
    let ctrl_c = || Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    type_text(&mut app, "draft");
    assert!(app.update(ctrl_c()).is_empty());
    assert!(
        app.composer().is_empty(),
        "the first Ctrl+C clears the composer"
    );
    assert!(render(&app).contains("Press Ctrl+C again to quit"));
    assert_eq!(app.update(ctrl_c()), vec![Effect::Quit]);
    // After a logout leaves nothing that resolves, the login screen comes back at once.
    let mut app = App::new(Some(stored()));
    app.update(Event::Resolved(None));
    assert!(matches!(app.screen(), Screen::Login { .. }));
}

#[test]
fn device_choice_hides_when_the_service_has_none() {
    let mut app = App::new(None);
    app.update(Event::DeviceFlowOffered(false));
    let screen = render(&app);
    assert!(!screen.contains("device code"), "{screen}");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    assert!(matches!(
        app.screen(),
        Screen::Login {
            mode: LoginMode::PickProvider { .. },
            ..
        }
    ));
}

#[test]
fn the_end_of_a_long_answer_stays_in_view() {
    let mut app = App::new(Some(stored()));
    type_text(&mut app, "long");
    key(&mut app, KeyCode::Enter);
    // Far more rows than the screen, and single lines that wrap many times.
    for i in 0..40 {
        app.update(Event::Delta(format!("line {i} {}\n", "word ".repeat(30))));
    }
    app.update(Event::Delta("THE END".into()));
    app.update(Event::AnswerDone);
    let screen = render(&app);
    assert!(screen.contains("THE END"), "{screen}");
    key(&mut app, KeyCode::PageUp);
    let screen = render(&app);
    assert!(!screen.contains("THE END"), "scrolled up: {screen}");
    assert!(screen.contains("showing earlier messages"));
    key(&mut app, KeyCode::PageDown);
    assert!(render(&app).contains("THE END"));
}

#[test]
fn composer_edits_recall_and_stop() {
    let mut app = App::new(Some(stored()));
    type_text(&mut app, "helo");
    key(&mut app, KeyCode::Left);
    type_text(&mut app, "l");
    assert_eq!(app.composer().text(), "hello");
    key(&mut app, KeyCode::End);
    app.update(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::SHIFT,
    )));
    type_text(&mut app, "two");
    assert_eq!(app.composer().text(), "hello\ntwo");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::SendPrompt("hello\ntwo".into())]
    );
    assert_eq!(key(&mut app, KeyCode::Esc), vec![Effect::CancelAnswer]);
    assert!(!app.is_streaming());
    app.update(Event::Delta("late".into()));
    assert!(
        !app.transcript().iter().any(|e| e.text == "late"),
        "deltas after a stop are dropped"
    );
    key(&mut app, KeyCode::Up);
    assert_eq!(
        app.composer().text(),
        "hello\ntwo",
        "Up recalls the last prompt"
    );
    app.update(Event::Paste("x\r\ny\u{1b}[31m".into()));
    assert_eq!(app.composer().text(), "hello\ntwox\ny[31m");
}

#[test]
fn logout_asks_only_about_what_is_stored() {
    let mut app = App::new(Some(Header {
        provider: Some("OpenAI".into()),
        model: Some("gpt-4.1".into()),
        credential: Some("OpenAI key sk-…abcd from OPENAI_API_KEY".into()),
        stored: vec![Provider::Groq],
        ..Header::default()
    }));
    type_text(&mut app, "/logout");
    key(&mut app, KeyCode::Enter);
    assert!(app.overlay().is_none());
    assert!(render(&app).contains("No Mogplex sign-in is stored"));
    type_text(&mut app, "/logout openai");
    key(&mut app, KeyCode::Enter);
    assert!(
        app.overlay().is_none(),
        "the OpenAI key is not stored, only set"
    );
    type_text(&mut app, "/logout groq");
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        vec![Effect::Logout(Some(Provider::Groq))]
    );
}

#[test]
fn logout_all_asks_first_and_says_what_it_does() {
    let mut app = App::new(Some(stored()));
    type_text(&mut app, "/logout --all");
    assert!(key(&mut app, KeyCode::Enter).is_empty(), "asks first");
    let screen = render(&app);
    assert!(screen.contains("every Mogplex account"), "{screen}");
    assert_eq!(key(&mut app, KeyCode::Char('y')), vec![Effect::LogoutAll]);
    assert!(app.overlay().is_none());
    type_text(&mut app, "/logout --all");
    key(&mut app, KeyCode::Enter);
    assert!(
        key(&mut app, KeyCode::Esc).is_empty(),
        "Esc keeps everything"
    );
    assert!(app.overlay().is_none());
}

#[test]
fn a_key_stored_while_another_stays_in_use_asks_before_switching() {
    let mut app = App::new(Some(stored()));
    let ask = || Event::AskSwitch {
        provider: Provider::Groq,
        keep: "OpenAI (auth.json)".into(),
    };
    app.update(ask());
    let screen = render(&app);
    assert!(screen.contains("Use the new Groq key now?"), "{screen}");
    assert!(
        screen.contains("OpenAI (auth.json) stays in use"),
        "{screen}"
    );
    // Only its own keys: a letter is refused and typed nowhere.
    assert!(key(&mut app, KeyCode::Char('g')).is_empty());
    assert_eq!(app.composer().text(), "");
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        vec![Effect::UseStoredKey(Provider::Groq)]
    );
    // No keeps the credential in use and says how to switch later.
    app.update(ask());
    assert!(key(&mut app, KeyCode::Char('n')).is_empty());
    assert!(app.overlay().is_none());
    let screen = render(&app);
    assert!(
        screen.contains("choose a Groq model with /model"),
        "{screen}"
    );
    // Asked while another overlay is open, it is said instead, and takes no key from it.
    type_text(&mut app, "/help");
    key(&mut app, KeyCode::Enter);
    app.update(ask());
    assert!(matches!(app.overlay(), Some(Overlay::Help { .. })));
}

#[test]
fn typing_on_an_informational_overlay_goes_to_the_message_box() {
    let mut app = App::new(Some(stored()));
    type_text(&mut app, "/status");
    key(&mut app, KeyCode::Enter);
    app.update(Event::StatusReady(vec![(
        "Home".into(),
        "/home/ada".into(),
    )]));
    assert!(app.overlay().is_some());
    // The first key closes it and is typed; every later key is typed too: no "n" of
    // "openai" closes anything, and no fragment is sent.
    type_text(&mut app, "/logout openai");
    assert!(app.overlay().is_none());
    assert_eq!(app.composer().text(), "/logout openai");
    assert!(
        key(&mut app, KeyCode::Enter).is_empty(),
        "asks before removing the key"
    );
    assert!(matches!(
        app.overlay(),
        Some(Overlay::Confirm {
            ask: Ask::Logout(Some(Provider::OpenAi)),
            refused: false
        })
    ));
    // The question takes only its own keys, and says which when another arrives.
    assert!(key(&mut app, KeyCode::Char('o')).is_empty());
    assert!(matches!(
        app.overlay(),
        Some(Overlay::Confirm { refused: true, .. })
    ));
    assert!(render(&app).contains("Only y or n here"));
    assert_eq!(app.composer().text(), "", "the key went nowhere else");
    assert!(key(&mut app, KeyCode::Char('n')).is_empty());
    assert!(app.overlay().is_none());

    // /help closes on a letter too, which is typed; Esc closes without typing.
    type_text(&mut app, "/help");
    key(&mut app, KeyCode::Enter);
    type_text(&mut app, "q");
    assert!(app.overlay().is_none());
    assert_eq!(app.composer().text(), "q");
    key(&mut app, KeyCode::Backspace);
    type_text(&mut app, "/help");
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Esc);
    assert!(app.overlay().is_none());
    assert_eq!(app.composer().text(), "");
    // A paste on an informational overlay lands in the message box as well.
    app.update(Event::StatusReady(vec![]));
    app.update(Event::Paste("pasted".into()));
    assert!(app.overlay().is_none());
    assert_eq!(app.composer().text(), "pasted");
}

#[test]
fn the_model_list_takes_typing_as_a_filter() {
    let mut app = App::new(Some(stored()));
    type_text(&mut app, "/model");
    key(&mut app, KeyCode::Enter);
    // Typed while the list loads: kept as the filter.
    type_text(&mut app, "mini");
    app.update(Event::ModelsReady(vec![
        ModelChoice::new("openai/gpt-4.1", "OpenAI"),
        ModelChoice::new("openai/gpt-4.1-mini", "OpenAI"),
    ]));
    assert!(render(&app).contains("filter: mini"));
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::PickModel("openai/gpt-4.1-mini".into())]
    );
    assert_eq!(app.composer().text(), "");
}

#[test]
fn the_command_popup_completes_chooses_and_closes() {
    let mut app = App::new(Some(stored()));
    type_text(&mut app, "/");
    let (matches, selected) = app.popup().expect("the popup opens on a slash");
    assert_eq!(matches.len(), SlashCommand::ALL.len(), "every command");
    assert_eq!(selected, 0);
    let screen = render(&app);
    for c in SlashCommand::ALL {
        assert!(screen.contains(&c.slash()), "{screen}");
        assert!(screen.contains(c.description()), "{screen}");
    }
    type_text(&mut app, "m");
    let names: Vec<_> = app.popup().unwrap().0.iter().map(|c| c.name).collect();
    assert_eq!(names, vec!["model", "mcp"]);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.popup().unwrap().1, 1);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.composer().text(), "/mcp ");
    assert!(app.popup().is_none(), "closed once the command is taken");
    // Enter runs the highlighted command.
    app.update(Event::Key(KeyEvent::new(
        KeyCode::Char('u'),
        KeyModifiers::CONTROL,
    )));
    type_text(&mut app, "/sta");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![command(SlashCommand::Status)]
    );
    key(&mut app, KeyCode::Esc);
    // Esc closes it, keeping the text; typing opens it again.
    type_text(&mut app, "/h");
    key(&mut app, KeyCode::Esc);
    assert!(app.popup().is_none());
    assert_eq!(app.composer().text(), "/h");
    type_text(&mut app, "e");
    assert!(app.popup().is_some());
}

#[test]
fn help_lists_every_command_and_key() {
    let mut app = App::new(Some(stored()));
    type_text(&mut app, "/help");
    key(&mut app, KeyCode::Enter);
    let screen = render(&app);
    for c in SlashCommand::ALL {
        assert!(screen.contains(&c.slash()), "{screen}");
    }
    for (k, _) in mogplex_tui::command::KEYS {
        assert!(screen.contains(k), "{k}: {screen}");
    }
    assert!(screen.contains("Alt+Enter"), "{screen}");
    assert!(screen.contains("Esc"), "{screen}");
}

#[test]
fn page_up_and_down_move_a_page() {
    let mut app = App::new(Some(stored()));
    app.update(Event::Resize(80, 24));
    type_text(&mut app, "count");
    key(&mut app, KeyCode::Enter);
    for i in 0..200 {
        app.update(Event::Delta(format!("row {i}\n")));
    }
    app.update(Event::AnswerDone);
    // 24 rows: one header row, a 3-row message box, the keys: 19 rows of transcript.
    key(&mut app, KeyCode::PageUp);
    assert_eq!(app.scroll(), 18, "a page, less the row kept in view");
    key(&mut app, KeyCode::PageUp);
    assert_eq!(app.scroll(), 36);
    key(&mut app, KeyCode::PageDown);
    assert_eq!(app.scroll(), 18);
    for _ in 0..50 {
        key(&mut app, KeyCode::PageUp);
    }
    let top = app.scroll();
    key(&mut app, KeyCode::PageDown);
    assert_eq!(
        app.scroll(),
        top - 18,
        "from the top, one page down at once"
    );
}

/// While an `/mcp login` waits, the browser's answer submitted in the composer goes to the
/// sign-in, never to the model; other text (and the same address when nothing waits) is a
/// prompt as usual.
#[test]
fn a_callback_address_goes_to_the_waiting_mcp_sign_in_not_the_model() {
    let callback = "http://127.0.0.1:24816/auth/callback?code=c1&state=s1";
    let mut app = App::new(Some(stored()));
    app.update(Event::McpSignInWaiting(true));
    type_text(&mut app, callback);
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::SubmitMcpCallback(callback.into())]
    );
    let screen = render(&app);
    assert!(screen.contains("finishing the MCP sign-in"), "{screen}");
    assert!(!screen.contains("code=c1"), "{screen}");
    let denied = "http://127.0.0.1:24816/auth/callback?error=access_denied&state=s1";
    type_text(&mut app, denied);
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::SubmitMcpCallback(denied.into())]
    );
    for prompt in [
        "what does http://x.example/?code=1&state=2 do",
        "http://x.example/?code=1",
    ] {
        type_text(&mut app, prompt);
        assert_eq!(
            key(&mut app, KeyCode::Enter),
            vec![Effect::SendPrompt(prompt.into())]
        );
        app.update(Event::AnswerDone);
    }
    app.update(Event::McpSignInWaiting(false));
    type_text(&mut app, callback);
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::SendPrompt(callback.into())]
    );
}
