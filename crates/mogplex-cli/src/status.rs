//! `mogplex status` (also `mogplex auth status`): what a session started here would use, and
//! whether it works, without needing it to.
//!
//! Every credential that resolves (in precedence order, with its source and masked value), what
//! the environment overrides, the Mogplex account in use and the user's last choice, expiry of
//! the access token, the refresh token's age and a stored personal access token's expiry, and
//! the Mogplex credential checked online within 5 seconds; and the MCP sign-ins (see [`mcp`]). The text and the `--json` document
//! are built from one [`Report`]; the JSON schema is documented in `docs/configuration.md`
//! ("`mogplex status --json`") and is an interface: fields are only ever added.
//!
//! Exit codes: 0 the active credential is usable, 64 there is none, 65 it was rejected, 69 it
//! could not be checked. Nothing here prints a secret: values are masked, and the output goes
//! through the session's redactor besides.

mod mcp;

use crate::ctx::{ACCOUNT_VAR, Ctx};
use crate::error::CliError;
use crate::exit;
use mogplex_auth::credentials::document::AccountEntry;
use mogplex_auth::resolve::OverrideReason;
use mogplex_auth::state::State;
use mogplex_auth::{Credential, CredentialKind, Provider, Source};
use serde_json::{Value, json};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The bound on the online check, connection and answer together.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A sign-in that cannot be renewed, or a personal access token, that ends within this is
/// announced.
pub const EXPIRY_WARNING: time::Duration = time::Duration::days(3);

/// The version of the `--json` document.
pub const SCHEMA: u32 = 1;

/// What the online check of the Mogplex credential found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The service accepted it, for this account.
    Valid { email: Option<String> },
    /// The service rejected it (revoked, expired beyond renewal, unknown).
    Rejected { reason: String },
    /// It could not be asked (offline, down, timed out, misconfigured address).
    NotChecked { reason: String },
}

impl Check {
    fn status(&self) -> &'static str {
        match self {
            Check::Valid { .. } => "valid",
            Check::Rejected { .. } => "rejected",
            Check::NotChecked { .. } => "not_checked",
        }
    }

    fn text(&self) -> String {
        match self {
            Check::Valid { email: Some(e) } => format!("valid (the service knows it as {e})"),
            Check::Valid { email: None } => "valid".to_owned(),
            Check::Rejected { reason } => format!("rejected: {reason}"),
            Check::NotChecked { reason } => format!("not checked: {reason}"),
        }
    }

    fn json(&self) -> Value {
        let mut v = json!({"status": self.status()});
        match self {
            Check::Valid { email } => v["email"] = json!(email),
            Check::Rejected { reason } | Check::NotChecked { reason } => {
                v["reason"] = json!(reason)
            }
        }
        v
    }
}

/// Times of a stored Mogplex credential (none of them secret).
#[derive(Debug, Clone, Default)]
struct Times {
    /// The access token's (or a personal access token's) expiry.
    expires_at: Option<OffsetDateTime>,
    /// When the tokens were obtained (the refresh token's age counts from here).
    obtained_at: Option<OffsetDateTime>,
    has_refresh_token: bool,
}

