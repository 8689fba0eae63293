//! What mogplex knows about each provider: how to talk to it, where, and with which model by
//! default. Base URLs can be redirected per provider with an environment variable (for proxies
//! and tests); plain `http://` is accepted only for loopback hosts.

use mogplex_auth::{Env, Provider};
use reqwest::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// OpenAI chat completions at `{base}/chat/completions`.
    OpenAiCompatible,
    /// The Mogplex gateway, OpenAI-shaped, at `{base}/api/cli/inference/chat/completions`.
    MogplexGateway,
    /// Anthropic Messages at `{base}/v1/messages`.
    AnthropicMessages,
}

#[derive(Debug, Clone, Copy)]
pub struct ProviderSpec {
    pub provider: Provider,
    pub api: Api,
    pub default_base_url: &'static str,
    /// The variable that redirects the base URL.
    pub base_url_var: &'static str,
    /// `None` for the Mogplex gateway, whose default comes from the account's catalog.
    pub default_model: Option<&'static str>,
    /// Whether the provider accepts `stream_options.include_usage`.
    pub stream_usage: bool,
}

pub fn spec(provider: Provider) -> ProviderSpec {
    use Api::*;
    let (api, default_base_url, base_url_var, default_model, stream_usage) = match provider {
        Provider::Mogplex => (
            MogplexGateway,
            mogplex_protocol::DEFAULT_BASE_URL,
            "MOGPLEX_URL",
            None,
            true,
        ),
        Provider::Anthropic => (
            AnthropicMessages,
            "https://api.anthropic.com",
            "ANTHROPIC_BASE_URL",
            Some("claude-sonnet-4-5"),
            false,
        ),
        Provider::OpenAi => (
            OpenAiCompatible,
            "https://api.openai.com/v1",
            "OPENAI_BASE_URL",
            Some("gpt-4.1"),
            true,
        ),
        Provider::Google => (
            OpenAiCompatible,
            "https://generativelanguage.googleapis.com/v1beta/openai",
            "GOOGLE_GENERATIVE_AI_BASE_URL",
            Some("gemini-2.5-flash"),
            true,
        ),
        Provider::Groq => (
            OpenAiCompatible,
            "https://api.groq.com/openai/v1",
            "GROQ_BASE_URL",
            Some("llama-3.3-70b-versatile"),
            true,
        ),
        Provider::Mistral => (
            OpenAiCompatible,
            "https://api.mistral.ai/v1",
            "MISTRAL_BASE_URL",
            Some("mistral-large-latest"),
            false,
        ),
        Provider::DeepSeek => (
            OpenAiCompatible,
            "https://api.deepseek.com/v1",
            "DEEPSEEK_BASE_URL",
            Some("deepseek-chat"),
            true,
        ),
        Provider::Xai => (
            OpenAiCompatible,
            "https://api.x.ai/v1",
            "XAI_BASE_URL",
            Some("grok-4"),
            true,
        ),
        Provider::Cohere => (
            OpenAiCompatible,
            "https://api.cohere.ai/compatibility/v1",
            "COHERE_BASE_URL",
            Some("command-a-03-2025"),
            false,
        ),
        Provider::Vercel => (
            OpenAiCompatible,
            "https://ai-gateway.vercel.sh/v1",
            "VERCEL_AI_GATEWAY_BASE_URL",
            Some("openai/gpt-4.1"),
            true,
        ),
    };
    ProviderSpec {
        provider,
        api,
        default_base_url,
        base_url_var,
        default_model,
        stream_usage,
    }
}

/// Models offered by `/model` for a provider reached with its own key (the Mogplex account's come
/// from its catalog). The provider's default comes first; any other model can still be named with
/// `--model`.
pub fn known_models(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Mogplex => &[],
        Provider::Anthropic => &["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"],
        Provider::OpenAi => &["gpt-4.1", "gpt-4.1-mini", "o3", "o4-mini"],
        Provider::Google => &["gemini-2.5-flash", "gemini-2.5-pro"],
        Provider::Groq => &["llama-3.3-70b-versatile", "llama-3.1-8b-instant"],
        Provider::Mistral => &["mistral-large-latest", "codestral-latest"],
        Provider::DeepSeek => &["deepseek-chat", "deepseek-reasoner"],
        Provider::Xai => &["grok-4", "grok-3-mini"],
        Provider::Cohere => &["command-a-03-2025"],
        Provider::Vercel => &["openai/gpt-4.1", "anthropic/claude-sonnet-4-5"],
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

impl ProviderSpec {
    /// The base URL in force: the override variable when set, else the default.
    pub fn base_url(&self, env: &dyn Env) -> Result<Url, BaseUrlError> {
        let var = self.base_url_var;
        let raw = env
            .var(var)
            .unwrap_or_else(|| self.default_base_url.to_owned());
        check_base_url(var, &raw)
    }
}

/// Parses and checks a base URL; plain http is allowed for loopback hosts only.
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

/// Joins a path onto a base URL, keeping the base's own path (`https://h/v1` + `/chat` →
/// `https://h/v1/chat`).
pub fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url.set_query(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn known_models_start_with_the_default() {
        for p in Provider::ALL {
            assert_eq!(
                known_models(p).first().copied(),
                spec(p).default_model,
                "{p}"
            );
        }
    }

    #[test]
    fn join_keeps_base_path() {
        let b = Url::parse("https://h/v1/").unwrap();
        assert_eq!(
            join(&b, "/chat/completions").as_str(),
            "https://h/v1/chat/completions"
        );
        let b = Url::parse("http://127.0.0.1:5").unwrap();
        assert_eq!(join(&b, "/api/x").as_str(), "http://127.0.0.1:5/api/x");
    }
}
