//! `mogplex-server`: serve the account service, run a local development instance, and
//! administer accounts and personal access tokens.
//!
//! Exit codes: 0 success, 1 failure (database unreachable, address in use, …), 2 usage.

use clap::{Args, Parser, Subcommand};
use mogplex_server::{AppState, Config, crypto, db::Db, password};
use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "mogplex-server",
    version,
    about = "The self-hostable Mogplex account service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the account service
    Serve {
        /// sqlite://PATH or postgres://USER@HOST/DB
        #[arg(long, env = "MOGPLEX_DATABASE_URL")]
        database: String,
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The address users and the CLI reach this server at (the OAuth issuer); default http://LISTEN
        #[arg(long)]
        public_url: Option<String>,
        /// Inference requests allowed per token per minute, per server process
        #[arg(long, default_value_t = 120)]
        rate_limit: u32,
    },
    /// Run a local development server with a demo account (loopback only)
    Dev {
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: SocketAddr,
        /// Where to keep the SQLite database; a new temporary directory if not given
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Manage accounts
    #[command(subcommand)]
    User(UserCommand),
    /// Manage personal access tokens
    #[command(subcommand)]
    Pat(PatCommand),
    /// Manage the model catalog
    #[command(subcommand)]
    Model(ModelCommand),
    /// Manage plans (which models an account may use)
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Manage an account's MCP server definitions
    #[command(subcommand)]
    Mcp(McpCommand),
}

