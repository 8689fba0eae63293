//! `mogplex-server mcp add|list|remove`: an account's MCP server definitions, with the values
//! marked secret sealed under `MOGPLEX_SECRETS_KEY` and taken from the environment or stdin,
//! never from the command line.

use super::args::{McpAdd, McpCommand};
use super::{Failure, audited, connect, http_url, say, storage, user_id};
use serde_json::{Map, Value, json};

pub async fn run(cmd: McpCommand) -> Result<(), Failure> {
    match cmd {
        McpCommand::Add(a) => add(*a).await,
        McpCommand::List { db, email } => {
            let json = db.json;
            let db = connect(&db.database).await?;
            let uid = user_id(&db, &email).await?;
            let rows = db.list_mcp(&uid).await.map_err(storage)?;
            if json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|(name, enabled, config, sealed)| {
                        let config: Value = serde_json::from_str(config).unwrap_or(Value::Null);
                        json!({"name": name, "enabled": enabled, "config": config, "has_secrets": sealed.is_some()})
                    })
                    .collect();
                println!("{}", json!({ "servers": list }));
            } else {
                for (name, enabled, config, sealed) in rows {
                    println!(
                        "{name}\t{}\t{config}{}",
                        if enabled { "enabled" } else { "disabled" },
                        if sealed.is_some() {
                            "\t(secret values encrypted)"
                        } else {
                            ""
                        }
                    );
                }
            }
            Ok(())
        }
        McpCommand::Remove { db, email, name } => {
            let json = db.json;
            let db = connect(&db.database).await?;
            let uid = user_id(&db, &email).await?;
            if !db.remove_mcp(&uid, name.trim()).await.map_err(storage)? {
                return Err(Failure::new(format!(
                    "{email} has no MCP server named {}",
                    name.trim()
                ))
                .hint("see `mogplex-server mcp list`")
                .usage());
            }
            audited(
                &db,
                format!("mcp remove {}", name.trim()),
                Some((&uid, &email)),
            )
            .await;
            say(
                json,
                json!({"removed": name.trim(), "email": email}),
                format!("Removed the MCP server {} of {email}", name.trim()),
            );
            Ok(())
        }
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

/// Secret items, never given on the command line (where every local user can read them):
/// `K` takes the value of this command's environment variable `K`, `K=env:VAR` that of `VAR`,
/// `K=-` reads it from stdin (for one item at most).
fn secret_pairs(
    items: &[String],
    flag: &str,
    stdin_taken: &mut bool,
) -> Result<Map<String, Value>, Failure> {
    let from_env = |k: &str, var: &str| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Failure::new(format!(
                    "{flag} {k}: the environment variable {var} is not set"
                ))
                .hint(format!(
                    "set it for this command: {var}=… mogplex-server mcp add …"
                ))
                .usage()
            })
    };
    let mut out = Map::new();
    for item in items {
        let (k, v) = match item.split_once('=') {
            None => (item.as_str(), from_env(item, item)?),
            Some((k, "-")) => {
                if std::mem::replace(stdin_taken, true) {
                    return Err(Failure::new("only one secret value can be read from stdin")
                        .hint("take the others from environment variables: K=env:VAR")
                        .usage());
                }
                (k, read_stdin_value(flag, k)?)
            }
            Some((k, rest)) => match rest.strip_prefix("env:") {
                Some(var) if !var.is_empty() => (k, from_env(k, var)?),
                _ => {
                    return Err(Failure::new(format!(
                        "{flag} takes secret values from the environment or stdin, never from the command line (where other users can read them)"
                    ))
                    .hint(format!(
                        "use {flag} {k}=env:VAR with the value in $VAR, or {flag} {k}=- with the value on stdin"
                    ))
                    .usage());
                }
            },
        };
        if k.is_empty() {
            return Err(Failure::new(format!("{flag} wants a name, got `{item}`")).usage());
        }
        out.insert(k.to_owned(), Value::String(v));
    }
    Ok(out)
}

/// One secret value from stdin, without its line ending.
fn read_stdin_value(flag: &str, k: &str) -> Result<String, Failure> {
    use std::io::{IsTerminal, Read};
    if std::io::stdin().is_terminal() {
        return Err(Failure::new(format!(
            "{flag} {k}=- reads the value from stdin, and stdin is a terminal"
        ))
        .hint("pipe it in: printf '%s' \"$VALUE\" | mogplex-server mcp add …")
        .usage());
    }
    let mut buf = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut buf)
        .map_err(|_| {
            Failure::new("cannot read the secret value from stdin (is it UTF-8?)").usage()
        })?;
    let v = buf.trim_end_matches(['\n', '\r']).to_owned();
    if v.is_empty() {
        return Err(Failure::new(format!("{flag} {k}=-: stdin was empty")).usage());
    }
    Ok(v)
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
    let mut stdin_taken = false;
    let (config, secret) = match (&command, &url) {
        (Some(cmd), None) => (
            json!({"command": cmd, "args": args, "env": pairs(&env, "--env")?}),
            json!({"env": secret_pairs(&secret_env, "--secret-env", &mut stdin_taken)?}),
        ),
        (None, Some(u)) => {
            http_url("--url", u)?;
            (
                json!({"url": u, "http_headers": pairs(&headers, "--header")?}),
                json!({"http_headers": secret_pairs(&secret_headers, "--secret-header", &mut stdin_taken)?}),
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
    let json = db.json;
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
    audited(
        &db,
        format!("mcp add {}", name.trim()),
        Some((&uid, &email)),
    )
    .await;
    say(
        json,
        json!({"stored": name.trim(), "email": email, "secrets_encrypted": sealed.is_some()}),
        format!(
            "Stored the MCP server {} for {email}{}",
            name.trim(),
            if sealed.is_some() {
                " (secret values encrypted)"
            } else {
                ""
            }
        ),
    );
    Ok(())
}
