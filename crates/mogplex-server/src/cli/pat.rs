//! `mogplex-server pat create|revoke|list`: personal access tokens, shown once at creation.

use super::args::PatCommand;
use super::{Failure, connect, storage, user_id};
use mogplex_server::crypto;

pub async fn run(cmd: PatCommand) -> Result<(), Failure> {
    match cmd {
        PatCommand::Create {
            db,
            email,
            name,
            expires_in_days,
        } => {
            let db = connect(&db.database).await?;
            let uid = user_id(&db, &email).await?;
            let token = crypto::personal_access_token();
            let expires = expires_in_days.map(|d| crypto::now() + i64::from(d) * 86_400);
            let row = db
                .create_pat(&uid, &name, &token, expires)
                .await
                .map_err(|e| Failure::new(format!("cannot create the token: {e}")))?;
            eprintln!(
                "Created personal access token {} ({}) for {email}; it is shown once:",
                row.id, row.prefix
            );
            println!("{token}");
            Ok(())
        }
        PatCommand::Revoke { db, email, id } => {
            let db = connect(&db.database).await?;
            let uid = user_id(&db, &email).await?;
            if db.revoke_pat(&uid, id.trim()).await.map_err(storage)? {
                println!("Revoked the personal access token");
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
            let db = connect(&db.database).await?;
            let uid = user_id(&db, &email).await?;
            for p in db.list_pats(&uid).await.map_err(storage)? {
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
