//! `mogplex login <provider> --with-api-key`, `mogplex logout [provider]` and `--logout`.

use crate::ctx::{Ctx, remember_doc_secrets};
use crate::error::CliError;
use mogplex_auth::credentials::{CredentialStore, ops};
use mogplex_auth::{AccountEntry, Env, Provider, Redactor, Secret};
use std::io::{IsTerminal, Read};
use zeroize::Zeroize;

/// Keys longer than this are not keys.
const MAX_KEY_INPUT: u64 = 64 * 1024;

fn read_key(env: &dyn Env, provider: Provider) -> Result<Secret, CliError> {
    let example = format!(
        "printenv {} | mogplex login {} --with-api-key",
        provider.env_var(),
        provider.id()
    );
    if std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "--with-api-key reads the key from stdin, and stdin is a terminal",
        )
        .hint(format!(
            "pipe the key in, so it stays out of your shell history: `{example}`"
        )));
    }
    // Sized up front so the key is never left behind in a reallocated buffer.
    let mut buf = Vec::with_capacity(MAX_KEY_INPUT as usize + 1);
    std::io::stdin()
        .take(MAX_KEY_INPUT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| CliError::usage("cannot read the key from stdin").cause(e.to_string()))?;
    if buf.len() as u64 > MAX_KEY_INPUT {
        return Err(
            CliError::usage("the input on stdin is over 64 KiB, which is not an API key")
                .hint(format!("pipe only the key: `{example}`")),
        );
    }
    let mut text = match String::from_utf8(buf) {
        Ok(t) => t,
        Err(e) => {
            e.into_bytes().zeroize();
            return Err(CliError::usage("the key on stdin is not UTF-8 text"));
        }
    };
    let key = Secret::new(text.trim());
    text.zeroize();
    if key.is_empty() {
        return Err(
            CliError::usage("no key on stdin").hint(format!("pipe the key in: `{example}`"))
        );
    }
    if key
        .expose()
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(
            CliError::usage("the key contains spaces or control characters")
                .hint("pipe exactly one key, with nothing else on the line"),
        );
    }
    if provider == Provider::Mogplex && !key.expose().starts_with("mog_") {
        return Err(
            CliError::usage("a Mogplex personal access token starts with `mog_`")
                .hint(crate::signin::where_to_create_a_pat(env))
                .hint("or sign in instead: `mogplex login mogplex`"),
        );
    }
    Ok(key)
}

/// `mogplex login …`: what to do follows from the arguments, or from a choice on a terminal.
pub fn login(ctx: &mut Ctx, args: crate::args::LoginArgs) -> Result<(), CliError> {
    use crate::signin::login as sign_in;
    use mogplex_auth::signin::Method;
    match (args.provider, args.with_api_key, args.device) {
        (Some(p), true, _) => login_with_api_key(ctx, p),
        (None, true, _) => Err(
            CliError::usage("--with-api-key needs the provider it is for")
                .hint("for example: printenv OPENAI_API_KEY | mogplex login openai --with-api-key"),
        ),
        (Some(Provider::Mogplex) | None, false, true) => sign_in(ctx, Method::Device),
        (Some(Provider::Mogplex), false, false) => sign_in(ctx, Method::Auto),
        (Some(p), false, _) => Err(CliError::usage(format!(
            "{} keys are stored with --with-api-key",
            p.display_name()
        ))
        .hint(format!(
            "printenv {} | mogplex login {} --with-api-key",
            p.env_var(),
            p.id()
        ))),
        (None, false, false) => choose(ctx),
    }
}

