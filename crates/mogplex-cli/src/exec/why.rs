//! Why `exec` cannot go on before anything is sent: no credential, a model that cannot be
//! selected, a model the account does not have; each error says what to do, naming the closest
//! usable models.

use crate::error::CliError;
use crate::exit;
use mogplex_auth::{Provider, Resolution};
use mogplex_protocol::CliModel;
use mogplex_providers::SelectError;

pub fn no_credential(resolution: &Resolution) -> CliError {
    if !resolution.other_issuers.is_empty() {
        let others = resolution.other_issuers.join(", ");
        return CliError::new(
            exit::NO_CREDENTIAL,
            format!(
                "no credentials for {}: nothing in the environment, and the stored Mogplex sign-in is for {others}",
                resolution.issuer
            ),
        )
        .hint(format!(
            "a sign-in is only ever used with the service that issued it: set MOGPLEX_URL={} to use it",
            resolution.other_issuers[0]
        ))
        .hint(format!(
            "or sign in to {} with `mogplex login`",
            resolution.issuer
        ));
    }
    CliError::new(
        exit::NO_CREDENTIAL,
        format!(
            "no credentials: nothing in the environment and no stored sign-in in {}",
            resolution.auth_file.display()
        ),
    )
    .hint("run `mogplex` in a terminal and choose \"Sign in with Mogplex\"")
    .hint("or set MOGPLEX_API_KEY (or a provider key such as ANTHROPIC_API_KEY or OPENAI_API_KEY) for this shell")
}

pub(super) fn select_error(e: SelectError, resolution: &Resolution) -> CliError {
    match e {
        SelectError::NoCredential => no_credential(resolution),
        SelectError::NoCredentialFor { provider, .. } => CliError::new(exit::NO_CREDENTIAL, e.to_string())
            .hint(format!(
                "set {} for this shell, or store a key with `printenv {} | mogplex login {} --with-api-key`",
                provider.env_var(),
                provider.env_var(),
                provider.id()
            )),
        SelectError::UnknownModel { ref model } => {
            let example = resolution.active().map_or("openai", |c| c.provider.id());
            with_closest_models(CliError::usage(e.to_string()), model, &usable_models(resolution, &[]))
                .hint(format!(
                    "name the provider too, for example `--model {example}/{model}`; providers: {}",
                    Provider::names()
                ))
        }
        SelectError::EmptyModel => CliError::usage(e.to_string()).hint("pass a model name, or leave out --model"),
    }
}

/// The models the user can name with `--model`: the Mogplex account's `catalog`, then the known
/// models of every other provider with a credential, each in a form that routes to it (`gpt-4.1`,
/// `groq/llama-3.3-70b-versatile`).
pub(super) fn usable_models(resolution: &Resolution, catalog: &[CliModel]) -> Vec<String> {
    let known = resolution
        .credentials
        .iter()
        .filter(|c| c.provider != Provider::Mogplex)
        .flat_map(|c| {
            c.provider.known_models().iter().map(|m| {
                if Provider::for_model_name(m) == Some(c.provider) {
                    (*m).to_owned()
                } else {
                    format!("{}/{m}", c.provider.id())
                }
            })
        });
    catalog
        .iter()
        .map(|m| m.slug.clone())
        .chain(known)
        .collect()
}

/// Adds to an unknown-model error the models the user can use: "did you mean" and the closest
/// ones first when one is close, else the first few in their order (each provider's default
/// first).
pub(super) fn with_closest_models(err: CliError, model: &str, usable: &[String]) -> CliError {
    const SHOWN: usize = 5;
    let mut unique: Vec<&str> = Vec::new();
    for m in usable {
        if !unique.contains(&m.as_str()) {
            unique.push(m);
        }
    }
    if unique.is_empty() {
        return err;
    }
    let closest = crate::suggest::ranked(
        model,
        unique.iter().copied(),
        crate::suggest::model_distance,
        SHOWN,
    );
    let (err, names, order) = match closest.first() {
        Some((name, d)) if crate::suggest::is_close(model, *d) => (
            err.hint(format!("did you mean `--model {name}`?")),
            closest.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            "closest first",
        ),
        _ => (err, unique.iter().copied().take(SHOWN).collect(), ""),
    };
    let more = unique.len() - names.len();
    let note = match (more, order) {
        (0, "") => String::new(),
        (0, order) => format!(" ({order})"),
        (more, "") => format!(" and {more} more (/model in the cockpit lists them all)"),
        (more, order) => format!(" ({order}; {more} more under /model in the cockpit)"),
    };
    err.hint(format!("models you can use: {}{note}", names.join(", ")))
}
