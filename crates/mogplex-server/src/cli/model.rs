//! `mogplex-server model add`: the model catalog, and where each model's requests go.

use super::args::{ModelAdd, ModelCommand};
use super::{Failure, connect, http_url};
use mogplex_protocol::{CliModel, ModelCaps, Pricing};
use mogplex_server::db::ModelRow;

/// The capabilities `--caps` accepts.
const CAPS: [&str; 4] = [
    "toolUse",
    "streaming",
    "reasoningEffort",
    "parallelToolCalls",
];

pub async fn run(cmd: ModelCommand) -> Result<(), Failure> {
    match cmd {
        ModelCommand::Add(a) => add(a).await,
    }
}

async fn add(a: ModelAdd) -> Result<(), Failure> {
    let ModelAdd {
        db,
        slug,
        display_name,
        provider,
        context_window,
        caps,
        input_price,
        output_price,
        currency,
        echo,
        upstream_url,
        upstream_key_env,
        upstream_model,
    } = a;
    if slug.trim().is_empty() || slug.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Failure::new(format!("`{slug}` is not a model slug"))
            .hint("use letters, digits, `-`, `.`, `/`, for example mogplex/gpt-4.1")
            .usage());
    }
    if let Some(bad) = caps.iter().find(|c| !CAPS.contains(&c.as_str())) {
        return Err(Failure::new(format!("unknown capability `{bad}`"))
            .hint(format!("use any of {}", CAPS.join(", ")))
            .usage());
    }
    if !echo && upstream_url.is_none() {
        return Err(Failure::new("say where requests for this model go")
            .hint("pass --echo, or --upstream-url URL --upstream-key-env VAR")
            .usage());
    }
    if let Some(u) = &upstream_url {
        http_url("--upstream-url", u)?;
    }
    let has = |c: &str| caps.iter().any(|x| x == c);
    let spec = CliModel {
        slug: slug.clone(),
        provider: provider.clone(),
        display_name: display_name.clone(),
        input_modalities: vec!["text".into()],
        caps: ModelCaps {
            tool_use: has("toolUse"),
            streaming: has("streaming") || echo,
            reasoning_effort: has("reasoningEffort"),
            parallel_tool_calls: has("parallelToolCalls"),
        },
        context_window,
        pricing: input_price.zip(output_price).map(|(i, o)| Pricing {
            input_per_million: i,
            output_per_million: o,
            currency: currency.clone(),
        }),
    };
    let row = ModelRow {
        slug: slug.clone(),
        provider,
        display_name,
        spec: serde_json::to_string(&spec).map_err(|e| Failure::new(e.to_string()))?,
        upstream_kind: if echo { "echo".into() } else { "openai".into() },
        upstream_base_url: upstream_url,
        upstream_key_env,
        upstream_model,
    };
    let db = connect(&db.database).await?;
    db.upsert_model(&row)
        .await
        .map_err(|e| Failure::new(format!("cannot store the model: {e}")))?;
    println!("Stored the model {slug}");
    Ok(())
}
