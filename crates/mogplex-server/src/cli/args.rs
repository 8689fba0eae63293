//! The command line of `mogplex-server`: every subcommand and option, and nothing else (the
//! command groups' modules do the work).

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "mogplex-server",
    version,
    about = "The self-hostable Mogplex account service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the account service
    Serve(ServeArgs),
    /// Run a local development server with a demo account (loopback only)
    Dev(DevArgs),
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
    /// Show the audit log (sign-ins, tokens, device approvals, administrator changes)
    Audit(AuditArgs),
    /// Manage the ID token signing keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage registered OAuth clients (mogplex-cli is built in)
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage identity providers for single sign-on
    #[command(subcommand)]
    Idp(IdpCommand),
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Events since this time: a duration back from now (30m, 24h, 7d) or a date
    /// (2026-12-01, 2026-12-01T08:00:00Z); default 24h
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// Only events of this account (email or id)
    #[arg(long)]
    pub user: Option<String>,
    /// At most this many events (the oldest first)
    #[arg(long, default_value_t = 1000)]
    pub limit: i64,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// sqlite://PATH or postgres://USER@HOST/DB
    #[arg(long, env = "MOGPLEX_DATABASE_URL")]
    pub database: String,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The address users and the CLI reach this server at (the OAuth issuer); default http://LISTEN
    #[arg(long)]
    pub public_url: Option<String>,
    /// Inference requests allowed per token per minute (shared by all processes on PostgreSQL)
    #[arg(long, default_value_t = 120)]
    pub rate_limit: u32,
    /// Seconds during which a refresh token just replaced may be retried (a lost response)
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(0..=600))]
    pub refresh_grace: i64,
    /// Serve the demo MCP server at /mcp/demo (it requires its own OAuth: for trying MCP clients
    /// against this server; `dev` always serves it)
    #[arg(long)]
    pub demo_mcp: bool,
    /// Allow an http:// public URL that is not loopback (only behind a TLS-terminating proxy
    /// that is not reachable from outside, or for testing)
    #[arg(long)]
    pub insecure_http: bool,
    /// Behind a reverse proxy: take the client address from the last X-Forwarded-For entry, so
    /// throttles key on the client (never set this when clients reach the server directly)
    #[arg(long)]
    pub trust_proxy: bool,
    /// Seconds a client has to send a request's headers
    #[arg(long, default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds a kept-alive connection may wait for its next request (keep it above the
    /// clients' pool timeouts, 90 s for most, so none sends a request into a closing connection)
    #[arg(long, default_value_t = 120)]
    pub idle_timeout: u64,
    /// Connections one client address may hold open at once (0: no bound; behind a proxy every
    /// client shares the proxy's address)
    #[arg(long, default_value_t = 256)]
    pub max_connections_per_address: usize,
    /// Serve /health/live, /health/ready and /metrics on this address only (default: on --listen)
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Days the audit log keeps events (0: forever)
    #[arg(long, default_value_t = 365)]
    pub audit_retention_days: u32,
    /// Runs one account may create in 24 hours (then 429)
    #[arg(long, default_value_t = 500)]
    pub max_runs_per_day: u32,
    /// Events one run may hold (then 413)
    #[arg(long, default_value_t = 20_000)]
    pub max_events_per_run: u32,
    /// Log one JSON object per line (also MOGPLEX_LOG_FORMAT=json)
    #[arg(long)]
    pub log_json: bool,
}