fn parse_time(s: Option<&str>) -> Option<OffsetDateTime> {
    s.and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

fn format_time(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// `in 59 min`, `3 h ago`: rough, for people.
fn relative(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let d = t - now;
    let secs = d.whole_seconds().unsigned_abs();
    let amount = match secs {
        0..60 => format!("{secs} s"),
        60..7200 => format!("{} min", secs / 60),
        7200..172_800 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    };
    if d.is_negative() {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

impl Times {
    fn of(entry: &AccountEntry) -> Self {
        Self {
            expires_at: parse_time(entry.expires_at.as_deref()),
            obtained_at: parse_time(entry.obtained_at.as_deref()),
            has_refresh_token: entry.refresh_token.is_some(),
        }
    }
}

/// The expiry notice for a stored Mogplex credential of `kind`, when it ends within
/// [`EXPIRY_WARNING`] and nothing will renew it: a sign-in without a refresh token, or a
/// personal access token. Shared by `status`, `exec` and the cockpit's header.
pub fn expiry_notice(
    kind: CredentialKind,
    expires_at: Option<&str>,
    has_refresh_token: bool,
    now: OffsetDateTime,
) -> Option<String> {
    let at = parse_time(expires_at)?;
    if at - now > EXPIRY_WARNING {
        return None;
    }
    let when = if at <= now {
        format!("ended {} ({})", relative(at, now), format_time(at))
    } else {
        format!("ends {} ({})", relative(at, now), format_time(at))
    };
    match kind {
        CredentialKind::AccountSession if !has_refresh_token => Some(format!(
            "your Mogplex sign-in cannot be renewed (no refresh token) and {when}; sign in again with `mogplex login`"
        )),
        CredentialKind::PersonalAccessToken => Some(format!(
            "the stored Mogplex personal access token {when}; create a new one on the account service and store it with `mogplex login mogplex --with-api-key`"
        )),
        _ => None,
    }
}

/// [`expiry_notice`] for a resolved credential, from the stored document `doc` (metadata is
/// enough: only times are read).
pub fn credential_expiry_notice(
    doc: &mogplex_auth::credentials::Document,
    c: &Credential,
) -> Option<String> {
    let e = doc.account(c.account_entry.as_deref()?)?;
    expiry_notice(
        c.kind,
        e.expires_at.as_deref(),
        e.refresh_token.is_some(),
        OffsetDateTime::now_utc(),
    )
}

/// One credential as status shows it.
#[derive(Debug, Clone)]
struct Row {
    cred: Credential,
    active: bool,
    times: Option<Times>,
    /// Stored credentials this one overrides (notices).
    overrides: Vec<String>,
}

/// Everything `mogplex status` says.
#[derive(Debug)]
pub struct Report {
    rows: Vec<Row>,
    overrides: Vec<String>,
    notices: Vec<String>,
    warnings: Vec<String>,
    account: Option<Value>,
    account_text: Option<String>,
    /// Every stored Mogplex account (of every service), never a token.
    accounts: Vec<Value>,
    accounts_text: Vec<String>,
    /// The stored MCP sign-ins, never a token.
    mcp_signins: Vec<Value>,
    mcp_signins_text: Vec<String>,
    choice: Option<Value>,
    choice_text: Option<String>,
    check: Option<Check>,
    store: Value,
    /// The chosen store could not be opened (the keyring did not answer).
    store_unavailable: bool,
    store_text: String,
    issuer: String,
    home: String,
    now: OffsetDateTime,
}

impl Report {
    /// The exit code: 0 usable, 64 none, 65 rejected, 69 not checked.
    pub fn exit_code(&self) -> u8 {
        let Some(active) = self.rows.iter().find(|r| r.active) else {
            // Nothing in force, but the store could not be read: it may hold one.
            return if self.store_unavailable {
                exit::UNAVAILABLE
            } else {
                exit::NO_CREDENTIAL
            };
        };
        if active.cred.provider != Provider::Mogplex {
            return 0;
        }
        match &self.check {
            Some(Check::Valid { .. }) | None => 0,
            Some(Check::Rejected { .. }) => exit::FORBIDDEN,
            Some(Check::NotChecked { .. }) => exit::UNAVAILABLE,
        }
    }

    fn state(&self) -> &'static str {
        match self.exit_code() {
            0 => "usable",
            exit::NO_CREDENTIAL => "none",
            exit::FORBIDDEN => "rejected",
            _ => "not_checked",
        }
    }

    pub fn json(&self) -> Value {
        let creds: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let c = &r.cred;
                let source = match &c.source {
                    Source::Env { var } => json!({"type": "env", "var": var}),
                    Source::Helper { var } => json!({"type": "helper", "var": var}),
                    Source::File { path, field } => {
                        json!({"type": "file", "path": path.display().to_string(), "field": field})
                    }
                    Source::Keyring { path, field } => json!({
                        "type": "keyring", "keyring": mogplex_auth::credentials::vault::keyring_name(),
                        "path": path.display().to_string(), "field": field
                    }),
                };
                let t = r.times.clone().unwrap_or_default();
                let (access_exp, pat_exp) = match c.kind {
                    CredentialKind::AccountSession => (t.expires_at.map(format_time), None),
                    CredentialKind::PersonalAccessToken => (None, t.expires_at.map(format_time)),
                    CredentialKind::ApiKey => (None, None),
                };
                let refresh_age = (c.kind == CredentialKind::AccountSession && t.has_refresh_token)
                    .then_some(t.obtained_at)
                    .flatten()
                    .map(|o| (self.now - o).whole_seconds().max(0));
                json!({
                    "provider": c.provider.id(),
                    "kind": kind_id(c.kind),
                    "source": source,
                    "label": c.source.label(),
                    "masked": c.masked(),
                    "active": r.active,
                    "account_email": c.account_email,
                    "account_entry": c.account_entry,
                    "access_token_expires_at": access_exp,
                    "has_refresh_token": (c.kind == CredentialKind::AccountSession).then_some(t.has_refresh_token),
                    "refresh_token_age_seconds": refresh_age,
                    "token_expires_at": pat_exp,
                    "overrides": r.overrides,
                })
            })
            .collect();
        json!({
            "schema": SCHEMA,
            "state": self.state(),
            "exit_code": self.exit_code(),
            "active": self.rows.iter().position(|r| r.active),
            "credentials": creds,
            "overrides": self.overrides,
            "account": self.account,
            "accounts": self.accounts,
            "mcp_signins": self.mcp_signins,
            "choice": self.choice,
            "check": self.check.as_ref().map(Check::json),
            "notices": self.notices,
            "warnings": self.warnings,
            "store": self.store,
            "issuer": self.issuer,
            "home": self.home,
        })
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        match self.rows.iter().find(|r| r.active) {
            Some(r) => line(format!("In use: {}", r.cred.describe())),
            None => {
                line("In use: nothing (no credential resolves)".to_owned());
                line("  to sign in, run `mogplex login` (or `mogplex` in a terminal and choose Sign in with Mogplex), or set MOGPLEX_API_KEY or a provider key such as OPENAI_API_KEY for this shell".to_owned());
            }
        }
        if let Some(c) = &self.check {
            line(format!("Mogplex sign-in check: {}", c.text()));
        }
        if !self.rows.is_empty() {
            line("Credentials, in precedence order:".to_owned());
        }
        for (i, r) in self.rows.iter().enumerate() {
            let mut s = format!("  {}. {}", i + 1, r.cred.describe());
            if r.active {
                s.push_str(" (in use)");
            }
            line(s);
            if let Some(t) = &r.times {
                let mut details = Vec::new();
                match (r.cred.kind, t.expires_at) {
                    (CredentialKind::AccountSession, Some(at)) => details.push(format!(
                        "access token {} {} ({})",
                        if at <= self.now { "expired" } else { "expires" },
                        relative(at, self.now),
                        format_time(at)
                    )),
                    (CredentialKind::PersonalAccessToken, Some(at)) => details.push(format!(
                        "token {} {} ({})",
                        if at <= self.now { "expired" } else { "expires" },
                        relative(at, self.now),
                        format_time(at)
                    )),
                    (CredentialKind::PersonalAccessToken, None) => {
                        details.push("no expiry recorded".to_owned())
                    }
                    _ => {}
                }
                if r.cred.kind == CredentialKind::AccountSession {
                    match (t.has_refresh_token, t.obtained_at) {
                        (true, Some(o)) => details
                            .push(format!("refresh token obtained {}", relative(o, self.now))),
                        (true, None) => details.push("refresh token stored".to_owned()),
                        (false, _) => details.push("no refresh token".to_owned()),
                    }
                }
                if !details.is_empty() {
                    line(format!("     {}", details.join("; ")));
                }
            }
        }
        for o in &self.overrides {
            line(format!("Override: {o}"));
        }
        line(format!(
            "Account: {}",
            self.account_text.as_deref().unwrap_or("not signed in")
        ));
        if self.accounts_text.len() > 1 {
            line("Stored Mogplex accounts:".to_owned());
            for a in &self.accounts_text {
                line(format!("  {a}"));
            }
        }
        if !self.mcp_signins_text.is_empty() {
            line("MCP sign-ins:".to_owned());
            for m in &self.mcp_signins_text {
                line(format!("  {m}"));
            }
        }
        line(format!(
            "Your last choice: {}",
            self.choice_text.as_deref().unwrap_or("none recorded")
        ));
        for n in &self.notices {
            line(format!("Notice: {n}"));
        }
        for w in &self.warnings {
            line(format!("Warning: {w}"));
        }
        line(format!("Store: {}", self.store_text));
        line(format!("Account service: {}", self.issuer));
        line(format!("Home: {}", self.home));
        out
    }
}

fn kind_id(k: CredentialKind) -> &'static str {
    match k {
        CredentialKind::ApiKey => "api_key",
        CredentialKind::PersonalAccessToken => "personal_access_token",
        CredentialKind::AccountSession => "account_session",
    }
}

