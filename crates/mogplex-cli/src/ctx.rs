//! What every command starts from: the home, the credential store (`MOGPLEX_CREDENTIAL_STORE`),
//! what is stored, and the resolution.

use crate::error::CliError;
use crate::exit;
use crate::log::SessionLog;
use mogplex_auth::credentials::ops::{self, AccountMatch, AccountSummary};
use mogplex_auth::credentials::{CredentialStore, Document, Loaded, open_store};
use mogplex_auth::resolve::StoredView;
use mogplex_auth::{Env, MogplexHome, ProcessEnv, Redactor, Resolution, Secret};
use std::sync::Arc;

/// The variable that chooses the account for one shell.
pub const ACCOUNT_VAR: &str = "MOGPLEX_ACCOUNT";

#[derive(Debug)]
pub struct Ctx {
    pub env: ProcessEnv,
    pub home: MogplexHome,
    pub store: Arc<dyn CredentialStore>,
    /// Redacts every secret known to this process; grows as credentials are read or stored
    /// (through [`Ctx::learn`], which teaches the session log too).
    pub redactor: Redactor,
    /// The signed-in account's id, from the last [`Ctx::resolve`].
    pub account_id: Option<String>,
    /// The account `--account` (else `MOGPLEX_ACCOUNT`) names for this process: an email, an
    /// account id or an entry id.
    pub account: Option<String>,
}

impl Ctx {
    /// Finds the home (printing the `CODEX_HOME` deprecation warning when it applies) and opens
    /// the credential store `MOGPLEX_CREDENTIAL_STORE` chooses: `keyring` fails here when no
    /// keyring answers (within 3 s, nothing written anywhere).
    pub fn new() -> Result<Self, CliError> {
        Self::open(false)
    }

    /// [`Ctx::new`] for a command that reports rather than acts (`mogplex status`): a keyring
    /// that does not answer is reported by the store's reads instead of failing here.
    pub fn for_report() -> Result<Self, CliError> {
        Self::open(true)
    }

    fn open(tolerate_keyring: bool) -> Result<Self, CliError> {
        let env = ProcessEnv;
        let home = MogplexHome::from_env(&env)?;
        if let Some(w) = home.deprecation_warning() {
            eprintln!("{w}");
        }
        let store = if tolerate_keyring {
            mogplex_auth::credentials::open_store_or_unavailable(&env, &home)?
        } else {
            open_store(&env, &home)?
        };
        let mut ctx = Self {
            env,
            home,
            store,
            redactor: Redactor::new(),
            account_id: None,
            account: env.var(ACCOUNT_VAR),
        };
        // Every variable that can carry a credential is redacted from output, whichever wins.
        for p in mogplex_auth::Provider::ALL {
            if let Some(v) = env.var(p.env_var()) {
                ctx.learn(&Secret::new(v));
            }
        }
        Ok(ctx)
    }

    /// A secret this process now knows: redacted from error text and from every later log line.
    /// Call it as soon as the value is in hand.
    pub fn learn(&mut self, secret: &Secret) {
        self.redactor.add(secret);
        crate::log::learn(secret);
    }

    /// Reads the store and resolves. A corrupt file is moved aside and reported, and so is a
    /// keyring item found gone or changed.
    pub fn resolve(&mut self) -> Result<Resolution, CliError> {
        let resolved = resolve_stored(
            &self.env,
            &*self.store,
            self.account.as_deref(),
            mogplex_auth::state::State::load(&self.home).last_choice,
            |s| self.redactor.add(s),
        )?;
        for w in resolved.warnings() {
            eprintln!("{w}");
        }
        // A helper's stderr may quote what it was given: redacted like everything printed.
        for f in &resolved.resolution.helper_failures {
            eprintln!(
                "warning: {}\nhint: {}",
                self.redactor.redact_str(&f.to_string()),
                f.hint()
            );
        }
        // With nothing else in force, the no-credential error says it instead.
        if let Some(n) = resolved.resolution.issuer_notice()
            && !resolved.resolution.is_empty()
        {
            eprintln!("note: {n}");
        }
        self.account_id = resolved.account_id();
        for s in resolved.resolution.secrets() {
            self.learn(s);
        }
        Ok(resolved.resolution)
    }

    /// This process's session log, started (and the `tracing` layer installed) on the first
    /// call. Call it before the first event a command logs: events before it go nowhere.
    pub fn session_log(&self) -> SessionLog {
        let debug = self
            .env
            .var("MOGPLEX_DEBUG")
            .is_some_and(|v| v != "0" && v != "false");
        SessionLog::start(&self.home, debug)
    }

    /// Remembers in `state.json` that the user just chose this credential (it is then the
    /// stored one used); a failure is said, and stops nothing.
    pub fn remember_choice(
        &self,
        provider: mogplex_auth::Provider,
        account: Option<&str>,
        how: &str,
    ) {
        remember_choice(&self.home, provider, account, how).unwrap_or_else(|w| eprintln!("{w}"));
    }

    /// The account service this process talks to, as an issuer (see [`session_issuer`]).
    pub fn issuer(&self) -> String {
        session_issuer(&self.env)
    }
}

