//! The cockpit's runtime: the terminal, one event loop, and the effects of [`mogplex_tui::App`].
//!
//! One loop owns the state. It draws a frame, waits for the next message (a key or a paste from
//! the input thread, or the result of a background task), hands it to the App, and starts what
//! the App asks for. Everything that waits on the network or on the `auth.json` lock (sign-in,
//! answers, revocation, the model catalog, writes) runs off the loop and reports back through the
//! channel, so a frame never waits for the network, and the first frame needs nothing but the
//! environment and `auth.json`.
//!
//! The flows are the command line's own: sign-in is [`mogplex_auth::signin`], answers are
//! [`crate::exec::stream_turn`] (renewal, refresh once on a 401), sign-out is
//! [`crate::login::take_stored`] plus [`mogplex_auth::signin::revoke`], and failures read the same
//! as on the command line.

mod hosted;
pub mod runs;

use crate::ctx::{Ctx, file_secrets};
use crate::error::CliError;
use crate::exec::{TurnOutcome, TurnSink, model_client, provider_error, stream_turn};
use crate::exit;
use crate::log::{Level, SessionLog};
use crate::login::Removal;
use crate::signin::{Surface, account_base, base_label, notice_text, sign_in_error};
use mogplex_auth::signin::{Method, Progress, SignedIn};
use mogplex_auth::state::{State, model_key, remember_model};
use mogplex_auth::{AuthFile, Provider, Resolution, Secret, Source};
use mogplex_protocol::{ChatMessage, CliModel};
use mogplex_providers::{ModelClient, ModelSource, Selection, StreamEvent, known_models};
use mogplex_tui::{App, Effect, Event, Header, ModelChoice, view};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm;
use serde_json::json;
use std::io::Stdout;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// What reaches the loop.
#[derive(Debug)]
enum Msg {
    App(Event),
    Redraw,
    InputClosed,
    /// From the sign-in started as `seq` (older ones are ignored).
    SignInEvent {
        seq: u64,
        event: Event,
    },
    SignedIn {
        seq: u64,
        result: Result<Box<SignedIn>, CliError>,
    },
    SignInStored {
        seq: u64,
        email: String,
        result: Result<(), CliError>,
    },
    KeyStored {
        provider: Provider,
        masked: String,
        /// A warning when a corrupt `auth.json` was moved aside on the way.
        result: Result<Option<String>, CliError>,
    },
    Removed(Result<Removal, CliError>),
    Revoked(Option<String>),
    /// From the answer started as `seq`.
    TurnStarted {
        seq: u64,
        model: String,
    },
    Delta {
        seq: u64,
        text: String,
    },
    Frame(String),
    Refreshed,
    TurnDone {
        seq: u64,
        selection: Box<Selection>,
        outcome: Result<TurnOutcome, CliError>,
    },
    /// The Mogplex account's default model, for the header.
    DefaultModel(String),
    Catalog(Result<Vec<CliModel>, CliError>),
    HostedFetched {
        generation: u64,
        result: Result<Box<mogplex_auth::hosted::Hosted>, CliError>,
    },
    HostedSaveFailed(String),
    RunCreated(String),
    RunEvent(serde_json::Value),
    RunFailed(CliError),
    /// `--attach` waited for a sign-in; whether the run is there for this account.
    AttachChecked {
        id: String,
        result: Result<(), CliError>,
    },
}

type Tx = mpsc::UnboundedSender<Msg>;

fn send(tx: &Tx, msg: Msg) {
    // The loop is gone only when the cockpit is quitting; nothing is left to tell.
    let _ = tx.send(msg);
}

/// Runs the cockpit until the user quits; with `attach`, on that run.
pub fn run(ctx: &mut Ctx, attach: Option<String>) -> Result<(), CliError> {
    let rt = crate::signin::runtime()?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut cockpit = Cockpit::new(ctx, tx.clone())?;
    if let Some(id) = attach {
        // A run that is not there ends here, before the terminal is taken over. Without a
        // Mogplex credential yet, the check waits for the sign-in.
        match cockpit.resolution.for_provider(Provider::Mogplex).cloned() {
            Some(credential) => {
                let base = account_base(&cockpit.ctx.env)?;
                let store = cockpit.ctx.store.clone();
                rt.block_on(async {
                    let client = model_client()?;
                    runs::check_run(&client, &store, &credential, &base, &id).await
                })?;
                cockpit.attach_now = Some(id);
            }
            None => cockpit.pending_attach = Some(id),
        }
    }
    let mut terminal = TerminalGuard::enter().map_err(|e| {
        CliError::new(exit::FAILURE, "cannot set up the terminal for the cockpit")
            .cause(e.to_string())
            .hint("run `mogplex exec \"…\"` for one prompt without the cockpit")
    })?;
    spawn_input(tx);
    rt.block_on(async {
        let mut started = false;
        loop {
            if terminal
                .terminal
                .draw(|f| view::draw(f, &cockpit.app))
                .is_err()
            {
                break;
            }
            // The first frame needs only the resolution; everything else starts after it.
            if !started {
                started = true;
                cockpit.start();
                continue;
            }
            let Some(msg) = rx.recv().await else { break };
            cockpit.handle(msg);
            // Draw once for everything that has arrived (a fast stream sends many deltas).
            while let Ok(msg) = rx.try_recv() {
                cockpit.handle(msg);
            }
            if cockpit.app.quitting {
                break;
            }
        }
        // What this session still has on its way to the run gets there (briefly) before we go.
        if let Some(run) = cockpit.run.take() {
            run.close().await;
        }
    });
    cockpit.finish();
    drop(terminal);
    Ok(())
}

