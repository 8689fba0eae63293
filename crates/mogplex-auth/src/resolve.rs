//! Which credential is in force, where it came from, and what it overrides (SPEC section 2).
//!
//! The result is a plain value that the CLI prints and the cockpit shows: per provider the
//! credential in force with its source and masked form, the stored credentials the environment
//! shadows, and the precedence order used to pick the active provider.

use crate::credentials::document::MogplexCredentialKind;
use crate::credentials::document::{Document, StoreKind, normalize_issuer};
use crate::env::Env;
use crate::provider::Provider;
use crate::secret::Secret;
use crate::state::Choice;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A model provider's API key.
    ApiKey,
    /// A Mogplex `mog_` personal access token.
    PersonalAccessToken,
    /// A Mogplex account session from browser or device sign-in.
    AccountSession,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An environment variable of this shell.
    Env { var: &'static str },
    /// `auth.json`, at `field` (for example `providers.openai.apiKey`).
    File { path: PathBuf, field: String },
    /// The OS keyring, under the reference `auth.json` (at `path`) keeps at `field`.
    Keyring { path: PathBuf, field: String },
    /// The credential helper named by this variable ([`crate::helper`]); never its output.
    Helper { var: &'static str },
}

impl Source {
    /// From this shell: a variable, or the helper a variable names (both beat every stored
    /// credential).
    pub fn is_env(&self) -> bool {
        matches!(self, Source::Env { .. } | Source::Helper { .. })
    }

    /// `OPENAI_API_KEY`, `/home/me/.mogplex/auth.json (providers.openai.apiKey)`, or
    /// `the Secret Service keyring (providers.openai.apiKey)`.
    pub fn label(&self) -> String {
        match self {
            Source::Env { var } => (*var).to_owned(),
            Source::Helper { var } => format!("the credential helper in {var}"),
            Source::File { path, field } => format!("{} ({field})", path.display()),
            Source::Keyring { field, .. } => {
                format!("{} ({field})", crate::credentials::vault::keyring_name())
            }
        }
    }

    /// `OPENAI_API_KEY`, `auth.json` or `keyring`: for the cockpit's header, where paths do not
    /// fit.
    pub fn short_label(&self) -> &str {
        match self {
            Source::Env { var } | Source::Helper { var } => var,
            Source::File { .. } => "auth.json",
            Source::Keyring { .. } => "keyring",
        }
    }

    /// Where a stored credential is kept, as a notice names it: the `auth.json` path, or the
    /// keyring.
    pub fn store_label(&self) -> String {
        match self {
            Source::Env { var } | Source::Helper { var } => (*var).to_owned(),
            Source::File { path, .. } => path.display().to_string(),
            Source::Keyring { .. } => crate::credentials::vault::keyring_name().to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Credential {
    pub provider: Provider,
    pub kind: CredentialKind,
    pub source: Source,
    pub secret: Secret,
    /// For an account session: the signed-in email, when known.
    pub account_email: Option<String>,
    /// For a stored Mogplex credential: its account entry id in `auth.json` (what a refresh,
    /// a logout and a switch name).
    pub account_entry: Option<String>,
}

impl Credential {
    pub fn masked(&self) -> String {
        self.secret.masked()
    }

    /// What it is, without its value or source: `OpenAI key`, `Mogplex sign-in (ada@…)`.
    pub fn what(&self) -> String {
        match self.kind {
            CredentialKind::ApiKey => format!("{} key", self.provider.display_name()),
            CredentialKind::PersonalAccessToken => "Mogplex personal access token".to_owned(),
            CredentialKind::AccountSession => match &self.account_email {
                Some(email) => format!("Mogplex sign-in ({email})"),
                None => "Mogplex sign-in".to_owned(),
            },
        }
    }

    /// A one-line description: `OpenAI key sk-…abcd from OPENAI_API_KEY`.
    pub fn describe(&self) -> String {
        format!(
            "{} {} from {}",
            self.what(),
            self.masked(),
            self.source.label()
        )
    }
}

/// A stored credential that the environment shadows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The variable that wins.
    pub var: &'static str,
    /// Whose stored credential loses.
    pub stored_provider: Provider,
    pub stored_kind: CredentialKind,
    /// Where it is kept: the `auth.json` path, or the keyring.
    pub stored_in: String,
    pub reason: OverrideReason,
    /// When the stored credential is the one the user chose most recently: how they chose it
    /// (`you signed in with it last`).
    pub chosen: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideReason {
    /// The variable supplies the same provider's credential.
    SameProvider,
    /// The variable supplies another provider, which is picked ahead of the stored credential
    /// that would otherwise be used (a provider key or the Mogplex account).
    BeatsAccount { active: Provider },
}

impl Override {
    /// The notice to show. Names the variable, never its value.
    pub fn notice(&self) -> String {
        let stored = match self.stored_kind {
            CredentialKind::ApiKey => {
                format!(
                    "the {} key stored in {}",
                    self.stored_provider.display_name(),
                    self.stored_in
                )
            }
            CredentialKind::PersonalAccessToken => {
                format!("the Mogplex access token stored in {}", self.stored_in)
            }
            CredentialKind::AccountSession => "your stored Mogplex sign-in".to_owned(),
        };
        match self.reason {
            OverrideReason::SameProvider => {
                format!("{} in this shell overrides {stored}", self.var)
            }
            OverrideReason::BeatsAccount { active } => {
                let chosen = self
                    .chosen
                    .map(|how| format!(" ({how})"))
                    .unwrap_or_default();
                let instead = match self.stored_kind {
                    CredentialKind::ApiKey => {
                        format!("the stored {} key", self.stored_provider.display_name())
                    }
                    _ => "your Mogplex account".to_owned(),
                };
                format!(
                    "{} in this shell takes precedence over {stored}{chosen}, so {} is used; unset it to use {instead}",
                    self.var,
                    active.display_name()
                )
            }
        }
    }
}

/// What the store holds, as resolution needs it.
#[derive(Debug, Clone, Copy)]
pub struct StoredView<'a> {
    /// The document, secrets filled in ([`crate::credentials::CredentialStore::load`]).
    pub doc: &'a Document,
    /// `auth.json`.
    pub path: &'a Path,
    /// The account service this session talks to (`MOGPLEX_URL`, else the hosted one): only
    /// its accounts are candidates, so a token never goes to another service.
    pub issuer: &'a str,
    /// The account entry `--account` or `MOGPLEX_ACCOUNT` chose for this process (already
    /// matched against `issuer`).
    pub account: Option<&'a str>,
    /// The credential the user chose most recently (`state.json`): among stored credentials,
    /// the one used.
    pub last_choice: Option<&'a Choice>,
}

#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// Credentials in force, one per provider at most, in precedence order: `MOGPLEX_API_KEY`,
    /// the provider variables, stored provider keys, the stored Mogplex credential.
    pub credentials: Vec<Credential>,
    /// Stored credentials the environment shadows.
    pub overrides: Vec<Override>,
    pub auth_file: PathBuf,
    /// The account service of this session.
    pub issuer: String,
    /// Account services with a stored Mogplex sign-in while this session's service has none:
    /// those are not used here (tokens go only to their issuer).
    pub other_issuers: Vec<String>,
    /// Credential helpers that gave no key (that provider resolves as if the helper were unset).
    pub helper_failures: Vec<crate::helper::HelperError>,
}

impl Resolution {
    /// Resolves `env` alone, as if nothing were stored.
    pub fn from_env(env: &dyn Env) -> Self {
        let doc = Document::default();
        Self::resolve(
            env,
            StoredView {
                doc: &doc,
                path: Path::new("auth.json"),
                issuer: mogplex_protocol::DEFAULT_BASE_URL,
                account: None,
                last_choice: None,
            },
        )
    }

    /// Resolves `env` against what is stored.
    pub fn resolve(env: &dyn Env, stored_view: StoredView<'_>) -> Self {
        let mut env_creds = Vec::new();
        let mut stored = Vec::new();
        let mut overrides = Vec::new();
        // Every stored credential, those the environment shadows too.
        let mut all_stored = Vec::new();
        let mut helper_failures = Vec::new();

        for provider in Provider::ALL {
            let from_env = env.var(provider.env_var()).map(|v| Credential {
                provider,
                kind: if provider == Provider::Mogplex {
                    CredentialKind::PersonalAccessToken
                } else {
                    CredentialKind::ApiKey
                },
                source: Source::Env {
                    var: provider.env_var(),
                },
                secret: Secret::new(v),
                account_email: None,
                account_entry: None,
            });
            // Right after the variable of the same provider: its helper.
            let from_env = from_env.or_else(|| match crate::helper::key(env, provider)? {
                Ok(secret) => Some(Credential {
                    provider,
                    kind: if provider == Provider::Mogplex {
                        CredentialKind::PersonalAccessToken
                    } else {
                        CredentialKind::ApiKey
                    },
                    source: Source::Helper {
                        var: crate::helper::helper_var(provider),
                    },
                    secret,
                    account_email: None,
                    account_entry: None,
                }),
                Err(e) => {
                    helper_failures.push(e);
                    None
                }
            });
            let from_file = stored_credential(provider, &stored_view);
            all_stored.extend(from_file.clone());
            match (from_env, from_file) {
                (Some(e), Some(s)) => {
                    overrides.push(Override {
                        var: match e.source {
                            Source::Helper { var } => var,
                            _ => provider.env_var(),
                        },
                        stored_provider: provider,
                        stored_kind: s.kind,
                        stored_in: s.source.store_label(),
                        reason: OverrideReason::SameProvider,
                        chosen: None,
                    });
                    env_creds.push(e);
                }
                (Some(e), None) => env_creds.push(e),
                (None, Some(s)) => stored.push(s),
                (None, None) => {}
            }
        }

        // Among stored credentials: the one the user chose most recently, then (with no record,
        // or for the rest) provider keys in the table's order, the Mogplex account last.
        let chosen = stored_view
            .last_choice
            .and_then(Choice::provider)
            .filter(|p| all_stored.iter().any(|c: &Credential| c.provider == *p));
        let order = |c: &Credential| (Some(c.provider) != chosen, c.provider == Provider::Mogplex);
        stored.sort_by_key(order);
        all_stored.sort_by_key(order);
        // What would be used without the environment.
        let next_stored = all_stored.into_iter().next();
        let credentials: Vec<Credential> = env_creds.into_iter().chain(stored).collect();

        // A variable wins over the stored credential that would otherwise be used: say so.
        if let (Some(active), Some(next)) = (credentials.first(), next_stored)
            && let Source::Env { var } | Source::Helper { var } = active.source
            && active.provider != next.provider
        {
            overrides.push(Override {
                var,
                stored_provider: next.provider,
                stored_kind: next.kind,
                stored_in: next.source.store_label(),
                reason: OverrideReason::BeatsAccount {
                    active: active.provider,
                },
                chosen: chosen
                    .filter(|p| *p == next.provider)
                    .and(stored_view.last_choice)
                    .map(|c| c.how_said()),
            });
        }

        let doc = stored_view.doc;
        let mut other_issuers = Vec::new();
        if doc.accounts_for(stored_view.issuer).next().is_none() {
            for a in &doc.accounts {
                let i = normalize_issuer(&a.issuer).to_owned();
                if !other_issuers.contains(&i) {
                    other_issuers.push(i);
                }
            }
        }

        Self {
            credentials,
            overrides,
            auth_file: stored_view.path.to_owned(),
            issuer: normalize_issuer(stored_view.issuer).to_owned(),
            other_issuers,
            helper_failures,
        }
    }

    /// The credential picked when nothing else chooses the provider.
    pub fn active(&self) -> Option<&Credential> {
        self.credentials.first()
    }

    pub fn for_provider(&self, provider: Provider) -> Option<&Credential> {
        self.credentials.iter().find(|c| c.provider == provider)
    }

    pub fn is_empty(&self) -> bool {
        self.credentials.is_empty()
    }

    /// Every secret value in play, for redaction.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.credentials.iter().map(|c| &c.secret)
    }

    /// Overrides that matter for a session talking to `provider`: the environment shadowing that
    /// provider's stored credential, or the environment winning over the stored sign-in.
    pub fn overrides_for(&self, provider: Provider) -> impl Iterator<Item = &Override> {
        self.overrides.iter().filter(move |o| match o.reason {
            OverrideReason::SameProvider => o.stored_provider == provider,
            OverrideReason::BeatsAccount { active } => active == provider,
        })
    }

    /// Said when sign-ins are stored, but only for other account services than this session's:
    /// none of them is used (nor sent anything).
    pub fn issuer_notice(&self) -> Option<String> {
        if self.other_issuers.is_empty() {
            return None;
        }
        Some(format!(
            "no Mogplex sign-in for {} (MOGPLEX_URL); the sign-in stored for {} is not used here, and nothing is sent to another service",
            self.issuer,
            self.other_issuers.join(", ")
        ))
    }
}

fn stored_credential(provider: Provider, view: &StoredView<'_>) -> Option<Credential> {
    let doc = view.doc;
    let keyring = doc.store_kind() == StoreKind::Keyring;
    let source = |field: String| {
        let path = view.path.to_owned();
        if keyring {
            Source::Keyring { path, field }
        } else {
            Source::File { path, field }
        }
    };
    if provider == Provider::Mogplex {
        let entry = crate::credentials::ops::active_account(doc, view.issuer, view.account)?;
        let (secret, kind) = entry.bearer()?;
        let (kind, field) = match kind {
            MogplexCredentialKind::Session => (CredentialKind::AccountSession, "access_token"),
            MogplexCredentialKind::PersonalAccessToken => {
                (CredentialKind::PersonalAccessToken, "api_key")
            }
        };
        return Some(Credential {
            provider,
            kind,
            source: source(format!("accounts[{}].{field}", entry.id)),
            secret: secret.clone(),
            account_email: entry.email().map(str::to_owned),
            account_entry: Some(entry.id.clone()),
        });
    }
    let key = doc.provider_key(provider.id())?;
    Some(Credential {
        provider,
        kind: CredentialKind::ApiKey,
        source: source(format!("providers.{}.apiKey", provider.id())),
        secret: key.clone(),
        account_email: None,
        account_entry: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::document::{Account, AccountEntry, Stored};
    use crate::env::MapEnv;

    const ISSUER: &str = "https://www.mogplex.com";

    fn signed_in_at(issuer: &str) -> Document {
        let mut entry = AccountEntry {
            issuer: issuer.into(),
            access_token: Some(Stored::Value(Secret::new("at-123"))),
            account: Some(Account {
                id: Some("u1".into()),
                email: Some("ada@example.com".into()),
                ..Account::default()
            }),
            ..AccountEntry::default()
        };
        entry.id = entry.derived_id();
        Document {
            default_account: Some(entry.id.clone()),
            accounts: vec![entry],
            ..Document::default()
        }
    }

    fn view<'a>(doc: &'a Document, issuer: &'a str) -> StoredView<'a> {
        StoredView {
            doc,
            path: Path::new("/h/auth.json"),
            issuer,
            account: None,
            last_choice: None,
        }
    }

    #[test]
    fn env_beats_stored_sign_in_for_the_active_provider() {
        let env = MapEnv::new([("ANTHROPIC_API_KEY", "sk-ant-1")]);
        let doc = signed_in_at(ISSUER);
        let r = Resolution::resolve(&env, view(&doc, ISSUER));
        assert_eq!(r.active().unwrap().provider, Provider::Anthropic);
        assert_eq!(r.overrides.len(), 1);
        assert!(
            r.overrides[0]
                .notice()
                .starts_with("ANTHROPIC_API_KEY in this shell takes precedence")
        );
    }

    #[test]
    fn stored_provider_key_beats_stored_sign_in_without_notice() {
        let mut doc = signed_in_at(ISSUER);
        doc.providers.entry("openai".into()).or_default().api_key =
            Some(Stored::Value(Secret::new("sk-1")));
        let r = Resolution::resolve(&MapEnv::default(), view(&doc, ISSUER));
        assert_eq!(r.active().unwrap().provider, Provider::OpenAi);
        assert!(r.overrides.is_empty());
        assert_eq!(
            r.active().unwrap().source.label(),
            "/h/auth.json (providers.openai.apiKey)"
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let env = MapEnv::new([("MOGPLEX_API_KEY", ""), ("OPENAI_API_KEY", "")]);
        let doc = signed_in_at(ISSUER);
        let r = Resolution::resolve(&env, view(&doc, ISSUER));
        let c = r.active().unwrap();
        assert_eq!(c.kind, CredentialKind::AccountSession);
        assert_eq!(c.account_email.as_deref(), Some("ada@example.com"));
        assert_eq!(c.account_entry, doc.default_account);
        assert!(r.overrides.is_empty());
        assert!(r.issuer_notice().is_none());
    }

    #[test]
    fn a_sign_in_from_another_service_is_not_a_credential_here_and_is_said() {
        let doc = signed_in_at("http://127.0.0.1:9");
        let r = Resolution::resolve(&MapEnv::default(), view(&doc, "http://127.0.0.1:8/"));
        assert!(r.is_empty());
        let notice = r.issuer_notice().unwrap();
        assert!(notice.contains("http://127.0.0.1:8 "), "{notice}");
        assert!(notice.contains("http://127.0.0.1:9"), "{notice}");
    }

    #[test]
    fn the_keyring_store_is_named_as_the_source() {
        let mut doc = signed_in_at(ISSUER);
        doc.store = Some(StoreKind::Keyring);
        let r = Resolution::resolve(&MapEnv::default(), view(&doc, ISSUER));
        let c = r.active().unwrap();
        assert_eq!(c.source.short_label(), "keyring");
        assert!(c.source.label().contains("keyring"), "{}", c.source.label());
    }
}