/// The login chooser, on a terminal.
fn choose(ctx: &mut Ctx) -> Result<(), CliError> {
    use crate::signin::login as sign_in;
    use mogplex_auth::signin::Method;
    use std::io::Write;
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage("`mogplex login` without a provider asks how to sign in, and stdin is not a terminal")
            .hint("use `mogplex login mogplex` (browser), `mogplex login --device`, or `printenv OPENAI_API_KEY | mogplex login openai --with-api-key`"));
    }
    eprintln!(
        "How do you want to sign in?\n  1) Sign in with Mogplex in a browser\n  2) Sign in with Mogplex using a device code\n  3) Use a model provider's API key"
    );
    eprint!("Choose 1, 2 or 3: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::usage("cannot read the choice").cause(e.to_string()))?;
    match line.trim() {
        "1" | "" => sign_in(ctx, Method::Browser),
        "2" => sign_in(ctx, Method::Device),
        "3" => {
            eprint!("Provider ({}): ", Provider::names());
            let _ = std::io::stderr().flush();
            let mut name = String::new();
            std::io::stdin()
                .read_line(&mut name)
                .map_err(|e| CliError::usage("cannot read the provider").cause(e.to_string()))?;
            let provider: Provider = name.trim().parse().map_err(|_| {
                CliError::usage(format!("unknown provider `{}`", name.trim()))
                    .hint(format!("use one of: {}", Provider::names()))
            })?;
            eprintln!(
                "Store the key without showing it: printenv {} | mogplex login {} --with-api-key",
                provider.env_var(),
                provider.id()
            );
            Ok(())
        }
        other => Err(
            CliError::usage(format!("`{other}` is not one of the choices"))
                .hint("run `mogplex login` again and type 1, 2 or 3"),
        ),
    }
}

/// What a write to the store should say besides its result: a corrupt file moved aside, keyring
/// items found gone or changed, and (with `auto`) that the keyring was not available.
pub fn write_notes<T>(
    store: &dyn CredentialStore,
    updated: &mogplex_auth::credentials::Updated<T>,
) -> Vec<String> {
    let mut out: Vec<String> = updated.moved_aside.iter().map(|m| m.warning()).collect();
    out.extend(updated.notes.iter().map(|n| n.text()));
    out.extend(store.info().fallback_note());
    out
}

pub fn login_with_api_key(ctx: &mut Ctx, provider: Provider) -> Result<(), CliError> {
    let key = read_key(&ctx.env, provider)?;
    ctx.learn(&key);
    let masked = key.masked();
    let store = ctx.store.clone();
    let mut replaced_session = false;
    let notes = if provider == Provider::Mogplex {
        let entry = AccountEntry::pat(&ctx.issuer(), key.clone());
        let updated = ops::store_sign_in(&*store, entry)?;
        replaced_session = updated.value.accounts_on_issuer > 1;
        ctx.remember_choice(provider, Some(&updated.value.entry_id), "key");
        write_notes(&*store, &updated)
    } else {
        let updated = ops::store_provider_key(&*store, provider.id(), key.clone())?;
        ctx.remember_choice(provider, None, "key");
        write_notes(&*store, &updated)
    };
    for n in &notes {
        eprintln!("{n}");
    }
    let what = if provider == Provider::Mogplex {
        "Mogplex personal access token".to_owned()
    } else {
        format!("{} API key", provider.display_name())
    };
    println!("Stored the {what} {masked} in {}", store.info().label());
    if replaced_session {
        eprintln!(
            "note: it is now the default Mogplex credential; the sign-ins stored beside it are kept (`mogplex account list`)"
        );
    }
    if ctx.env.var(provider.env_var()).is_some() {
        eprintln!(
            "note: {} is set in this shell and takes precedence over the stored key; unset it to use the stored one",
            provider.env_var()
        );
    }
    ctx.session_log();
    tracing::info!(
        event = "login.api_key",
        provider = provider.id(),
        masked,
        "stored the {what}"
    );
    Ok(())
}

