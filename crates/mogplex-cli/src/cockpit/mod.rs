//! The cockpit's runtime: the terminal, one event loop, and the effects of [`mogplex_tui::App`].
//!
//! One loop owns the state. It draws a frame, waits for the next message (a key or a paste from
//! the input thread, or the result of a background task), hands it to the controller it belongs
//! to, and starts what the App asks for. Everything that waits on the network or on the
//! `auth.json` lock (sign-in, answers, revocation, the model catalog, writes) runs off the loop
//! and reports back through the channel, so a frame never waits for the network, and the first
//! frame needs nothing but the environment and `auth.json`.
//!
//! By concern: [`terminal`] (raw mode, keys, clipboard), [`services`] (the model client and the
//! bearer for a credential), [`status`] (what resolves, the header, `/status`), [`sign_in`]
//! (sign-in, keys, sign-out), [`turn`] (the conversation), [`models`] (`/model` and the default
//! model), [`hosted`] (the account's synced state), [`tools`] (its MCP servers connected, their
//! tools offered and every call approved) and [`runs`] (a session written to a run).
//!
//! The flows are the command line's own: sign-in is [`mogplex_auth::signin`], answers are
//! [`crate::exec::stream_turn`] (renewal, refresh once on a 401), sign-out is
//! [`crate::login::take_stored`] plus [`mogplex_auth::signin::revoke`], and failures read the same
//! as on the command line.

mod accounts;
mod hosted;
mod models;
pub mod runs;
mod services;
mod sign_in;
mod status;
mod terminal;
mod tools;
mod turn;

#[cfg(test)]
mod tests;

use crate::ctx::Ctx;
use crate::error::CliError;
use crate::exit;
use crate::log::{Level, SessionLog};
use mogplex_auth::{Env, Provider, Secret};
use mogplex_tui::{App, Effect, Event, SlashCommand};
use serde_json::json;
use services::Services;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What reaches the loop: an event for the App, or a result for one of the controllers.
#[derive(Debug)]
pub(crate) enum Msg {
    App(Event),
    SignIn(sign_in::SignInMsg),
    Turn(turn::TurnMsg),
    Models(models::ModelsMsg),
    Hosted(hosted::HostedMsg),
    Run(runs::RunMsg),
    Mcp(tools::McpMsg),
}

/// Runs the cockpit until the user quits; with `attach`, on that run.
pub fn run(ctx: &mut Ctx, attach: Option<String>) -> Result<(), CliError> {
    let rt = crate::signin::runtime()?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let env: Arc<dyn Env + Send + Sync> = Arc::new(ctx.env);
    let mut cockpit = Cockpit::new(ctx, env, tx.clone())?;
    if let Some(id) = attach {
        // A run that is not there ends here, before the terminal is taken over.
        rt.block_on(cockpit.prepare_attach(id))?;
    }
    let mut terminal = terminal::TerminalGuard::enter().map_err(|e| {
        CliError::new(exit::FAILURE, "cannot set up the terminal for the cockpit")
            .cause(e.to_string())
            .hint("run `mogplex exec \"…\"` for one prompt without the cockpit")
    })?;
    let (w, h) = terminal.size();
    cockpit.app.update(Event::Resize(w, h));
    terminal::spawn_input(tx);
    rt.block_on(async {
        let mut started = false;
        loop {
            if terminal.draw(&cockpit.app).is_err() {
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
            if cockpit.app.is_quitting() {
                break;
            }
        }
        cockpit.close().await;
    });
    cockpit.finish();
    drop(terminal);
    Ok(())
}

/// The session: the App, and one controller per concern.
pub(crate) struct Cockpit<'a> {
    ctx: &'a mut Ctx,
    app: App,
    log: SessionLog,
    services: Services,
    creds: status::Credentials,
    turn: turn::Turn,
    sign_in: sign_in::SignIn,
    models: models::Models,
    hosted: hosted::HostedSlot,
    mcp: tools::McpSlot,
    run: Option<runs::RunLink>,
    attach: runs::Attach,
}