/// Builds the report: reads and resolves, then checks the Mogplex credential online.
pub fn report(ctx: &mut Ctx) -> Result<Report, CliError> {
    let now = OffsetDateTime::now_utc();
    let state = State::load(&ctx.home);
    let resolved = crate::ctx::resolve_stored(
        &ctx.env,
        &*ctx.store,
        ctx.account.as_deref(),
        state.last_choice.clone(),
        |s| ctx.redactor.add(s),
    )?;
    let warnings: Vec<String> = resolved
        .warnings()
        .into_iter()
        .map(|w| {
            w.trim_start_matches("warning: ")
                .trim_start_matches("note: ")
                .to_owned()
        })
        .collect();
    let mut warnings = warnings;
    warnings.extend(
        resolved
            .resolution
            .helper_failures
            .iter()
            .map(|f| format!("{f} ({})", f.hint())),
    );
    let resolution = &resolved.resolution;
    for s in resolution.secrets() {
        ctx.learn(s);
    }
    let doc = &resolved.loaded.doc;

    let mut notices: Vec<String> = resolution.issuer_notice().into_iter().collect();
    let rows: Vec<Row> = resolution
        .credentials
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let entry = c.account_entry.as_deref().and_then(|id| doc.account(id));
            let times = entry.map(Times::of);
            if let (Some(e), Some(t)) = (entry, &times)
                && let Some(n) =
                    expiry_notice(c.kind, e.expires_at.as_deref(), t.has_refresh_token, now)
            {
                notices.push(n);
            }
            Row {
                cred: c.clone(),
                active: i == 0,
                times,
                overrides: resolution
                    .overrides
                    .iter()
                    .filter(|o| match o.reason {
                        OverrideReason::SameProvider => {
                            o.stored_provider == c.provider && c.source.is_env()
                        }
                        OverrideReason::BeatsAccount { active } => active == c.provider,
                    })
                    .map(|o| o.notice())
                    .collect(),
            }
        })
        .collect();

    let selected_by = if ctx.account.is_some() {
        // `--account` sets it for this process; else it came from the variable.
        Some(ACCOUNT_VAR)
    } else {
        None
    };
    let (account, account_text) = match &resolved.account {
        Some(a) => {
            let how = match (selected_by, a.is_default) {
                (Some(_), _) => "chosen for this process (--account or MOGPLEX_ACCOUNT)",
                (None, true) => "the stored default",
                (None, false) => "stored",
            };
            let kind = match a.kind {
                mogplex_auth::credentials::document::MogplexCredentialKind::Session => {
                    "account_session"
                }
                mogplex_auth::credentials::document::MogplexCredentialKind::PersonalAccessToken => {
                    "personal_access_token"
                }
            };
            (
                Some(json!({
                    "entry": a.id, "issuer": a.issuer, "email": a.email, "account_id": a.account_id,
                    "kind": kind, "is_default": a.is_default,
                    "selected_by": if selected_by.is_some() { "account_option" } else if a.is_default { "default" } else { "stored" },
                })),
                Some(format!("{} ({}; {how})", a.name(), a.id)),
            )
        }
        None => (None, None),
    };
    let in_use_entry = resolved.account.as_ref().map(|a| a.id.clone());
    let listed = mogplex_auth::credentials::ops::list_accounts(doc);
    let accounts: Vec<Value> = listed
        .iter()
        .map(|a| {
            json!({
                "entry": a.id, "issuer": a.issuer, "email": a.email, "account_id": a.account_id,
                "is_default": a.is_default, "in_use": Some(&a.id) == in_use_entry.as_ref(),
            })
        })
        .collect();
    let accounts_text: Vec<String> = listed
        .iter()
        .map(|a| {
            let mut t = format!(
                "{} ({}) at {}",
                a.name(),
                a.id,
                a.issuer.trim_end_matches('/')
            );
            if a.is_default {
                t.push_str(", the default");
            }
            if Some(&a.id) == in_use_entry.as_ref() {
                t.push_str(", in use");
            }
            t
        })
        .collect();
    let (mcp_signins, mcp_signins_text) = mcp::signins(doc, now);
    let (choice, choice_text) = match &state.last_choice {
        Some(c) => {
            let provider = c
                .provider()
                .map(|p| p.display_name().to_owned())
                .unwrap_or_else(|| c.provider.clone());
            let mut t = format!("{provider} ({})", c.how_said());
            if let Some(at) = &c.at {
                t.push_str(&format!(", {at}"));
            }
            let in_use = rows
                .first()
                .is_some_and(|r| Some(r.cred.provider) == c.provider());
            if !in_use && rows.iter().any(|r| Some(r.cred.provider) == c.provider()) {
                t.push_str("; not the one in use (see Override)");
            }
            (
                Some(
                    json!({"provider": c.provider, "account": c.account, "how": c.how, "at": c.at, "in_use": in_use}),
                ),
                Some(t),
            )
        }
        None => (None, None),
    };

    let info = ctx.store.info();
    let store = json!({
        "kind": info.kind.as_str(), "choice": info.choice.as_str(),
        "path": info.path.display().to_string(), "fallback": info.fallback,
        "unavailable": info.unavailable,
    });
    let mut store_text = format!("{} ({})", info.label(), info.choice.as_str());
    if let Some(why) = &info.fallback {
        store_text.push_str(&format!(
            "; the keyring is not available ({why}), so the file is used"
        ));
    }
    if info.unavailable.is_some() {
        // Why is the warning above; the JSON has it in `store.unavailable` too.
        store_text.push_str("; not available: nothing stored was read");
    }

    let check = resolution
        .for_provider(Provider::Mogplex)
        .cloned()
        .map(|c| check_online(ctx, &c));

    Ok(Report {
        overrides: resolution.overrides.iter().map(|o| o.notice()).collect(),
        rows,
        notices,
        warnings,
        account,
        account_text,
        accounts,
        accounts_text,
        mcp_signins,
        mcp_signins_text,
        choice,
        choice_text,
        check,
        store_unavailable: info.unavailable.is_some(),
        store,
        store_text,
        issuer: resolution.issuer.clone(),
        home: ctx.home.path().display().to_string(),
        now,
    })
}