#[derive(Debug, Args)]
pub struct DevArgs {
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Where to keep the SQLite database; a new temporary directory if not given
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DbArg {
    /// sqlite://PATH or postgres://USER@HOST/DB
    #[arg(long, env = "MOGPLEX_DATABASE_URL")]
    pub database: String,
    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
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
    /// List accounts: email, id, plan, whether disabled
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Remove an account and everything it owns (sessions, tokens, runs, MCP definitions)
    Remove {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        email: String,
    },
    /// Set an account's password (read from stdin) and sign it out everywhere
    Passwd {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        email: String,
        /// Read the password from stdin (required, so it never appears in the process list)
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable an account: it cannot sign in, and every session and token it has ends
    Disable {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled account again (its tokens stay revoked; it signs in anew)
    Enable {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PatCommand {
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

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Add (or replace) a model: the built-in echo model, or an OpenAI-compatible upstream
    Add(Box<ModelAdd>),
    /// List the catalog: slug, name, where requests go
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Remove a model from the catalog (and from every plan)
    Remove {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        slug: String,
    },
}

#[derive(Debug, Args)]
pub struct ModelAdd {
    #[command(flatten)]
    pub db: DbArg,
    /// The slug clients ask for, for example `mogplex/gpt-4.1`
    #[arg(long)]
    pub slug: String,
    #[arg(long)]
    pub display_name: String,
    /// The provider shown in the catalog
    #[arg(long, default_value = "mogplex")]
    pub provider: String,
    #[arg(long)]
    pub context_window: Option<u64>,
    /// Capabilities: any of toolUse, streaming, reasoningEffort, parallelToolCalls
    #[arg(long, value_delimiter = ',')]
    pub caps: Vec<String>,
    /// Price per million input tokens (with --output-price and --currency)
    #[arg(long, requires = "output_price")]
    pub input_price: Option<f64>,
    #[arg(long, requires = "input_price")]
    pub output_price: Option<f64>,
    #[arg(long, default_value = "USD")]
    pub currency: String,
    /// Answer with the built-in echo model
    #[arg(long, conflicts_with_all = ["upstream_url", "upstream_key_env", "upstream_model"])]
    pub echo: bool,
    /// Base URL of an OpenAI-compatible upstream (requests go to URL/chat/completions)
    #[arg(long, requires = "upstream_key_env")]
    pub upstream_url: Option<String>,
    /// The name of the server environment variable that holds the upstream key
    #[arg(long, requires = "upstream_url")]
    pub upstream_key_env: Option<String>,
    /// The model name at the upstream (default: the slug)
    #[arg(long)]
    pub upstream_model: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
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
    /// List plans, their models and how many accounts are on each
    List {
        #[command(flatten)]
        db: DbArg,
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

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Add (or replace) an MCP server for an account: a command (stdio) or a URL (http)
    Add(Box<McpAdd>),
    /// List an account's MCP servers (secret values are never shown)
    List {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        email: String,
    },
    /// Remove an MCP server from an account
    Remove {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct McpAdd {
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub name: String,
    /// Store it disabled
    #[arg(long)]
    pub disabled: bool,
    /// The command of a stdio server
    #[arg(long, conflicts_with = "url", required_unless_present = "url")]
    pub command: Option<String>,
    /// An argument of the command (repeat for several)
    #[arg(long = "arg", requires = "command", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// An environment variable for the command, K=V
    #[arg(long = "env", requires = "command")]
    pub env: Vec<String>,
    /// An environment variable stored encrypted (needs MOGPLEX_SECRETS_KEY): NAME takes the value
    /// of $NAME, NAME=env:VAR that of $VAR, NAME=- reads it from stdin
    #[arg(long = "secret-env", requires = "command")]
    pub secret_env: Vec<String>,
    /// The URL of an http server
    #[arg(long)]
    pub url: Option<String>,
    /// An HTTP header for the server, K=V
    #[arg(long = "header", requires = "url")]
    pub headers: Vec<String>,
    /// An HTTP header stored encrypted (needs MOGPLEX_SECRETS_KEY): NAME=env:VAR takes the value
    /// of $VAR, NAME=- reads it from stdin, NAME alone takes $NAME
    #[arg(long = "secret-header", requires = "url")]
    pub secret_headers: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key: published now, signing after the lead (needs MOGPLEX_SECRETS_KEY)
    Rotate {
        #[command(flatten)]
        db: DbArg,
        /// Seconds between publishing the new key and signing with it
        #[arg(long, default_value_t = 300)]
        lead: u32,
    },
    /// List the signing keys and where each is in its life
    List {
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; a confidential client's secret is printed once
    Add {
        #[command(flatten)]
        db: DbArg,
        /// Shown on the consent page
        #[arg(long)]
        name: String,
        /// The client id (default: a random one)
        #[arg(long)]
        id: Option<String>,
        /// A redirect URI, matched exactly (repeat for several)
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A grant type: authorization_code, refresh_token, or the device code grant (repeat;
        /// default authorization_code and refresh_token)
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// A client with a secret (a server-side application)
        #[arg(long)]
        confidential: bool,
        /// client_secret_basic (default for confidential clients) or client_secret_post
        #[arg(long)]
        auth_method: Option<String>,
    },
    /// List the clients
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Remove a client and revoke its sign-ins
    Remove {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum IdpCommand {
    /// Add an OpenID Connect identity provider ("Continue with NAME" on the sign-in page)
    Add {
        #[command(flatten)]
        db: DbArg,
        /// A short id, used in addresses
        #[arg(long)]
        id: String,
        /// Shown on the sign-in page
        #[arg(long)]
        name: String,
        /// The provider's issuer URL (its discovery document is ISSUER/.well-known/openid-configuration)
        #[arg(long)]
        issuer: String,
        /// This server's client id at the provider
        #[arg(long)]
        client_id: String,
        /// The environment variable that holds the client secret (read by `serve`)
        #[arg(long)]
        client_secret_env: String,
        /// Only accounts of this email domain may sign in (repeat for several; default: any)
        #[arg(long = "allowed-domain")]
        allowed_domains: Vec<String>,
        /// Create an account on first sign-in for an allowed domain
        #[arg(long)]
        create_accounts: bool,
    },
    /// List the identity providers
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Remove an identity provider (its accounts stay)
    Remove {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        id: String,
    },
}
