//! The command line. Only what works end to end is here.

use clap::{Args, Parser, Subcommand};
use mogplex_auth::Provider;

#[derive(Debug, Parser)]
#[command(
    name = "mogplex",
    version,
    about = "The Mogplex command-line cockpit",
    long_about = "The Mogplex command-line cockpit.\n\nOn a terminal and without a prompt, opens the cockpit (the login screen when no credential resolves). With a prompt, runs one non-interactive turn and streams the answer to stdout.",
    args_conflicts_with_subcommands = true,
    after_help = "Credentials come from the environment (MOGPLEX_API_KEY or a provider key such as OPENAI_API_KEY) or from auth.json in the Mogplex home (MOGPLEX_HOME, default ~/.mogplex). The environment wins.\n\nExit codes: 0 ok, 1 failure, 2 usage, 64 no credential, 65 credential rejected or no model access, 69 service unavailable, 75 rate limited, 78 local configuration problem."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub exec: ExecArgs,

    /// Remove the stored Mogplex sign-in before doing anything else (provider keys are kept)
    #[arg(long, global = true)]
    pub logout: bool,

    /// Open the cockpit on a run of your Mogplex account (run_…): its history, then live; also MOGPLEX_ATTACH_RUN_ID
    #[arg(long, value_name = "RUN_ID", global = true, value_parser = parse_run_id)]
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
