//! `mogplex-server keys rotate|list`: the ID token signing keys. A rotated-in key is published
//! at once and signs from `--lead` seconds later (longer than any server's key cache, so every
//! process has it before it signs); the key it replaces stays published until the ID tokens it
//! signed have expired. Keys no longer published are deleted by the next rotation.

use super::args::KeysCommand;
use super::{Failure, connect, storage};
use mogplex_server::Config;
use mogplex_server::oidc::keys::{self, KeyState, schedule};
use mogplex_server::secrets::SecretBox;

fn when(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

pub async fn run(cmd: KeysCommand) -> Result<(), Failure> {
    let cfg = Config::new("http://localhost");
    match cmd {
        KeysCommand::Rotate { db, lead } => {
            let sealer = SecretBox::from_config(&cfg).map_err(|e| {
                Failure::new(format!("cannot make a signing key: {e}")).hint(
                    "set MOGPLEX_SECRETS_KEY to the key every server process of this database uses",
                )
            })?;
            let db = connect(&db.database).await?;
            let pruned = keys::prune(&db, cfg.id_token_ttl).await.map_err(storage)?;
            let row = keys::rotate(&db, &sealer, i64::from(lead))
                .await
                .map_err(storage)?;
            println!(
                "Added signing key {}: published now, signing from {} (in {lead} s)",
                row.kid,
                when(row.activates_at)
            );
            println!(
                "The key it replaces stays published until {} (when its last ID tokens expire)",
                when(row.activates_at + cfg.id_token_ttl)
            );
            if pruned > 0 {
                println!("Deleted {pruned} retired key(s)");
            }
            Ok(())
        }
        KeysCommand::List { db } => {
            let json = db.json;
            let db = connect(&db.database).await?;
            let rows = db.signing_keys().await.map_err(storage)?;
            let states = schedule(&rows, mogplex_server::crypto::now(), cfg.id_token_ttl);
            if json {
                let items: Vec<_> = rows
                    .iter()
                    .zip(&states)
                    .map(|(k, s)| {
                        serde_json::json!({
                            "kid": k.kid, "alg": k.alg, "state": s.as_str(),
                            "created_at": k.created_at, "activates_at": k.activates_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::from(items));
                return Ok(());
            }
            if rows.is_empty() {
                println!(
                    "No signing keys yet: the server makes the first when it signs its first ID token"
                );
            }
            for (k, s) in rows.iter().zip(states) {
                let note = match s {
                    KeyState::Next => format!("signs from {}", when(k.activates_at)),
                    KeyState::Current => format!("signing since {}", when(k.activates_at)),
                    KeyState::Retiring => "published until its ID tokens expire".to_owned(),
                    KeyState::Retired => "no longer published".to_owned(),
                };
                println!("{}  {}  {:<8}  {note}", k.kid, k.alg, s.as_str());
            }
            Ok(())
        }
    }
}
