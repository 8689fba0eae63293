//! `mogplex account list|use`, `mogplex logout --all` and `mogplex credentials migrate`: the
//! commands over several stored accounts and over the store itself. Each is one call into
//! [`mogplex_auth::credentials::ops`] and what it prints; no token is ever printed.

use crate::args::{AccountCommand, CredentialsCommand};
use crate::ctx::{Ctx, remember_doc_secrets};
use crate::error::CliError;
use crate::login::{store_label, write_notes};
use mogplex_auth::MogplexCredentialKind;
use mogplex_auth::credentials::StoreKind;
use mogplex_auth::credentials::ops::{self, AccountMatch, AccountSummary};
use mogplex_auth::{Env, Provider};

pub fn run(ctx: &mut Ctx, command: AccountCommand) -> Result<(), CliError> {
    match command {
        AccountCommand::List => list(ctx),
        AccountCommand::Use { account } => use_account(ctx, &account),
    }
}

/// One line per account: `* ada@example.com  http://…  sign-in  acct_…`.
pub fn account_line(a: &AccountSummary, in_use: bool) -> String {
    let kind = match a.kind {
        MogplexCredentialKind::Session => "sign-in",
        MogplexCredentialKind::PersonalAccessToken => "access token",
    };
    let mut marks = Vec::new();
    if a.is_default {
        marks.push("default");
    }
    if in_use {
        marks.push("in use here");
    }
    let marks = if marks.is_empty() {
        String::new()
    } else {
        format!(" ({})", marks.join(", "))
    };
    format!(
        "{} {}  {}  {kind}  {}{marks}",
        if in_use { "*" } else { " " },
        a.name(),
        a.issuer.trim_end_matches('/'),
        a.id
    )
}

fn list(ctx: &mut Ctx) -> Result<(), CliError> {
    // Metadata only: no keyring unlock, no secret read.
    let loaded = ctx.store.load_metadata()?;
    for w in loaded.moved_aside.iter().map(|m| m.warning()) {
        eprintln!("{w}");
    }
    let accounts = ops::list_accounts(&loaded.doc);
    if accounts.is_empty() {
        println!("No stored Mogplex accounts in {}", store_label(&*ctx.store));
        eprintln!("hint: sign in with `mogplex login`");
        return Ok(());
    }
    let issuer = ctx.issuer();
    let chosen = match ctx.account.clone() {
        Some(q) => Some(crate::ctx::choose_account(&loaded.doc, &q, &issuer)?.id),
        None => None,
    };
    let in_use = ops::active_account(&loaded.doc, &issuer, chosen.as_deref()).map(|a| a.id.clone());
    for a in &accounts {
        println!(
            "{}",
            account_line(a, in_use.as_deref() == Some(a.id.as_str()))
        );
    }
    if in_use.is_none() {
        eprintln!("note: none of them is for {issuer} (MOGPLEX_URL), so none is used here");
    }
    Ok(())
}

fn use_account(ctx: &mut Ctx, query: &str) -> Result<(), CliError> {
    let loaded = ctx.store.load_metadata()?;
    let found = match ops::find_account(&loaded.doc, query, None) {
        AccountMatch::One(a) => a,
        AccountMatch::Ambiguous { .. } => {
            // The same email on several services: this session's one, if it is among them.
            crate::ctx::choose_account(&loaded.doc, query, &ctx.issuer())?
        }
        _ => {
            let known: Vec<String> = ops::list_accounts(&loaded.doc)
                .iter()
                .map(|a| a.name().to_owned())
                .collect();
            let err = CliError::new(
                crate::exit::NO_CREDENTIAL,
                format!("no stored Mogplex account matches `{query}`"),
            );
            return Err(if known.is_empty() {
                err.hint("sign in with `mogplex login`")
            } else {
                err.hint(format!("stored accounts: {}", known.join(", ")))
            });
        }
    };
    let updated = ops::set_default_account(&*ctx.store, &found.id)?;
    for n in write_notes(&*ctx.store, &updated) {
        eprintln!("{n}");
    }
    ctx.remember_choice(Provider::Mogplex, Some(&found.id), "account");
    let issuer = found.issuer.trim_end_matches('/').to_owned();
    println!("Now using {} ({issuer}) by default", found.name());
    if issuer != ctx.issuer() {
        eprintln!(
            "note: this account is for {issuer}, and MOGPLEX_URL names {}; set MOGPLEX_URL={issuer} to use it",
            ctx.issuer()
        );
    }
    if ctx.env.var(crate::ctx::ACCOUNT_VAR).is_some() {
        eprintln!(
            "note: {} is set in this shell and chooses the account here; unset it to use the default",
            crate::ctx::ACCOUNT_VAR
        );
    }
    if ctx.env.var(Provider::Mogplex.env_var()).is_some() {
        eprintln!(
            "note: MOGPLEX_API_KEY is set in this shell and takes precedence over stored accounts"
        );
    }
    Ok(())
}

