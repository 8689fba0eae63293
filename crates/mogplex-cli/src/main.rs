//! `mogplex`: the Mogplex command-line cockpit.
//!
//! This file only wires arguments to commands and turns errors into `error:`/`hint:` text and
//! the documented exit codes (see [`mogplex_cli::exit`]).

use clap::{CommandFactory, FromArgMatches};
use mogplex_auth::{Provider, Redactor};
use mogplex_cli::args::{self, Cli, Command};
use mogplex_cli::error::CliError;
use mogplex_cli::{account, cockpit, ctx, exec, login, mcp, status};
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = parse_args();
    let mut redactor = Redactor::new();
    let raw_args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let result = args::lone_word(&cli, &raw_args).and_then(|()| run(cli, &mut redactor));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // With --json, exec has already put the error event on stdout; stderr keeps the text.
            eprint!("{}", e.render(&redactor));
            ExitCode::from(e.code)
        }
    }
}

/// `Cli::parse()`, without freeing clap's command tree: the process ends soon after, and the
/// tree's drop is about a tenth of the work `mogplex exec` does before it can answer (measured
/// with `valgrind --tool=callgrind`; see `cargo xtask bench`).
fn parse_args() -> Cli {
    let mut command = Cli::command();
    let parsed = command
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|mut m| Cli::from_arg_matches_mut(&mut m));
    let cli = match parsed {
        Ok(cli) => cli,
        // --help, --version and usage errors, printed and exited as `Cli::parse` does.
        Err(e) => e.format(&mut command).exit(),
    };
    std::mem::forget(command);
    cli
}

fn run(cli: Cli, redactor_out: &mut Redactor) -> Result<(), CliError> {
    // Read here rather than through clap, so that an empty variable counts as unset.
    let attach = match (
        &cli.attach,
        std::env::var("MOGPLEX_ATTACH_RUN_ID")
            .ok()
            .filter(|v| !v.is_empty()),
    ) {
        (Some(id), _) => Some(id.clone()),
        (None, Some(v)) => Some(args::parse_run_id(&v).map_err(|e| {
            CliError::usage(format!("MOGPLEX_ATTACH_RUN_ID is not a run id: {e}"))
                .hint("fix or unset MOGPLEX_ATTACH_RUN_ID")
        })?),
        (None, None) => None,
    };
    if let Some(run_id) = &cli.attach
        && (cli.command.is_some() || cli.exec.prompt.is_some())
    {
        return Err(CliError::usage(format!(
            "--attach {run_id} opens the cockpit on that run; it takes no prompt or command"
        ))
        .hint(format!("run `mogplex --attach {run_id}` on its own")));
    }
    // Before the home is opened: completions need nothing of it, and must work with a broken one.
    if let Some(Command::Completions(args)) = &cli.command {
        args::write_completions(args.shell, &mut std::io::stdout().lock());
        return Ok(());
    }
    let reports = matches!(
        cli.command,
        Some(Command::Status(_) | Command::Auth(_)) if !cli.logout
    );
    let mut ctx = if reports {
        ctx::Ctx::for_report()?
    } else {
        ctx::Ctx::new()?
    };
    let result = dispatch(cli, &mut ctx, attach);
    *redactor_out = ctx.redactor.clone();
    result
}

fn dispatch(cli: Cli, ctx: &mut ctx::Ctx, attach: Option<String>) -> Result<(), CliError> {
    // --account wins over MOGPLEX_ACCOUNT, for this process only.
    let chosen = match &cli.command {
        Some(Command::Exec(a)) => a.account.clone(),
        Some(Command::Logout(a)) => a.account.clone(),
        _ => cli.exec.account.clone(),
    };
    if let Some(a) = chosen.filter(|a| !a.trim().is_empty()) {
        ctx.account = Some(a);
    }
    if cli.logout {
        login::logout(ctx, Provider::Mogplex, true)?;
    }
    match cli.command {
        Some(Command::Exec(args)) => exec::run(ctx, args),
        Some(Command::Login(args)) => login::login(ctx, args),
        Some(Command::Logout(args)) if args.all => account::logout_all(ctx),
        Some(Command::Account(args)) => account::run(ctx, args.command),
        Some(Command::Credentials(args)) => account::credentials(ctx, args.command),
        Some(Command::Mcp(args)) => mcp::run(ctx, args.command),
        Some(Command::Logout(args)) => {
            let provider = args.provider.unwrap_or(Provider::Mogplex);
            if cli.logout && provider == Provider::Mogplex {
                return Ok(());
            }
            login::logout(ctx, provider, false)
        }
        Some(Command::Status(args)) => status::run(ctx, args.json),
        Some(Command::Auth(args)) => match args.command {
            args::AuthCommand::Status(a) => status::run(ctx, a.json),
        },
        Some(Command::Completions(_)) => Ok(()), // handled in `run`, before the home is opened
        None => {
            let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
            if cli.exec.prompt.is_none() && interactive {
                return cockpit::run(ctx, attach);
            }
            // Without a terminal, attaching prints the run's history.
            if let (Some(id), None) = (&attach, &cli.exec.prompt) {
                return cockpit::runs::print_run(ctx, id);
            }
            exec::run(ctx, cli.exec)
        }
    }
}