/// Keys, pastes and resizes, read on their own thread (reading blocks).
fn spawn_input(tx: Tx) {
    use crossterm::event::{Event as Term, KeyEventKind};
    std::thread::spawn(move || {
        loop {
            let msg = match crossterm::event::read() {
                Ok(Term::Key(k)) if k.kind != KeyEventKind::Release => Msg::App(Event::Key(k)),
                Ok(Term::Paste(text)) => Msg::App(Event::Paste(text)),
                Ok(Term::Resize(..)) => Msg::Redraw,
                Ok(_) => continue,
                Err(_) => Msg::InputClosed,
            };
            let closed = matches!(msg, Msg::InputClosed);
            if tx.send(msg).is_err() || closed {
                break;
            }
        }
    });
}

/// Raw mode, the alternate screen and bracketed paste while it lives; the terminal as it was
/// when it is dropped, and on a panic too.
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    fn enter() -> std::io::Result<Self> {
        use crossterm::event::{
            EnableBracketedPaste, KeyboardEnhancementFlags, PushKeyboardEnhancementFlags,
        };
        use crossterm::terminal::{EnterAlternateScreen, enable_raw_mode};
        enable_raw_mode()?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        let mut stdout = std::io::stdout();
        // Terminals that know the keyboard protocol then tell Shift+Enter from Enter; others
        // ignore the request.
        crossterm::execute!(
            stdout,
            EnterAlternateScreen,
            EnableBracketedPaste,
            PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
        )
        .inspect_err(|_| restore_terminal())?;
        let terminal =
            Terminal::new(CrosstermBackend::new(stdout)).inspect_err(|_| restore_terminal())?;
        Ok(Self { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn restore_terminal() {
    use crossterm::event::{DisableBracketedPaste, PopKeyboardEnhancementFlags};
    use crossterm::terminal::{LeaveAlternateScreen, disable_raw_mode};
    let mut stdout = std::io::stdout();
    let _ = crossterm::execute!(
        stdout,
        PopKeyboardEnhancementFlags,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = disable_raw_mode();
}

struct Cockpit<'a> {
    ctx: &'a mut Ctx,
    app: App,
    tx: Tx,
    log: SessionLog,
    resolution: Resolution,
    /// Providers with a credential in `auth.json`.
    stored: Vec<Provider>,
    /// The signed-in account (id, email), from `auth.json`.
    account: Option<(Option<String>, Option<String>)>,
    selection: Option<Selection>,
    /// A model picked with `/model` in this session: it wins while its provider has a credential.
    picked: Option<(Provider, String)>,
    messages: Vec<ChatMessage>,
    partial: String,
    seq: u64,
    answer: Option<(u64, AbortHandle)>,
    sign_in: Option<(u64, AbortHandle, Option<mpsc::Sender<String>>)>,
    client: Arc<tokio::sync::OnceCell<ModelClient>>,
    /// What the open `/model` list offers: id shown → provider and model.
    model_choices: Vec<(String, Provider, String)>,
    pending_models: Vec<ModelChoice>,
    hosted: hosted::HostedSlot,
    run: Option<runs::RunLink>,
    /// `--attach` checked and ready, or waiting for a Mogplex sign-in.
    attach_now: Option<String>,
    pending_attach: Option<String>,
}

impl<'a> Cockpit<'a> {
    fn new(ctx: &'a mut Ctx, tx: Tx) -> Result<Self, CliError> {
        let log = ctx.session_log();
        let ctx_home = ctx.home.clone();
        let mut c = Self {
            ctx,
            app: App::new(None),
            tx,
            log,
            resolution: Resolution::default(),
            stored: Vec::new(),
            account: None,
            selection: None,
            picked: None,
            messages: Vec::new(),
            partial: String::new(),
            seq: 0,
            answer: None,
            sign_in: None,
            client: Arc::new(tokio::sync::OnceCell::new()),
            model_choices: Vec::new(),
            pending_models: Vec::new(),
            hosted: hosted::HostedSlot::new(mogplex_auth::hosted::HostedCache::new(&ctx_home)),
            run: None,
            attach_now: None,
            pending_attach: None,
        };
        // Before the terminal is taken over: a refused auth.json ends here with its fix.
        let moved = c.reload()?;
        c.app = App::new(c.header());
        if let Some(w) = c.ctx.home.deprecation_warning() {
            c.note(w.trim_start_matches("warning: "));
        }
        if let Some(m) = moved {
            c.note(m);
        }
        Ok(c)
    }

    /// What happens once the first frame is up.
    fn start(&mut self) {
        let session_id = self.log.id().to_owned();
        let data = match &self.selection {
            Some(s) => {
                json!({"provider": s.provider().id(), "model": s.model, "credential": s.credential.describe(), "session_id": session_id})
            }
            None => json!({"provider": null, "session_id": session_id}),
        };
        self.log
            .write(Level::Info, "session.start", "cockpit started", data);
        for o in &self.resolution.overrides {
            self.log.write(
                Level::Warn,
                "credential.override",
                &o.notice(),
                json!({"variable": o.var}),
            );
        }
        if self.selection.is_none() {
            self.check_device_flow();
        }
        self.sync_hosted();
        self.fetch_default_model();
        if let Some(id) = self.attach_now.take() {
            self.attach(id);
        }
        if let Some(id) = self.pending_attach.clone() {
            // Runs belong to a Mogplex account: sign in first, then attach.
            if !matches!(self.app.screen, mogplex_tui::Screen::Login { .. }) {
                self.app.screen = mogplex_tui::Screen::login();
                self.check_device_flow();
            }
            self.app.update(Event::SignInNote(format!(
                "Sign in with Mogplex to attach to {id}: runs belong to the account that created them."
            )));
        }
    }

    /// The model a provider chose itself (the Mogplex account's catalog), when none is picked:
    /// into the selection and the header, without changing the screen.
    fn set_default_model(&mut self, provider: Provider, model: String) {
        if let Some(sel) = &mut self.selection
            && sel.provider() == provider
            && sel.model.is_none()
        {
            sel.model = Some(model);
            self.refresh_header();
        }
    }

    /// Puts the current header on screen without changing the screen.
    fn refresh_header(&mut self) {
        if let Some(h) = self.header() {
            self.app.update(Event::HeaderChanged(h));
        }
    }

    fn finish(&mut self) {
        if let Some((_, h)) = self.answer.take() {
            h.abort();
        }
        if let Some((_, h, _)) = self.sign_in.take() {
            h.abort();
        }
        self.run = None;
        self.log
            .write(Level::Info, "session.end", "cockpit closed", json!({}));
    }

    /// A secret this session now knows: redacted from the screen's error texts and the log.
    fn learn(&mut self, secret: &Secret) {
        self.ctx.redactor.add(secret);
        self.log.learn(secret);
    }

    fn note(&mut self, text: impl Into<String>) {
        self.app.update(Event::Notice(text.into()));
    }

    /// Reads `auth.json` again and resolves. Returns a warning when a corrupt file was moved
    /// aside.
    fn reload(&mut self) -> Result<Option<String>, CliError> {
        let loaded = self.ctx.store.load()?;
        let file = &loaded.file;
        self.resolution = Resolution::resolve(&self.ctx.env, file, self.ctx.store.path());
        // Stored secrets that lost to the environment are still secrets.
        let secrets: Vec<Secret> = file_secrets(file)
            .into_iter()
            .chain(self.resolution.secrets())
            .cloned()
            .collect();
        for s in &secrets {
            self.learn(s);
        }
        self.stored = stored_providers(file);
        self.account = file.mogplex.as_ref().and_then(|m| {
            m.access_token.as_ref()?;
            let a = m.account.as_ref();
            Some((
                a.and_then(|a| a.id.clone()),
                a.and_then(|a| a.email.clone()),
            ))
        });
        self.selection = self.choose();
        Ok(loaded
            .moved_aside
            .map(|m| m.warning().trim_start_matches("warning: ").to_owned()))
    }

    /// The signed-in account's id from `auth.json`: what a remembered model is kept under (the
    /// same rule as `mogplex exec`, so both pick the same model).
    fn account_id(&self) -> Option<String> {
        self.account.as_ref().and_then(|(id, _)| id.clone())
    }

    fn choose(&self) -> Option<Selection> {
        if let Some((p, m)) = &self.picked
            && let Some(c) = self.resolution.for_provider(*p)
        {
            return Some(Selection::new(c, Some(m.clone()), ModelSource::Session));
        }
        let last = State::load(&self.ctx.home).last_picked(self.account_id().as_deref());
        mogplex_providers::select(&self.resolution, None, &last).ok()
    }

    fn header(&self) -> Option<Header> {
        let sel = self.selection.as_ref()?;
        let (hosted, stale) = self.hosted_lines();
        Some(Header {
            provider: Some(sel.provider().display_name().to_owned()),
            model: sel.model.clone(),
            credential: Some(sel.credential.describe()),
            notices: self
                .resolution
                .overrides
                .iter()
                .map(|o| o.notice())
                .collect(),
            stored: self.stored.clone(),
            login_notice: self.login_notice(),
            hosted,
            stale,
        })
    }

    /// Said on the login screen when a variable will still win over a new sign-in.
    fn login_notice(&self) -> Option<String> {
        let c = self
            .resolution
            .credentials
            .iter()
            .find(|c| c.source.is_env())?;
        let Source::Env { var } = c.source else {
            return None;
        };
        Some(format!(
            "{var} is set in this shell and will still take precedence over a Mogplex sign-in, so {} stays in use; unset it and restart to use your account",
            c.provider.display_name()
        ))
    }

    /// Reloads, then shows the result: the session with its new header, or the login screen.
    fn show_resolution(&mut self) {
        match self.reload() {
            Ok(moved) => {
                if let Some(m) = moved {
                    self.note(m);
                }
            }
            Err(e) => {
                self.show_error(&e);
                return;
            }
        }
        let header = self.header();
        let signed_out = header.is_none();
        self.app.update(Event::Resolved(header));
        if signed_out {
            self.check_device_flow();
        } else {
            self.fetch_default_model();
        }
    }

    /// An error's text for the screen, redacted: the message with its causes, and the hints.
    fn texts(&self, e: &CliError) -> (String, String) {
        let r = &self.ctx.redactor;
        let mut message = r.redact_str(&e.message);
        for c in &e.causes {
            message.push_str(&format!("\n  Caused by: {}", r.redact_str(c)));
        }
        let hint = e
            .hints
            .iter()
            .map(|h| r.redact_str(h))
            .collect::<Vec<_>>()
            .join("\n");
        (message, hint)
    }

    /// An error in the transcript, with its causes and what to do.
    fn show_error(&mut self, e: &CliError) {
        let (message, hint) = self.texts(e);
        self.app.update(Event::AnswerFailed {
            message,
            hint: (!hint.is_empty()).then_some(hint),
        });
    }

    /// An error in place on the login screen.
    fn login_error(&mut self, e: &CliError) {
        let (message, hint) = self.texts(e);
        self.app.update(Event::SignInFailed { message, hint });
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::App(event) => {
                let effects = self.app.update(event);
                for e in effects {
                    self.effect(e);
                }
            }
            Msg::Redraw => {}
            Msg::InputClosed => self.app.quitting = true,
            Msg::SignInEvent { seq, event } => {
                if self.sign_in_gen() == Some(seq) {
                    self.app.update(event);
                }
            }
            Msg::SignedIn { seq, result } => self.signed_in(seq, result),
            Msg::SignInStored { seq, email, result } => self.sign_in_stored(seq, email, result),
            Msg::KeyStored {
                provider,
                masked,
                result,
            } => self.key_stored(provider, masked, result),
            Msg::Removed(result) => self.removed(result),
            Msg::Revoked(note) => {
                if let Some(n) = note {
                    self.note(n);
                }
            }
            Msg::TurnStarted { seq, model } => {
                if self.answer_gen() == Some(seq) {
                    self.log.write(
                        Level::Info,
                        "request.start",
                        "sending the prompt",
                        json!({"model": model, "messages": self.messages.len()}),
                    );
                }
            }
            Msg::Delta { seq, text } => {
                if self.answer_gen() == Some(seq) {
                    self.partial.push_str(&text);
                    self.app.update(Event::Delta(text));
                }
            }
            Msg::Frame(f) => self.log.write(
                Level::Debug,
                "stream.chunk",
                "stream frame",
                json!({"frame": f}),
            ),
            Msg::Refreshed => self.log.write(
                Level::Info,
                "session.refreshed",
                "refreshed the sign-in after a 401",
                json!({}),
            ),
            Msg::TurnDone {
                seq,
                selection,
                outcome,
            } => self.turn_done(seq, *selection, outcome),
            Msg::DefaultModel(model) => self.set_default_model(Provider::Mogplex, model),
            Msg::Catalog(result) => self.catalog(result),
            Msg::HostedFetched { generation, result } => self.hosted_fetched(generation, result),
            Msg::HostedSaveFailed(e) => self.log.write(
                Level::Warn,
                "hosted.save",
                "could not save the hosted state",
                json!({"error": e}),
            ),
            Msg::RunCreated(id) => self.run_created(id),
            Msg::RunEvent(value) => self.run_event(value),
            Msg::RunFailed(e) => {
                self.log
                    .write(Level::Warn, "run.failed", &e.message, json!({}));
                self.show_error(&e);
            }
            Msg::AttachChecked { id, result } => match result {
                Ok(()) => self.attach(id),
                Err(e) => {
                    self.show_error(&e);
                }
            },
        }
    }

    fn effect(&mut self, e: Effect) {
        match e {
            Effect::LoginOpened => {
                self.check_device_flow();
                self.sync_hosted();
                self.log
                    .write(Level::Info, "login.open", "login screen opened", json!({}));
            }
            Effect::StartBrowserSignIn => self.start_sign_in(Method::Browser),
            Effect::StartDeviceSignIn => self.start_sign_in(Method::Device),
            Effect::CancelSignIn => {
                if let Some((_, h, _)) = self.sign_in.take() {
                    h.abort();
                    self.log
                        .write(Level::Info, "login.cancel", "sign-in cancelled", json!({}));
                }
            }
            Effect::SubmitCallback(text) => {
                if let Some((_, _, Some(paste))) = &self.sign_in {
                    let _ = paste.try_send(text);
                }
            }
            Effect::Copy(text) => copy_to_clipboard(&text),
            Effect::StoreKey { provider, key } => self.store_key(provider, key),
            Effect::SendPrompt(text) => self.send_prompt(text),
            Effect::CancelAnswer => self.cancel_answer(),
            Effect::Logout(p) => {
                let provider = p.unwrap_or(Provider::Mogplex);
                if provider == Provider::Mogplex {
                    // Gone from the screen and the disk before the next frame.
                    self.run = None;
                    self.drop_hosted();
                }
                self.logout(provider);
            }
            Effect::LoadStatus => {
                let rows = self.status_rows();
                self.app.update(Event::StatusReady(rows));
            }
            Effect::LoadModels => self.load_models(),
            Effect::LoadMcp => self.load_mcp(),
            Effect::PickModel(id) => self.pick_model(&id),
            Effect::Quit => self.app.quitting = true,
        }
    }

    fn sign_in_gen(&self) -> Option<u64> {
        self.sign_in.as_ref().map(|(g, ..)| *g)
    }

    fn answer_gen(&self) -> Option<u64> {
        self.answer.as_ref().map(|(g, _)| *g)
    }

    fn next_gen(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Asks the account service (in the background) whether it offers device codes.
    fn check_device_flow(&self) {
        let Ok(base) = account_base(&self.ctx.env) else {
            return;
        };
        let tx = self.tx.clone();
        tokio::spawn(async move {
            if let Ok(client) = mogplex_auth::signin::discover(base).await {
                let offered = client.meta.device_authorization_endpoint.is_some();
                send(&tx, Msg::App(Event::DeviceFlowOffered(offered)));
            }
        });
    }

    fn start_sign_in(&mut self, method: Method) {
        if let Some((_, h, _)) = self.sign_in.take() {
            h.abort();
        }
        let base = match account_base(&self.ctx.env) {
            Ok(b) => b,
            Err(e) => {
                self.login_error(&e);
                return;
            }
        };
        let seq = self.next_gen();
        let (paste_tx, paste_rx) = match method {
            Method::Device => (None, None),
            _ => {
                let (t, r) = mpsc::channel(4);
                (Some(t), Some(r))
            }
        };
        let tx = self.tx.clone();
        let env = self.ctx.env;
        let task = tokio::spawn(async move {
            let label = base_label(&base);
            let progress_tx = tx.clone();
            let mut progress = move |p: Progress| {
                for event in progress_events(p) {
                    send(&progress_tx, Msg::SignInEvent { seq, event });
                }
            };
            let result = mogplex_auth::signin::sign_in(&env, base, method, paste_rx, &mut progress)
                .await
                .map(Box::new)
                .map_err(|e| sign_in_error(e, &label, Surface::Cockpit));
            send(&tx, Msg::SignedIn { seq, result });
        });
        self.sign_in = Some((seq, task.abort_handle(), paste_tx));
        self.log.write(
            Level::Info,
            "login.start",
            "sign-in started",
            json!({"method": format!("{method:?}")}),
        );
    }

    fn signed_in(&mut self, seq: u64, result: Result<Box<SignedIn>, CliError>) {
        if self.sign_in_gen() != Some(seq) {
            return;
        }
        match result {
            Ok(s) => {
                for secret in s.secrets() {
                    self.learn(secret);
                }
                let email = s.email().unwrap_or("your Mogplex account").to_owned();
                let store = self.ctx.store.clone();
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || {
                    let result = s.store(&store).map_err(CliError::from);
                    send(&tx, Msg::SignInStored { seq, email, result });
                });
            }
            Err(e) => {
                self.sign_in = None;
                self.log.write(
                    Level::Warn,
                    "login.failed",
                    &e.message,
                    json!({"causes": e.causes}),
                );
                self.login_error(&e);
            }
        }
    }

    fn sign_in_stored(&mut self, seq: u64, email: String, result: Result<(), CliError>) {
        if self.sign_in_gen() != Some(seq) {
            return;
        }
        self.sign_in = None;
        if let Err(e) = result {
            self.login_error(&e);
            return;
        }
        self.log.write(
            Level::Info,
            "login.mogplex",
            "signed in",
            json!({"email": email}),
        );
        // A new sign-in may be another account: its hosted state, not the last one's.
        self.run = None;
        self.hosted.state = None;
        self.show_resolution();
        self.sync_hosted();
        self.app.update(Event::SignedIn { email });
        self.after_login_notices(Provider::Mogplex);
        if let Some(id) = self.pending_attach.take() {
            self.check_pending_attach(id);
        }
    }

    /// `--attach` after the sign-in it waited for: is the run there for this account?
    fn check_pending_attach(&mut self, id: String) {
        let Some(credential) = self.resolution.for_provider(Provider::Mogplex).cloned() else {
            return;
        };
        let Ok(base) = account_base(&self.ctx.env) else {
            return;
        };
        let (client, store, tx) = (self.client.clone(), self.ctx.store.clone(), self.tx.clone());
        tokio::spawn(async move {
            let result = async {
                let client = client.get_or_try_init(|| async { model_client() }).await?;
                runs::check_run(client, &store, &credential, &base, &id)
                    .await
                    .map(|_| ())
            }
            .await;
            send(&tx, Msg::AttachChecked { id, result });
        });
    }

    /// After storing a credential for `provider`: say what still wins over it, if anything.
    fn after_login_notices(&mut self, provider: Provider) {
        let notices: Vec<String> = self
            .resolution
            .overrides
            .iter()
            .filter(|o| o.stored_provider == provider)
            .map(|o| o.notice())
            .collect();
        for n in notices {
            self.note(n);
        }
        if let Some(sel) = &self.selection
            && sel.provider() != provider
            && self.resolution.for_provider(provider).is_some()
            && !self
                .resolution
                .overrides
                .iter()
                .any(|o| o.stored_provider == provider)
        {
            let text = format!(
                "{} comes first ({}); choose a {} model with /model to use the new credential",
                sel.provider().display_name(),
                sel.credential.source.label(),
                provider.display_name()
            );
            self.note(text);
        }
    }

    fn store_key(&mut self, provider: Provider, key: Secret) {
        self.learn(&key);
        let masked = key.masked();
        let store = self.ctx.store.clone();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = store
                .update(|file| {
                    file.set_provider_key(provider.id(), key);
                    Ok(())
                })
                .map(|u| u.moved_aside.map(|m| m.warning()))
                .map_err(CliError::from);
            send(
                &tx,
                Msg::KeyStored {
                    provider,
                    masked,
                    result,
                },
            );
        });
    }

    fn key_stored(
        &mut self,
        provider: Provider,
        masked: String,
        result: Result<Option<String>, CliError>,
    ) {
        let moved = match result {
            Ok(moved) => moved,
            Err(e) => {
                self.login_error(&e);
                return;
            }
        };
        let text = format!(
            "Stored the {} API key {masked} in {}",
            provider.display_name(),
            self.ctx.store.path().display()
        );
        self.log.write(
            Level::Info,
            "login.api_key",
            &text,
            json!({"provider": provider.id(), "masked": masked}),
        );
        self.show_resolution();
        if let Some(w) = moved {
            self.note(w.trim_start_matches("warning: "));
        }
        self.note(text);
        self.after_login_notices(provider);
    }

    fn send_prompt(&mut self, text: String) {
        let Some(selection) = self.selection.clone() else {
            let e = crate::exec::no_credential(&self.resolution);
            self.show_error(&e);
            return;
        };
        let base_url = match selection.spec.base_url(&self.ctx.env) {
            Ok(u) => u,
            Err(e) => {
                let e = CliError::usage(e.to_string()).hint(e.hint());
                self.show_error(&e);
                return;
            }
        };
        self.record(mogplex_protocol::RunEvent::Prompt {
            text: text.clone(),
            session: self.session_id(),
        });
        self.messages.push(ChatMessage::user(text));
        self.partial.clear();
        let seq = self.next_gen();
        let messages = self.messages.clone();
        let store = self.ctx.store.clone();
        let client = self.client.clone();
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            let mut selection = selection;
            let outcome = async {
                let client = client.get_or_try_init(|| async { model_client() }).await?;
                let mut sink = ChannelSink {
                    tx: tx.clone(),
                    seq,
                };
                stream_turn(
                    client,
                    &store,
                    &mut selection,
                    &base_url,
                    messages,
                    &mut sink,
                )
                .await
            }
            .await;
            send(
                &tx,
                Msg::TurnDone {
                    seq,
                    selection: Box::new(selection),
                    outcome,
                },
            );
        });
        self.answer = Some((seq, task.abort_handle()));
    }

    fn cancel_answer(&mut self) {
        if let Some((_, h)) = self.answer.take() {
            h.abort();
            let partial = std::mem::take(&mut self.partial);
            if partial.is_empty() {
                self.messages.pop();
            } else {
                self.messages.push(ChatMessage::assistant(partial));
            }
            self.log.write(
                Level::Info,
                "response.cancelled",
                "answer stopped by the user",
                json!({}),
            );
        }
    }

    fn turn_done(
        &mut self,
        seq: u64,
        selection: Selection,
        outcome: Result<TurnOutcome, CliError>,
    ) {
        if self.answer_gen() != Some(seq) {
            return;
        }
        self.answer = None;
        let partial = std::mem::take(&mut self.partial);
        let failure = match outcome {
            Ok(TurnOutcome {
                model,
                finish: Ok(f),
            }) => {
                self.messages.push(ChatMessage::assistant(partial.clone()));
                self.app.update(Event::AnswerDone);
                self.record(mogplex_protocol::RunEvent::Answer {
                    text: partial.clone(),
                    model: Some(model.clone()),
                    session: self.session_id(),
                });
                self.log.write(
                    Level::Info,
                    "response.done",
                    "answer complete",
                    json!({"chars": partial.chars().count(), "finish_reason": f.finish_reason, "model": model}),
                );
                self.set_default_model(selection.provider(), model);
                None
            }
            Ok(TurnOutcome { finish: Err(e), .. }) => {
                let base = selection.spec.base_url(&self.ctx.env).ok();
                Some(match base {
                    Some(b) => provider_error(&e, &selection, &b),
                    None => CliError::new(exit::FAILURE, e.message.clone()),
                })
            }
            Err(e) => Some(e),
        };
        let Some(err) = failure else { return };
        // The failed prompt leaves the conversation, so the next one is not sent after it.
        self.messages.pop();
        self.log.write(
            Level::Error,
            "response.error",
            &err.message,
            json!({"causes": err.causes, "exit_code": err.code}),
        );
        let (message, hint) = self.texts(&err);
        self.record(mogplex_protocol::RunEvent::Error {
            message: message.lines().next().unwrap_or_default().to_owned(),
            session: self.session_id(),
        });
        self.app.update(Event::AnswerFailed {
            message: message.clone(),
            hint: (!hint.is_empty()).then(|| hint.clone()),
        });
        if err.code == exit::NO_CREDENTIAL {
            // Signed out (the sign-in ended): show whatever still resolves, or the login screen
            // with the reason.
            self.show_resolution();
            if self.resolution.for_provider(Provider::Mogplex).is_none() {
                self.run = None;
                self.drop_hosted();
            }
            if self.selection.is_none() {
                self.app.update(Event::SignInFailed { message, hint });
            }
        }
    }

    fn logout(&mut self, provider: Provider) {
        let store = self.ctx.store.clone();
        let tx = self.tx.clone();
        let mut redactor = self.ctx.redactor.clone();
        tokio::task::spawn_blocking(move || {
            let result =
                crate::login::take_stored(&store, provider, &mut redactor).map_err(CliError::from);
            send(&tx, Msg::Removed(result));
        });
    }

    fn removed(&mut self, result: Result<Removal, CliError>) {
        let removal = match result {
            Ok(r) => r,
            Err(e) => {
                self.show_error(&e);
                return;
            }
        };
        if let Some(w) = &removal.moved_aside {
            self.note(w.trim_start_matches("warning: "));
        }
        let report = removal.report();
        self.log.write(
            Level::Info,
            "logout",
            &report,
            json!({"provider": removal.provider.id(), "removed": removal.removed.is_some()}),
        );
        if let Some(refresh) = removal.refresh.clone()
            && let Ok(base) = account_base(&self.ctx.env)
        {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let outcome = mogplex_auth::signin::revoke(base.clone(), &refresh).await;
                send(&tx, Msg::Revoked(outcome.note(&base_label(&base))));
            });
        }
        if self
            .picked
            .as_ref()
            .is_some_and(|(p, _)| *p == removal.provider)
        {
            self.picked = None;
        }
        self.show_resolution();
        if removal.provider == Provider::Mogplex {
            // A MOGPLEX_API_KEY in this shell still brings its own account's state.
            self.sync_hosted();
        }
        let mut lines = vec![report];
        lines.extend(removal.notes(&self.ctx.env, "remove one with /logout <provider>"));
        match &self.selection {
            Some(sel) => {
                // Say what is in use now, and (if a variable supplies it) that it still wins next
                // session.
                let now = format!(
                    "Now using {} ({})",
                    sel.provider().display_name(),
                    sel.credential.source.label()
                );
                let next = match sel.credential.source {
                    Source::Env { var } if var != removal.provider.env_var() => Some(format!(
                        "{var} is still set in this shell, so the next session uses {} too; unset it to stop",
                        sel.provider().display_name()
                    )),
                    _ => None,
                };
                for l in lines.into_iter().chain([now]).chain(next) {
                    self.note(l);
                }
            }
            None => {
                for l in lines {
                    self.app.update(Event::SignInNote(l));
                }
            }
        }
    }

    fn status_rows(&self) -> Vec<(String, String)> {
        let mut rows = Vec::new();
        if let Some(sel) = &self.selection {
            rows.push((
                "In use".to_owned(),
                format!(
                    "{} · {}",
                    sel.provider().display_name(),
                    sel.model
                        .as_deref()
                        .unwrap_or("the account's default model")
                ),
            ));
        }
        for p in Provider::ALL {
            let value = match self.resolution.for_provider(p) {
                Some(c) => {
                    let mut v = c.describe();
                    if self
                        .resolution
                        .overrides
                        .iter()
                        .any(|o| o.stored_provider == p && o.var == p.env_var())
                    {
                        v.push_str(" (overrides the stored one)");
                    }
                    v
                }
                None => "none".to_owned(),
            };
            rows.push((p.display_name().to_owned(), value));
        }
        let account = match &self.account {
            Some((_, Some(email))) => format!("signed in as {email}"),
            Some((_, None)) => "signed in".to_owned(),
            None => "not signed in".to_owned(),
        };
        rows.push(("Account".to_owned(), account));
        rows.push(("Hosted state".to_owned(), self.hosted_status()));
        if let Some(h) = &self.hosted.state {
            rows.push((
                "MCP servers".to_owned(),
                match h.mcp.len() {
                    0 => "none".to_owned(),
                    n => format!("{n} (/mcp lists them)"),
                },
            ));
        }
        let run = match (self.run_id(), &self.run) {
            (Some(id), _) => id.to_owned(),
            (None, Some(_)) => "being created…".to_owned(),
            (None, None) if self.resolution.for_provider(Provider::Mogplex).is_some() => {
                "none yet (created with the first prompt)".to_owned()
            }
            (None, None) => "none (runs need a Mogplex account)".to_owned(),
        };
        rows.push(("Run".to_owned(), run));
        for o in &self.resolution.overrides {
            rows.push(("Override".to_owned(), o.notice()));
        }
        if let Ok(base) = account_base(&self.ctx.env) {
            rows.push(("Service".to_owned(), base_label(&base)));
        }
        rows.push((
            "Home".to_owned(),
            self.ctx.home.path().display().to_string(),
        ));
        rows.push(("Log".to_owned(), self.log.path().display().to_string()));
        rows
    }

    fn fetch_default_model(&self) {
        let Some(sel) = self.selection.clone() else {
            return;
        };
        if sel.model.is_some()
            || self
                .hosted
                .state
                .as_ref()
                .is_some_and(|h| !h.models.is_empty())
        {
            return;
        }
        let Ok(base) = sel.spec.base_url(&self.ctx.env) else {
            return;
        };
        let (client, store, tx) = (self.client.clone(), self.ctx.store.clone(), self.tx.clone());
        tokio::spawn(async move {
            let Ok(client) = client.get_or_try_init(|| async { model_client() }).await else {
                return;
            };
            let mut sel = sel;
            if sel.credential.kind == mogplex_auth::CredentialKind::AccountSession {
                match crate::exec::renew(&store, &base, None).await {
                    Ok(s) => sel.credential.secret = s,
                    Err(_) => return,
                }
            }
            if let Ok(m) = client.account_default_model(&sel, &base).await {
                send(&tx, Msg::DefaultModel(m));
            }
        });
    }

    fn load_models(&mut self) {
        self.model_choices.clear();
        let mut choices = Vec::new();
        let last = State::load(&self.ctx.home).last_picked(self.account_id().as_deref());
        let mut creds: Vec<_> = self.resolution.credentials.iter().collect();
        // The provider in use first.
        if let Some(sel) = &self.selection {
            creds.sort_by_key(|c| c.provider != sel.provider());
        }
        let mut mogplex = None;
        for c in creds {
            if c.provider == Provider::Mogplex {
                mogplex = Some(c.clone());
                continue;
            }
            let mut models: Vec<String> = known_models(c.provider)
                .iter()
                .map(|m| (*m).to_owned())
                .collect();
            if let Some(m) = last.get(&c.provider)
                && !models.contains(m)
            {
                models.push(m.clone());
            }
            if let Some((p, m)) = &self.picked
                && *p == c.provider
                && !models.contains(m)
            {
                models.push(m.clone());
            }
            for m in models {
                let id = format!("{}/{m}", c.provider.id());
                let detail = format!("{} · {}", c.provider.display_name(), c.source.label());
                self.model_choices.push((id.clone(), c.provider, m));
                choices.push(ModelChoice::new(id, detail));
            }
        }
        match mogplex {
            None => {
                self.app.update(Event::ModelsReady(choices));
            }
            Some(_) if self.hosted.state.is_some() => {
                self.pending_models = choices;
                let models = self
                    .hosted
                    .state
                    .as_ref()
                    .map(|h| h.models.clone())
                    .unwrap_or_default();
                self.catalog(Ok(models));
            }
            Some(credential) => {
                self.pending_models = choices;
                let Ok(base) = account_base(&self.ctx.env) else {
                    let pending = std::mem::take(&mut self.pending_models);
                    self.app.update(Event::ModelsReady(pending));
                    return;
                };
                let sel = Selection::new(&credential, None, ModelSource::AccountDefault);
                let (client, store, tx) =
                    (self.client.clone(), self.ctx.store.clone(), self.tx.clone());
                tokio::spawn(async move {
                    let result = async {
                        let client = client.get_or_try_init(|| async { model_client() }).await?;
                        let mut sel = sel;
                        if sel.credential.kind == mogplex_auth::CredentialKind::AccountSession {
                            sel.credential.secret = crate::exec::renew(&store, &base, None).await?;
                        }
                        client
                            .account_models(&sel, &base)
                            .await
                            .map_err(|e| provider_error(&e, &sel, &base))
                    }
                    .await;
                    send(&tx, Msg::Catalog(result));
                });
            }
        }
    }

    fn catalog(&mut self, result: Result<Vec<CliModel>, CliError>) {
        let mut choices = Vec::new();
        match result {
            Ok(models) => {
                if models.is_empty()
                    && let Ok(base) = account_base(&self.ctx.env)
                {
                    let site = base_label(&base);
                    self.note(format!(
                        "Your Mogplex account has no models yet: see Available Models ({site}/web/models) and Plans & Billing ({site}/plans-and-billing)"
                    ));
                }
                for m in models {
                    self.model_choices
                        .push((m.slug.clone(), Provider::Mogplex, m.slug.clone()));
                    choices.push(ModelChoice::new(m.slug.clone(), model_detail(&m)));
                }
            }
            Err(e) => {
                let (message, _) = self.texts(&e);
                let first = message.lines().next().unwrap_or_default().to_owned();
                self.note(format!(
                    "The Mogplex model catalog is not available: {first}"
                ));
            }
        }
        let in_use_is_mogplex = self
            .selection
            .as_ref()
            .is_some_and(|s| s.provider() == Provider::Mogplex);
        let pending = std::mem::take(&mut self.pending_models);
        if in_use_is_mogplex {
            choices.extend(pending);
        } else {
            choices = pending.into_iter().chain(choices).collect();
        }
        // Only if the list is still open (the user may have closed it while it loaded).
        if matches!(
            self.app.overlay,
            Some(mogplex_tui::Overlay::Model { choices: None, .. })
        ) {
            self.app.update(Event::ModelsReady(choices));
        }
    }

    fn pick_model(&mut self, id: &str) {
        let Some((_, provider, model)) = self.model_choices.iter().find(|(i, ..)| i == id).cloned()
        else {
            return;
        };
        self.picked = Some((provider, model.clone()));
        let key = model_key(provider, self.account_id().as_deref());
        if let Err(e) = remember_model(&self.ctx.home, &key, &model) {
            self.log.write(
                Level::Warn,
                "state.write",
                "could not remember the model",
                json!({"error": e.to_string()}),
            );
        }
        self.selection = self.choose();
        let header = self.header();
        self.app.update(Event::Resolved(header));
        self.log.write(
            Level::Info,
            "model.pick",
            "model picked",
            json!({"provider": provider.id(), "model": model}),
        );
        self.record(mogplex_protocol::RunEvent::Model {
            model: model.clone(),
            provider: provider.id().to_owned(),
            session: self.session_id(),
        });
        if let Some(sel) = &self.selection {
            let text = format!(
                "Now using {model} ({} · {})",
                sel.provider().display_name(),
                sel.credential.source.label()
            );
            self.note(text);
        }
    }
}

