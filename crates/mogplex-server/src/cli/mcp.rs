//! `mogplex-server mcp add`: an account's MCP server definitions, with the values marked secret
//! sealed under `MOGPLEX_SECRETS_KEY`.

use super::args::{McpAdd, McpCommand};
use super::{Failure, connect, http_url, user_id};
use serde_json::{Map, Value, json};

pub async fn run(cmd: McpCommand) -> Result<(), Failure> {
    match cmd {
        McpCommand::Add(a) => add(a).await,
    }
}

/// `K=V` items as a JSON object; `flag` names them in the error.
fn pairs(items: &[String], flag: &str) -> Result<Map<String, Value>, Failure> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), Value::String(v.to_owned()))),
            _ => Err(Failure::new(format!("{flag} wants K=V, got `{kv}`")).usage()),
        })
        .collect()
}

async fn add(a: McpAdd) -> Result<(), Failure> {
    let McpAdd {
        db,
        email,
        name,
        disabled,
        command,
        args,
        env,
        secret_env,
        url,
        headers,
        secret_headers,
    } = a;
    let (config, secret) = match (&command, &url) {
        (Some(cmd), None) => (
            json!({"command": cmd, "args": args, "env": pairs(&env, "--env")?}),
            json!({"env": pairs(&secret_env, "--secret-env")?}),
        ),
        (None, Some(u)) => {
            http_url("--url", u)?;
            (
                json!({"url": u, "http_headers": pairs(&headers, "--header")?}),
                json!({"http_headers": pairs(&secret_headers, "--secret-header")?}),
            )
        }
        _ => return Err(Failure::new("give either --command or --url").usage()),
    };
    let has_secrets = secret.as_object().is_some_and(|o| {
        o.values()
            .any(|v| v.as_object().is_some_and(|m| !m.is_empty()))
    });
    let cfg = mogplex_server::Config::new("http://localhost");
    let sealed = if has_secrets {
        let sealer = mogplex_server::secrets::SecretBox::from_config(&cfg).map_err(|e| {
            Failure::new(format!("cannot store secret values: {e}"))
                .hint("set MOGPLEX_SECRETS_KEY to 32 random bytes in base64 (for example `openssl rand -base64 32`), the same for every server process")
        })?;
        Some(
            sealer
                .seal(&secret.to_string())
                .map_err(|e| Failure::new(e.to_string()))?,
        )
    } else {
        None
    };
    let db = connect(&db.database).await?;
    let uid = user_id(&db, &email).await?;
    db.upsert_mcp(
        &uid,
        name.trim(),
        !disabled,
        &config.to_string(),
        sealed.as_deref(),
    )
    .await
    .map_err(|e| Failure::new(format!("cannot store the MCP server: {e}")))?;
    println!(
        "Stored the MCP server {} for {email}{}",
        name.trim(),
        if sealed.is_some() {
            " (secret values encrypted)"
        } else {
            ""
        }
    );
    Ok(())
}