/// The account service of this session as an issuer: `MOGPLEX_URL` (checked), else the hosted
/// service. An address that does not check out matches no stored account (the error about it
/// comes when something is sent there).
pub fn session_issuer(env: &dyn Env) -> String {
    match crate::signin::account_base(env) {
        Ok(base) => crate::signin::base_label(&base),
        Err(_) => env
            .var("MOGPLEX_URL")
            .unwrap_or_else(|| mogplex_protocol::DEFAULT_BASE_URL.to_owned()),
    }
}

/// What a read of the store resolved to.
#[derive(Debug)]
pub struct Resolved {
    pub resolution: Resolution,
    pub loaded: Loaded,
    /// The Mogplex account this session uses (of its own service), when one is stored.
    pub account: Option<AccountSummary>,
}

impl Resolved {
    /// What the read found that the user must hear: a corrupt file moved aside, keyring items
    /// gone or changed.
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .loaded
            .moved_aside
            .iter()
            .map(|m| m.warning())
            .collect();
        out.extend(self.loaded.notes.iter().map(|n| n.text()));
        out
    }

    /// The signed-in account's id (what a remembered model is kept under).
    pub fn account_id(&self) -> Option<String> {
        self.account
            .as_ref()
            .filter(|a| a.kind == mogplex_auth::MogplexCredentialKind::Session)
            .and_then(|a| a.account_id.clone())
    }
}

/// Reads `store`, teaches `learn` every stored secret (those that lose to the environment are
/// still secrets), and resolves against `env`. `account` is what `--account` or
/// `MOGPLEX_ACCOUNT` named: one that matches no account of this session's service is a
/// no-credential error listing the stored accounts (emails, never tokens).
pub fn resolve_stored(
    env: &dyn Env,
    store: &dyn CredentialStore,
    account: Option<&str>,
    last_choice: Option<mogplex_auth::state::Choice>,
    mut learn: impl FnMut(&Secret),
) -> Result<Resolved, CliError> {
    let loaded = store.load()?;
    for s in doc_secrets(&loaded.doc) {
        learn(s);
        crate::log::learn(s);
    }
    let issuer = session_issuer(env);
    let chosen = match account.map(str::trim).filter(|a| !a.is_empty()) {
        Some(q) => Some(choose_account(&loaded.doc, q, &issuer)?.id),
        None => None,
    };
    let resolution = Resolution::resolve(
        env,
        StoredView {
            doc: &loaded.doc,
            path: store.path(),
            issuer: &issuer,
            account: chosen.as_deref(),
            last_choice: last_choice.as_ref(),
        },
    );
    let account = ops::active_account(&loaded.doc, &issuer, chosen.as_deref())
        .map(|a| ops::summarize(&loaded.doc, a));
    Ok(Resolved {
        resolution,
        loaded,
        account,
    })
}

/// The stored account `query` names among those of `issuer`, or the error that lists them.
pub fn choose_account(
    doc: &Document,
    query: &str,
    issuer: &str,
) -> Result<AccountSummary, CliError> {
    let names = |list: &[AccountSummary]| {
        list.iter()
            .map(|a| a.name().to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match ops::find_account(doc, query, Some(issuer)) {
        AccountMatch::One(a) => Ok(a),
        AccountMatch::None { known } => {
            let err = CliError::new(
                exit::NO_CREDENTIAL,
                format!("no stored Mogplex account for {issuer} matches `{query}`"),
            );
            Err(if known.is_empty() {
                err.hint(format!(
                    "no account of {issuer} is stored; sign in with `mogplex login`, or unset {ACCOUNT_VAR}"
                ))
            } else {
                err.hint(format!("stored accounts: {}", names(&known)))
                    .hint(format!("name one of them with --account or {ACCOUNT_VAR}"))
            })
        }
        AccountMatch::OtherIssuer { matches } => Err(CliError::new(
            exit::NO_CREDENTIAL,
            format!(
                "`{query}` is signed in to {}, not to {issuer} (MOGPLEX_URL)",
                matches
                    .iter()
                    .map(|a| a.issuer.trim_end_matches('/').to_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .hint("set MOGPLEX_URL to that service to use this account, or sign in to this one with `mogplex login`")),
        AccountMatch::Ambiguous { matches } => Err(CliError::usage(format!(
            "`{query}` matches several stored accounts: {}",
            matches
                .iter()
                .map(|a| format!("{} ({})", a.name(), a.id))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .hint("name one by the id in parentheses")),
    }
}

/// Every secret value the document holds, whether or not it is in force.
pub fn doc_secrets(doc: &Document) -> Vec<&Secret> {
    doc.slots()
        .into_iter()
        .filter_map(|(_, s)| s.value())
        .collect()
}

/// Remembers every secret `doc` holds, in `redactor` and in the session log's.
pub fn remember_doc_secrets(redactor: &mut Redactor, doc: &Document) {
    for s in doc_secrets(doc) {
        redactor.add(s);
        crate::log::learn(s);
    }
}

/// [`Ctx::remember_choice`] for any home; the warning to show when it could not be written.
pub fn remember_choice(
    home: &MogplexHome,
    provider: mogplex_auth::Provider,
    account: Option<&str>,
    how: &str,
) -> Result<(), String> {
    use mogplex_auth::state::{Choice, remember_choice};
    remember_choice(home, Choice::new(provider, account, how)).map_err(|e| {
        format!(
            "warning: could not remember this choice in {} ({e}); the next session may use another stored credential",
            home.state_file().display()
        )
    })
}
