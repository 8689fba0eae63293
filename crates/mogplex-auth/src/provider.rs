//! The credentials mogplex knows: the Mogplex account and nine model providers.
//!
//! The order of [`Provider::ALL`] is the precedence order of SPEC section 2: when nothing else
//! picks the provider, the first one with a credential wins.

use std::fmt;
use std::str::FromStr;

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

impl Provider {
    /// Every provider, in precedence order.
    pub const ALL: [Provider; 10] = [
        Provider::Mogplex,
        Provider::Anthropic,
        Provider::OpenAi,
        Provider::Google,
        Provider::Groq,
        Provider::Mistral,
        Provider::DeepSeek,
        Provider::Xai,
        Provider::Cohere,
        Provider::Vercel,
    ];

    /// The name used on the command line and as the key under `providers` in `auth.json`.
    pub fn id(self) -> &'static str {
        match self {
            Provider::Mogplex => "mogplex",
            Provider::Anthropic => "anthropic",
            Provider::OpenAi => "openai",
            Provider::Google => "google",
            Provider::Groq => "groq",
            Provider::Mistral => "mistral",
            Provider::DeepSeek => "deepseek",
            Provider::Xai => "xai",
            Provider::Cohere => "cohere",
            Provider::Vercel => "vercel",
        }
    }

    /// The name people know it by.
    pub fn display_name(self) -> &'static str {
        match self {
            Provider::Mogplex => "Mogplex",
            Provider::Anthropic => "Anthropic",
            Provider::OpenAi => "OpenAI",
            Provider::Google => "Google",
            Provider::Groq => "Groq",
            Provider::Mistral => "Mistral",
            Provider::DeepSeek => "DeepSeek",
            Provider::Xai => "xAI",
            Provider::Cohere => "Cohere",
            Provider::Vercel => "Vercel AI Gateway",
        }
    }

    /// The environment variable that supplies this provider's key.
    pub fn env_var(self) -> &'static str {
        match self {
            Provider::Mogplex => "MOGPLEX_API_KEY",
            Provider::Anthropic => "ANTHROPIC_API_KEY",
            Provider::OpenAi => "OPENAI_API_KEY",
            Provider::Google => "GOOGLE_GENERATIVE_AI_API_KEY",
            Provider::Groq => "GROQ_API_KEY",
            Provider::Mistral => "MISTRAL_API_KEY",
            Provider::DeepSeek => "DEEPSEEK_API_KEY",
            Provider::Xai => "XAI_API_KEY",
            Provider::Cohere => "COHERE_API_KEY",
            Provider::Vercel => "VERCEL_API_TOKEN",
        }
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
