//! `mogplex exec "<prompt>"` (and `mogplex "<prompt>"`): one non-interactive turn.
//!
//! Resolution and model selection happen before anything else is set up (no async runtime, no
//! HTTP client), so the common failures (no credential, unknown model) are reported in about the
//! time it takes to read the environment and `auth.json`.

use crate::args::ExecArgs;
use crate::ctx::Ctx;
use crate::error::CliError;
use crate::exit;
use mogplex_auth::credentials::CredentialStore;
use mogplex_auth::credentials::ops::RefreshError;
use mogplex_auth::{CredentialKind, Provider, Resolution, Secret, Source};
use std::sync::Arc;

/// The credential store, as the async parts of a turn share it.
pub type Store = Arc<dyn CredentialStore>;
use mogplex_protocol::{ChatMessage, CliModel};
use mogplex_providers::{
    ChatRequest, ErrorKind, ModelClient, ModelSource, ProviderError, Selection, StreamEvent,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};

/// Prompts larger than this are refused rather than sent.
const MAX_PROMPT: u64 = 4 * 1024 * 1024;

mod why;
pub use why::no_credential;
use why::{select_error, usable_models, with_closest_models};

/// A model named with `--model` for the Mogplex gateway must be in the account's catalog: a name
/// it does not have is a usage error naming the closest ones (the gateway would only answer "no
/// access"). An empty catalog is "no model access"; a service without a catalog endpoint is left
/// to the gateway to judge.
async fn check_account_model(
    client: &ModelClient,
    store: &Store,
    selection: &mut Selection,
    base_url: &mogplex_providers::Url,
    resolution: &Resolution,
) -> Result<(), CliError> {
    let Some(model) = selection.model.clone() else {
        return Ok(());
    };
    let catalog = match account_catalog(client, store, selection, base_url).await {
        Ok((catalog, _)) => catalog,
        Err(CatalogError::Provider(e)) if e.kind == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into_cli(selection, base_url)),
    };
    if catalog.iter().any(|m| m.slug == model) {
        return Ok(());
    }
    if catalog.is_empty() {
        return Err(provider_error(
            &empty_catalog(selection),
            selection,
            base_url,
        ));
    }
    let err = CliError::usage(format!(
        "unknown model `{model}`: your Mogplex account's catalog has no model of that name"
    ));
    Err(with_closest_models(
        err,
        &model,
        &usable_models(resolution, &catalog),
    ))
}

fn empty_catalog(selection: &Selection) -> ProviderError {
    ProviderError::new(
        ErrorKind::NoModelAccess,
        selection.provider(),
        "the account's model catalog is empty",
    )
}

/// Why the account's catalog could not be read.
enum CatalogError {
    /// Renewing the sign-in failed (already worded for the user).
    Renew(CliError),
    Provider(ProviderError),
}

impl CatalogError {
    fn into_cli(self, selection: &Selection, base_url: &mogplex_providers::Url) -> CliError {
        match self {
            CatalogError::Renew(e) => e,
            CatalogError::Provider(e) => provider_error(&e, selection, base_url),
        }
    }
}

/// The Mogplex account's catalog; a signed-in session is renewed first, and once more (and the
/// request sent again) on a 401. Also says whether that second renewal was spent.
async fn account_catalog(
    client: &ModelClient,
    store: &Store,
    selection: &mut Selection,
    base_url: &mogplex_providers::Url,
) -> Result<(Vec<CliModel>, bool), CatalogError> {
    let is_session = selection.credential.kind == CredentialKind::AccountSession;
    if is_session {
        selection.credential.secret = renew(store, &selection.credential, base_url, None)
            .await
            .map_err(CatalogError::Renew)?;
    }
    match client.account_models(selection, base_url).await {
        Ok(models) => Ok((models, false)),
        Err(e) if e.kind == ErrorKind::Unauthorized && is_session => {
            let rejected = selection.credential.secret.clone();
            selection.credential.secret =
                renew(store, &selection.credential, base_url, Some(&rejected))
                    .await
                    .map_err(CatalogError::Renew)?;
            let models = client
                .account_models(selection, base_url)
                .await
                .map_err(CatalogError::Provider)?;
            Ok((models, true))
        }
        Err(e) => Err(CatalogError::Provider(e)),
    }
}

