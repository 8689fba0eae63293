//! What resolves and what is shown about it: the credentials read from the environment and
//! `auth.json`, the selection in use, the header, the login screen's notice and `/status`.

use super::Cockpit;
use crate::error::CliError;
use crate::signin::base_label;
use mogplex_auth::resolve::OverrideReason;
use mogplex_auth::state::State;
use mogplex_auth::{Credential, CredentialKind, Override, Provider, Resolution, Secret, Source};
use mogplex_providers::{ModelSource, Selection};
use mogplex_tui::{Event, Header};

/// What resolved at the last read of `auth.json`.
#[derive(Debug, Default)]
pub(super) struct Credentials {
    pub resolution: Resolution,
    /// Providers with a credential in `auth.json`.
    pub stored: Vec<Provider>,
    /// The signed-in account (id, email), from `auth.json`.
    pub account: Option<(Option<String>, Option<String>)>,
    /// The credential and model in use.
    pub selection: Option<Selection>,
    /// The stored Mogplex credential's expiry notice (a sign-in that cannot be renewed, a token
    /// ending within 3 days), when there is one.
    pub expiry: Option<String>,
}

impl Credentials {
    /// The signed-in account's id from `auth.json`: what a remembered model is kept under (the
    /// same rule as `mogplex exec`, so both pick the same model).
    pub(super) fn account_id(&self) -> Option<String> {
        self.account.as_ref().and_then(|(id, _)| id.clone())
    }
}

/// The credential for the header: what it is, masked, and where it came from in a word (`a
/// Mogplex sign-in` needs neither: it is always the one stored).
pub(super) fn short_credential(c: &Credential) -> String {
    match c.kind {
        CredentialKind::AccountSession => c.what(),
        _ => format!(
            "{} {} from {}",
            c.what(),
            c.masked(),
            c.source.short_label()
        ),
    }
}

/// The credential in the fewest words, for a narrow header (the provider is said beside it).
fn shortest_credential(c: &Credential) -> String {
    match (c.kind, &c.account_email) {
        (CredentialKind::AccountSession, Some(email)) => email.clone(),
        (CredentialKind::AccountSession, None) => "signed in".to_owned(),
        _ => format!("{} from {}", c.masked(), c.source.short_label()),
    }
}

/// One line for the header about a stored credential the environment overrides; `/status` says
/// it whole, with the path.
fn short_notice(o: &Override) -> String {
    let stored = match o.stored_kind {
        CredentialKind::ApiKey => format!("the stored {} key", o.stored_provider.display_name()),
        CredentialKind::PersonalAccessToken => "the stored Mogplex access token".to_owned(),
        CredentialKind::AccountSession => "your stored Mogplex sign-in".to_owned(),
    };
    match o.reason {
        OverrideReason::SameProvider => format!("{} overrides {stored}", o.var),
        OverrideReason::BeatsAccount { .. } => {
            format!("{} in this shell takes precedence over {stored}", o.var)
        }
    }
}

fn stored_providers(resolved: &crate::ctx::Resolved) -> Vec<Provider> {
    let doc = &resolved.loaded.doc;
    Provider::ALL
        .into_iter()
        .filter(|p| match p {
            Provider::Mogplex => resolved.account.is_some(),
            p => doc.provider_key(p.id()).is_some(),
        })
        .collect()
}

