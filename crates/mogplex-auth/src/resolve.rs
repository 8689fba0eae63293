//! Which credential is in force, where it came from, and what it overrides (SPEC section 2).
//!
//! The result is a plain value that the CLI prints and the cockpit shows: per provider the
//! credential in force with its source and masked form, the stored credentials the environment
//! shadows, and the precedence order used to pick the active provider.

use crate::env::Env;
use crate::file::{AuthFile, MogplexCredentialKind};
use crate::provider::Provider;
use crate::secret::Secret;
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
}

impl Source {
    pub fn is_env(&self) -> bool {
        matches!(self, Source::Env { .. })
    }

    /// `OPENAI_API_KEY`, or `/home/me/.mogplex/auth.json (providers.openai.apiKey)`.
    pub fn label(&self) -> String {
        match self {
            Source::Env { var } => (*var).to_owned(),
            Source::File { path, field } => format!("{} ({field})", path.display()),
        }
    }

    /// `OPENAI_API_KEY`, or `auth.json`: for the cockpit's header, where paths do not fit.
    pub fn short_label(&self) -> &str {
        match self {
            Source::Env { var } => var,
            Source::File { .. } => "auth.json",
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
    pub stored_at: PathBuf,
    pub reason: OverrideReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideReason {
    /// The variable supplies the same provider's credential.
    SameProvider,
    /// The variable supplies another provider, which is picked ahead of the stored Mogplex
    /// sign-in when choosing the active provider.
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
                    self.stored_at.display()
                )
            }
            CredentialKind::PersonalAccessToken => {
                format!(
                    "the Mogplex access token stored in {}",
                    self.stored_at.display()
                )
            }
            CredentialKind::AccountSession => "your stored Mogplex sign-in".to_owned(),
        };
        match self.reason {
            OverrideReason::SameProvider => {
                format!("{} in this shell overrides {stored}", self.var)
            }
            OverrideReason::BeatsAccount { active } => format!(
                "{} in this shell takes precedence over {stored}, so {} is used; unset it to use your Mogplex account",
                self.var,
                active.display_name()
            ),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// Credentials in force, one per provider at most, in precedence order: `MOGPLEX_API_KEY`,
    /// the provider variables, stored provider keys, the stored Mogplex credential.
    pub credentials: Vec<Credential>,
    /// Stored credentials the environment shadows.
    pub overrides: Vec<Override>,
    pub auth_file: PathBuf,
}

impl Resolution {
    /// Resolves `env` against what is stored in `file` (read from `auth_file`).
    pub fn resolve(env: &dyn Env, file: &AuthFile, auth_file: &Path) -> Self {
        let mut env_creds = Vec::new();
        let mut stored = Vec::new();
        let mut overrides = Vec::new();

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
            });
            let from_file = stored_credential(provider, file, auth_file);
            match (from_env, from_file) {
                (Some(e), Some(s)) => {
                    overrides.push(Override {
                        var: provider.env_var(),
                        stored_provider: provider,
                        stored_kind: s.kind,
                        stored_at: auth_file.to_owned(),
                        reason: OverrideReason::SameProvider,
                    });
                    env_creds.push(e);
                }
                (Some(e), None) => env_creds.push(e),
                (None, Some(s)) => stored.push(s),
                (None, None) => {}
            }
        }

        // The stored Mogplex credential goes last: direct provider keys come before the account.
        stored.sort_by_key(|c| c.provider == Provider::Mogplex);
        let credentials: Vec<Credential> = env_creds.into_iter().chain(stored).collect();

        if let (Some(active), Some(account)) = (
            credentials.first(),
            credentials
                .iter()
                .find(|c| c.provider == Provider::Mogplex && !c.source.is_env()),
        ) && let Source::Env { var } = active.source
        {
            overrides.push(Override {
                var,
                stored_provider: Provider::Mogplex,
                stored_kind: account.kind,
                stored_at: auth_file.to_owned(),
                reason: OverrideReason::BeatsAccount {
                    active: active.provider,
                },
            });
        }

        Self {
            credentials,
            overrides,
            auth_file: auth_file.to_owned(),
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
}

fn stored_credential(provider: Provider, file: &AuthFile, path: &Path) -> Option<Credential> {
    if provider == Provider::Mogplex {
        let entry = file.mogplex.as_ref()?;
        let (secret, kind) = entry.bearer()?;
        let (kind, field) = match kind {
            MogplexCredentialKind::Session => {
                (CredentialKind::AccountSession, "mogplex.access_token")
            }
            MogplexCredentialKind::PersonalAccessToken => {
                (CredentialKind::PersonalAccessToken, "mogplex.api_key")
            }
        };
        return Some(Credential {
            provider,
            kind,
            source: Source::File {
                path: path.to_owned(),
                field: field.to_owned(),
            },
            secret: secret.clone(),
            account_email: entry.account.as_ref().and_then(|a| a.email.clone()),
        });
    }
    let key = file.provider_key(provider.id())?;
    Some(Credential {
        provider,
        kind: CredentialKind::ApiKey,
        source: Source::File {
            path: path.to_owned(),
            field: format!("providers.{}.apiKey", provider.id()),
        },
        secret: key.clone(),
        account_email: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnv;
    use crate::file::MogplexEntry;

    fn signed_in() -> AuthFile {
        AuthFile {
            mogplex: Some(MogplexEntry {
                access_token: Some(Secret::new("at-123")),
                ..MogplexEntry::default()
            }),
            ..AuthFile::default()
        }
    }

    #[test]
    fn env_beats_stored_sign_in_for_the_active_provider() {
        let env = MapEnv::new([("ANTHROPIC_API_KEY", "sk-ant-1")]);
        let r = Resolution::resolve(&env, &signed_in(), Path::new("/h/auth.json"));
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
        let mut f = signed_in();
        f.set_provider_key("openai", Secret::new("sk-1"));
        let r = Resolution::resolve(&MapEnv::default(), &f, Path::new("/h/auth.json"));
        assert_eq!(r.active().unwrap().provider, Provider::OpenAi);
        assert!(r.overrides.is_empty());
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let env = MapEnv::new([("MOGPLEX_API_KEY", ""), ("OPENAI_API_KEY", "")]);
        let r = Resolution::resolve(&env, &signed_in(), Path::new("/h/auth.json"));
        assert_eq!(r.active().unwrap().kind, CredentialKind::AccountSession);
        assert!(r.overrides.is_empty());
    }
}
