//! Which provider and model a session talks to (SPEC section 2).
//!
//! A model named for this session (`--model`) wins while its provider has a credential;
//! otherwise the provider is the first credential in precedence order and the model is the one
//! last picked for it in this home, else its default.
//!
//! Model names: `provider/model` names the provider explicitly (`openai/gpt-4.1`,
//! `vercel/openai/gpt-4.1`); `mogplex/…` is a Mogplex catalog slug and goes to the gateway whole;
//! a bare name is matched to its provider by its well-known prefix (`gpt-`, `claude-`, …: the
//! provider table's `model_prefixes`). A name no provider claims goes to the Mogplex gateway when
//! a Mogplex credential is in force (its catalog decides), and is refused otherwise.

use crate::catalog::{ProviderSpec, spec};
use mogplex_auth::{Credential, Provider, Resolution};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSource {
    /// Named for this session (`--model`).
    Session,
    /// The model last picked for this provider in this home.
    LastPicked,
    /// The provider's default.
    Default,
    /// To be taken from the Mogplex account's catalog (its first model).
    AccountDefault,
}

#[derive(Debug, Clone)]
pub struct Selection {
    pub credential: Credential,
    pub spec: ProviderSpec,
    /// `None` when the model comes from the Mogplex account's catalog at request time.
    pub model: Option<String>,
    pub model_source: ModelSource,
}

impl Selection {
    /// `credential`'s provider with `model` (or, for a Mogplex account, its catalog's first).
    pub fn new(credential: &Credential, model: Option<String>, model_source: ModelSource) -> Self {
        chosen(credential, model, model_source)
    }

    pub fn provider(&self) -> Provider {
        self.credential.provider
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("no credentials: nothing in the environment and no stored sign-in")]
    NoCredential,
    #[error("no credential for {provider}, which serves the model `{model}`", provider = .provider.display_name())]
    NoCredentialFor { provider: Provider, model: String },
    #[error("cannot tell which provider serves the model `{model}`")]
    UnknownModel { model: String },
    #[error("the model name is empty")]
    EmptyModel,
}

/// The provider a model name points at, and the model id to send it.
fn route(model: &str) -> Option<(Provider, String)> {
    if let Some((head, rest)) = model.split_once('/')
        && let Ok(provider) = head.parse::<Provider>()
        && !rest.is_empty()
    {
        let id = if provider == Provider::Mogplex {
            model.to_owned()
        } else {
            rest.to_owned()
        };
        return Some((provider, id));
    }
    Provider::for_model_name(model).map(|provider| (provider, model.to_owned()))
}

/// Picks the provider and model. `last_picked` maps providers to the model last picked for them
/// in this home.
pub fn select(
    resolution: &Resolution,
    requested: Option<&str>,
    last_picked: &BTreeMap<Provider, String>,
) -> Result<Selection, SelectError> {
    let active = resolution.active().ok_or(SelectError::NoCredential)?;
    if let Some(requested) = requested {
        let requested = requested.trim();
        if requested.is_empty() {
            return Err(SelectError::EmptyModel);
        }
        let mogplex = resolution.for_provider(Provider::Mogplex);
        return match route(requested) {
            Some((provider, model)) => match resolution.for_provider(provider) {
                Some(c) => Ok(chosen(c, Some(model), ModelSource::Session)),
                // The gateway serves other providers' models too.
                None if provider != Provider::Mogplex && mogplex.is_some() => Ok(chosen(
                    mogplex.unwrap_or(active),
                    Some(requested.to_owned()),
                    ModelSource::Session,
                )),
                None => Err(SelectError::NoCredentialFor {
                    provider,
                    model: requested.to_owned(),
                }),
            },
            None => match mogplex {
                Some(c) => Ok(chosen(c, Some(requested.to_owned()), ModelSource::Session)),
                None => Err(SelectError::UnknownModel {
                    model: requested.to_owned(),
                }),
            },
        };
    }
    let provider = active.provider;
    Ok(match last_picked.get(&provider) {
        Some(m) => chosen(active, Some(m.clone()), ModelSource::LastPicked),
        None => match spec(provider).default_model() {
            Some(m) => chosen(active, Some(m.to_owned()), ModelSource::Default),
            None => chosen(active, None, ModelSource::AccountDefault),
        },
    })
}

fn chosen(c: &Credential, model: Option<String>, model_source: ModelSource) -> Selection {
    Selection {
        credential: c.clone(),
        spec: spec(c.provider),
        model,
        model_source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mogplex_auth::MapEnv;

    fn resolve(vars: &[(&str, &str)]) -> Resolution {
        Resolution::from_env(&MapEnv::new(vars.iter().copied()))
    }

    #[test]
    fn routes() {
        let r = resolve(&[("OPENAI_API_KEY", "sk-1"), ("VERCEL_API_TOKEN", "v")]);
        let s = select(&r, Some("gpt-4.1-mini"), &BTreeMap::new()).unwrap();
        assert_eq!(
            (s.provider(), s.model.as_deref()),
            (Provider::OpenAi, Some("gpt-4.1-mini"))
        );
        let s = select(&r, Some("vercel/openai/gpt-4o"), &BTreeMap::new()).unwrap();
        assert_eq!(
            (s.provider(), s.model.as_deref()),
            (Provider::Vercel, Some("openai/gpt-4o"))
        );
        assert_eq!(
            select(&r, Some("claude-x"), &BTreeMap::new()).unwrap_err(),
            SelectError::NoCredentialFor {
                provider: Provider::Anthropic,
                model: "claude-x".into()
            }
        );
        assert!(matches!(
            select(&r, Some("nosuch"), &BTreeMap::new()),
            Err(SelectError::UnknownModel { .. })
        ));
    }

    #[test]
    fn unknown_names_go_to_the_gateway_when_signed_in() {
        let r = resolve(&[("MOGPLEX_API_KEY", "mog_1"), ("OPENAI_API_KEY", "sk-1")]);
        let s = select(&r, Some("mogplex/echo"), &BTreeMap::new()).unwrap();
        assert_eq!(
            (s.provider(), s.model.as_deref()),
            (Provider::Mogplex, Some("mogplex/echo"))
        );
        let s = select(&r, Some("house-model"), &BTreeMap::new()).unwrap();
        assert_eq!(s.provider(), Provider::Mogplex);
        let s = select(&r, None, &BTreeMap::new()).unwrap();
        assert_eq!(
            (s.provider(), s.model_source),
            (Provider::Mogplex, ModelSource::AccountDefault)
        );
    }
}
