//! `mogplex-server user add|list|remove|passwd|disable|enable`: accounts, with passwords read
//! from stdin; every change is audited.

use super::args::{DbArg, UserCommand};
use super::{Failure, audited, connect, say, storage, user_id};
use mogplex_server::db::Db;
use mogplex_server::password;
use serde_json::json;
use std::io::{IsTerminal, Read};

pub async fn run(cmd: UserCommand) -> Result<(), Failure> {
    match cmd {
        UserCommand::Add {
            db,
            email,
            name,
            password_stdin: _,
        } => {
            let email = check_email(&email)?;
            let password = read_password()?;
            let json = db.json;
            let db = connect(&db.database).await?;
            let id = add_user(&db, &email, name.as_deref().unwrap_or(""), password).await?;
            audited(&db, "user add", Some((&id, &email))).await;
            say(
                json,
                json!({"id": id, "email": email}),
                format!("Created account {email} ({id})"),
            );
            Ok(())
        }
        UserCommand::List { db } => {
            let json = db.json;
            let db = connect(&db.database).await?;
            let rows = db.list_accounts().await.map_err(storage)?;
            if json {
                println!("{}", json!({ "users": rows }));
            } else {
                for u in rows {
                    println!(
                        "{}\t{}\t{}\t{}",
                        u.email,
                        u.id,
                        u.plan.as_deref().unwrap_or("-"),
                        if u.disabled_at.is_some() {
                            "disabled"
                        } else {
                            "active"
                        }
                    );
                }
            }
            Ok(())
        }
        UserCommand::Remove { db, email } => {
            let json = db.json;
            let db = connect(&db.database).await?;
            let uid = user_id(&db, &email).await?;
            db.remove_account(&uid).await.map_err(storage)?;
            audited(&db, "user remove", Some((&uid, &email))).await;
            say(
                json,
                json!({"removed": email, "id": uid}),
                format!("Removed the account {email} and everything it owned"),
            );
            Ok(())
        }
        UserCommand::Passwd {
            db,
            email,
            password_stdin: _,
        } => {
            let password = read_password()?;
            let json = db.json;
            let db = connect(&db.database).await?;
            let uid = user_id(&db, &email).await?;
            let hash = password::hash(password).await.map_err(Failure::new)?;
            db.set_password(&uid, &hash).await.map_err(storage)?;
            db.sign_out_everywhere(&uid).await.map_err(storage)?;
            audited(&db, "user passwd", Some((&uid, &email))).await;
            say(
                json,
                json!({"email": email, "id": uid, "signed_out": true}),
                format!("Set the password of {email} and signed it out everywhere"),
            );
            Ok(())
        }
        UserCommand::Disable { db, email } => set_disabled(db, email, true).await,
        UserCommand::Enable { db, email } => set_disabled(db, email, false).await,
    }
}

async fn set_disabled(db: DbArg, email: String, disabled: bool) -> Result<(), Failure> {
    let json = db.json;
    let db = connect(&db.database).await?;
    let uid = user_id(&db, &email).await?;
    db.set_disabled(&uid, disabled).await.map_err(storage)?;
    let what = if disabled {
        "user disable"
    } else {
        "user enable"
    };
    audited(&db, what, Some((&uid, &email))).await;
    let text = if disabled {
        format!("Disabled {email}: it cannot sign in, and its sessions and tokens have ended")
    } else {
        format!("Enabled {email} again")
    };
    say(
        json,
        json!({"email": email, "id": uid, "disabled": disabled}),
        text,
    );
    Ok(())
}

fn read_password() -> Result<String, Failure> {
    if std::io::stdin().is_terminal() {
        return Err(Failure::new(
            "--password-stdin reads the password from stdin, and stdin is a terminal",
        )
        .hint("pipe it in, for example: printf '%s' \"$PASSWORD\" | mogplex-server user add …")
        .usage());
    }
    let mut buf = String::new();
    std::io::stdin()
        .take(1025)
        .read_to_string(&mut buf)
        .map_err(|_| Failure::new("cannot read the password from stdin (is it UTF-8?)").usage())?;
    let pw = buf
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&buf)
        .to_owned();
    if pw.chars().count() < 8 || pw.len() > 1024 {
        return Err(Failure::new("the password must be 8 to 1024 characters").usage());
    }
    Ok(pw)
}

fn check_email(email: &str) -> Result<String, Failure> {
    let e = email.trim().to_lowercase();
    let ok = e.len() <= 320
        && e.split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.starts_with('.'))
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(e)
    } else {
        Err(Failure::new(format!("`{email}` is not an email address")).usage())
    }
}

/// Creates the account; an email already taken is a usage error.
pub async fn add_user(
    db: &Db,
    email: &str,
    name: &str,
    password: String,
) -> Result<String, Failure> {
    let hash = password::hash(password).await.map_err(Failure::new)?;
    match db.create_user(email, name, &hash).await {
        Ok(u) => Ok(u.id),
        Err(e) if e.to_string().to_lowercase().contains("unique") => {
            Err(Failure::new(format!("an account with the email {email} already exists")).usage())
        }
        Err(e) => Err(Failure::new(format!("cannot create the account: {e}"))),
    }
}