impl Cockpit<'_> {
    /// Reads the store again and resolves. Returns what the read found that the user must hear
    /// (a corrupt file moved aside, keyring items gone or changed).
    pub(super) fn reload(&mut self) -> Result<Option<String>, CliError> {
        let mut secrets: Vec<Secret> = Vec::new();
        let resolved = crate::ctx::resolve_stored(
            self.services.env(),
            &**self.services.store(),
            self.ctx.account.as_deref(),
            State::load(&self.ctx.home).last_choice,
            |s| secrets.push(s.clone()),
        )?;
        let resolution = resolved.resolution.clone();
        // Stored secrets that lost to the environment are still secrets.
        secrets.extend(resolution.secrets().cloned());
        for s in &secrets {
            self.learn(s);
        }
        self.creds.stored = stored_providers(&resolved);
        self.creds.account = resolved
            .account
            .as_ref()
            .filter(|a| a.kind == mogplex_auth::MogplexCredentialKind::Session)
            .map(|a| (a.account_id.clone(), a.email.clone()));
        self.creds.expiry = resolution
            .for_provider(Provider::Mogplex)
            .and_then(|c| crate::status::credential_expiry_notice(&resolved.loaded.doc, c));
        self.creds.resolution = resolution;
        self.creds.selection = self.choose();
        let warnings = resolved
            .warnings()
            .into_iter()
            .map(|w| w.trim_start_matches("warning: ").to_owned())
            .collect::<Vec<_>>();
        Ok((!warnings.is_empty()).then(|| warnings.join("; ")))
    }

    /// The credential and model to use: a `/model` pick while its provider has a credential,
    /// else the rules of `mogplex exec`.
    pub(super) fn choose(&self) -> Option<Selection> {
        if let Some((p, m)) = &self.models.picked
            && let Some(c) = self.creds.resolution.for_provider(*p)
        {
            return Some(Selection::new(c, Some(m.clone()), ModelSource::Session));
        }
        let last = State::load(&self.ctx.home).last_picked(self.creds.account_id().as_deref());
        mogplex_providers::select(&self.creds.resolution, None, &last).ok()
    }

    pub(super) fn header(&self) -> Option<Header> {
        let sel = self.creds.selection.as_ref()?;
        let (models, mcp, stale) = self.hosted_header();
        Some(Header {
            provider: Some(sel.provider().display_name().to_owned()),
            model: sel.model.clone(),
            credential: Some(short_credential(&sel.credential)),
            credential_short: Some(shortest_credential(&sel.credential)),
            notices: self
                .creds
                .resolution
                .overrides
                .iter()
                .map(short_notice)
                .chain(self.creds.resolution.issuer_notice())
                .chain(
                    self.creds
                        .expiry
                        .clone()
                        .filter(|_| sel.provider() == Provider::Mogplex),
                )
                .collect(),
            stored: self.creds.stored.clone(),
            login_notice: self.login_notice(),
            signed_in: self.signed_in_text(),
            models,
            mcp,
            stale,
            run: self.run_id().map(str::to_owned),
        })
    }

    /// Said on the login screen opened with `/login`: who is signed in, and what signing in
    /// again does.
    fn signed_in_text(&self) -> Option<String> {
        let sel = self.creds.selection.as_ref()?;
        Some(match &self.creds.account {
            Some((_, email)) => format!(
                "You are signed in to Mogplex as {}. Signing in again replaces that sign-in with the account you sign in with; stored provider keys are kept.",
                email.as_deref().unwrap_or("your account")
            ),
            None => format!(
                "In use: {}. Signing in with Mogplex stores your account's sign-in beside it; nothing stored is removed.",
                short_credential(&sel.credential)
            ),
        })
    }

    /// Puts the current header on screen without changing the screen.
    pub(super) fn refresh_header(&mut self) {
        if let Some(h) = self.header() {
            self.app.update(Event::HeaderChanged(h));
        }
    }

    /// Said on the login screen when a variable will still win over a new sign-in.
    fn login_notice(&self) -> Option<String> {
        let c = self
            .creds
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

    /// Whose conversation this is: the Mogplex account (or token) in use, else the provider and
    /// where its credential came from. `None` when nothing resolves.
    fn conversation_owner(&self) -> Option<String> {
        let c = &self.creds.selection.as_ref()?.credential;
        Some(match c.kind {
            CredentialKind::AccountSession => c.what(),
            CredentialKind::PersonalAccessToken => {
                format!("the Mogplex access token {}", c.masked())
            }
            CredentialKind::ApiKey => format!("the {} from {}", c.what(), c.source.short_label()),
        })
    }

    /// Reloads, then shows the result: the session with its new header, or the login screen.
    /// When the credential now in use is someone else's (another account signed in), the
    /// conversation starts again: the last one's messages are neither shown as this one's nor
    /// sent with its prompts.
    pub(super) fn show_resolution(&mut self) {
        let before = self.conversation_owner();
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
        let after = self.conversation_owner();
        if before.is_some() && after.is_some() && before != after && self.turn.has_messages() {
            self.turn.reset();
            self.app.update(Event::NewConversation(format!(
                "A new conversation with {}: the one before was with {}, and is not sent with these prompts.",
                after.as_deref().unwrap_or_default(),
                before.as_deref().unwrap_or_default()
            )));
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

    pub(super) fn status_rows(&self) -> Vec<(String, String)> {
        let mut rows = Vec::new();
        if let Some(sel) = &self.creds.selection {
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
        let resolution = &self.creds.resolution;
        for p in Provider::ALL {
            let value = match resolution.for_provider(p) {
                Some(c) => {
                    let mut v = c.describe();
                    if resolution
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
        let account = match &self.creds.account {
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
            (None, None) if resolution.for_provider(Provider::Mogplex).is_some() => {
                "none yet (created with the first prompt)".to_owned()
            }
            (None, None) => "none (runs need a Mogplex account)".to_owned(),
        };
        rows.push(("Run".to_owned(), run));
        for o in &resolution.overrides {
            rows.push(("Override".to_owned(), o.notice()));
        }
        if let Some(n) = resolution.issuer_notice() {
            rows.push(("Notice".to_owned(), n));
        }
        if let Some(n) = &self.creds.expiry {
            rows.push(("Notice".to_owned(), n.clone()));
        }
        let info = self.services.store().info();
        let mut store = format!("{} ({})", info.label(), info.choice.as_str());
        if let Some(why) = &info.fallback {
            store.push_str(&format!(
                "; the keyring is not available ({why}), so the file is used"
            ));
        }
        rows.push(("Store".to_owned(), store));
        if let Ok(base) = self.services.account_base() {
            rows.push(("Service".to_owned(), base_label(&base)));
        }
        rows.push((
            "Home".to_owned(),
            self.ctx.home.path().display().to_string(),
        ));
        rows.push(("Log".to_owned(), self.log.path().display().to_string()));
        rows
    }
}
