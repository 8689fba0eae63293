//! Runs in the cockpit (SPEC section 4): a signed-in session writes what happens (prompts,
//! answers, errors, model changes) to a run on the account service, and follows the run, so a
//! second cockpit attached with `mogplex --attach <run id>` sees the history and then everything
//! live, and what is typed there reaches the first one too.
//!
//! One worker task per session writes the events in order (creating the run with the first one);
//! one follower task reads the run's event stream, reconnecting with `Last-Event-ID` after a drop
//! so nothing is missed. Each event names the session that wrote it, and a cockpit skips its own.

use super::services::{Services, bearer_for};
use super::{Cockpit, Msg};
use crate::ctx::Ctx;
use crate::error::CliError;
use crate::exec::model_client;
use crate::exit;
use crate::signin::account_base;
use mogplex_auth::{Credential, Provider, Secret};
use mogplex_protocol::{ChatMessage, RunEvent};
use mogplex_providers::{ErrorKind, ModelClient, ProviderError, Url};
use mogplex_tui::{Entry, EntryKind, Event, Screen};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

#[derive(Debug)]
pub(crate) enum RunMsg {
    Created(String),
    Event(serde_json::Value),
    Failed(CliError),
    /// `--attach` waited for a sign-in; whether the run is there for this account.
    AttachChecked {
        id: String,
        result: Result<(), CliError>,
    },
}

/// `--attach`: checked and ready, or waiting for a Mogplex sign-in.
#[derive(Debug, Default)]
pub(super) struct Attach {
    now: Option<String>,
    pending: Option<String>,
}

#[derive(Debug)]
pub(super) struct RunLink {
    /// `None` until the first event has created it.
    pub id: Option<String>,
    queue: Option<mpsc::UnboundedSender<serde_json::Value>>,
    worker: Option<tokio::task::JoinHandle<()>>,
    follower: Option<AbortHandle>,
    /// A failure that arrived while an answer was on its way: said (or not) once that ends.
    failure: Option<CliError>,
    /// The last answer failed because the account service is down: a run failure for the same
    /// reason is that failure again, and is not said twice.
    service_down: bool,
}

/// How long quitting waits for events still on their way to the run.
const DRAIN: Duration = Duration::from_secs(2);

