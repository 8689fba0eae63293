//! Signing in and out from the cockpit: "Sign in with Mogplex" in the browser or with a device
//! code (the command line's flow, reported on the login screen), storing a provider key, and
//! `/logout` with the revocation of the sign-in; and what is said afterwards about what wins.

use super::{Cockpit, Msg};
use crate::error::CliError;
use crate::log::Level;
use crate::login::Removal;
use crate::signin::{Surface, base_label, notice_text, sign_in_error};
use mogplex_auth::credentials::ops;
use mogplex_auth::signin::{Method, Progress, SignedIn};
use mogplex_auth::{Provider, Secret, Source};
use mogplex_tui::Event;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

#[derive(Debug)]
pub(crate) enum SignInMsg {
    /// From the sign-in started as `seq` (older ones are ignored).
    Progress {
        seq: u64,
        event: Event,
    },
    Done {
        seq: u64,
        result: Result<Box<SignedIn>, CliError>,
    },
    Stored {
        seq: u64,
        email: String,
        /// What the user should hear besides: store notes, the accounts beside this one.
        result: Result<Vec<String>, CliError>,
    },
    KeyStored {
        provider: Provider,
        masked: String,
        /// A warning when a corrupt `auth.json` was moved aside on the way.
        result: Result<Option<String>, CliError>,
    },
    Removed(Result<Removal, CliError>),
    /// `/logout --all` carried out.
    AllSignedOut(Result<crate::account::AllSignedOut, CliError>),
    Revoked(Option<String>),
    /// `/account <email or id>` made that account the default (and this session's).
    Switched(Result<(ops::AccountSummary, Vec<String>), CliError>),
}

/// The sign-in in flight: its number, its task, and where pasted addresses go.
#[derive(Debug, Default)]
pub(super) struct SignIn {
    seq: u64,
    current: Option<(u64, AbortHandle, Option<mpsc::Sender<String>>)>,
}

impl SignIn {
    fn current(&self, seq: u64) -> bool {
        self.current.as_ref().is_some_and(|(g, ..)| *g == seq)
    }

    /// Stops the sign-in in flight; `false` when there was none.
    pub(super) fn abort(&mut self) -> bool {
        match self.current.take() {
            Some((_, h, _)) => {
                h.abort();
                true
            }
            None => false,
        }
    }

    /// An address pasted while the browser flow waits.
    pub(super) fn submit_callback(&self, text: String) {
        if let Some((_, _, Some(paste))) = &self.current {
            let _ = paste.try_send(text);
        }
    }
}

#[cfg(test)]
impl SignIn {
    /// A sign-in in flight, as if one had been started: its number.
    pub(super) fn pretend_running(&mut self) -> u64 {
        self.seq += 1;
        let task = tokio::spawn(std::future::pending::<()>()).abort_handle();
        self.current = Some((self.seq, task, None));
        self.seq
    }
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
        Progress::Device {
            uri,
            code,
            complete,
            ..
        } => vec![Event::DeviceCode {
            uri,
            code,
            complete,
        }],
        Progress::Notice(n) => vec![Event::SignInNote(notice_text(&n))],
    }
}