/// Reads the prompt from the argument, or stdin for `-` or when none was given.
fn read_prompt(arg: Option<String>) -> Result<String, CliError> {
    let prompt = match arg.as_deref() {
        Some("-") | None => {
            if std::io::stdin().is_terminal() {
                return Err(CliError::usage("no prompt given")
                    .hint("pass one as an argument: mogplex exec \"explain this error\""));
            }
            let mut buf = Vec::new();
            std::io::stdin()
                .take(MAX_PROMPT + 1)
                .read_to_end(&mut buf)
                .map_err(|e| {
                    CliError::usage("cannot read the prompt from stdin").cause(e.to_string())
                })?;
            if buf.len() as u64 > MAX_PROMPT {
                return Err(CliError::usage("the prompt on stdin is over 4 MiB"));
            }
            String::from_utf8(buf)
                .map_err(|_| CliError::usage("the prompt on stdin is not UTF-8 text"))?
        }
        Some(p) => p.to_owned(),
    };
    if prompt.trim().is_empty() {
        return Err(CliError::usage("the prompt is empty").hint("mogplex exec \"your question\""));
    }
    Ok(prompt)
}

fn credential_json(sel: &Selection) -> serde_json::Value {
    let c = &sel.credential;
    let (source, name) = match &c.source {
        Source::Env { var } => ("env", (*var).to_owned()),
        Source::Helper { var } => ("helper", (*var).to_owned()),
        Source::File { path, field } => ("auth.json", format!("{} ({field})", path.display())),
        Source::Keyring { .. } => ("keyring", c.source.label()),
    };
    let kind = match c.kind {
        CredentialKind::ApiKey => "api_key",
        CredentialKind::PersonalAccessToken => "personal_access_token",
        CredentialKind::AccountSession => "account_session",
    };
    json!({"kind": kind, "source": source, "from": name, "masked": c.masked()})
}

struct Output {
    json: bool,
    /// Stdout is a terminal: control sequences in the answer are shown, not obeyed (to a pipe
    /// the bytes go as they came).
    terminal: bool,
    out: std::io::Stdout,
    last: Option<char>,
    closed: bool,
}

impl Output {
    fn event(&mut self, v: serde_json::Value) {
        if self.json {
            let line = format!("{v}\n");
            self.raw(&line);
        }
    }

    fn text(&mut self, t: &str) {
        if self.json {
            self.event(json!({"type": "delta", "text": t}));
        } else {
            let t = if self.terminal {
                mogplex_tui::sanitize(t)
            } else {
                std::borrow::Cow::Borrowed(t)
            };
            self.raw(&t);
            self.last = t.chars().last().or(self.last);
        }
    }

    fn raw(&mut self, s: &str) {
        if self.closed {
            return;
        }
        let mut lock = self.out.lock();
        if lock
            .write_all(s.as_bytes())
            .and_then(|_| lock.flush())
            .is_err()
        {
            // A closed pipe (`| head`) is not an error of ours; stop writing.
            self.closed = true;
        }
    }
}

/// One turn; with `--json`, a failure is also the last event on stdout (stderr keeps the text).
pub fn run(ctx: &mut Ctx, args: ExecArgs) -> Result<(), CliError> {
    let json_out = args.json;
    let result = turn(ctx, args);
    if let Err(e) = &result
        && json_out
    {
        // A closed stdout is not worth a second error.
        let _ = writeln!(std::io::stdout(), "{}", e.json(&ctx.redactor));
    }
    result
}