/// Streams a turn's output to the loop.
struct ChannelSink {
    tx: Tx,
    seq: u64,
}

impl TurnSink for ChannelSink {
    fn started(&mut self, model: &str) {
        send(
            &self.tx,
            Msg::TurnStarted {
                seq: self.seq,
                model: model.to_owned(),
            },
        );
    }

    fn event(&mut self, ev: StreamEvent) {
        match ev {
            StreamEvent::Delta(text) => send(
                &self.tx,
                Msg::Delta {
                    seq: self.seq,
                    text,
                },
            ),
            StreamEvent::Frame(f) => send(&self.tx, Msg::Frame(f)),
        }
    }

    fn refreshed(&mut self) {
        send(&self.tx, Msg::Refreshed);
    }
}

/// OSC 52: asks the terminal to put `text` on the clipboard (terminals that do not allow it
/// ignore the request). Only ever used for addresses, never for secrets.
fn copy_to_clipboard(text: &str) {
    use base64::Engine;
    use std::io::Write;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    let mut out = std::io::stdout();
    let _ = write!(out, "\x1b]52;c;{encoded}\x07");
    let _ = out.flush();
}

/// What a sign-in's progress looks like on the login screen.
fn progress_events(p: Progress) -> Vec<Event> {
    match p {
        Progress::Note(n) => vec![Event::SignInNote(n)],
        Progress::Browser { url, opened } => {
            let mut v = vec![Event::SignInUrl(url)];
            if !opened {
                v.push(Event::SignInNote(
                    "no browser could be started here; open the address yourself".into(),
                ));
            }
            v
        }
        Progress::Device { uri, code, .. } => vec![Event::DeviceCode { uri, code }],
        Progress::Notice(n) => vec![Event::SignInNote(notice_text(&n))],
    }
}