#[derive(Debug, Subcommand)]
enum McpCommand {
    /// Add (or replace) an MCP server for an account: a command (stdio) or a URL (http)
    Add {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Store it disabled
        #[arg(long)]
        disabled: bool,
        /// The command of a stdio server
        #[arg(long, conflicts_with = "url", required_unless_present = "url")]
        command: Option<String>,
        /// An argument of the command (repeat for several)
        #[arg(long = "arg", requires = "command", allow_hyphen_values = true)]
        args: Vec<String>,
        /// An environment variable for the command, K=V
        #[arg(long = "env", requires = "command")]
        env: Vec<String>,
        /// Like --env, stored encrypted (needs MOGPLEX_SECRETS_KEY)
        #[arg(long = "secret-env", requires = "command")]
        secret_env: Vec<String>,
        /// The URL of an http server
        #[arg(long)]
        url: Option<String>,
        /// An HTTP header for the server, K=V
        #[arg(long = "header", requires = "url")]
        headers: Vec<String>,
        /// Like --header, stored encrypted (needs MOGPLEX_SECRETS_KEY)
        #[arg(long = "secret-header", requires = "url")]
        secret_headers: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Add (or replace) a model: the built-in echo model, or an OpenAI-compatible upstream
    Add {
        #[command(flatten)]
        db: DbArg,
        /// The slug clients ask for, for example `mogplex/gpt-4.1`
        #[arg(long)]
        slug: String,
        #[arg(long)]
        display_name: String,
        /// The provider shown in the catalog
        #[arg(long, default_value = "mogplex")]
        provider: String,
        #[arg(long)]
        context_window: Option<u64>,
        /// Capabilities: any of toolUse, streaming, reasoningEffort, parallelToolCalls
        #[arg(long, value_delimiter = ',')]
        caps: Vec<String>,
        /// Price per million input tokens (with --output-price and --currency)
        #[arg(long, requires = "output_price")]
        input_price: Option<f64>,
        #[arg(long, requires = "input_price")]
        output_price: Option<f64>,
        #[arg(long, default_value = "USD")]
        currency: String,
        /// Answer with the built-in echo model
        #[arg(long, conflicts_with_all = ["upstream_url", "upstream_key_env", "upstream_model"])]
        echo: bool,
        /// Base URL of an OpenAI-compatible upstream (requests go to URL/chat/completions)
        #[arg(long, requires = "upstream_key_env")]
        upstream_url: Option<String>,
        /// The name of the server environment variable that holds the upstream key
        #[arg(long, requires = "upstream_url")]
        upstream_key_env: Option<String>,
        /// The model name at the upstream (default: the slug)
        #[arg(long)]
        upstream_model: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum PlanCommand {
    /// Create a plan, or set the models of an existing one
    Create {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        name: String,
        /// A model slug the plan may use (repeat for several)
        #[arg(long = "model")]
        models: Vec<String>,
    },
    /// Give an account a plan
    Assign {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        email: String,
        #[arg(long)]
        plan: String,
    },
}

#[derive(Debug, Args)]
struct DbArg {
    /// sqlite://PATH or postgres://USER@HOST/DB
    #[arg(long, env = "MOGPLEX_DATABASE_URL")]
    database: String,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from stdin
    Add {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Read the password from stdin (required, so it never appears in the process list)
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PatCommand {
    /// Create a personal access token and print it once on stdout
    Create {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// Expire after this many days (default: never)
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke a personal access token by id (pat_…) or by the token itself
    Revoke {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        email: String,
        /// The id shown by `pat list`, or the token
        #[arg(long)]
        id: String,
    },
    /// List an account's personal access tokens (never the tokens themselves)
    List {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        email: String,
    },
}

struct Failure {
    message: String,
    hint: Option<String>,
    code: u8,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            if let Some(h) = f.hint {
                eprintln!("hint: {h}");
            }
            ExitCode::from(f.code)
        }
    }
}

async fn connect(url: &str) -> Result<Db, Failure> {
    Db::connect(url).await.map_err(|e| {
        let hint = if e.is_migration() {
            "this database was migrated by another release of mogplex-server: run the release that migrated it"
        } else {
            "pass --database sqlite:///path/to/mogplex.db or postgres://user@host/db, and check the server is reachable"
        };
        Failure::new(format!("cannot open the database: {e}")).hint(hint)
    })
}

async fn user_id(db: &Db, email: &str) -> Result<String, Failure> {
    match db.user_by_email(&email.trim().to_lowercase()).await {
        Ok(Some((u, _))) => Ok(u.id),
        Ok(None) => Err(Failure::new(format!("no account with the email {email}"))
            .hint("create it with `mogplex-server user add`")
            .usage()),
        Err(e) => Err(Failure::new(format!("cannot read accounts: {e}"))),
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

async fn add_user(db: &Db, email: &str, name: &str, password: String) -> Result<String, Failure> {
    let hash = password::hash(password).await.map_err(Failure::new)?;
    match db.create_user(email, name, &hash).await {
        Ok(u) => Ok(u.id),
        Err(e) if e.to_string().to_lowercase().contains("unique") => {
            Err(Failure::new(format!("an account with the email {email} already exists")).usage())
        }
        Err(e) => Err(Failure::new(format!("cannot create the account: {e}"))),
    }
}

async fn serve_until_signal(
    listener: tokio::net::TcpListener,
    state: AppState,
) -> Result<(), Failure> {
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    mogplex_server::serve(listener, state, shutdown)
        .await
        .map_err(|e| Failure::new(format!("the server stopped: {e}")))
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, Failure> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Failure::new(format!("cannot listen on {addr}: {e}"))
            .hint("choose another address with --listen")
    })
}

async fn run(cmd: Command) -> Result<(), Failure> {
    match cmd {
        Command::Serve {
            database,
            listen,
            public_url,
            rate_limit,
        } => {
            let listener = bind(listen).await?;
            let addr = listener
                .local_addr()
                .map_err(|e| Failure::new(e.to_string()))?;
            let public = public_url.unwrap_or_else(|| format!("http://{addr}"));
            if url::Url::parse(&public)
                .map(|u| !matches!(u.scheme(), "http" | "https"))
                .unwrap_or(true)
            {
                return Err(
                    Failure::new(format!("--public-url `{public}` is not an http(s) URL")).usage(),
                );
            }
            let mut cfg = Config::new(&public);
            cfg.gateway_per_minute = rate_limit.max(1);
            let state = AppState::new(&database, cfg)
                .await
                .map_err(|e| Failure::new(format!("cannot start: {e}")))?;
            mogplex_server::warn_line!(
                "mogplex-server: listening on {addr} as {public} ({} database)",
                state.db.backend()
            );
            serve_until_signal(listener, state).await
        }
        Command::Dev { listen, data_dir } => {
            if !listen.ip().is_loopback() {
                return Err(Failure::new("the dev server only listens on loopback")
                    .hint("use --listen 127.0.0.1:PORT; for anything else use `serve`")
                    .usage());
            }
            let dir = match data_dir {
                Some(d) => d,
                None => std::env::temp_dir().join(format!(
                    "mogplex-dev-{}",
                    crypto::hex(&crypto::random_bytes::<6>())
                )),
            };
            std::fs::create_dir_all(&dir)
                .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
            let listener = bind(listen).await?;
            let addr = listener
                .local_addr()
                .map_err(|e| Failure::new(e.to_string()))?;
            let public = format!("http://{addr}");
            let database = format!("sqlite://{}", dir.join("mogplex.db").display());
            let mut state = AppState::new(&database, Config::new(&public))
                .await
                .map_err(|e| Failure::new(format!("cannot start: {e}")))?;
            let (email, password) = seed_demo(&state.db, &dir).await?;
            // Loopback only, for development: the sign-in page names the demo account.
            let mut cfg = (*state.cfg).clone();
            cfg.sign_in_note = Some(format!(
                "Development server. Demo account: {email}, password: {password}"
            ));
            state.cfg = std::sync::Arc::new(cfg);
            // Whoever started us may stop reading after the password line (`| head`, a test, the
            // demo): a closed stdout must not take the server down.
            let banner = format!(
                "mogplex-server dev: listening on {public}\n  data directory: {}\n  demo account:   {email}\n  demo password:  {password}\n\nPoint the CLI at it:\n  MOGPLEX_URL={public} mogplex\n",
                dir.display()
            );
            use std::io::Write;
            let mut out = std::io::stdout();
            let _ = out.write_all(banner.as_bytes()).and_then(|_| out.flush());
            serve_until_signal(listener, state).await
        }
        Command::User(UserCommand::Add {
            db,
            email,
            name,
            password_stdin: _,
        }) => {
            let email = check_email(&email)?;
            let password = read_password()?;
            let db = connect(&db.database).await?;
            let id = add_user(&db, &email, name.as_deref().unwrap_or(""), password).await?;
            println!("Created account {email} ({id})");
            Ok(())
        }
        Command::Pat(PatCommand::Create {
            db,
            email,
            name,
            expires_in_days,
        }) => {
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
        Command::Pat(PatCommand::Revoke { db, email, id }) => {
            let db = connect(&db.database).await?;
            let uid = user_id(&db, &email).await?;
            if db
                .revoke_pat(&uid, id.trim())
                .await
                .map_err(|e| Failure::new(e.to_string()))?
            {
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
        Command::Model(ModelCommand::Add {
            db,
            slug,
            display_name,
            provider,
            context_window,
            caps,
            input_price,
            output_price,
            currency,
            echo,
            upstream_url,
            upstream_key_env,
            upstream_model,
        }) => {
            if slug.trim().is_empty() || slug.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Failure::new(format!("`{slug}` is not a model slug"))
                    .hint("use letters, digits, `-`, `.`, `/`, for example mogplex/gpt-4.1")
                    .usage());
            }
            let known = [
                "toolUse",
                "streaming",
                "reasoningEffort",
                "parallelToolCalls",
            ];
            if let Some(bad) = caps.iter().find(|c| !known.contains(&c.as_str())) {
                return Err(Failure::new(format!("unknown capability `{bad}`"))
                    .hint(format!("use any of {}", known.join(", ")))
                    .usage());
            }
            if !echo && upstream_url.is_none() {
                return Err(Failure::new("say where requests for this model go")
                    .hint("pass --echo, or --upstream-url URL --upstream-key-env VAR")
                    .usage());
            }
            if let Some(u) = &upstream_url
                && url::Url::parse(u)
                    .map(|u| !matches!(u.scheme(), "http" | "https"))
                    .unwrap_or(true)
            {
                return Err(
                    Failure::new(format!("--upstream-url `{u}` is not an http(s) URL")).usage(),
                );
            }
            let has = |c: &str| caps.iter().any(|x| x == c);
            let spec = mogplex_protocol::CliModel {
                slug: slug.clone(),
                provider: provider.clone(),
                display_name: display_name.clone(),
                input_modalities: vec!["text".into()],
                caps: mogplex_protocol::ModelCaps {
                    tool_use: has("toolUse"),
                    streaming: has("streaming") || echo,
                    reasoning_effort: has("reasoningEffort"),
                    parallel_tool_calls: has("parallelToolCalls"),
                },
                context_window,
                pricing: input_price
                    .zip(output_price)
                    .map(|(i, o)| mogplex_protocol::Pricing {
                        input_per_million: i,
                        output_per_million: o,
                        currency: currency.clone(),
                    }),
            };
            let row = mogplex_server::db::ModelRow {
                slug: slug.clone(),
                provider,
                display_name,
                spec: serde_json::to_string(&spec).map_err(|e| Failure::new(e.to_string()))?,
                upstream_kind: if echo { "echo".into() } else { "openai".into() },
                upstream_base_url: upstream_url,
                upstream_key_env,
                upstream_model,
            };
            let db = connect(&db.database).await?;
            db.upsert_model(&row)
                .await
                .map_err(|e| Failure::new(format!("cannot store the model: {e}")))?;
            println!("Stored the model {slug}");
            Ok(())
        }
        Command::Plan(PlanCommand::Create { db, name, models }) => {
            let db = connect(&db.database).await?;
            match db
                .set_plan(name.trim(), &models)
                .await
                .map_err(|e| Failure::new(e.to_string()))?
            {
                Ok(_) => {
                    println!(
                        "The plan {} allows: {}",
                        name.trim(),
                        if models.is_empty() {
                            "no models".to_owned()
                        } else {
                            models.join(", ")
                        }
                    );
                    Ok(())
                }
                Err(slug) => Err(Failure::new(format!("there is no model {slug}"))
                    .hint("add it first with `mogplex-server model add`")
                    .usage()),
            }
        }
        Command::Plan(PlanCommand::Assign { db, email, plan }) => {
            let db = connect(&db.database).await?;
            let uid = user_id(&db, &email).await?;
            let Some(pid) = db
                .plan_id(plan.trim())
                .await
                .map_err(|e| Failure::new(e.to_string()))?
            else {
                return Err(Failure::new(format!("there is no plan {plan}"))
                    .hint("create it with `mogplex-server plan create`")
                    .usage());
            };
            db.assign_plan(&uid, Some(&pid))
                .await
                .map_err(|e| Failure::new(e.to_string()))?;
            println!("{email} is now on the plan {}", plan.trim());
            Ok(())
        }
        Command::Mcp(McpCommand::Add {
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
        }) => {
            let pairs =
                |items: &[String],
                 flag: &str|
                 -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
                    items
                        .iter()
                        .map(|kv| match kv.split_once('=') {
                            Some((k, v)) if !k.is_empty() => {
                                Ok((k.to_owned(), serde_json::Value::String(v.to_owned())))
                            }
                            _ => Err(Failure::new(format!("{flag} wants K=V, got `{kv}`")).usage()),
                        })
                        .collect()
                };
            let (config, secret) = match (&command, &url) {
                (Some(cmd), None) => (
                    serde_json::json!({"command": cmd, "args": args, "env": pairs(&env, "--env")?}),
                    serde_json::json!({"env": pairs(&secret_env, "--secret-env")?}),
                ),
                (None, Some(u)) => {
                    if url::Url::parse(u)
                        .map(|x| !matches!(x.scheme(), "http" | "https"))
                        .unwrap_or(true)
                    {
                        return Err(
                            Failure::new(format!("--url `{u}` is not an http(s) URL")).usage()
                        );
                    }
                    (
                        serde_json::json!({"url": u, "http_headers": pairs(&headers, "--header")?}),
                        serde_json::json!({"http_headers": pairs(&secret_headers, "--secret-header")?}),
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
        Command::Pat(PatCommand::List { db, email }) => {
            let db = connect(&db.database).await?;
            let uid = user_id(&db, &email).await?;
            for p in db
                .list_pats(&uid)
                .await
                .map_err(|e| Failure::new(e.to_string()))?
            {
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

/// The demo account: created once per data directory; its password is kept beside the database
/// (mode 0600) so a restart can print it again.
async fn seed_demo(db: &Db, dir: &std::path::Path) -> Result<(String, String), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let email = "demo@mogplex.local".to_owned();
    let pw_file = dir.join("demo-password");
    // The development model and a plan that allows it (re-done each start; idempotent).
    let seeded = async {
        db.upsert_model(&mogplex_server::gateway::echo_row())
            .await?;
        db.set_plan("dev", &[mogplex_server::gateway::ECHO_MODEL.to_owned()])
            .await
    };
    let plan_id = match seeded.await {
        Ok(Ok(id)) => id,
        Ok(Err(slug)) => {
            return Err(Failure::new(format!(
                "cannot seed the dev plan: no model {slug}"
            )));
        }
        Err(e) => return Err(Failure::new(format!("cannot seed the dev plan: {e}"))),
    };
    if let (Ok(Some((u, _))), Ok(pw)) = (
        db.user_by_email(&email).await,
        std::fs::read_to_string(&pw_file),
    ) {
        db.assign_plan(&u.id, Some(&plan_id))
            .await
            .map_err(|e| Failure::new(e.to_string()))?;
        return Ok((email, pw.trim().to_owned()));
    }
    let password = crypto::b64url(&crypto::random_bytes::<12>());
    match db.user_by_email(&email).await {
        Ok(Some((u, _))) => {
            let h = password::hash(password.clone())
                .await
                .map_err(Failure::new)?;
            db.set_password(&u.id, &h)
                .await
                .map_err(|e| Failure::new(e.to_string()))?;
        }
        _ => {
            add_user(db, &email, "Demo", password.clone()).await?;
        }
    }
    if let Ok(Some((u, _))) = db.user_by_email(&email).await {
        db.assign_plan(&u.id, Some(&plan_id))
            .await
            .map_err(|e| Failure::new(e.to_string()))?;
    }
    std::fs::write(&pw_file, format!("{password}\n"))
        .and_then(|_| std::fs::set_permissions(&pw_file, std::fs::Permissions::from_mode(0o600)))
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", pw_file.display())))?;
    Ok((email, password))
}
