//! The command line. Only what works end to end is here; a lone word that names (or nearly
//! names) a command is refused rather than sent to the model ([`lone_word`]).

use crate::error::CliError;
use crate::suggest;
use clap::{Args, CommandFactory, Parser, Subcommand};
use mogplex_auth::Provider;

/// `--version`: the package version and, when built from a git checkout, the commit it was built
/// from (set by build.rs; `MOGPLEX_BUILD_COMMIT` overrides it for packagers building from a tarball).
pub const VERSION: &str = env!("MOGPLEX_VERSION_LINE");

#[derive(Debug, Parser)]
#[command(
    name = "mogplex",
    version = VERSION,
    about = "The Mogplex command-line cockpit",
    long_about = "The Mogplex command-line cockpit.\n\nOn a terminal and without a prompt, opens the cockpit (the login screen when no credential resolves). With a prompt, runs one non-interactive turn and streams the answer to stdout.",
    args_conflicts_with_subcommands = true,
    after_help = "Credentials come from the environment (MOGPLEX_API_KEY or a provider key such as OPENAI_API_KEY) or from auth.json in the Mogplex home (MOGPLEX_HOME, default ~/.mogplex). The environment wins.\n\nExit codes: 0 ok, 1 failure, 2 usage, 64 no credential, 65 credential rejected or no model access, 69 service unavailable, 75 rate limited, 78 local configuration problem, 130 interrupted (Ctrl+C)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub exec: ExecArgs,

    // Not `global`: they belong to the cockpit and the bare prompt, and `mogplex login --help`
    // must list only what login takes.
    /// Remove the stored Mogplex sign-in before doing anything else (provider keys are kept)
    #[arg(long)]
    pub logout: bool,

    /// Open the cockpit on a run of your Mogplex account (run_…): its history, then live; also MOGPLEX_ATTACH_RUN_ID
    #[arg(long, value_name = "RUN_ID", value_parser = parse_run_id)]
    pub attach: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one turn non-interactively and stream the answer to stdout
    Exec(ExecArgs),
    /// Sign in with Mogplex (browser or device code), or store a provider key
    Login(LoginArgs),
    /// Remove a stored credential (the Mogplex sign-in unless a provider is named)
    Logout(LogoutArgs),
    /// List the stored Mogplex accounts, or choose the default one
    Account(AccountArgs),
    /// Move stored credentials between auth.json and the OS keyring
    Credentials(CredentialsArgs),
    /// Your Mogplex account's MCP servers: list them with their sign-in state, sign in to one that asks for it, or sign out of one
    Mcp(McpArgs),
    /// Show every credential a session here could use, where it comes from, and whether it works (exit 0 usable, 64 none, 65 rejected, 69 not checked)
    Status(StatusArgs),
    /// Credentials: `mogplex auth status` is `mogplex status`
    Auth(AuthArgs),
    /// Print a shell completion script (for example `mogplex completions bash > ~/.local/share/bash-completion/completions/mogplex`)
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct AccountArgs {
    #[command(subcommand)]
    pub command: AccountCommand,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// The stored Mogplex accounts (never their tokens)
    List,
    /// Make an account the default (for this and every later session without --account)
    Use {
        /// Its email, account id or entry id (`mogplex account list` shows them)
        #[arg(value_name = "EMAIL_OR_ID")]
        account: String,
    },
}

#[derive(Debug, Args)]
pub struct McpArgs {
    #[command(subcommand)]
    pub command: McpCommand,
}

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Each MCP server of your account and whether it needs, or has, a sign-in (never a token)
    List,
    /// Sign in to a remote MCP server that asks for it (OAuth in the browser; tokens kept in the credential store)
    Login {
        /// The server's name (`mogplex mcp list` shows them)
        #[arg(value_name = "SERVER")]
        server: String,
        /// Ask for this scope instead of what the server names (for example a wider one a tool needs)
        #[arg(long, value_name = "SCOPE")]
        scope: Option<String>,
        /// Sign in with a device code (for SSH sessions, containers, or a browser on another machine)
        #[arg(long)]
        device: bool,
    },
    /// Forget the tokens of one MCP server (revoked at its authorization server, best effort)
    Logout {
        /// The server's name
        #[arg(value_name = "SERVER")]
        server: String,
    },
}

#[derive(Debug, Args)]
pub struct CredentialsArgs {
    #[command(subcommand)]
    pub command: CredentialsCommand,
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Move every stored secret to the keyring or to auth.json (new copy first, old removed last)
    Migrate {
        /// Where to: `keyring` or `file`
        #[arg(long, value_name = "STORE", value_parser = ["keyring", "file"])]
        to: String,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON document (schema in docs/configuration.md) instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AuthArgs {
    #[command(subcommand)]
    pub command: AuthCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// The same as `mogplex status`
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_name = "SHELL", value_enum)]
    pub shell: clap_complete::Shell,
}

/// Writes the completion script for `shell` (generated from the same definition clap parses).
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    clap_complete::generate(shell, &mut Cli::command(), "mogplex", out);
}

#[derive(Debug, Args, Default)]
pub struct ExecArgs {
    /// The prompt; `-` (or no prompt with piped input) reads it from stdin
    #[arg(value_name = "PROMPT")]
    pub prompt: Option<String>,

    /// The model, as `provider/model` or a well-known name such as `gpt-4.1` or `claude-sonnet-4-5`
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: Option<String>,

    /// Print one JSON event per line instead of text
    #[arg(long)]
    pub json: bool,

