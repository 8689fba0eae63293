//! The `mogplex-server` binary's commands: [`args`] defines the command line, and each command
//! group has its module ([`serve`] for `serve` and `dev`, then `user`, `pat`, `model`, `plan`,
//! `mcp`, `audit`, `keys`, `client`, `idp`). What they share is here: the failure type, opening
//! the database, finding an account, printing a result as text or (`--json`) as one JSON
//! document, and the audit record of an administrator's change.

pub mod args;
mod audit;
mod client;
mod idp;
mod keys;
mod mcp;
mod model;
mod pat;
mod plan;
mod serve;
mod user;

use args::Command;
use mogplex_server::db::Db;

/// What a command says when it fails, and its exit code (1, or 2 for usage).
pub struct Failure {
    pub message: String,
    pub hint: Option<String>,
    pub code: u8,
}

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            code: 1,
        }
    }
    fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }
    fn usage(mut self) -> Self {
        self.code = 2;
        self
    }
}

pub async fn run(cmd: Command) -> Result<(), Failure> {
    match cmd {
        Command::Serve(a) => serve::serve(a).await,
        Command::Dev(a) => serve::dev(a).await,
        Command::User(c) => user::run(c).await,
        Command::Pat(c) => pat::run(c).await,
        Command::Model(c) => model::run(c).await,
        Command::Plan(c) => plan::run(c).await,
        Command::Mcp(c) => mcp::run(c).await,
        Command::Audit(a) => audit::run(a).await,
        Command::Keys(c) => keys::run(c).await,
        Command::Client(c) => client::run(c).await,
        Command::Idp(c) => idp::run(c).await,
    }
}

async fn connect(url: &str) -> Result<Db, Failure> {
    Db::connect(url).await.map_err(|e| {
        if e.is_migration() {
            Failure::new(format!("cannot open the database: {e}")).hint(
                "this database was migrated by another release of mogplex-server: run the release that migrated it",
            )
        } else {
            database_failure("cannot open the database", url, &e.to_string())
        }
    })
}

/// Why the database could not be opened, with what to check; for PostgreSQL the host and database
/// (never the password) are named.
fn database_failure(what: &str, database: &str, e: &str) -> Failure {
    let Ok(u) = url::Url::parse(database) else {
        return Failure::new(format!("{what}: {e}"));
    };
    if u.scheme() == "sqlite" {
        return Failure::new(format!("{what}: {e}"))
            .hint("check that the database file's directory exists and is writable");
    }
    if !u.scheme().starts_with("postgres") {
        return Failure::new(format!("{what}: {e}"))
            .hint("pass --database sqlite:///path/to/mogplex.db or postgres://user@host/db");
    }
    let host = u.host_str().unwrap_or("localhost");
    let port = u.port().unwrap_or(5432);
    let db = u.path().trim_start_matches('/');
    let user = if u.username().is_empty() {
        "(default)"
    } else {
        u.username()
    };
    Failure::new(format!(
        "{what}: cannot reach PostgreSQL at {host}:{port}, database `{db}` as user {user}: {e}"
    ))
    .hint(format!(
        "check that PostgreSQL is running and accepts connections on {host}:{port} (`pg_isready -h {host} -p {port}`), that the database `{db}` exists, and that the user may connect (pg_hba.conf, password)"
    ))
}

/// The id of the account with this email, or a usage error naming the way to create it.
async fn user_id(db: &Db, email: &str) -> Result<String, Failure> {
    match db.user_by_email(&email.trim().to_lowercase()).await {
        Ok(Some((u, _))) => Ok(u.id),
        Ok(None) => Err(Failure::new(format!("no account with the email {email}"))
            .hint("create it with `mogplex-server user add`")
            .usage()),
        Err(e) => Err(Failure::new(format!("cannot read accounts: {e}"))),
    }
}

/// A usage error unless `value` (given with `flag`) is an http(s) URL.
fn http_url(flag: &str, value: &str) -> Result<(), Failure> {
    let ok = url::Url::parse(value).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if ok {
        Ok(())
    } else {
        Err(Failure::new(format!("{flag} `{value}` is not an http(s) URL")).usage())
    }
}

/// A storage failure of an admin command, as it reads.
fn storage(e: impl std::fmt::Display) -> Failure {
    Failure::new(e.to_string())
}

/// Prints a command's result: `value` as JSON with `--json`, else `text`.
fn say(json: bool, value: serde_json::Value, text: impl std::fmt::Display) {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

/// Records an administrator's change in the audit log (`what` says which command and on what).
async fn audited(db: &Db, what: impl Into<String>, user: Option<(&str, &str)>) {
    let mut e = mogplex_server::audit::Event::new(mogplex_server::audit::kind::ADMIN).detail(what);
    if let Some((id, email)) = user {
        e = e.user(id).email(email);
    }
    mogplex_server::audit::record(db, e).await;
}
