//! The controllers without a terminal: a cockpit on a temp home and a fixed environment, fed
//! messages as the loop would feed them. The channel stands in for the loop: what the background
//! tasks send is read back and handed in, and the tests look at what comes out (the App's
//! transcript and screen, the conversation, what reached the fake upstream, `auth.json`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::sign_in::SignInMsg;
use super::turn::TurnMsg;
use super::*;
use mogplex_auth::credentials::FileStore;
use mogplex_auth::{MapEnv, MogplexHome, ProcessEnv, Redactor};
use mogplex_testkit::{FakeServer, Reply, openai_stream};
use mogplex_tui::{EntryKind, Screen};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

const KEY: &str = "sk-unit-test-0123456789abcdef";

/// A home whose `auth.json` holds `auth` (home 0700, file 0600, as mogplex writes them).
fn home_with(dir: &tempfile::TempDir, auth: serde_json::Value) -> Ctx {
    let home = MogplexHome::at(dir.path().join("home"));
    std::fs::create_dir_all(home.path()).unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(home.auth_file(), auth.to_string()).unwrap();
    std::fs::set_permissions(home.auth_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
    Ctx {
        env: ProcessEnv,
        store: Arc::new(FileStore::new(&home)),
        home,
        redactor: Redactor::new(),
        account_id: None,
        account: None,
    }
}

fn openai_key() -> serde_json::Value {
    serde_json::json!({"version": 1, "providers": {"openai": {"apiKey": KEY}}})
}

/// The environment of a shell with nothing set but where the providers are.
fn env(server: &FakeServer) -> Arc<dyn Env + Send + Sync> {
    Arc::new(MapEnv::new([
        ("OPENAI_BASE_URL", format!("{}/openai", server.url())),
        // Nothing answers there: the account service is not part of these tests.
        ("MOGPLEX_URL", "http://127.0.0.1:9".to_owned()),
    ]))
}

fn key(c: &mut Cockpit, code: KeyCode) {
    c.handle(Msg::App(Event::Key(KeyEvent::new(
        code,
        KeyModifiers::NONE,
    ))));
}

fn type_text(c: &mut Cockpit, text: &str) {
    for ch in text.chars() {
        key(c, KeyCode::Char(ch));
    }
}

/// Hands in what the background tasks send until `done` holds (or fails after a generous wait).
async fn pump(
    c: &mut Cockpit<'_>,
    rx: &mut UnboundedReceiver<Msg>,
    done: impl Fn(&Cockpit) -> bool,
) {
    let wait = async {
        while !done(c) {
            let Some(msg) = rx.recv().await else { break };
            c.handle(msg);
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .is_err()
    {
        panic!("never happened; the transcript: {:?}", c.app.transcript());
    }
}

#[test]
fn a_prompt_goes_out_and_its_streamed_answer_joins_the_conversation() {
    let server = FakeServer::start();
    server.route(
        "/openai/chat/completions",
        openai_stream(&["Hello", " from ", "OpenAI"]),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = home_with(&dir, openai_key());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rt = crate::signin::runtime().unwrap();
    rt.block_on(async {
        let mut c = Cockpit::new(&mut ctx, env(&server), tx).unwrap();
        assert_eq!(c.app.screen(), &Screen::Session);
        type_text(&mut c, "say hello");
        key(&mut c, KeyCode::Enter);
        assert!(c.app.is_streaming());
        pump(&mut c, &mut rx, |c| !c.app.is_streaming()).await;
        let last = c.app.transcript().last().unwrap();
        assert_eq!(
            (last.kind, last.text.as_str()),
            (EntryKind::Assistant, "Hello from OpenAI")
        );
        assert_eq!(c.turn.messages.len(), 2, "the prompt and its answer");
        assert_eq!(c.turn.messages[1].content, "Hello from OpenAI");
    });
    let chat = server.requests().into_iter().last().unwrap();
    assert_eq!(chat.path, "/openai/chat/completions");
    assert_eq!(
        chat.header("authorization"),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(chat.json()["messages"][0]["content"], "say hello");
}

#[test]
fn a_stopped_answer_ignores_what_still_arrives_for_it() {
    let server = FakeServer::start();
    server.route("/openai/chat/completions", openai_stream(&["late"]));
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = home_with(&dir, openai_key());
    let (tx, _rx) = mpsc::unbounded_channel();
    let rt = crate::signin::runtime().unwrap();
    rt.block_on(async {
        let mut c = Cockpit::new(&mut ctx, env(&server), tx).unwrap();
        type_text(&mut c, "stop me");
        key(&mut c, KeyCode::Enter);
        key(&mut c, KeyCode::Esc);
        assert!(!c.app.is_streaming());
        assert!(
            c.turn.messages.is_empty(),
            "nothing arrived: the prompt leaves"
        );
        // What the aborted task may still have queued is for an answer no longer awaited.
        c.handle(Msg::Turn(TurnMsg::Delta {
            seq: 1,
            text: "late".into(),
        }));
        assert!(!c.app.transcript().iter().any(|e| e.text == "late"));
    });
}

#[test]
fn progress_of_a_sign_in_that_is_not_running_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = home_with(&dir, serde_json::json!({"version": 1}));
    let server = FakeServer::start();
    let (tx, _rx) = mpsc::unbounded_channel();
    let rt = crate::signin::runtime().unwrap();
    rt.block_on(async {
        let mut c = Cockpit::new(&mut ctx, env(&server), tx).unwrap();
        let before = c.app.screen().clone();
        assert!(matches!(before, Screen::Login { .. }));
        c.handle(Msg::SignIn(SignInMsg::Progress {
            seq: 7,
            event: Event::SignInUrl("http://127.0.0.1:9/authorize".into()),
        }));
        assert_eq!(c.app.screen(), &before);
    });
}

#[test]
fn logout_of_a_stored_key_removes_it_and_shows_the_login_screen() {
    let server = FakeServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = home_with(&dir, openai_key());
    let auth = ctx.store.path().to_owned();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rt = crate::signin::runtime().unwrap();
    rt.block_on(async {
        let mut c = Cockpit::new(&mut ctx, env(&server), tx).unwrap();
        type_text(&mut c, "/logout openai");
        key(&mut c, KeyCode::Enter);
        key(&mut c, KeyCode::Char('y'));
        pump(&mut c, &mut rx, |c| {
            matches!(c.app.screen(), Screen::Login { .. })
        })
        .await;
    });
    let text = std::fs::read_to_string(auth).unwrap();
    assert!(!text.contains(KEY), "{text}");
}

#[test]
fn the_bearer_of_a_key_is_the_key_and_a_session_without_a_sign_in_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = home_with(&dir, serde_json::json!({"version": 1}));
    let base: mogplex_providers::Url = "http://127.0.0.1:9/".parse().unwrap();
    let credential = |kind| mogplex_auth::Credential {
        provider: Provider::Mogplex,
        kind,
        source: mogplex_auth::Source::Env {
            var: "MOGPLEX_API_KEY",
        },
        secret: Secret::new("mog_unit0123456789abcdef"),
        account_email: None,
        account_entry: None,
    };
    let rt = crate::signin::runtime().unwrap();
    rt.block_on(async {
        let token = services::bearer_for(
            &ctx.store,
            &credential(mogplex_auth::CredentialKind::PersonalAccessToken),
            &base,
        )
        .await
        .unwrap();
        assert_eq!(token.expose(), "mog_unit0123456789abcdef");
        let err = services::bearer_for(
            &ctx.store,
            &credential(mogplex_auth::CredentialKind::AccountSession),
            &base,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, exit::NO_CREDENTIAL, "{}", err.message);
    });
}

/// `auth.json` holding a Mogplex sign-in for `email`, with the gateway at `server`.
fn signed_in_as(email: &str, server: &FakeServer) -> serde_json::Value {
    serde_json::json!({"version": 1, "mogplex": {
        "issuer": format!("{}/mogplex", server.url()),
        "access_token": format!("mogat_{}_0123456789abcdef", email.len()),
        "token_type": "Bearer",
        "account": {"id": format!("user_{email}"), "email": email}}})
}

#[test]
fn another_account_signing_in_starts_a_new_conversation() {
    let server = FakeServer::start();
    server.route(
        "/mogplex/api/cli/inference/chat/completions",
        openai_stream(&["echo"]),
    );
    server.route(
        "/mogplex/api/models",
        Reply::json(
            200,
            serde_json::json!([{"slug": "mogplex/echo", "provider": "mogplex", "displayName": "Echo"}]),
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = home_with(&dir, signed_in_as("ada@example.com", &server));
    let auth = ctx.store.path().to_owned();
    let env: Arc<dyn Env + Send + Sync> = Arc::new(MapEnv::new([(
        "MOGPLEX_URL",
        format!("{}/mogplex", server.url()),
    )]));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rt = crate::signin::runtime().unwrap();
    rt.block_on(async {
        let mut c = Cockpit::new(&mut ctx, env, tx).unwrap();
        type_text(&mut c, "ada's secret plan");
        key(&mut c, KeyCode::Enter);
        pump(&mut c, &mut rx, |c| !c.app.is_streaming()).await;
        assert_eq!(c.turn.messages.len(), 2);
        // Bob signs in (the sign-in itself is the command line's flow, tested on its own).
        std::fs::write(&auth, signed_in_as("bob@example.com", &server).to_string()).unwrap();
        let seq = c.sign_in.pretend_running();
        c.handle(Msg::SignIn(SignInMsg::Stored {
            seq,
            email: "bob@example.com".into(),
            result: Ok(Vec::new()),
        }));
        assert!(c.turn.messages.is_empty(), "nothing of Ada's is sent again");
        let text: Vec<&str> = c.app.transcript().iter().map(|e| e.text.as_str()).collect();
        assert!(!text.iter().any(|t| t.contains("secret plan")), "{text:?}");
        assert!(
            text.iter()
                .any(|t| t.starts_with("A new conversation with Mogplex sign-in (bob@example.com)")),
            "{text:?}"
        );
        type_text(&mut c, "bob here");
        key(&mut c, KeyCode::Enter);
        pump(&mut c, &mut rx, |c| !c.app.is_streaming()).await;
    });
    let last = server
        .requests()
        .into_iter()
        .rfind(|r| r.path.ends_with("/chat/completions"))
        .unwrap();
    let sent = last.json()["messages"].clone();
    assert_eq!(sent.as_array().map(Vec::len), Some(1), "{sent}");
    assert_eq!(sent[0]["content"], "bob here");
}
