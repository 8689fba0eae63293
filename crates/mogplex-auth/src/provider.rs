//! The credentials mogplex knows, as one table: the Mogplex account and nine model providers.
//!
//! Everything mogplex knows about a provider is one row of [`PROVIDERS`]: its id, the name people
//! know it by, the variable that supplies its key, where its API is and how it speaks, its models,
//! the model-name prefixes that point at it and the prefixes its keys start with. Resolution,
//! model selection, masking and redaction all read this table, so adding a provider is adding a
//! variant to [`Provider`] and a row here (see `docs/contributing.md`).
//!
//! The order of the table is the precedence order of SPEC section 2: when nothing else picks the
//! provider, the first one with a credential wins.
//!
//! The table lives in `mogplex-auth` (not `mogplex-providers`) because the credential system
//! needs it too: which variables carry keys, and which prefixes mark a key when masking or
//! redacting.

use std::fmt;
use std::str::FromStr;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    Mogplex,
    Anthropic,
    OpenAi,
    Google,
    Groq,
    Mistral,
    DeepSeek,
    Xai,
    Cohere,
    Vercel,
}

/// How a provider's API is spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// OpenAI chat completions at `{base}/chat/completions`.
    OpenAiCompatible,
    /// The Mogplex gateway, OpenAI-shaped, at `{base}/api/cli/inference/chat/completions`.
    MogplexGateway,
    /// Anthropic Messages at `{base}/v1/messages`.
    AnthropicMessages,
}

/// One row of the provider table.
#[derive(Debug, Clone, Copy)]
pub struct ProviderSpec {
    pub provider: Provider,
    /// The name used on the command line and as the key under `providers` in `auth.json`.
    pub id: &'static str,
    /// The name people know it by.
    pub display_name: &'static str,
    /// The environment variable that supplies the key.
    pub key_var: &'static str,
    pub api: Api,
    pub default_base_url: &'static str,
    /// The variable that redirects the base URL (for proxies and tests).
    pub base_url_var: &'static str,
    /// Models offered by `/model` when the provider is reached with its own key, the default
    /// first. Empty for the Mogplex gateway, whose models (and default) come from the account's
    /// catalog. Any other model can still be named with `--model`.
    pub known_models: &'static [&'static str],
    /// Bare model names starting with one of these go to this provider (`gpt-4.1` → OpenAI).
    pub model_prefixes: &'static [&'static str],
    /// What this provider's keys start with: kept visible when masking, and redacted as
    /// token-shaped text wherever they appear.
    pub key_prefixes: &'static [&'static str],
    /// Whether the provider accepts `stream_options.include_usage`.
    pub stream_usage: bool,
}

impl ProviderSpec {
    /// The model used when none is picked; `None` for the Mogplex gateway, whose default comes
    /// from the account's catalog.
    pub fn default_model(&self) -> Option<&'static str> {
        self.known_models.first().copied()
    }

    /// The base URL in force: the override variable when set, else the default.
    pub fn base_url(&self, env: &dyn crate::Env) -> Result<Url, BaseUrlError> {
        let var = self.base_url_var;
        let raw = env
            .var(var)
            .unwrap_or_else(|| self.default_base_url.to_owned());
        check_base_url(var, &raw)
    }
}