    /// Let the model call this tool of your Mogplex account's MCP servers, as `server.tool`
    /// (repeatable); any other tool call is refused
    #[arg(long = "allow-tool", value_name = "SERVER.TOOL", value_parser = parse_tool_name)]
    pub allow_tool: Vec<String>,
    /// The Mogplex account for this process (its email or id), without changing the default;
    /// also MOGPLEX_ACCOUNT
    #[arg(long, value_name = "EMAIL_OR_ID")]
    pub account: Option<String>,
}

/// `server.tool`: both parts non-empty.
pub fn parse_tool_name(s: &str) -> Result<String, String> {
    match s.split_once('.') {
        Some((server, tool)) if !server.is_empty() && !tool.is_empty() => Ok(s.to_owned()),
        _ => Err("name a tool as `server.tool`, for example `everything.echo`".into()),
    }
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// mogplex (sign in, or with --with-api-key a mog_ personal access token) or a model provider;
    /// without it, a terminal offers a choice
    #[arg(value_name = "PROVIDER", value_parser = parse_provider)]
    pub provider: Option<Provider>,

    /// Read the key from stdin (for example `printenv OPENAI_API_KEY | mogplex login openai --with-api-key`)
    #[arg(long, conflicts_with = "device")]
    pub with_api_key: bool,

    /// Sign in with a device code (for SSH sessions, containers, or a browser on another machine)
    #[arg(long)]
    pub device: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Remove this provider's stored key instead of the Mogplex sign-in
    #[arg(value_name = "PROVIDER", value_parser = parse_provider)]
    pub provider: Option<Provider>,

    /// Sign out of every stored Mogplex account (provider keys stay)
    #[arg(long, conflicts_with_all = ["provider", "account"])]
    pub all: bool,

    /// Sign out of this account (its email or id) instead of the one in use
    #[arg(long, value_name = "EMAIL_OR_ID", conflicts_with = "provider")]
    pub account: Option<String>,
}

fn parse_provider(s: &str) -> Result<Provider, String> {
    s.parse()
        .map_err(|_| format!("unknown provider; use one of: {}", Provider::names()))
}

/// `run_` then letters, digits, `_` or `-` (at most 128 characters).
pub fn parse_run_id(s: &str) -> Result<String, String> {
    let ok = s.len() <= 128
        && s.strip_prefix("run_").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(
            "a run id is `run_` followed by letters, digits, `_` or `-` (for example run_abc123)"
                .into(),
        )
    }
}

/// Commands planned but not in this version, with where to look meanwhile. A lone word naming
/// one is refused, not sent to the model. Remove a name here when its command lands.
const PLANNED: &[(&str, Option<&str>)] = &[];

/// The bare prompt (`mogplex <word>`) when it is one word naming, or a small edit away from, a
/// command: a usage error saying which was meant, instead of a billed prompt. `raw_args` are the
/// process's arguments; after `--` any words are a prompt on purpose.
pub fn lone_word(cli: &Cli, raw_args: &[std::ffi::OsString]) -> Result<(), CliError> {
    let Some(word) = cli.exec.prompt.as_deref().map(str::trim) else {
        return Ok(());
    };
    if cli.command.is_some()
        || word.is_empty()
        || word == "-"
        || word.contains(char::is_whitespace)
        || raw_args.iter().skip(1).any(|a| a == "--")
    {
        return Ok(());
    }
    let real: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .chain(["help".to_owned()])
        .collect();
    let names = real
        .iter()
        .map(String::as_str)
        .chain(PLANNED.iter().map(|(n, _)| *n));
    let Some((name, d)) = suggest::ranked(word, names, suggest::distance, 1)
        .into_iter()
        .next()
        .filter(|(_, d)| suggest::is_close(word, *d))
    else {
        return Ok(());
    };
    let send = format!(
        "to send `{word}` to the model, run `mogplex exec {word}` (or `mogplex -- {word}`)"
    );
    let planned = PLANNED.iter().find(|(n, _)| *n == name);
    let err = match (planned, d) {
        (Some((_, hint)), 0) => {
            let e = CliError::usage(format!("`mogplex {name}` is not available in this version"));
            match hint {
                Some(h) => e.hint(*h),
                None => e,
            }
        }
        (Some(_), _) => CliError::usage(format!(
            "`{word}` is not a mogplex command, and one word alone is not sent as a prompt"
        ))
        .hint(format!(
            "did you mean `mogplex {name}`? It is not available in this version"
        )),
        (None, _) => CliError::usage(format!(
            "`{word}` is not a mogplex command, and one word alone is not sent as a prompt"
        ))
        .hint(format!("did you mean `mogplex {name}`?")),
    };
    Err(err.hint(send))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str]) -> Result<(), CliError> {
        let raw: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        lone_word(&Cli::parse_from(args), &raw)
    }

    #[test]
    fn lone_words_near_commands_are_refused() {
        for args in [
            &["mogplex", "logni"][..],
            &["mogplex", "statsu"],
            &["mogplex", "Logout"],
            &["mogplex", "exce"],
            &["mogplex", "stauts"],
            &["mogplex", "--json", "mcp"],
            &["mogplex", "--logout", "login"],
        ] {
            assert!(check(args).is_err(), "{args:?}");
        }
        for args in [
            &["mogplex", "hello"][..],
            &["mogplex", "hi"],
            &["mogplex", "explain this error"],
            &["mogplex", "--", "status"],
            &["mogplex", "exec", "status"],
            &["mogplex", "-"],
            &["mogplex"],
        ] {
            assert!(check(args).is_ok(), "{args:?}");
        }
    }

    #[test]
    fn planned_commands_are_not_real_ones() {
        let cmd = Cli::command();
        for (name, _) in PLANNED {
            assert!(
                cmd.find_subcommand(name).is_none(),
                "`{name}` has landed: remove it from PLANNED"
            );
        }
    }
}