fn model_detail(m: &CliModel) -> String {
    let mut parts = vec![m.display_name.clone()];
    if let Some(w) = m.context_window {
        parts.push(format!("{}k context", w / 1000));
    }
    let mut caps = Vec::new();
    if m.caps.tool_use {
        caps.push("tools");
    }
    if m.caps.reasoning_effort {
        caps.push("reasoning");
    }
    if !caps.is_empty() {
        parts.push(caps.join(", "));
    }
    if let Some(p) = &m.pricing {
        parts.push(format!(
            "{} {}/{} per M tokens",
            p.currency, p.input_per_million, p.output_per_million
        ));
    }
    parts.push("Mogplex account".into());
    parts.join(" · ")
}

fn stored_providers(file: &AuthFile) -> Vec<Provider> {
    Provider::ALL
        .into_iter()
        .filter(|p| match p {
            Provider::Mogplex => file.mogplex.as_ref().and_then(|m| m.bearer()).is_some(),
            p => file.provider_key(p.id()).is_some(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_entries_show_capabilities_and_pricing_where_known() {
        let m: CliModel = serde_json::from_value(json!({
            "slug": "mogplex/gpt-4.1", "provider": "openai", "displayName": "GPT-4.1",
            "caps": {"toolUse": true, "streaming": true, "reasoningEffort": false},
            "contextWindow": 1047576,
            "pricing": {"inputPerMillion": 2.0, "outputPerMillion": 8.0, "currency": "USD"}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            model_detail(&m),
            "GPT-4.1 · 1047k context · tools · USD 2/8 per M tokens · Mogplex account"
        );
        let bare: CliModel = serde_json::from_value(
            json!({"slug": "mogplex/echo", "provider": "mogplex", "displayName": "Echo"}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(model_detail(&bare), "Echo · Mogplex account");
    }
}