/// Every provider, in precedence order.
pub const PROVIDERS: [ProviderSpec; 10] = [
    ProviderSpec {
        provider: Provider::Mogplex,
        id: "mogplex",
        display_name: "Mogplex",
        key_var: "MOGPLEX_API_KEY",
        api: Api::MogplexGateway,
        default_base_url: mogplex_protocol::DEFAULT_BASE_URL,
        base_url_var: "MOGPLEX_URL",
        known_models: &[],
        model_prefixes: &[],
        key_prefixes: &["mog_"],
        stream_usage: true,
    },
    ProviderSpec {
        provider: Provider::Anthropic,
        id: "anthropic",
        display_name: "Anthropic",
        key_var: "ANTHROPIC_API_KEY",
        api: Api::AnthropicMessages,
        default_base_url: "https://api.anthropic.com",
        base_url_var: "ANTHROPIC_BASE_URL",
        known_models: &["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"],
        model_prefixes: &["claude-"],
        key_prefixes: &["sk-ant-"],
        stream_usage: false,
    },
    ProviderSpec {
        provider: Provider::OpenAi,
        id: "openai",
        display_name: "OpenAI",
        key_var: "OPENAI_API_KEY",
        api: Api::OpenAiCompatible,
        default_base_url: "https://api.openai.com/v1",
        base_url_var: "OPENAI_BASE_URL",
        known_models: &["gpt-4.1", "gpt-4.1-mini", "o3", "o4-mini"],
        model_prefixes: &["gpt-", "chatgpt-", "o1", "o3", "o4", "codex-"],
        key_prefixes: &["sk-proj-", "sk-"],
        stream_usage: true,
    },
    ProviderSpec {
        provider: Provider::Google,
        id: "google",
        display_name: "Google",
        key_var: "GOOGLE_GENERATIVE_AI_API_KEY",
        api: Api::OpenAiCompatible,
        default_base_url: "https://generativelanguage.googleapis.com/v1beta/openai",
        base_url_var: "GOOGLE_GENERATIVE_AI_BASE_URL",
        known_models: &["gemini-2.5-flash", "gemini-2.5-pro"],
        model_prefixes: &["gemini-", "gemma-"],
        key_prefixes: &["AIza"],
        stream_usage: true,
    },
    ProviderSpec {
        provider: Provider::Groq,
        id: "groq",
        display_name: "Groq",
        key_var: "GROQ_API_KEY",
        api: Api::OpenAiCompatible,
        default_base_url: "https://api.groq.com/openai/v1",
        base_url_var: "GROQ_BASE_URL",
        known_models: &["llama-3.3-70b-versatile", "llama-3.1-8b-instant"],
        model_prefixes: &[],
        key_prefixes: &["gsk_"],
        stream_usage: true,
    },
    ProviderSpec {
        provider: Provider::Mistral,
        id: "mistral",
        display_name: "Mistral",
        key_var: "MISTRAL_API_KEY",
        api: Api::OpenAiCompatible,
        default_base_url: "https://api.mistral.ai/v1",
        base_url_var: "MISTRAL_BASE_URL",
        known_models: &["mistral-large-latest", "codestral-latest"],
        model_prefixes: &[
            "mistral-",
            "codestral-",
            "magistral-",
            "devstral-",
            "ministral-",
            "pixtral-",
            "open-mistral-",
        ],
        key_prefixes: &[],
        stream_usage: false,
    },
    ProviderSpec {
        provider: Provider::DeepSeek,
        id: "deepseek",
        display_name: "DeepSeek",
        key_var: "DEEPSEEK_API_KEY",
        api: Api::OpenAiCompatible,
        default_base_url: "https://api.deepseek.com/v1",
        base_url_var: "DEEPSEEK_BASE_URL",
        known_models: &["deepseek-chat", "deepseek-reasoner"],
        model_prefixes: &["deepseek-"],
        key_prefixes: &["sk-"],
        stream_usage: true,
    },
    ProviderSpec {
        provider: Provider::Xai,
        id: "xai",
        display_name: "xAI",
        key_var: "XAI_API_KEY",
        api: Api::OpenAiCompatible,
        default_base_url: "https://api.x.ai/v1",
        base_url_var: "XAI_BASE_URL",
        known_models: &["grok-4", "grok-3-mini"],
        model_prefixes: &["grok-"],
        key_prefixes: &["xai-"],
        stream_usage: true,
    },
    ProviderSpec {
        provider: Provider::Cohere,
        id: "cohere",
        display_name: "Cohere",
        key_var: "COHERE_API_KEY",
        api: Api::OpenAiCompatible,
        default_base_url: "https://api.cohere.ai/compatibility/v1",
        base_url_var: "COHERE_BASE_URL",
        known_models: &["command-a-03-2025"],
        model_prefixes: &["command-", "c4ai-"],
        key_prefixes: &[],
        stream_usage: false,
    },
    ProviderSpec {
        provider: Provider::Vercel,
        id: "vercel",
        display_name: "Vercel AI Gateway",
        key_var: "VERCEL_API_TOKEN",
        api: Api::OpenAiCompatible,
        default_base_url: "https://ai-gateway.vercel.sh/v1",
        base_url_var: "VERCEL_AI_GATEWAY_BASE_URL",
        known_models: &["openai/gpt-4.1", "anthropic/claude-sonnet-4-5"],
        model_prefixes: &[],
        key_prefixes: &["vck_"],
        stream_usage: true,
    },
];

