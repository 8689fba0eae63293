//! `/account`: the stored Mogplex accounts listed, and a switch to one for this session (and as
//! the stored default, the user's latest choice); the switch shows that account's synced
//! catalog and MCP servers at once.

use super::Cockpit;
use super::Msg;
use super::sign_in::SignInMsg;
use crate::account::account_line;
use crate::ctx::{choose_account, session_issuer};
use crate::error::CliError;
use crate::log::Level;
use mogplex_auth::Provider;
use mogplex_auth::credentials::ops::{self, AccountSummary};
use serde_json::json;

impl Cockpit<'_> {
    pub(super) fn account_command(&mut self, args: &[String]) {
        // Metadata only: no keyring unlock, no secret read.
        let loaded = match self.services.store().load_metadata() {
            Ok(l) => l,
            Err(e) => {
                self.show_error(&e.into());
                return;
            }
        };
        let issuer = session_issuer(self.services.env());
        let Some(query) = args.first() else {
            let accounts = ops::list_accounts(&loaded.doc);
            if accounts.is_empty() {
                self.note("No stored Mogplex accounts; /login signs in");
                return;
            }
            let in_use = self
                .creds
                .resolution
                .for_provider(Provider::Mogplex)
                .and_then(|c| c.account_entry.clone());
            let mut lines = vec!["Stored Mogplex accounts (/account <email> switches):".to_owned()];
            lines.extend(
                accounts
                    .iter()
                    .map(|a| account_line(a, in_use.as_deref() == Some(a.id.as_str()))),
            );
            self.note(lines.join("\n"));
            return;
        };
        let found = match choose_account(&loaded.doc, query, &issuer) {
            Ok(a) => a,
            Err(e) => {
                self.show_error(&e);
                return;
            }
        };
        let home = self.ctx.home.clone();
        self.services.spawn_blocking(move |store| {
            let result = ops::set_default_account(store, &found.id)
                .map_err(CliError::from)
                .map(|u| {
                    let mut notes = crate::login::write_notes(store, &u);
                    let chosen = crate::ctx::remember_choice(
                        &home,
                        Provider::Mogplex,
                        Some(&u.value.id),
                        "account",
                    );
                    notes.extend(chosen.err());
                    (u.value, notes)
                });
            Msg::SignIn(SignInMsg::Switched(result))
        });
    }

    pub(super) fn switched(&mut self, result: Result<(AccountSummary, Vec<String>), CliError>) {
        let (account, notes) = match result {
            Ok(r) => r,
            Err(e) => {
                self.show_error(&e);
                return;
            }
        };
        // This session follows the switch even when MOGPLEX_ACCOUNT chose another.
        self.ctx.account = Some(account.id.clone());
        self.log.write(
            Level::Info,
            "account.use",
            "switched account",
            json!({"email": account.email, "id": account.id}),
        );
        // Another account: its hosted state, not the last one's.
        self.run = None;
        self.hosted.state = None;
        self.show_resolution();
        self.sync_hosted();
        for n in notes {
            self.note(
                n.trim_start_matches("note: ")
                    .trim_start_matches("warning: "),
            );
        }
        self.note(format!(
            "Now using {} ({})",
            account.name(),
            account.issuer.trim_end_matches('/')
        ));
    }
}
