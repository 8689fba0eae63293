//! What the adapters read from the provider table ([`mogplex_auth::provider::PROVIDERS`]): how to
//! talk to each provider, where, and with which model by default. Base URLs can be redirected per
//! provider with an environment variable (for proxies and tests); plain `http://` is accepted only
//! for loopback hosts.

use mogplex_auth::Provider;
pub use mogplex_auth::provider::{Api, BaseUrlError, ProviderSpec, check_base_url};
use reqwest::Url;

/// The provider's row of the table.
pub fn spec(provider: Provider) -> ProviderSpec {
    *provider.spec()
}

/// Models offered by `/model` for a provider reached with its own key (the Mogplex account's come
/// from its catalog). The provider's default comes first; any other model can still be named with
/// `--model`.
pub fn known_models(provider: Provider) -> &'static [&'static str] {
    provider.known_models()
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
    fn known_models_start_with_the_default() {
        for p in Provider::ALL {
            assert_eq!(
                known_models(p).first().copied(),
                spec(p).default_model(),
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
