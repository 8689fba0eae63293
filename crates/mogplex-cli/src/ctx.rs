//! What every command starts from: the home, the store, what is stored, and the resolution.

use crate::error::CliError;
use crate::log::SessionLog;
use mogplex_auth::{AuthStore, Env, MogplexHome, ProcessEnv, Redactor, Resolution, Secret};

#[derive(Debug)]
pub struct Ctx {
    pub env: ProcessEnv,
    pub home: MogplexHome,
    pub store: AuthStore,
    /// Redacts every secret known to this process; grows as credentials are read or stored
    /// (through [`Ctx::learn`], which teaches the session log too).
    pub redactor: Redactor,
    /// The signed-in account's id, from the last [`Ctx::resolve`].
    pub account_id: Option<String>,
}

impl Ctx {
    /// Finds the home and prints the `CODEX_HOME` deprecation warning when it applies.
    pub fn new() -> Result<Self, CliError> {
        let env = ProcessEnv;
        let home = MogplexHome::from_env(&env)?;
        if let Some(w) = home.deprecation_warning() {
            eprintln!("{w}");
        }
        let store = AuthStore::new(home.auth_file());
        let mut ctx = Self {
            env,
            home,
            store,
            redactor: Redactor::new(),
            account_id: None,
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

    /// Reads `auth.json` and resolves. A corrupt file is moved aside and reported.
    pub fn resolve(&mut self) -> Result<Resolution, CliError> {
        let loaded = self.store.load()?;
        if let Some(m) = &loaded.moved_aside {
            eprintln!("{}", m.warning());
        }
        let resolution = Resolution::resolve(&self.env, &loaded.file, self.store.path());
        self.account_id = loaded
            .file
            .mogplex
            .as_ref()
            .filter(|m| m.access_token.is_some())
            .and_then(|m| m.account.as_ref()?.id.clone());
        // Stored secrets that lost to the environment are still secrets.
        remember_file_secrets(&mut self.redactor, &loaded.file);
        for s in resolution.secrets() {
            self.learn(s);
        }
        Ok(resolution)
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
}

/// Every secret `auth.json` holds, whether or not it is in force.
pub fn file_secrets(file: &mogplex_auth::AuthFile) -> Vec<&mogplex_auth::Secret> {
    let mut out = Vec::new();
    if let Some(m) = &file.mogplex {
        out.extend(
            [&m.access_token, &m.refresh_token, &m.id_token, &m.api_key]
                .into_iter()
                .flatten(),
        );
    }
    out.extend(file.providers.values().filter_map(|e| e.api_key.as_ref()));
    out
}

/// Remembers every secret `file` holds, in `redactor` and in the session log's.
pub fn remember_file_secrets(redactor: &mut Redactor, file: &mogplex_auth::AuthFile) {
    for s in file_secrets(file) {
        redactor.add(s);
        crate::log::learn(s);
    }
}