/// What `logout --all` did: the report line, notes about the write, and the refresh tokens to
/// revoke, each at its own account's service (name, issuer, token).
#[derive(Debug)]
pub struct AllSignedOut {
    pub accounts: usize,
    pub report: String,
    pub notes: Vec<String>,
    pub revoke: Vec<(String, String, mogplex_auth::Secret)>,
    /// Every MCP token removed, to revoke at its authorization server.
    pub mcp_tokens: Vec<mogplex_auth::credentials::McpTokenEntry>,
}

/// Signs every account out of `store` and removes the saved account state; provider keys stay.
/// Revocation is the caller's (best effort, after the local entries are gone).
pub fn sign_out_all(
    store: &dyn mogplex_auth::credentials::CredentialStore,
    home: &mogplex_auth::MogplexHome,
    redactor: &mut mogplex_auth::Redactor,
) -> Result<AllSignedOut, CliError> {
    let loaded = store.load()?;
    remember_doc_secrets(redactor, &loaded.doc);
    let updated = ops::logout_all(store)?;
    let notes = write_notes(store, &updated);
    mogplex_auth::hosted::HostedCache::new(home)
        .clear()
        .map_err(|e| {
            CliError::new(
                crate::exit::CONFIG,
                "could not remove the saved account state",
            )
            .cause(e.to_string())
        })?;
    let label = store_label(store);
    let names: Vec<&str> = updated
        .value
        .accounts
        .iter()
        .map(|o| o.account.name())
        .collect();
    let report = if names.is_empty() {
        format!("No stored Mogplex accounts in {label}; nothing to remove")
    } else {
        format!(
            "Signed out of {} Mogplex account{} ({}): removed from {label}",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        )
    };
    let revoke = updated
        .value
        .accounts
        .iter()
        .filter_map(|o| {
            let rt = o.refresh_token.clone()?;
            Some((o.account.name().to_owned(), o.account.issuer.clone(), rt))
        })
        .collect();
    Ok(AllSignedOut {
        accounts: names.len(),
        report,
        notes,
        revoke,
        mcp_tokens: updated.value.mcp_tokens,
    })
}

/// `mogplex logout --all`: every account signed out (each revoked at its own service, best
/// effort); provider keys stay.
pub fn logout_all(ctx: &mut Ctx) -> Result<(), CliError> {
    let done = sign_out_all(&*ctx.store.clone(), &ctx.home, &mut ctx.redactor)?;
    for n in &done.notes {
        eprintln!("{n}");
    }
    ctx.session_log();
    tracing::info!(
        event = "logout.all",
        accounts = done.accounts,
        "{}",
        done.report
    );
    println!("{}", done.report);
    for (name, issuer, rt) in &done.revoke {
        if let Some(note) = crate::signin::revoke_at(issuer, rt) {
            eprintln!("note: {name}: {note}");
        }
    }
    crate::mcp::revoke_forgotten_now(&done.mcp_tokens);
    Ok(())
}

/// `mogplex credentials migrate --to keyring|file`.
pub fn credentials(ctx: &mut Ctx, command: CredentialsCommand) -> Result<(), CliError> {
    let CredentialsCommand::Migrate { to } = command;
    let to = match to.as_str() {
        "keyring" => StoreKind::Keyring,
        _ => StoreKind::File,
    };
    let done = ops::migrate(&ctx.home, to.clone())?;
    for n in &done.notes {
        // The move itself is the report below.
        if !matches!(n, mogplex_auth::credentials::Note::MovedIntoKeyring { .. }) {
            eprintln!("{}", n.text());
        }
    }
    let path = ctx.home.auth_file();
    let dest = match to {
        StoreKind::Keyring => format!(
            "{} (auth.json keeps only references)",
            mogplex_auth::credentials::vault::keyring_name()
        ),
        _ => path.display().to_string(),
    };
    if done.already {
        println!("Nothing to move: the stored credentials are already in {dest}");
    } else {
        println!(
            "Moved {} stored secret{} from the {} store to {dest}",
            done.moved,
            if done.moved == 1 { "" } else { "s" },
            done.from
        );
    }
    let set = ctx.env.var(mogplex_auth::credentials::STORE_VAR);
    match (set.as_deref().map(str::trim), &to) {
        (Some("auto"), _)
        | (Some("keyring"), StoreKind::Keyring)
        | (Some("file"), StoreKind::File) => {}
        (None, StoreKind::File) => {}
        (Some(other), _) => eprintln!(
            "note: MOGPLEX_CREDENTIAL_STORE={other} in this shell; set MOGPLEX_CREDENTIAL_STORE={} so mogplex keeps using this store",
            to.as_str()
        ),
        (None, _) => eprintln!(
            "note: set MOGPLEX_CREDENTIAL_STORE=keyring (or auto) so mogplex keeps new credentials in the keyring; the default store is the file"
        ),
    }
    Ok(())
}
