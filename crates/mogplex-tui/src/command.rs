//! The slash commands: one table that parsing, Tab completion, the completion popup and `/help`
//! all read. A new command is a variant here, its row in [`SlashCommand::spec`], and its arm in
//! the handler (`app/commands.rs`); the compiler points at both.

/// A command typed after `/` in the message box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlashCommand {
    Login,
    Logout,
    Account,
    Status,
    Model,
    Mcp,
    Help,
    Clear,
    Quit,
    Exit,
}

/// What the table says about a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// Without the slash: `logout`.
    pub name: &'static str,
    /// How its arguments are written (`[provider]`), empty when it takes none.
    pub args: &'static str,
    pub description: &'static str,
}

impl SlashCommand {
    /// Every command, in the order the popup and `/help` show them.
    pub const ALL: [SlashCommand; 10] = [
        SlashCommand::Login,
        SlashCommand::Logout,
        SlashCommand::Account,
        SlashCommand::Status,
        SlashCommand::Model,
        SlashCommand::Mcp,
        SlashCommand::Help,
        SlashCommand::Clear,
        SlashCommand::Quit,
        SlashCommand::Exit,
    ];

    pub const fn spec(self) -> CommandSpec {
        const fn c(
            name: &'static str,
            args: &'static str,
            description: &'static str,
        ) -> CommandSpec {
            CommandSpec {
                name,
                args,
                description,
            }
        }
        match self {
            SlashCommand::Login => c("login", "", "sign in, or use another credential"),
            SlashCommand::Logout => c(
                "logout",
                "[provider|--all]",
                "sign out of one or all accounts, or remove a key",
            ),
            SlashCommand::Account => c(
                "account",
                "[email]",
                "list your Mogplex accounts, or switch to one",
            ),
            SlashCommand::Status => c(
                "status",
                "",
                "which credential is in use, and where it came from",
            ),
            SlashCommand::Model => c("model", "", "choose the model"),
            SlashCommand::Mcp => c(
                "mcp",
                "[login|logout name]",
                "MCP servers of your account; sign in to one",
            ),
            SlashCommand::Help => c("help", "", "keys and commands"),
            SlashCommand::Clear => c("clear", "", "clear the transcript"),
            SlashCommand::Quit => c("quit", "", "leave mogplex"),
            SlashCommand::Exit => c("exit", "", "leave mogplex"),
        }
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn description(self) -> &'static str {
        self.spec().description
    }

    pub fn args(self) -> &'static str {
        self.spec().args
    }

    /// `/logout`.
    pub fn slash(self) -> String {
        format!("/{}", self.name())
    }

    pub fn from_name(name: &str) -> Option<SlashCommand> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The commands whose name starts with `prefix` (without the slash), in table order.
    pub fn matching(prefix: &str) -> impl Iterator<Item = SlashCommand> + '_ {
        Self::ALL
            .into_iter()
            .filter(move |c| c.name().starts_with(prefix))
    }
}

/// The keys `/help` lists: what to press, and what it does.
pub const KEYS: [(&str, &str); 9] = [
    ("Enter", "send the message, or run the command"),
    ("Alt+Enter", "new line (also Shift+Enter or Ctrl+J)"),
    ("↑/↓", "earlier prompts; in a list or a popup, choose"),
    ("Tab", "complete the command"),
    ("PgUp/PgDn", "scroll the transcript or a list by a page"),
    ("Esc", "stop an answer; close a popup, a list or this help"),
    (
        "Ctrl+A/E/U/W",
        "line start, line end, delete to start, delete word",
    ),
    ("Ctrl+C", "clear the message; twice quits"),
    ("Ctrl+Y", "copy the address on the sign-in screens"),
];

/// What `/help` says about closing popups and lists.
pub const CLOSING: &str = "Any key but Esc also closes /status, /mcp or /help, and is typed.";

/// A line typed as a command, split: the command (or the unknown name) and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    Command {
        command: SlashCommand,
        args: Vec<&'a str>,
    },
    Unknown(&'a str),
}

/// Parses what follows the slash.
pub fn parse(line: &str) -> Parsed<'_> {
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or("");
    match SlashCommand::from_name(name) {
        Some(command) => Parsed::Command {
            command,
            args: words.collect(),
        },
        None => Parsed::Unknown(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_command() {
        for c in SlashCommand::ALL {
            assert_eq!(SlashCommand::from_name(c.name()), Some(c));
            assert!(!c.description().is_empty());
        }
        assert_eq!(
            parse("logout  openai"),
            Parsed::Command {
                command: SlashCommand::Logout,
                args: vec!["openai"]
            }
        );
        assert_eq!(parse("nope x"), Parsed::Unknown("nope"));
        let m: Vec<_> = SlashCommand::matching("lo").collect();
        assert_eq!(m, vec![SlashCommand::Login, SlashCommand::Logout]);
        assert_eq!(
            parse("mcp login demo"),
            Parsed::Command {
                command: SlashCommand::Mcp,
                args: vec!["login", "demo"]
            }
        );
    }
}
