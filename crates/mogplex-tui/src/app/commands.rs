//! What each slash command does in the App: one arm per [`SlashCommand`], so a new command in the
//! table does not compile until it is handled here. A command with work outside the App (the
//! network, the disk) returns [`Effect::Command`], which the runtime's `run_command` carries
//! out.

use super::{App, Ask, Effect, EntryKind, Overlay, Screen};
use crate::command::{Parsed, SlashCommand, parse};
use mogplex_auth::Provider;

impl App {
    pub(super) fn command(&mut self, line: &str) -> Vec<Effect> {
        let (command, args) = match parse(line) {
            Parsed::Command { command, args } => (command, args),
            Parsed::Unknown(other) => {
                self.say(
                    EntryKind::Error,
                    format!("unknown command /{other}; type /help for the list"),
                );
                return Vec::new();
            }
        };
        let runtime = |command| {
            vec![Effect::Command {
                command,
                args: args.iter().map(|a| (*a).to_owned()).collect(),
            }]
        };
        match command {
            SlashCommand::Login => {
                self.screen = Screen::login();
                runtime(command)
            }
            SlashCommand::Logout => {
                self.logout(args.first().copied());
                Vec::new()
            }
            SlashCommand::Status | SlashCommand::Mcp | SlashCommand::Account => runtime(command),
            SlashCommand::Model => {
                self.overlay = Some(Overlay::Model {
                    choices: None,
                    selected: 0,
                    filter: String::new(),
                });
                runtime(command)
            }
            SlashCommand::Help => {
                self.overlay = Some(Overlay::Help { scroll: 0 });
                Vec::new()
            }
            SlashCommand::Clear => {
                self.transcript.clear();
                self.scroll = 0;
                Vec::new()
            }
            SlashCommand::Quit | SlashCommand::Exit => self.quit(),
        }
    }

    /// `/logout [provider]`: asks first, and only about what is stored.
    fn logout(&mut self, arg: Option<&str>) {
        if matches!(arg, Some("--all" | "all")) {
            self.confirm(Ask::LogoutAll);
            return;
        }
        match arg.map(str::parse::<Provider>) {
            None if self.header.stored.contains(&Provider::Mogplex) => {
                self.confirm(Ask::Logout(None));
            }
            None => {
                let keys: Vec<&str> = self.header.stored.iter().map(|p| p.id()).collect();
                let text = if keys.is_empty() {
                    "Nothing to sign out of: no Mogplex sign-in or key is stored in this home."
                        .to_owned()
                } else {
                    format!(
                        "No Mogplex sign-in is stored. Stored keys are kept unless you remove one: /logout {}",
                        keys.join(" or /logout ")
                    )
                };
                self.say(EntryKind::Notice, text);
            }
            Some(Ok(p)) if self.header.stored.contains(&p) => {
                self.confirm(Ask::Logout(Some(p)));
            }
            Some(Ok(p)) => self.say(
                EntryKind::Notice,
                format!(
                    "No {} credential is stored in this home; nothing to remove.",
                    p.display_name()
                ),
            ),
            Some(Err(_)) => self.say(
                EntryKind::Error,
                format!(
                    "unknown provider `{}`; use one of: {}",
                    arg.unwrap_or(""),
                    Provider::names()
                ),
            ),
        }
    }

    fn confirm(&mut self, ask: Ask) {
        self.overlay = Some(Overlay::Confirm {
            ask,
            refused: false,
        });
    }
}