impl<'a> Cockpit<'a> {
    pub(crate) fn new(
        ctx: &'a mut Ctx,
        env: Arc<dyn Env + Send + Sync>,
        tx: services::Tx,
    ) -> Result<Self, CliError> {
        let log = ctx.session_log();
        let services = Services::new(env, ctx.store.clone(), tx);
        let hosted = hosted::HostedSlot::new(mogplex_auth::hosted::HostedCache::new(&ctx.home));
        let mut c = Self {
            ctx,
            app: App::new(None),
            log,
            services,
            creds: status::Credentials::default(),
            turn: turn::Turn::default(),
            sign_in: sign_in::SignIn::default(),
            models: models::Models::default(),
            hosted,
            mcp: tools::McpSlot::default(),
            run: None,
            attach: runs::Attach::default(),
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
        let data = match &self.creds.selection {
            Some(s) => {
                json!({"provider": s.provider().id(), "model": s.model, "credential": s.credential.describe(), "session_id": session_id})
            }
            None => json!({"provider": null, "session_id": session_id}),
        };
        self.log
            .write(Level::Info, "session.start", "cockpit started", data);
        for o in &self.creds.resolution.overrides {
            self.log.write(
                Level::Warn,
                "credential.override",
                &o.notice(),
                json!({"variable": o.var}),
            );
        }
        if self.creds.selection.is_none() {
            self.check_device_flow();
        }
        self.sync_hosted();
        self.fetch_default_model();
        self.start_attach();
    }

    /// Before quitting: what this session still has on its way to the run gets there (briefly).
    async fn close(&mut self) {
        if let Some(run) = self.run.take() {
            run.close().await;
        }
        // The MCP servers stop with the session (inside the runtime: stopping one spawns).
        self.turn.abort();
        let servers = self.drop_mcp();
        for c in servers {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), c.close()).await;
        }
    }

    fn finish(&mut self) {
        self.turn.abort();
        self.sign_in.abort();
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

    pub(crate) fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::App(event) => {
                let effects = self.app.update(event);
                for e in effects {
                    self.effect(e);
                }
            }
            Msg::SignIn(m) => self.on_sign_in(m),
            Msg::Turn(m) => self.on_turn(m),
            Msg::Models(m) => self.on_models(m),
            Msg::Hosted(m) => self.on_hosted(m),
            Msg::Run(m) => self.on_run(m),
            Msg::Mcp(m) => self.on_mcp(m),
        }
    }

    fn effect(&mut self, e: Effect) {
        match e {
            Effect::Command { command, args } => self.run_command(command, &args),
            Effect::StartBrowserSignIn => self.start_sign_in(mogplex_auth::signin::Method::Browser),
            Effect::StartDeviceSignIn => self.start_sign_in(mogplex_auth::signin::Method::Device),
            Effect::CancelSignIn => self.cancel_sign_in(),
            Effect::SubmitCallback(text) => self.sign_in.submit_callback(text),
            Effect::SubmitMcpCallback(text) => self.submit_mcp_callback(text),
            Effect::Copy(text) => terminal::copy_to_clipboard(&text),
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
            Effect::LogoutAll => {
                self.run = None;
                self.drop_hosted();
                self.logout_all();
            }
            Effect::UseStoredKey(provider) => self.use_stored_key(provider),
            Effect::PickModel(id) => self.pick_model(&id),
            Effect::ApproveTool(answer) => self.approve_tool(answer),
            Effect::CancelTool => self.cancel_tool(),
            // The App is already quitting; the loop ends after this message.
            Effect::Quit => {}
        }
    }

    /// The runtime's part of a slash command (the App did its own first).
    fn run_command(&mut self, command: SlashCommand, args: &[String]) {
        match command {
            SlashCommand::Login => {
                self.check_device_flow();
                self.sync_hosted();
                self.log
                    .write(Level::Info, "login.open", "login screen opened", json!({}));
            }
            SlashCommand::Status => {
                let rows = self.status_rows();
                self.app.update(Event::StatusReady(rows));
            }
            SlashCommand::Model => self.load_models(),
            SlashCommand::Mcp => self.mcp_command(args),
            SlashCommand::Account => self.account_command(args),
            // Carried out by the App alone (or, for /logout, through Effect::Logout once it is
            // confirmed).
            SlashCommand::Logout
            | SlashCommand::Help
            | SlashCommand::Clear
            | SlashCommand::Quit
            | SlashCommand::Exit => {}
        }
    }
}