/// Key prefixes of services that are not providers of their own but are reached through one
/// (OpenRouter through `OPENAI_BASE_URL`): masked and redacted like the table's.
const OTHER_KEY_PREFIXES: &[&str] = &["sk-or-"];

/// Every key prefix, of the table and of [`OTHER_KEY_PREFIXES`] (in no particular order).
pub fn key_prefixes() -> impl Iterator<Item = &'static str> {
    PROVIDERS
        .iter()
        .flat_map(|p| p.key_prefixes.iter().copied())
        .chain(OTHER_KEY_PREFIXES.iter().copied())
}

const COUNT: usize = PROVIDERS.len();

// The table is indexed by the enum: row `i` must be the variant whose discriminant is `i`.
const _: () = {
    let mut i = 0;
    while i < COUNT {
        assert!(
            PROVIDERS[i].provider as usize == i,
            "PROVIDERS must list the providers in the order of the enum"
        );
        i += 1;
    }
};

impl Provider {
    /// Every provider, in precedence order.
    pub const ALL: [Provider; COUNT] = {
        let mut all = [Provider::Mogplex; COUNT];
        let mut i = 0;
        while i < COUNT {
            all[i] = PROVIDERS[i].provider;
            i += 1;
        }
        all
    };

    /// This provider's row of the table.
    pub fn spec(self) -> &'static ProviderSpec {
        &PROVIDERS[self as usize]
    }

    /// The name used on the command line and as the key under `providers` in `auth.json`.
    pub fn id(self) -> &'static str {
        self.spec().id
    }

    /// The name people know it by.
    pub fn display_name(self) -> &'static str {
        self.spec().display_name
    }

    /// The environment variable that supplies this provider's key.
    pub fn env_var(self) -> &'static str {
        self.spec().key_var
    }

    /// Models offered by `/model` for this provider reached with its own key, the default first.
    pub fn known_models(self) -> &'static [&'static str] {
        self.spec().known_models
    }

    /// The provider a bare model name's well-known prefix points at (`claude-…` → Anthropic).
    pub fn for_model_name(model: &str) -> Option<Provider> {
        PROVIDERS
            .iter()
            .find(|p| p.model_prefixes.iter().any(|m| model.starts_with(m)))
            .map(|p| p.provider)
    }

    /// The comma-separated list of provider names, for help and error text.
    pub fn names() -> String {
        Provider::ALL
            .iter()
            .map(|p| p.id())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider `{0}`")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        Provider::ALL
            .into_iter()
            .find(|p| p.id() == lower)
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    #[error("{var} is not a valid URL: {reason}")]
    Invalid { var: &'static str, reason: String },
    #[error("{var} uses plain http:// for a host that is not loopback ({host})")]
    InsecureHttp { var: &'static str, host: String },
    #[error("{var} must be an http:// or https:// URL")]
    Scheme { var: &'static str },
}

impl BaseUrlError {
    pub fn hint(&self) -> String {
        match self {
            BaseUrlError::InsecureHttp { var, .. } => format!(
                "credentials would travel unencrypted; use https://, or http:// only for 127.0.0.1, ::1 or localhost (check {var})"
            ),
            BaseUrlError::Invalid { var, .. } | BaseUrlError::Scheme { var } => {
                format!(
                    "set {var} to a base URL such as https://example.com/v1, or unset it to use the default"
                )
            }
        }
    }
}

/// Parses and checks a base URL; plain http is allowed for loopback hosts only, so that a
/// credential never travels unencrypted off the machine.
pub fn check_base_url(var: &'static str, raw: &str) -> Result<Url, BaseUrlError> {
    let url = Url::parse(raw.trim()).map_err(|e| BaseUrlError::Invalid {
        var,
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if !loopback {
                let host = url.host_str().unwrap_or_default().to_owned();
                return Err(BaseUrlError::InsecureHttp { var, host });
            }
        }
        _ => return Err(BaseUrlError::Scheme { var }),
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(BaseUrlError::Invalid {
            var,
            reason: "no host".into(),
        });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_variables_and_prefixes_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for p in &PROVIDERS {
            for name in [p.id, p.key_var, p.base_url_var] {
                assert!(seen.insert(name), "{name} appears twice");
            }
            assert_eq!(p.id, p.id.to_ascii_lowercase(), "ids are lowercase");
        }
        // A bare model name points at one provider at most.
        for a in &PROVIDERS {
            for b in &PROVIDERS {
                for pa in a.model_prefixes {
                    for pb in b.model_prefixes {
                        if a.provider != b.provider {
                            assert!(!pa.starts_with(pb), "{pa} ({}) and {pb} ({})", a.id, b.id);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn known_bare_models_route_to_their_provider() {
        for p in &PROVIDERS {
            for m in p.known_models {
                if let Some(routed) = Provider::for_model_name(m) {
                    assert_eq!(routed, p.provider, "{m}");
                }
            }
        }
        assert_eq!(Provider::for_model_name("o3-mini"), Some(Provider::OpenAi));
        assert_eq!(Provider::for_model_name("llama-3"), None);
    }

    #[test]
    fn order_and_parsing() {
        assert_eq!(Provider::ALL[0], Provider::Mogplex);
        assert_eq!(Provider::ALL[9], Provider::Vercel);
        for p in Provider::ALL {
            assert_eq!(p.id().parse::<Provider>(), Ok(p));
            assert_eq!(p.spec().provider, p);
        }
        assert_eq!("OpenAI".parse::<Provider>(), Ok(Provider::OpenAi));
        assert!("nosuch".parse::<Provider>().is_err());
    }

    #[test]
    fn http_only_for_loopback() {
        assert!(check_base_url("X", "http://127.0.0.1:9/v1").is_ok());
        assert!(check_base_url("X", "http://[::1]:9").is_ok());
        assert!(check_base_url("X", "http://localhost").is_ok());
        assert!(matches!(
            check_base_url("X", "http://example.com"),
            Err(BaseUrlError::InsecureHttp { .. })
        ));
        assert!(matches!(
            check_base_url("X", "ftp://example.com"),
            Err(BaseUrlError::Scheme { .. })
        ));
        assert!(check_base_url("X", "https://example.com/v1").is_ok());
    }

    /// `docs/configuration.md` is where users look up a provider's variables: a new row must
    /// reach it.
    #[test]
    fn every_provider_is_documented() {
        let docs =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
        let text = std::fs::read_to_string(&docs).unwrap_or_default();
        for p in &PROVIDERS {
            let id = format!("(`{}`)", p.id);
            let prefixes = p.model_prefixes.iter().map(|m| format!("`{m}`"));
            let needles = [p.key_var, p.base_url_var, p.default_base_url, &id]
                .into_iter()
                .map(str::to_owned)
                .chain(p.default_model().map(|m| format!("`{m}`")))
                .chain(prefixes);
            for needle in needles {
                assert!(
                    text.contains(&needle),
                    "docs/configuration.md does not mention {needle} ({})",
                    p.id
                );
            }
        }
    }
}