/// What removing a stored credential did.
#[derive(Debug)]
pub struct Removal {
    pub provider: Provider,
    /// `Some(true)`: a Mogplex sign-in; `Some(false)`: a personal access token or a provider key;
    /// `None`: nothing was stored.
    pub removed: Option<bool>,
    /// The account signed out (its email, else its entry id).
    pub account: Option<String>,
    /// Provider keys left in place (after removing the Mogplex credential).
    pub kept: Vec<String>,
    /// Other accounts still stored (after removing one): their names.
    pub others: Vec<String>,
    /// The account services whose sign-ins were left alone because this session talks to
    /// another one.
    pub other_issuers: Vec<String>,
    /// The removed sign-in's refresh token, to revoke on the server.
    pub refresh: Option<Secret>,
    /// The MCP tokens obtained for the removed account, forgotten with it: to revoke at their
    /// authorization servers.
    pub mcp_tokens: Vec<mogplex_auth::credentials::McpTokenEntry>,
    /// Where it was stored: the `auth.json` path, or the keyring.
    pub path: String,
    /// Warnings and notes from the store (a corrupt `auth.json` moved aside, keyring items
    /// found gone): the caller says them (the cockpit must not print over its screen).
    pub moved_aside: Option<String>,
}

impl Removal {
    /// The one-line report.
    pub fn report(&self) -> String {
        let path = &self.path;
        match (self.provider, self.removed) {
            (Provider::Mogplex, Some(true)) => match &self.account {
                Some(who) => format!(
                    "Signed out of Mogplex as {who}: removed the stored sign-in from {path}"
                ),
                None => format!("Signed out of Mogplex: removed the stored sign-in from {path}"),
            },
            (Provider::Mogplex, Some(false)) => {
                format!("Removed the stored Mogplex personal access token from {path}")
            }
            (Provider::Mogplex, None) if !self.other_issuers.is_empty() => format!(
                "No stored Mogplex sign-in for this account service in {path}; nothing to remove"
            ),
            (Provider::Mogplex, None) => {
                format!("No stored Mogplex sign-in in {path}; nothing to remove")
            }
            (p, Some(_)) => format!(
                "Removed the stored {} API key from {path}",
                p.display_name()
            ),
            (p, None) => format!(
                "No stored {} API key in {path}; nothing to remove",
                p.display_name()
            ),
        }
    }

    /// What else the user should know: keys kept, accounts kept, and a variable that will still
    /// supply the credential in the next session.
    pub fn notes(&self, env: &dyn Env, kept_hint: &str) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.mcp_tokens.is_empty() {
            let names: Vec<&str> = self.mcp_tokens.iter().map(|m| m.server.as_str()).collect();
            notes.push(format!(
                "also removed the sign-ins to its MCP servers ({})",
                names.join(", ")
            ));
        }
        if !self.other_issuers.is_empty() {
            notes.push(format!(
                "the sign-ins stored for {} are kept (this session's account service is another one)",
                self.other_issuers.join(", ")
            ));
        }
        if !self.others.is_empty() && self.removed.is_some() {
            notes.push(format!(
                "still signed in on this machine as {}",
                self.others.join(", ")
            ));
        }
        if !self.kept.is_empty() && self.removed.is_some() {
            notes.push(format!(
                "stored provider keys are kept ({}); {kept_hint}",
                self.kept.join(", ")
            ));
        }
        if env.var(self.provider.env_var()).is_some() {
            notes.push(format!(
                "{} is still set in this shell, so the next session still uses it; unset it to stop",
                self.provider.env_var()
            ));
        }
        notes
    }
}

