//! `mogplex-server pat create|revoke|list`: personal access tokens, shown once at creation.

use super::args::PatCommand;
use super::{Failure, connect, storage, user_id};
use mogplex_server::audit::{self, Event, kind};
use mogplex_server::crypto;
use serde_json::json;

pub async fn run(cmd: PatCommand) -> Result<(), Failure> {
    match cmd {
        PatCommand::Create {
            db,
            email,
            name,
            expires_in_days,
        } => {
            let json = db.json;
            let db = connect(&db.database).await?;
            let uid = user_id(&db, &email).await?;
            let token = crypto::personal_access_token();
            let expires = expires_in_days.map(|d| crypto::now() + i64::from(d) * 86_400);
            let row = db
                .create_pat(&uid, &name, &token, expires)
                .await
                .map_err(|e| Failure::new(format!("cannot create the token: {e}")))?;
            let e = Event::new(kind::PAT_CREATED)
                .user(&uid)
                .email(&email)
                .detail(format!("{} ({}) {name}", row.id, row.prefix));
            audit::record(&db, e).await;
            if json {
                println!(
                    "{}",
                    json!({"id": row.id, "prefix": row.prefix, "name": row.name, "expires_at": row.expires_at, "token": token})
                );
                return Ok(());
            }
            eprintln!(
                "Created personal access token {} ({}) for {email}; it is shown once:",
                row.id, row.prefix
            );
            println!("{token}");
            Ok(())
        }
        PatCommand::Revoke { db, email, id } => {
            let json = db.json;
            let db = connect(&db.database).await?;
            let uid = user_id(&db, &email).await?;
            if db.revoke_pat(&uid, id.trim()).await.map_err(storage)? {
                // The id, never the token (which `--id` also accepts).
                let shown = if id.trim().starts_with("pat_") {
                    id.trim()
                } else {
                    "(given by value)"
                };
                let e = Event::new(kind::PAT_REVOKED)
                    .user(&uid)
                    .email(&email)
                    .detail(shown.to_owned());
                audit::record(&db, e).await;
                if json {
                    println!("{}", json!({"revoked": true}));
                } else {
                    println!("Revoked the personal access token");
                }
                Ok(())
            } else {
                Err(Failure::new(format!(
                    "{email} has no active personal access token with that id"
                ))
                .hint("see `mogplex-server pat list`")
                .usage())
            }
        }
        PatCommand::List { db, email } => {
            let json = db.json;
            let db = connect(&db.database).await?;
            let uid = user_id(&db, &email).await?;
            let rows = db.list_pats(&uid).await.map_err(storage)?;
            if json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|p| json!({"id": p.id, "prefix": p.prefix, "name": p.name, "created_at": p.created_at,
                                    "expires_at": p.expires_at, "revoked_at": p.revoked_at}))
                    .collect();
                println!("{}", json!({ "tokens": list }));
                return Ok(());
            }
            for p in rows {
                let state = if p.revoked_at.is_some() {
                    "revoked"
                } else if p.expires_at.is_some_and(|e| e <= crypto::now()) {
                    "expired"
                } else {
                    "active"
                };
                println!("{}\t{}\t{}\t{state}", p.id, p.prefix, p.name);
            }
            Ok(())
        }
    }
}