impl Cockpit<'_> {
    pub(super) fn on_sign_in(&mut self, msg: SignInMsg) {
        match msg {
            SignInMsg::Progress { seq, event } => {
                if self.sign_in.current(seq) {
                    self.app.update(event);
                }
            }
            SignInMsg::Done { seq, result } => self.signed_in(seq, result),
            SignInMsg::Stored { seq, email, result } => self.sign_in_stored(seq, email, result),
            SignInMsg::KeyStored {
                provider,
                masked,
                result,
            } => self.key_stored(provider, masked, result),
            SignInMsg::Removed(result) => self.removed(result),
            SignInMsg::AllSignedOut(result) => self.all_signed_out(result),
            SignInMsg::Switched(result) => self.switched(result),
            SignInMsg::Revoked(note) => {
                if let Some(n) = note {
                    self.note(n);
                }
            }
        }
    }

    /// Asks the account service (in the background) whether it offers device codes.
    pub(super) fn check_device_flow(&self) {
        let Ok(base) = self.services.account_base() else {
            return;
        };
        self.services.spawn(|s| async move {
            if let Ok(client) = mogplex_auth::signin::discover(base).await {
                let offered = client.meta.device_authorization_endpoint.is_some();
                s.send(Msg::App(Event::DeviceFlowOffered(offered)));
            }
        });
    }

    pub(super) fn start_sign_in(&mut self, method: Method) {
        self.sign_in.abort();
        let base = match self.services.account_base() {
            Ok(b) => b,
            Err(e) => {
                self.login_error(&e);
                return;
            }
        };
        self.sign_in.seq += 1;
        let seq = self.sign_in.seq;
        let (paste_tx, paste_rx) = match method {
            Method::Device => (None, None),
            _ => {
                let (t, r) = mpsc::channel(4);
                (Some(t), Some(r))
            }
        };
        let task = self.services.spawn(|s| async move {
            let label = base_label(&base);
            let progress_to = s.clone();
            let mut progress = move |p: Progress| {
                for event in progress_events(p) {
                    progress_to.send(Msg::SignIn(SignInMsg::Progress { seq, event }));
                }
            };
            let result =
                mogplex_auth::signin::sign_in(s.env(), base, method, paste_rx, &mut progress)
                    .await
                    .map(Box::new)
                    .map_err(|e| sign_in_error(e, &label, Surface::Cockpit));
            s.send(Msg::SignIn(SignInMsg::Done { seq, result }));
        });
        self.sign_in.current = Some((seq, task, paste_tx));
        self.log.write(
            Level::Info,
            "login.start",
            "sign-in started",
            json!({"method": format!("{method:?}")}),
        );
    }

    pub(super) fn cancel_sign_in(&mut self) {
        if self.sign_in.abort() {
            self.log
                .write(Level::Info, "login.cancel", "sign-in cancelled", json!({}));
        }
    }

    fn signed_in(&mut self, seq: u64, result: Result<Box<SignedIn>, CliError>) {
        if !self.sign_in.current(seq) {
            return;
        }
        match result {
            Ok(s) => {
                for secret in s.secrets() {
                    self.learn(secret);
                }
                let email = s.email().unwrap_or("your Mogplex account").to_owned();
                let home = self.ctx.home.clone();
                self.services.spawn_blocking(move |store| {
                    let result = s
                        .store(store)
                        .map(|u| {
                            let mut notes = crate::login::write_notes(store, &u);
                            let entry = Some(u.value.entry_id.as_str());
                            let chosen = crate::ctx::remember_choice(
                                &home,
                                Provider::Mogplex,
                                entry,
                                "sign-in",
                            );
                            notes.extend(chosen.err());
                            notes.extend(crate::signin::added_note(&u.value));
                            notes
                        })
                        .map_err(CliError::from);
                    Msg::SignIn(SignInMsg::Stored { seq, email, result })
                });
            }
            Err(e) => {
                self.sign_in.current = None;
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

    fn sign_in_stored(&mut self, seq: u64, email: String, result: Result<Vec<String>, CliError>) {
        if !self.sign_in.current(seq) {
            return;
        }
        self.sign_in.current = None;
        let notes = match result {
            Ok(notes) => notes,
            Err(e) => {
                self.login_error(&e);
                return;
            }
        };
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
        for n in notes {
            self.note(
                n.trim_start_matches("note: ")
                    .trim_start_matches("warning: "),
            );
        }
        self.after_sign_in_notices();
        self.attach_after_sign_in();
    }

    /// Another provider's credential that stays in use after a credential for `provider` was
    /// stored, as a short label (`OpenAI (auth.json)`); `None` when the new one is in use, or a
    /// variable overrides it (said, once, on its own header line).
    fn still_in_use_instead(&self, provider: Provider) -> Option<String> {
        let resolution = &self.creds.resolution;
        let sel = self.creds.selection.as_ref()?;
        (sel.provider() != provider
            && resolution.for_provider(provider).is_some()
            && !resolution
                .overrides
                .iter()
                .any(|o| o.stored_provider == provider))
        .then(|| {
            format!(
                "{} ({})",
                sel.provider().display_name(),
                sel.credential.source.short_label()
            )
        })
    }

    /// After a Mogplex sign-in: when another provider's credential still comes first, say how
    /// to use the new one.
    fn after_sign_in_notices(&mut self) {
        if let Some(keep) = self.still_in_use_instead(Provider::Mogplex) {
            self.note(format!(
                "{keep} stays in use; to switch to Mogplex, choose a Mogplex model with /model"
            ));
        }
    }

    pub(super) fn store_key(&mut self, provider: Provider, key: Secret) {
        self.learn(&key);
        let masked = key.masked();
        // Not remembered as the user's choice: the credential in use stays until they switch
        // to the new one (a /model pick of its provider), which the note after storing offers.
        self.services.spawn_blocking(move |store| {
            let result = ops::store_provider_key(store, provider.id(), key)
                .map(|u| {
                    let notes = crate::login::write_notes(store, &u);
                    (!notes.is_empty()).then(|| notes.join("; "))
                })
                .map_err(CliError::from);
            Msg::SignIn(SignInMsg::KeyStored {
                provider,
                masked,
                result,
            })
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
            match self.services.store().info().kind {
                mogplex_auth::credentials::StoreKind::Keyring => "the keyring",
                _ => "auth.json",
            }
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
        // Storing a key from /login asks before switching to it (SPEC section 2).
        if let Some(keep) = self.still_in_use_instead(provider) {
            self.app.update(Event::AskSwitch { provider, keep });
        }
    }

    /// Yes to the switch: the stored key of `provider` becomes the user's choice, for this
    /// session and the next, over a `/model` pick of another provider.
    pub(super) fn use_stored_key(&mut self, provider: Provider) {
        if let Err(w) = crate::ctx::remember_choice(&self.ctx.home, provider, None, "key") {
            self.note(w.trim_start_matches("warning: "));
        }
        if self
            .models
            .picked
            .as_ref()
            .is_some_and(|(p, _)| *p != provider)
        {
            self.models.picked = None;
        }
        self.show_resolution();
        if let Some(sel) = &self.creds.selection {
            let text = format!(
                "Now using {} ({})",
                sel.provider().display_name(),
                sel.credential.source.short_label()
            );
            self.note(text);
        }
        self.log.write(
            Level::Info,
            "credential.switch",
            "switched to the key just stored",
            json!({"provider": provider.id()}),
        );
    }

    /// `/logout --all`, confirmed: every account signed out, each revoked at its own service.
    pub(super) fn logout_all(&mut self) {
        let mut redactor = self.ctx.redactor.clone();
        let home = self.ctx.home.clone();
        self.services.spawn_blocking(move |store| {
            let result = crate::account::sign_out_all(store, &home, &mut redactor);
            Msg::SignIn(SignInMsg::AllSignedOut(result))
        });
    }

    fn all_signed_out(&mut self, result: Result<crate::account::AllSignedOut, CliError>) {
        let done = match result {
            Ok(d) => d,
            Err(e) => {
                self.show_error(&e);
                return;
            }
        };
        self.log.write(
            Level::Info,
            "logout.all",
            &done.report,
            json!({"accounts": done.accounts}),
        );
        for (name, issuer, refresh) in done.revoke {
            let Ok(base) = issuer.parse::<mogplex_providers::Url>() else {
                continue;
            };
            self.services.spawn(|s| async move {
                let outcome = mogplex_auth::signin::revoke(base.clone(), &refresh).await;
                let note = outcome
                    .note(&base_label(&base))
                    .map(|n| format!("{name}: {n}"));
                s.send(Msg::SignIn(SignInMsg::Revoked(note)));
            });
        }
        self.revoke_mcp(done.mcp_tokens);
        self.forget_pick(Provider::Mogplex);
        // The account this session was switched to (or MOGPLEX_ACCOUNT named) is gone too.
        self.ctx.account = None;
        self.show_resolution();
        // A MOGPLEX_API_KEY in this shell still brings its own account's state.
        self.sync_hosted();
        let lines = done.notes.into_iter().chain([done.report]);
        if self.creds.selection.is_some() {
            for l in lines {
                self.note(l);
            }
        } else {
            for l in lines {
                self.app.update(Event::SignInNote(l));
            }
        }
    }

    /// The MCP sign-ins that went with an account, revoked at their authorization servers in the
    /// background (best effort; each unconfirmed one is a note).
    fn revoke_mcp(&mut self, gone: Vec<mogplex_auth::credentials::McpTokenEntry>) {
        if gone.is_empty() {
            return;
        }
        self.services.spawn(|s| async move {
            for n in crate::mcp::revoke_forgotten(&gone).await {
                let n = n.strip_prefix("note: ").unwrap_or(&n).to_owned();
                s.send(Msg::SignIn(SignInMsg::Revoked(Some(n))));
            }
        });
    }

    pub(super) fn logout(&mut self, provider: Provider) {
        let mut redactor = self.ctx.redactor.clone();
        let issuer = crate::ctx::session_issuer(self.services.env());
        let account = self.ctx.account.clone();
        self.services.spawn_blocking(move |store| {
            let result = crate::login::take_stored(
                store,
                provider,
                &issuer,
                account.as_deref(),
                &mut redactor,
            );
            Msg::SignIn(SignInMsg::Removed(result))
        });
    }

    /// The credential in use, as who and where (not its value, which a refresh changes).
    fn in_use(&self) -> Option<(Provider, mogplex_auth::CredentialKind, String)> {
        let c = &self.creds.selection.as_ref()?.credential;
        Some((c.provider, c.kind, c.source.label()))
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
            && let Ok(base) = self.services.account_base()
        {
            self.services.spawn(|s| async move {
                let outcome = mogplex_auth::signin::revoke(base.clone(), &refresh).await;
                s.send(Msg::SignIn(SignInMsg::Revoked(
                    outcome.note(&base_label(&base)),
                )));
            });
        }
        self.revoke_mcp(removal.mcp_tokens.clone());
        self.forget_pick(removal.provider);
        let before = self.in_use();
        self.show_resolution();
        if removal.provider == Provider::Mogplex {
            // A MOGPLEX_API_KEY in this shell still brings its own account's state.
            self.sync_hosted();
        }
        let mut lines = vec![report];
        lines.extend(removal.notes(self.services.env(), "remove one with /logout <provider>"));
        let changed = self.in_use() != before;
        match &self.creds.selection {
            Some(sel) => {
                // Say what is in use now if that changed, and (if a variable supplies it) that it
                // still wins next session.
                let now = changed.then(|| {
                    format!(
                        "Now using {} ({})",
                        sel.provider().display_name(),
                        sel.credential.source.short_label()
                    )
                });
                let next = match sel.credential.source {
                    Source::Env { var } if var != removal.provider.env_var() => Some(format!(
                        "{var} is still set in this shell, so the next session uses {} too; unset it to stop",
                        sel.provider().display_name()
                    )),
                    _ => None,
                };
                for l in lines.into_iter().chain(now).chain(next) {
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
}