/// Asks the account service who `cred` belongs to, within [`CHECK_TIMEOUT`]. A sign-in whose
/// access token has expired (or is refused) is renewed first, as any command would.
fn check_online(ctx: &Ctx, cred: &Credential) -> Check {
    let base = match crate::signin::account_base(&ctx.env) {
        Ok(b) => b,
        Err(e) => {
            return Check::NotChecked {
                reason: format!("the account service address is not usable ({})", e.message),
            };
        }
    };
    let rt = match crate::signin::runtime() {
        Ok(rt) => rt,
        Err(e) => return Check::NotChecked { reason: e.message },
    };
    let store = ctx.store.clone();
    let base_label = crate::signin::base_label(&base);
    let outcome =
        rt.block_on(async { tokio::time::timeout(CHECK_TIMEOUT, ask(&store, cred, &base)).await });
    match outcome {
        Ok(c) => c,
        Err(_) => Check::NotChecked {
            reason: format!(
                "{base_label} did not answer within {} s",
                CHECK_TIMEOUT.as_secs()
            ),
        },
    }
}

async fn ask(
    store: &crate::exec::Store,
    cred: &Credential,
    base: &mogplex_providers::Url,
) -> Check {
    use mogplex_providers::ErrorKind;
    let client = match crate::exec::model_client() {
        Ok(c) => c,
        Err(e) => return Check::NotChecked { reason: e.message },
    };
    let session = cred.kind == CredentialKind::AccountSession;
    let renewed = |e: CliError| {
        let mut reason = e.message.clone();
        for c in &e.causes {
            reason.push_str(&format!(" ({c})"));
        }
        if e.code == exit::UNAVAILABLE {
            Check::NotChecked { reason }
        } else {
            Check::Rejected { reason }
        }
    };
    let mut token = cred.secret.clone();
    if session {
        match crate::exec::renew(store, cred, base, None).await {
            Ok(t) => token = t,
            Err(e) => return renewed(e),
        }
    }
    let mut retried = false;
    loop {
        match client.account_user(base, &token).await {
            Ok(Some(user)) => {
                return Check::Valid {
                    email: Some(user.email),
                };
            }
            Ok(None) => {
                return Check::Rejected {
                    reason: "the service does not recognise this credential".to_owned(),
                };
            }
            Err(e) if e.kind == ErrorKind::Unauthorized && session && !retried => {
                retried = true;
                match crate::exec::renew(store, cred, base, Some(&token)).await {
                    Ok(t) => token = t,
                    Err(e) => return renewed(e),
                }
            }
            Err(e) if matches!(e.kind, ErrorKind::Unauthorized | ErrorKind::Forbidden) => {
                return Check::Rejected {
                    reason: format!("the service refused it ({})", e.message),
                };
            }
            Err(e) => {
                return Check::NotChecked {
                    reason: e.to_string(),
                };
            }
        }
    }
}