fn turn(ctx: &mut Ctx, args: ExecArgs) -> Result<(), CliError> {
    let resolution = ctx.resolve()?;
    let json_out = args.json;
    let last_picked =
        mogplex_auth::state::State::load(&ctx.home).last_picked(ctx.account_id.as_deref());
    let selection = select(&resolution, args.model.as_deref(), &last_picked)?;
    let base_url = selection
        .spec
        .base_url(&ctx.env)
        .map_err(|e| CliError::usage(e.to_string()).hint(e.hint()))?;
    for o in resolution.overrides_for(selection.provider()) {
        eprintln!("note: {}", o.notice());
    }
    // A stored sign-in or token about to end for good is said before it does.
    let expiry = ctx
        .store
        .load_metadata()
        .ok()
        .and_then(|l| crate::status::credential_expiry_notice(&l.doc, &selection.credential));
    if let Some(n) = &expiry {
        eprintln!("note: {n}");
    }
    let prompt = read_prompt(args.prompt)?;
    let allow_tool = args.allow_tool;
    let env = ctx.env;

    let log = ctx.session_log();
    for o in resolution.overrides_for(selection.provider()) {
        tracing::warn!(
            event = "credential.override",
            variable = o.var,
            "{}",
            o.notice()
        );
    }
    let mut out = Output {
        json: json_out,
        terminal: std::io::stdout().is_terminal(),
        out: std::io::stdout(),
        last: None,
        closed: false,
    };
    let provider = selection.provider();
    let redactor = log.redactor();
    let mut session = json!({
        "type": "session",
        "session_id": log.id(),
        "provider": provider.id(),
        "model": selection.model,
        "credential": credential_json(&selection),
        "account": selection.credential.account_email,
        "notices": resolution.overrides_for(provider).map(|o| o.notice()).chain(resolution.issuer_notice()).chain(expiry.clone()).collect::<Vec<_>>(),
    });
    redactor.redact_json(&mut session);
    tracing::info!(
        event = "session.start",
        data = %json!({"provider": provider.id(), "model": selection.model, "base_url": base_url.as_str(),
                       "credential": credential_json(&selection), "log": log.path()}),
        "exec with {}",
        selection.credential.describe()
    );

    let rt = crate::signin::runtime()?;
    let mut selection = selection;
    let store = ctx.store.clone();
    let mut sink = ExecSink {
        out: &mut out,
        session: &mut session,
        prompt_chars: prompt.chars().count(),
        chars: 0,
    };
    let outcome: Result<_, CliError> = rt.block_on(async {
        let client = model_client()?;
        if selection.provider() == Provider::Mogplex
            && selection.model_source == ModelSource::Session
        {
            check_account_model(&client, &store, &mut selection, &base_url, &resolution).await?;
        }
        let tools =
            crate::tools::exec_tools::connect(&client, &store, &resolution, &env, &allow_tool)
                .await?;
        let mut gate = crate::tools::exec_tools::ExecGate {
            allowed: tools.allowed.clone(),
            json: json_out,
            redactor: redactor.clone(),
        };
        let mut messages = vec![ChatMessage::user(prompt)];
        let outcome = crate::tools::tool_turn(
            &client,
            &store,
            &mut selection,
            &base_url,
            &mut messages,
            &tools.toolbox,
            &mut sink,
            &mut gate,
        )
        .await;
        drop(tools.toolbox);
        for c in tools.connections {
            if let Ok(c) = std::sync::Arc::try_unwrap(c) {
                c.close().await;
            }
        }
        outcome
    });
    let chars = sink.chars;
    let finish = outcome?.finish;
    if !json_out && out.last.is_some_and(|c| c != '\n') {
        out.raw("\n");
    }
    match finish {
        Ok(f) => {
            let usage = f.usage.as_ref().map(|u| json!({"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens}));
            out.event(json!({"type": "done", "finish_reason": f.finish_reason, "usage": usage}));
            tracing::info!(
                event = "response.done",
                data = %json!({"chars": chars, "finish_reason": f.finish_reason, "usage": usage}),
                "answer complete"
            );
            Ok(())
        }
        Err(e) => {
            let err = provider_error(&e, &selection, &base_url);
            tracing::error!(
                event = "response.error",
                data = %json!({"kind": format!("{:?}", e.kind), "status": e.status, "detail": e.message}),
                "{}",
                err.message
            );
            Err(err)
        }
    }
}

pub fn model_client() -> Result<ModelClient, CliError> {
    ModelClient::new().map_err(|e| {
        CliError::new(exit::CONFIG, "cannot set up the HTTP client")
            .cause(e)
            .hint("point SSL_CERT_FILE at a PEM bundle of certificate authorities, or unset it")
    })
}

/// Hears what a turn does, as it happens.
pub trait TurnSink: Send {
    /// The model is known (for a Mogplex account without one picked: its catalog's first).
    fn started(&mut self, model: &str);
    fn event(&mut self, ev: StreamEvent);
    /// The signed-in session was refreshed after a 401 and the request is sent again.
    fn refreshed(&mut self) {}
}

#[derive(Debug)]
pub struct TurnOutcome {
    pub model: String,
    pub finish: Result<mogplex_providers::Finish, ProviderError>,
}

/// One model turn: renews a signed-in session first, fills in the account's default model when
/// none is picked, streams the answer to `sink`, and on a 401 refreshes once and sends again
/// (nothing has streamed by then). `selection` keeps the renewed token and the model for the
/// next turn. A failure to renew is the outer error; a provider's refusal is in the outcome.
pub async fn stream_turn(
    client: &ModelClient,
    store: &Store,
    selection: &mut Selection,
    base_url: &mogplex_providers::Url,
    messages: Vec<ChatMessage>,
    tools: Vec<mogplex_protocol::Tool>,
    sink: &mut dyn TurnSink,
) -> Result<TurnOutcome, CliError> {
    let is_session = selection.credential.kind == CredentialKind::AccountSession;
    // A helper's key is asked for again at every turn: the cache gives the same one until it
    // expires, then the helper runs again (a long cockpit session outlives a short-lived key).
    if let Source::Helper { .. } = selection.credential.source
        && let Some(secret) = ask_helper(selection.provider()).await?
    {
        selection.credential.secret = secret;
    }
    let (model, mut retried) = match selection.model.clone() {
        Some(m) => {
            if is_session {
                selection.credential.secret =
                    renew(store, &selection.credential, base_url, None).await?;
            }
            (m, false)
        }
        None => {
            let (catalog, retried) = account_catalog(client, store, selection, base_url)
                .await
                .map_err(|e| e.into_cli(selection, base_url))?;
            let first = catalog.into_iter().next().map(|m| m.slug);
            let model = first
                .ok_or_else(|| provider_error(&empty_catalog(selection), selection, base_url))?;
            (model, retried)
        }
    };
    sink.started(&model);
    let mut req = ChatRequest {
        selection: selection.clone(),
        base_url: base_url.clone(),
        model: model.clone(),
        messages,
        tools,
    };
    loop {
        let finish = client.chat(&req, &mut |ev| sink.event(ev)).await;
        if let Err(e) = &finish
            && e.kind == ErrorKind::Unauthorized
            && is_session
            && !retried
        {
            retried = true;
            let rejected = req.selection.credential.secret.clone();
            req.selection.credential.secret =
                renew(store, &selection.credential, base_url, Some(&rejected)).await?;
            selection.credential.secret = req.selection.credential.secret.clone();
            sink.refreshed();
            continue;
        }
        // A helper's key refused: the helper runs again once (its cached key is dropped).
        if let Err(e) = &finish
            && e.kind == ErrorKind::Unauthorized
            && !retried
            && let Source::Helper { var } = selection.credential.source
        {
            retried = true;
            mogplex_auth::helper::invalidate(var);
            if let Some(secret) = ask_helper(selection.provider()).await? {
                selection.credential.secret = secret.clone();
                req.selection.credential.secret = secret;
                sink.refreshed();
                continue;
            }
        }
        return Ok(TurnOutcome { model, finish });
    }
}

/// The key `provider`'s helper gives now (from its cache while it lasts, else by running it, on
/// the blocking pool); `None` when its variable is gone from this process's environment (the
/// key in hand is then used).
async fn ask_helper(provider: Provider) -> Result<Option<Secret>, CliError> {
    let asked = tokio::task::spawn_blocking(move || {
        mogplex_auth::helper::key(&mogplex_auth::ProcessEnv, provider)
    })
    .await;
    match asked {
        Ok(Some(Ok(secret))) => {
            crate::log::learn(&secret);
            Ok(Some(secret))
        }
        Ok(Some(Err(h))) => Err(CliError::new(exit::FORBIDDEN, h.to_string()).hint(h.hint())),
        Ok(None) | Err(_) => Ok(None),
    }
}

struct ExecSink<'a> {
    out: &'a mut Output,
    session: &'a mut serde_json::Value,
    prompt_chars: usize,
    chars: usize,
}

impl TurnSink for ExecSink<'_> {
    fn started(&mut self, model: &str) {
        self.session["model"] = json!(model);
        self.out.event(self.session.clone());
        tracing::info!(
            event = "request.start",
            model,
            prompt_chars = self.prompt_chars,
            "sending the prompt"
        );
    }

    fn event(&mut self, ev: StreamEvent) {
        match ev {
            StreamEvent::Delta(t) => {
                self.chars += t.chars().count();
                self.out.text(&t);
            }
            StreamEvent::Frame(f) => {
                tracing::debug!(event = "stream.chunk", frame = f, "stream frame");
            }
        }
    }

    fn refreshed(&mut self) {
        tracing::info!(
            event = "session.refreshed",
            "refreshed the sign-in after a 401"
        );
    }
}

/// A current access token for the stored sign-in `credential` names (refreshing under the lock
/// when needed, at that account's own service only). A new token is taught to the session log
/// before anything could log it.
pub async fn renew(
    store: &Store,
    credential: &mogplex_auth::Credential,
    base_url: &mogplex_providers::Url,
    rejected: Option<&mogplex_auth::Secret>,
) -> Result<mogplex_auth::Secret, CliError> {
    use mogplex_auth::credentials::ops::fresh_access_token;
    let base = base_url.clone();
    let base_str = base_url.as_str().trim_end_matches('/').to_owned();
    let Some(entry) = credential.account_entry.as_deref() else {
        return Err(not_signed_in());
    };
    // The client is of this session's service; a stored sign-in of another is refused before
    // anything is sent to it.
    fresh_access_token(store, entry, rejected, |_issuer| async move {
        let http = mogplex_auth::oauth::http_client()?;
        mogplex_auth::oauth::OAuthClient::discover(http, base).await
    })
    .await
    .inspect(crate::log::learn)
    .map_err(|e| match e {
        RefreshError::NotSignedIn => not_signed_in(),
        RefreshError::SignedOut { reason } => CliError::new(
            exit::NO_CREDENTIAL,
            "your Mogplex sign-in has ended; you are signed out",
        )
        .cause(reason)
        .hint("sign in again: run `mogplex login` (or `mogplex` in a terminal and choose \"Sign in with Mogplex\")"),
        RefreshError::Transient(e) => CliError::new(
            exit::UNAVAILABLE,
            "could not renew your Mogplex sign-in; it is kept, try again shortly",
        )
        .cause(e.to_string())
        .hint(format!("check your connection to {base_str}")),
        e @ RefreshError::IssuerMismatch { .. } => {
            let hint = e.hint().unwrap_or_default();
            CliError::new(exit::NO_CREDENTIAL, e.to_string()).hint(hint)
        }
        RefreshError::Credentials(e) => e.into(),
    })
}

fn not_signed_in() -> CliError {
    CliError::new(exit::NO_CREDENTIAL, "not signed in to Mogplex")
        .hint("run `mogplex login` to sign in")
}

/// The model: `--model`, else the one last picked with `/model` for the provider, else its
/// default.
fn select(
    resolution: &Resolution,
    model: Option<&str>,
    last_picked: &BTreeMap<Provider, String>,
) -> Result<Selection, CliError> {
    mogplex_providers::select(resolution, model, last_picked)
        .map_err(|e| select_error(e, resolution))
}

/// Turns a provider failure into what the user reads, with the exit code of SPEC section 6.
pub fn provider_error(
    e: &ProviderError,
    sel: &Selection,
    base_url: &mogplex_providers::Url,
) -> CliError {
    let name = e.provider.display_name();
    let cred = &sel.credential;
    let status = e.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
    let fix_credential = match (&cred.source, cred.kind) {
        (Source::Env { var }, _) => {
            format!("check the value of {var}, or unset it to use a stored credential")
        }
        (Source::Helper { var }, _) => format!(
            "the key the credential helper in {var} gave was refused, also when run again: check the helper, or unset {var}"
        ),
        (Source::File { .. } | Source::Keyring { .. }, CredentialKind::AccountSession) => {
            "sign in again: run `mogplex` in a terminal and choose \"Sign in with Mogplex\""
                .to_owned()
        }
        (Source::File { .. } | Source::Keyring { .. }, CredentialKind::PersonalAccessToken) => {
            format!(
                "store a new personal access token with `mogplex login mogplex --with-api-key` ({})",
                crate::signin::where_to_create_a_pat(&mogplex_auth::ProcessEnv)
            )
        }
        (Source::File { .. } | Source::Keyring { .. }, CredentialKind::ApiKey) => format!(
            "store a new key with `printenv {} | mogplex login {} --with-api-key`",
            e.provider.env_var(),
            e.provider.id()
        ),
    };
    match e.kind {
        ErrorKind::NoModelAccess => {
            let site = base_url.as_str().trim_end_matches('/');
            CliError::new(
                exit::FORBIDDEN,
                "signed in to Mogplex, but this account cannot use models yet",
            )
            .cause(e.message.clone())
            .hint(format!(
                "see which models your plan includes under Available Models: {site}/web/models"
            ))
            .hint(format!(
                "add model access under Plans & Billing: {site}/plans-and-billing"
            ))
        }
        ErrorKind::Unauthorized => CliError::new(
            exit::FORBIDDEN,
            format!("{name} did not accept the {}{status}", cred.describe()),
        )
        .cause(e.message.clone())
        .hint(fix_credential),
        ErrorKind::Forbidden => CliError::new(
            exit::FORBIDDEN,
            format!("{name} refused the request{status}"),
        )
        .cause(e.message.clone())
        .hint(format!(
            "the {} is valid but may not use this model or endpoint; check its permissions",
            cred.describe()
        )),
        ErrorKind::RateLimited => {
            let wait = match &e.retry_after {
                Some(s) => format!("wait {s} seconds (Retry-After) and try again"),
                None => "wait a little and try again".to_owned(),
            };
            CliError::new(
                exit::RATE_LIMITED,
                format!("{name} is rate limiting requests{status}"),
            )
            .cause(e.message.clone())
            .hint(wait)
        }
        ErrorKind::Unavailable => {
            let hint = if e.status.is_some() {
                "the service answered but cannot serve the request now; try again in a little while"
                    .to_owned()
            } else {
                format!(
                    "check your network connection; the address comes from {} when it is set",
                    sel.spec.base_url_var
                )
            };
            CliError::new(
                exit::UNAVAILABLE,
                format!("{name} is unavailable at {base_url}{status}"),
            )
            .cause(e.message.clone())
            .hint(hint)
        }
        ErrorKind::InStream | ErrorKind::Protocol => CliError::new(
            exit::UNAVAILABLE,
            format!("the answer from {name} broke off with an error"),
        )
        .cause(e.message.clone())
        .hint("try again; if it keeps happening, the provider may be having trouble"),
        ErrorKind::NotFound => CliError::new(
            exit::FAILURE,
            format!("{name} does not know that model or endpoint{status}"),
        )
        .cause(e.message.clone())
        .hint("check the model name, or choose another with --model"),
        ErrorKind::BadRequest => {
            CliError::new(exit::FAILURE, format!("{name} refused the request{status}"))
                .cause(e.message.clone())
        }
    }
}
