//! `mogplex-server idp add|list|remove`: company identity providers for single sign-on. The
//! client secret stays in the server's environment (`--client-secret-env VAR`): only the
//! variable's name is stored.

use super::args::IdpCommand;
use super::{Failure, connect, http_url, storage};
use mogplex_server::db::idp::IdpRow;

pub async fn run(cmd: IdpCommand) -> Result<(), Failure> {
    match cmd {
        IdpCommand::Add {
            db,
            id,
            name,
            issuer,
            client_id,
            client_secret_env,
            allowed_domains,
            create_accounts,
        } => {
            http_url("--issuer", &issuer)?;
            let issuer = issuer.trim_end_matches('/').to_owned();
            let id_ok = !id.is_empty()
                && id.len() <= 32
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !id_ok {
                return Err(
                    Failure::new(format!("the provider id {id:?} cannot be used"))
                        .hint("use 1 to 32 lowercase letters, digits or '-', e.g. acme")
                        .usage(),
                );
            }
            let var_ok = !client_secret_env.is_empty()
                && client_secret_env
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !var_ok {
                return Err(Failure::new("--client-secret-env takes the name of an environment variable")
                    .hint("e.g. --client-secret-env ACME_OIDC_SECRET, and set that variable for the server")
                    .usage());
            }
            let domains: Vec<String> = allowed_domains
                .iter()
                .map(|d| d.trim().to_lowercase())
                .collect();
            if let Some(d) = domains
                .iter()
                .find(|d| d.is_empty() || d.contains('@') || d.contains('*') || !d.contains('.'))
            {
                return Err(
                    Failure::new(format!("--allowed-domain {d:?} is not a domain"))
                        .hint("give the part after the @, e.g. --allowed-domain example.com")
                        .usage(),
                );
            }
            if create_accounts && domains.is_empty() {
                return Err(
                    Failure::new("--create-accounts needs at least one --allowed-domain")
                        .hint("accounts are created only for the domains you name")
                        .usage(),
                );
            }
            let row = IdpRow {
                id: id.clone(),
                name: name.trim().to_owned(),
                issuer: issuer.clone(),
                client_id,
                secret_env: client_secret_env,
                allowed_domains: domains,
                create_accounts,
                created_at: mogplex_server::crypto::now(),
            };
            let db = connect(&db.database).await?;
            if !db.add_idp(&row).await.map_err(storage)? {
                return Err(
                    Failure::new(format!("an identity provider {id} exists already"))
                        .hint("remove it first with `mogplex-server idp remove --id`")
                        .usage(),
                );
            }
            println!("Added identity provider {id} ({issuer})");
            println!(
                "Register this redirect URI with it: <public URL>{}",
                mogplex_server::oidc::sso::CALLBACK
            );
            Ok(())
        }
        IdpCommand::List { db } => {
            let json = db.json;
            let db = connect(&db.database).await?;
            let rows = db.idps().await.map_err(storage)?;
            if json {
                let items: Vec<_> = rows
                    .iter()
                    .map(|i| {
                        serde_json::json!({
                            "id": i.id, "name": i.name, "issuer": i.issuer, "client_id": i.client_id,
                            "client_secret_env": i.secret_env, "allowed_domains": i.allowed_domains,
                            "create_accounts": i.create_accounts,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::from(items));
                return Ok(());
            }
            for i in rows {
                println!(
                    "{}  {}  {}  client {}  secret from ${}  domains: {}{}",
                    i.id,
                    i.name,
                    i.issuer,
                    i.client_id,
                    i.secret_env,
                    if i.allowed_domains.is_empty() {
                        "any".to_owned()
                    } else {
                        i.allowed_domains.join(" ")
                    },
                    if i.create_accounts {
                        "  creates accounts"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        IdpCommand::Remove { db, id } => {
            let db = connect(&db.database).await?;
            if db.remove_idp(&id).await.map_err(storage)? {
                println!("Removed identity provider {id}");
                Ok(())
            } else {
                Err(Failure::new(format!("no identity provider {id}"))
                    .hint("see `mogplex-server idp list`")
                    .usage())
            }
        }
    }
}
