//! `mogplex-server model add|list|remove`: the model catalog, and where each model's requests go.

use super::args::{ModelAdd, ModelCommand};
use super::{Failure, audited, connect, http_url, say, storage};
use mogplex_protocol::{CliModel, ModelCaps, Pricing};
use mogplex_server::db::ModelRow;
use serde_json::json;

/// The capabilities `--caps` accepts.
const CAPS: [&str; 4] = [
    "toolUse",
    "streaming",
    "reasoningEffort",
    "parallelToolCalls",
];

pub async fn run(cmd: ModelCommand) -> Result<(), Failure> {
    match cmd {
        ModelCommand::Add(a) => add(*a).await,
        ModelCommand::List { db } => {
            let json = db.json;
            let db = connect(&db.database).await?;
            let rows = db.list_models().await.map_err(storage)?;
            if json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|m| {
                        json!({"slug": m.slug, "provider": m.provider, "display_name": m.display_name,
                               "upstream": m.upstream_kind, "upstream_url": m.upstream_base_url,
                               "upstream_key_env": m.upstream_key_env, "upstream_model": m.upstream_model})
                    })
                    .collect();
                println!("{}", json!({ "models": list }));
            } else {
                for m in rows {
                    let to = m.upstream_base_url.as_deref().unwrap_or(&m.upstream_kind);
                    println!("{}\t{}\t{}", m.slug, m.display_name, to);
                }
            }
            Ok(())
        }
        ModelCommand::Remove { db, slug } => {
            let json = db.json;
            let db = connect(&db.database).await?;
            if !db.remove_model(slug.trim()).await.map_err(storage)? {
                return Err(Failure::new(format!("there is no model {slug}"))
                    .hint("see `mogplex-server model list`")
                    .usage());
            }
            audited(&db, format!("model remove {}", slug.trim()), None).await;
            say(
                json,
                json!({"removed": slug.trim()}),
                format!("Removed the model {} (and from every plan)", slug.trim()),
            );
            Ok(())
        }
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
    let json = db.json;
    let db = connect(&db.database).await?;
    db.upsert_model(&row)
        .await
        .map_err(|e| Failure::new(format!("cannot store the model: {e}")))?;
    audited(&db, format!("model add {slug}"), None).await;
    say(
        json,
        json!({"stored": slug}),
        format!("Stored the model {slug}"),
    );
    Ok(())
}