/// `mogplex status [--json]`: prints the report; the exit code says whether it is usable.
pub fn run(ctx: &mut Ctx, json_out: bool) -> Result<(), CliError> {
    let r = report(ctx)?;
    let code = r.exit_code();
    if json_out {
        let mut v = r.json();
        ctx.redactor.redact_json(&mut v);
        println!("{v:#}");
    } else {
        print!(
            "{}",
            mogplex_tui::sanitize(&ctx.redactor.redact_str(&r.text()))
        );
    }
    if code == 0 {
        Ok(())
    } else {
        // The report has said why; the exit code is what scripts read.
        Err(CliError::new(code, String::new()).silent())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now: OffsetDateTime, d: time::Duration) -> String {
        format_time(now + d)
    }

    #[test]
    fn expiry_is_announced_only_when_nothing_renews_it_within_three_days() {
        let now = OffsetDateTime::now_utc();
        let soon = at(now, time::Duration::minutes(30 * 60 + 30));
        let later = at(now, time::Duration::days(4));
        let past = at(now, time::Duration::minutes(-90));
        let session = CredentialKind::AccountSession;
        let pat = CredentialKind::PersonalAccessToken;
        // A sign-in with a refresh token renews itself: nothing to say.
        assert_eq!(expiry_notice(session, Some(&soon), true, now), None);
        let n = expiry_notice(session, Some(&soon), false, now).unwrap();
        assert!(
            n.starts_with("your Mogplex sign-in cannot be renewed"),
            "{n}"
        );
        assert!(n.contains("ends in 30 h"), "{n}");
        let n = expiry_notice(session, Some(&past), false, now).unwrap();
        assert!(n.contains("ended 90 min ago"), "{n}");
        assert!(expiry_notice(pat, Some(&soon), false, now).is_some());
        assert_eq!(expiry_notice(pat, Some(&later), false, now), None);
        assert_eq!(expiry_notice(pat, None, false, now), None);
        assert_eq!(
            expiry_notice(CredentialKind::ApiKey, Some(&soon), false, now),
            None
        );
    }
}