/// Removes the stored credential for `provider`: for Mogplex, the account this session uses
/// (`account`: an entry id `--account` or `MOGPLEX_ACCOUNT` chose) of the service at `issuer`,
/// never another service's; else the provider's key. Every secret the store held is added to
/// `redactor` first.
pub fn take_stored(
    store: &dyn CredentialStore,
    provider: Provider,
    issuer: &str,
    account: Option<&str>,
    redactor: &mut Redactor,
) -> Result<Removal, CliError> {
    let loaded = store.load()?;
    remember_doc_secrets(redactor, &loaded.doc);
    let mut removal = Removal {
        provider,
        removed: None,
        account: None,
        kept: Vec::new(),
        others: Vec::new(),
        other_issuers: Vec::new(),
        refresh: None,
        mcp_tokens: Vec::new(),
        path: store_label(store),
        moved_aside: None,
    };
    let notes = if provider == Provider::Mogplex {
        let chosen = match account {
            Some(q) => Some(crate::ctx::choose_account(&loaded.doc, q, issuer)?.id),
            None => None,
        };
        let Some(entry) = ops::active_account(&loaded.doc, issuer, chosen.as_deref()) else {
            let mut others: Vec<String> = loaded
                .doc
                .accounts
                .iter()
                .map(|a| a.issuer.trim_end_matches('/').to_owned())
                .collect();
            others.dedup();
            removal.other_issuers = others;
            return Ok(removal);
        };
        let updated = ops::logout(store, &entry.id.clone())?;
        let notes = write_notes(store, &updated);
        if let Some(out) = updated.value {
            removal.removed =
                Some(out.account.kind == mogplex_auth::MogplexCredentialKind::Session);
            removal.account = Some(out.account.name().to_owned());
            removal.refresh = out.refresh_token;
            removal.mcp_tokens = out.mcp_tokens;
        }
        let after = store.load_metadata()?;
        removal.kept = after
            .doc
            .providers
            .iter()
            .filter(|(_, p)| p.api_key.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        removal.others = ops::list_accounts(&after.doc)
            .iter()
            .filter(|a| a.issuer.trim_end_matches('/') == issuer.trim_end_matches('/'))
            .map(|a| a.name().to_owned())
            .collect();
        notes
    } else {
        let updated = ops::remove_provider_key(store, provider.id())?;
        removal.removed = updated.value.then_some(false);
        write_notes(store, &updated)
    };
    if !notes.is_empty() {
        removal.moved_aside = Some(notes.join("\n"));
    }
    Ok(removal)
}

/// Where credentials are stored, as reports name it: the `auth.json` path, or the keyring.
pub fn store_label(store: &dyn CredentialStore) -> String {
    match store.info().kind {
        mogplex_auth::credentials::StoreKind::Keyring => {
            mogplex_auth::credentials::vault::keyring_name().to_owned()
        }
        _ => store.path().display().to_string(),
    }
}

/// `mogplex logout [provider]` and `--logout`. `to_stderr` sends the report to stderr (for
/// `--logout`, whose stdout may carry an answer).
pub fn logout(ctx: &mut Ctx, provider: Provider, to_stderr: bool) -> Result<(), CliError> {
    let issuer = ctx.issuer();
    let removal = take_stored(
        &*ctx.store.clone(),
        provider,
        &issuer,
        ctx.account.clone().as_deref(),
        &mut ctx.redactor,
    )?;
    if let Some(w) = &removal.moved_aside {
        eprintln!("{w}");
    }
    if provider == Provider::Mogplex && removal.removed.is_some() {
        // The account's synced catalog and MCP definitions go with the sign-in.
        mogplex_auth::hosted::HostedCache::new(&ctx.home)
            .clear()
            .map_err(|e| {
                CliError::new(
                    crate::exit::CONFIG,
                    "could not remove the saved account state",
                )
                .cause(e.to_string())
                .hint(format!(
                    "remove {} by hand",
                    ctx.home.path().join("hosted").display()
                ))
            })?;
    }
    ctx.session_log();
    tracing::info!(
        event = "logout",
        provider = provider.id(),
        removed = removal.removed.is_some(),
        "{}",
        removal.report()
    );
    // The local entry is gone already; now tell the server, best effort.
    let revocation = removal
        .refresh
        .as_ref()
        .and_then(|r| crate::signin::revoke_best_effort(&ctx.env, r));
    let report = removal.report();
    if to_stderr {
        eprintln!("{report}");
    } else {
        println!("{report}");
    }
    if let Some(note) = revocation {
        eprintln!("note: {note}");
    }
    crate::mcp::revoke_forgotten_now(&removal.mcp_tokens);
    for note in removal.notes(&ctx.env, "remove one with `mogplex logout <provider>`") {
        eprintln!("note: {note}");
    }
    Ok(())
}
