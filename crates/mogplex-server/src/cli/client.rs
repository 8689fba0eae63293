//! `mogplex-server client add|list|remove`: OAuth clients besides the built-in `mogplex-cli`.
//! A confidential client's secret is printed once, at creation, and stored as a hash.

use super::args::ClientCommand;
use super::{Failure, connect, storage};
use mogplex_protocol::oauth::{
    AUTHORIZATION_CODE_GRANT, CLIENT_ID, REFRESH_TOKEN_GRANT, auth_method,
};
use mogplex_server::crypto;
use mogplex_server::db::clients::ClientRow;
use mogplex_server::oidc::clients::check_registration;

pub async fn run(cmd: ClientCommand) -> Result<(), Failure> {
    match cmd {
        ClientCommand::Add {
            db,
            name,
            id,
            redirect_uris,
            grant_types,
            confidential,
            auth_method: method,
        } => {
            let json = db.json;
            let method = match (confidential, method) {
                (false, None) => auth_method::NONE.to_owned(),
                (true, None) => auth_method::CLIENT_SECRET_BASIC.to_owned(),
                (false, Some(m)) if m != auth_method::NONE => {
                    return Err(
                        Failure::new(format!("--auth-method {m} needs --confidential"))
                            .hint("add --confidential for a client with a secret")
                            .usage(),
                    );
                }
                (true, Some(m)) if m == auth_method::NONE => {
                    return Err(Failure::new(
                        "a confidential client cannot use --auth-method none",
                    )
                    .hint("use client_secret_basic or client_secret_post")
                    .usage());
                }
                (_, Some(m)) => m,
            };
            let grant_types = if grant_types.is_empty() {
                vec![
                    AUTHORIZATION_CODE_GRANT.to_owned(),
                    REFRESH_TOKEN_GRANT.to_owned(),
                ]
            } else {
                grant_types
            };
            if let Err((code, why)) = check_registration(&redirect_uris, &grant_types, &method) {
                return Err(Failure::new(format!("{code}: {why}"))
                    .hint("redirect URIs are matched exactly: https, or http to 127.0.0.1, [::1] or localhost, no fragment or wildcard, at most 20")
                    .usage());
            }
            let name = name.trim().to_owned();
            if name.is_empty() || name.len() > 100 {
                return Err(Failure::new("--name must be 1 to 100 characters").usage());
            }
            let id = match id {
                Some(i) => i.trim().to_owned(),
                None => crypto::id("mcl_"),
            };
            let id_ok = !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !id_ok || id == CLIENT_ID {
                return Err(Failure::new(format!("the client id {id:?} cannot be used"))
                    .hint("use 1 to 64 letters, digits, '-', '_' or '.'; mogplex-cli is built in")
                    .usage());
            }
            let secret = confidential.then(|| crypto::token("mog_cs_"));
            let row = ClientRow {
                client_id: id.clone(),
                name,
                secret_hash: secret.as_deref().map(crypto::hash),
                auth_method: method.clone(),
                redirect_uris,
                grant_types,
                created_at: crypto::now(),
                dynamic: false,
            };
            let db = connect(&db.database).await?;
            if !db.add_client(&row).await.map_err(storage)? {
                return Err(Failure::new(format!("a client {id} exists already"))
                    .hint("pick another --id, or `mogplex-server client remove --id` it first")
                    .usage());
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({"client_id": id, "client_secret": secret, "token_endpoint_auth_method": method})
                );
            } else {
                eprintln!("Added client {id} ({})", row.name);
                match secret {
                    Some(s) => {
                        eprintln!("client_id: {id}\nIts secret ({method}) is shown once:");
                        println!("{s}");
                    }
                    None => println!("{id}"),
                }
            }
            Ok(())
        }
        ClientCommand::List { db } => {
            let json = db.json;
            let db = connect(&db.database).await?;
            let rows = db.clients().await.map_err(storage)?;
            if json {
                let items: Vec<_> = rows
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "client_id": c.client_id, "name": c.name,
                            "confidential": c.secret_hash.is_some(),
                            "token_endpoint_auth_method": c.auth_method,
                            "redirect_uris": c.redirect_uris, "grant_types": c.grant_types,
                            "created_at": c.created_at, "dynamic": c.dynamic,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::from(items));
                return Ok(());
            }
            println!("{CLIENT_ID}  Mogplex CLI  public (built in)");
            for c in rows {
                let mut kind = if c.secret_hash.is_some() {
                    format!("confidential, {}", c.auth_method)
                } else {
                    "public".to_owned()
                };
                if c.dynamic {
                    kind.push_str(", registered itself");
                }
                println!(
                    "{}  {}  {kind}  grants: {}  redirects: {}",
                    c.client_id,
                    c.name,
                    c.grant_types.join(" "),
                    c.redirect_uris.join(" ")
                );
            }
            Ok(())
        }
        ClientCommand::Remove { db, id } => {
            if id == CLIENT_ID {
                return Err(Failure::new("mogplex-cli is built in and cannot be removed").usage());
            }
            let db = connect(&db.database).await?;
            if db.remove_client(id.trim()).await.map_err(storage)? {
                println!("Removed client {id}; its sign-ins are revoked");
                Ok(())
            } else {
                Err(Failure::new(format!("no client {id}"))
                    .hint("see `mogplex-server client list`")
                    .usage())
            }
        }
    }
}