impl RunLink {
    /// Stops following, lets the worker write what is queued (for at most [`DRAIN`]), then
    /// stops it: the last answer before `/quit` still reaches the run.
    pub async fn close(mut self) {
        if let Some(f) = self.follower.take() {
            f.abort();
        }
        self.queue.take();
        if let Some(w) = self.worker.take() {
            let abort = w.abort_handle();
            if tokio::time::timeout(DRAIN, w).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for RunLink {
    fn drop(&mut self) {
        if let Some(w) = &self.worker {
            w.abort();
        }
        if let Some(f) = &self.follower {
            f.abort();
        }
    }
}

/// The error for a run that does not exist or is someone else's (the service does not tell
/// which, on purpose).
pub fn not_found(id: &str) -> CliError {
    CliError::new(exit::FAILURE, format!("cannot attach to {id}: there is no such run for this account"))
        .hint("check the run id, and that you are signed in with the Mogplex account that created it (`/status` in the cockpit shows a session's run)")
}

/// The error for creating a run (`None`) or using the run `id`.
fn run_error(id: Option<&str>, e: &ProviderError) -> CliError {
    let Some(id) = id else {
        let err = match e.kind {
            ErrorKind::Unauthorized => CliError::new(
                exit::FORBIDDEN,
                "this session is not saved to a run: the account service did not accept the Mogplex credential",
            ),
            _ => CliError::new(
                exit::UNAVAILABLE,
                "this session is not saved to a run: the account service did not create one",
            ),
        };
        return err.cause(e.message.clone()).hint(
            "what you type still reaches the model; the run is created with a later prompt once the service answers (check MOGPLEX_URL if you set it)",
        );
    };
    match e.kind {
        ErrorKind::NotFound => not_found(id),
        ErrorKind::Unauthorized => CliError::new(
            exit::FORBIDDEN,
            format!("the account service did not accept the Mogplex credential for {id}"),
        )
        .cause(e.message.clone())
        .hint("sign in again: run `mogplex` in a terminal and choose \"Sign in with Mogplex\""),
        _ => CliError::new(
            exit::UNAVAILABLE,
            format!("cannot reach the run {id} on the account service"),
        )
        .cause(e.message.clone())
        .hint("check your connection, and MOGPLEX_URL if you set it"),
    }
}

/// Checks that `id` exists for this credential (before the cockpit takes the terminal).
async fn check_run(
    client: &ModelClient,
    token: &Secret,
    base: &Url,
    id: &str,
) -> Result<mogplex_protocol::RunInfo, CliError> {
    client
        .run_snapshot(base, token, id)
        .await
        .map_err(|e| run_error(Some(id), &e))
}

/// `mogplex --attach <id>` without a terminal: prints the run's history and exits.
pub fn print_run(ctx: &mut Ctx, id: &str) -> Result<(), CliError> {
    let resolution = ctx.resolve()?;
    let Some(credential) = resolution.for_provider(Provider::Mogplex).cloned() else {
        return Err(CliError::new(
            exit::NO_CREDENTIAL,
            format!("attaching to {id} needs your Mogplex account, and no Mogplex credential is available"),
        )
        .hint("run `mogplex --attach …` in a terminal and choose \"Sign in with Mogplex\"")
        .hint("or set MOGPLEX_API_KEY (a personal access token of the run's account) for this shell"));
    };
    let base = account_base(&ctx.env)?;
    let store = ctx.store.clone();
    let redactor = ctx.redactor.clone();
    crate::signin::runtime()?.block_on(async {
        let client = model_client()?;
        let token = bearer_for(&store, &credential, &base).await?;
        let info = check_run(&client, &token, &base, id).await?;
        let last = info.last_event_id.unwrap_or(0);
        if last == 0 {
            return Ok(());
        }
        let mut out = std::io::stdout();
        let mut print = |seq: i64, value: serde_json::Value| {
            use std::io::Write;
            let line = match serde_json::from_value::<RunEvent>(value) {
                Ok(RunEvent::Prompt { text, .. }) => format!("you › {text}"),
                Ok(RunEvent::Answer { text, .. }) => text,
                Ok(RunEvent::Error { message, .. }) => format!("error: {message}"),
                Ok(RunEvent::Model { model, .. }) => format!("model: {model}"),
                Err(_) => "(an event this mogplex does not know)".to_owned(),
            };
            let _ = writeln!(out, "{}", redactor.redact_str(&line));
            // The stream stays open for live events; the history ends at the snapshot's last.
            seq < last
        };
        client
            .follow_run(&base, &token, id, 0, &mut print)
            .await
            .map_err(|e| run_error(Some(id), &e))
    })
}

impl Cockpit<'_> {
    pub(super) fn on_run(&mut self, msg: RunMsg) {
        match msg {
            RunMsg::Created(id) => self.run_created(id),
            RunMsg::Event(value) => self.run_event(value),
            RunMsg::Failed(e) => {
                self.log.write(
                    crate::log::Level::Warn,
                    "run.failed",
                    &e.message,
                    serde_json::json!({"causes": e.causes}),
                );
                match &mut self.run {
                    Some(link) if self.turn.in_flight() => link.failure = Some(e),
                    _ => self.show_run_failure(e),
                }
            }
            RunMsg::AttachChecked { id, result } => match result {
                Ok(()) => self.attach(id),
                Err(e) => self.show_error(&e),
            },
        }
    }

    /// `--attach` before the terminal is taken over: a run that is not there for this
    /// credential ends the command here. Without a Mogplex credential yet, the check waits for
    /// the sign-in.
    pub(super) async fn prepare_attach(&mut self, id: String) -> Result<(), CliError> {
        match self
            .creds
            .resolution
            .for_provider(Provider::Mogplex)
            .cloned()
        {
            Some(credential) => {
                let base = self.services.account_base()?;
                let token = self.services.bearer(&credential, &base).await?;
                check_run(self.services.client().await?, &token, &base, &id).await?;
                self.attach.now = Some(id);
            }
            None => self.attach.pending = Some(id),
        }
        Ok(())
    }

    /// After the first frame: attach to a checked run, or ask for the sign-in it waits for.
    pub(super) fn start_attach(&mut self) {
        if let Some(id) = self.attach.now.take() {
            self.attach(id);
        }
        if let Some(id) = self.attach.pending.clone() {
            // Runs belong to a Mogplex account: sign in first, then attach.
            if !matches!(self.app.screen(), Screen::Login { .. }) {
                self.app.update(Event::ShowLogin);
                self.check_device_flow();
            }
            self.app.update(Event::SignInNote(format!(
                "Sign in with Mogplex to attach to {id}: runs belong to the account that created them."
            )));
        }
    }

    /// The Mogplex credential in force and the account service's address: what runs need.
    fn run_target(&self) -> Option<(Credential, Url)> {
        let credential = self
            .creds
            .resolution
            .for_provider(Provider::Mogplex)?
            .clone();
        Some((credential, self.services.account_base().ok()?))
    }

    /// `--attach` after the sign-in it waited for: is the run there for this account?
    pub(super) fn attach_after_sign_in(&mut self) {
        let Some(id) = self.attach.pending.take() else {
            return;
        };
        let Some((credential, base)) = self.run_target() else {
            return;
        };
        self.services.spawn(|s| async move {
            let result = async {
                let token = s.bearer(&credential, &base).await?;
                check_run(s.client().await?, &token, &base, &id)
                    .await
                    .map(|_| ())
            }
            .await;
            s.send(Msg::Run(RunMsg::AttachChecked { id, result }));
        });
    }

    /// An answer ended (`answer`: its error, if it failed; `same_service`: it came from the
    /// Mogplex account service, which also keeps the runs): a run failure that waited for it is
    /// said now, unless it is the same failure the answer already reported.
    pub(super) fn settle_run_failure(&mut self, answer: Option<&CliError>, same_service: bool) {
        let Some(link) = &mut self.run else {
            return;
        };
        link.service_down = same_service && answer.is_some_and(|e| e.code == exit::UNAVAILABLE);
        if let Some(e) = link.failure.take() {
            self.show_run_failure(e);
        }
    }

    fn show_run_failure(&mut self, e: CliError) {
        let repeated = self
            .run
            .as_ref()
            .is_some_and(|l| l.service_down && e.code == exit::UNAVAILABLE);
        if !repeated {
            self.show_error(&e);
        }
    }

    pub(super) fn run_id(&self) -> Option<&str> {
        self.run.as_ref().and_then(|r| r.id.as_deref())
    }

    /// Starts writing (and following) a run: `attach` names an existing one.
    fn start_run(&mut self, attach: Option<String>) -> bool {
        let Some((credential, base)) = self.run_target() else {
            return false;
        };
        let (queue, rx) = mpsc::unbounded_channel();
        let worker = tokio::spawn(worker(
            self.services.clone(),
            credential,
            base,
            attach.clone(),
            rx,
        ));
        self.run = Some(RunLink {
            id: attach.clone(),
            queue: Some(queue),
            worker: Some(worker),
            follower: None,
            failure: None,
            service_down: false,
        });
        if let Some(id) = attach {
            self.follow(id);
        }
        true
    }

    fn follow(&mut self, id: String) {
        let Some((credential, base)) = self.run_target() else {
            return;
        };
        let task = self.services.spawn(|s| follower(s, credential, base, id));
        if let Some(link) = &mut self.run {
            link.follower = Some(task);
        }
    }

    /// Adds an event of this session to the run (creating the run with the first one), when a
    /// Mogplex credential is in force.
    pub(super) fn record(&mut self, event: RunEvent) {
        if self.run.is_none() && !self.start_run(None) {
            return;
        }
        if let (Some(Some(queue)), Ok(v)) = (
            self.run.as_ref().map(|l| l.queue.as_ref()),
            serde_json::to_value(&event),
        ) {
            let _ = queue.send(v);
        }
    }

    pub(super) fn session_id(&self) -> String {
        self.log.id().to_owned()
    }

    /// Opens the cockpit on `id`: its history, then live events.
    pub(super) fn attach(&mut self, id: String) {
        self.run = None;
        if self.start_run(Some(id.clone())) {
            self.note(format!(
                "Attached to {id}: its history follows, then what happens live. What you type here is added to the run; /quit detaches and leaves the run as it is."
            ));
            self.refresh_header();
        }
    }

    pub(super) fn run_created(&mut self, id: String) {
        if let Some(link) = &mut self.run
            && link.id.is_none()
        {
            link.id = Some(id.clone());
            self.log.write(
                crate::log::Level::Info,
                "run.created",
                "created a run for this session",
                serde_json::json!({"run": id}),
            );
            self.follow(id);
            self.refresh_header();
        }
    }

    /// An event from the run's stream: another session's is shown and joins the conversation.
    pub(super) fn run_event(&mut self, value: serde_json::Value) {
        let Ok(event) = serde_json::from_value::<RunEvent>(value) else {
            return;
        };
        if event.session() == self.session_id() {
            return;
        }
        let entry = |kind, text: String| Event::Replayed(Entry { kind, text });
        match event {
            RunEvent::Prompt { text, .. } => {
                self.turn.messages.push(ChatMessage::user(text.clone()));
                self.app.update(entry(EntryKind::User, text));
            }
            RunEvent::Answer { text, .. } => {
                self.turn
                    .messages
                    .push(ChatMessage::assistant(text.clone()));
                self.app.update(entry(EntryKind::Assistant, text));
            }
            RunEvent::Error { message, .. } => {
                // The prompt that failed leaves the conversation there; so it does here.
                if self
                    .turn
                    .messages
                    .last()
                    .is_some_and(|m| m.role == mogplex_protocol::Role::User)
                {
                    self.turn.messages.pop();
                }
                self.app.update(entry(EntryKind::Error, message));
            }
            RunEvent::Model {
                model, provider, ..
            } => self.note(format!(
                "Another session of this run switched to {model} ({provider})"
            )),
        }
    }
}

async fn worker(
    s: Services,
    credential: Credential,
    base: Url,
    mut id: Option<String>,
    mut rx: mpsc::UnboundedReceiver<serde_json::Value>,
) {
    let mut reported = false;
    while let Some(event) = rx.recv().await {
        let result = async {
            let client = s.client().await?;
            let token = s.bearer(&credential, &base).await?;
            let run = match &id {
                Some(i) => i.clone(),
                None => {
                    let title: String = event
                        .get("text")
                        .and_then(|t| t.as_str())
                        .unwrap_or("mogplex session")
                        .chars()
                        .take(80)
                        .collect();
                    let info = client
                        .create_run(&base, &token, &title)
                        .await
                        .map_err(|e| run_error(None, &e))?;
                    s.send(Msg::Run(RunMsg::Created(info.id.clone())));
                    id = Some(info.id.clone());
                    info.id
                }
            };
            client
                .append_run_event(&base, &token, &run, &event)
                .await
                .map_err(|e| run_error(Some(&run), &e))
        }
        .await;
        if let Err(e) = result
            && !reported
        {
            reported = true;
            s.send(Msg::Run(RunMsg::Failed(e)));
        }
    }
}

async fn follower(s: Services, credential: Credential, base: Url, id: String) {
    let mut after = 0i64;
    let mut delay = Duration::from_millis(500);
    loop {
        let from = after;
        let attempt = async {
            let client = s.client().await.map_err(|_| Stop::Retry)?;
            let token = s
                .bearer(&credential, &base)
                .await
                .map_err(|_| Stop::Retry)?;
            let mut on = |seq: i64, value: serde_json::Value| {
                after = seq;
                s.send(Msg::Run(RunMsg::Event(value)));
                true
            };
            client
                .follow_run(&base, &token, &id, from, &mut on)
                .await
                .map_err(|e| match e.kind {
                    ErrorKind::NotFound => Stop::Gone(not_found(&id)),
                    _ => Stop::Retry,
                })
        }
        .await;
        if let Err(Stop::Gone(e)) = attempt {
            s.send(Msg::Run(RunMsg::Failed(e)));
            return;
        }
        if after > from {
            delay = Duration::from_millis(500);
        }
        // The stream ended or broke: pick up after the last event seen.
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

enum Stop {
    /// Worth trying again (the service is unreachable, or the stream broke).
    Retry,
    /// The run is not there (any more).
    Gone(CliError),
}
