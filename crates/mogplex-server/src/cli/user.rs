//! `mogplex-server user add`: accounts, with the password read from stdin.

use super::args::UserCommand;
use super::{Failure, connect};
use mogplex_server::db::Db;
use mogplex_server::password;
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
            let db = connect(&db.database).await?;
            let id = add_user(&db, &email, name.as_deref().unwrap_or(""), password).await?;
            println!("Created account {email} ({id})");
            Ok(())
        }
    }
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
