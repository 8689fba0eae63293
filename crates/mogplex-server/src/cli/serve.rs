//! `mogplex-server serve` and `mogplex-server dev`: the account service on a listener, and a
//! loopback development instance with a seeded demo account.

use super::args::{DevArgs, ServeArgs};
use super::user::add_user;
use super::{Failure, database_failure, http_url};
use mogplex_server::db::Db;
use mogplex_server::{AppState, Config, crypto, password};
use std::net::SocketAddr;

pub async fn serve(a: ServeArgs) -> Result<(), Failure> {
    if a.log_json {
        mogplex_server::log::init_with(true);
    } else {
        mogplex_server::log::init();
    }
    mogplex_server::edge::raise_open_file_limit();
    let listener = bind(a.listen).await?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::new(e.to_string()))?;
    let public = a.public_url.unwrap_or_else(|| format!("http://{addr}"));
    http_url("--public-url", &public)?;
    public_url_allowed(&public, a.insecure_http)?;
    let mut cfg = Config::new(&public);
    cfg.gateway_per_minute = a.rate_limit.max(1);
    cfg.refresh_grace = a.refresh_grace;
    cfg.demo_mcp = a.demo_mcp;
    sqlite_files(&a.database)?;
    cfg.edge.trust_proxy = a.trust_proxy;
    cfg.edge.header_read_timeout = std::time::Duration::from_secs(a.header_timeout.max(1));
    cfg.edge.idle_timeout = std::time::Duration::from_secs(a.idle_timeout.max(1));
    cfg.edge.max_connections_per_address = a.max_connections_per_address;
    cfg.metrics_on_main = a.metrics_listen.is_none();
    cfg.runs_per_day = i64::from(a.max_runs_per_day);
    cfg.events_per_run = i64::from(a.max_events_per_run);
    let state = AppState::new(&a.database, cfg)
        .await
        .map_err(|e| database_failure("cannot start", &a.database, &e))?;
    let mut metrics_at = None;
    if let Some(m) = a.metrics_listen {
        let ml = bind(m).await?;
        let at = ml.local_addr().map_err(|e| Failure::new(e.to_string()))?;
        let app = mogplex_server::metrics_app(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(ml, app).await {
                tracing::error!("the metrics listener stopped: {e}");
            }
        });
        metrics_at = Some(at);
    }
    tokio::spawn(mogplex_server::audit::prune_forever(
        state.db.clone(),
        a.audit_retention_days,
    ));
    tracing::info!(
        "listening on {addr} as {public} ({} database)",
        state.db.backend()
    );
    if let Some(at) = metrics_at {
        tracing::info!("health and metrics on http://{at}");
    }
    if mogplex_server::secrets::SecretBox::from_config(&state.cfg).is_err() {
        tracing::warn!(
            "OpenID Connect is off: set MOGPLEX_SECRETS_KEY (32 random bytes, base64) to issue ID tokens"
        );
    }
    serve_until_signal(listener, state).await
}

pub async fn dev(a: DevArgs) -> Result<(), Failure> {
    mogplex_server::log::init();
    if !a.listen.ip().is_loopback() {
        return Err(Failure::new("the dev server only listens on loopback")
            .hint("use --listen 127.0.0.1:PORT; for anything else use `serve`")
            .usage());
    }
    let dir = match a.data_dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!(
            "mogplex-dev-{}",
            crypto::hex(&crypto::random_bytes::<6>())
        )),
    };
    {
        use std::os::unix::fs::DirBuilderExt;
        // It holds the database and the demo password: for this user only.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
    }
    sqlite_files(&format!("sqlite://{}", dir.join("mogplex.db").display()))?;
    let listener = bind(a.listen).await?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::new(e.to_string()))?;
    let public = format!("http://{addr}");
    let database = format!("sqlite://{}", dir.join("mogplex.db").display());
    let mut state = AppState::new(&database, Config::new(&public))
        .await
        .map_err(|e| Failure::new(format!("cannot start: {e}")))?;
    let (email, password) = seed_demo(&state.db, &dir).await?;
    seed_demo_mcp(&state.db, &email, &public).await?;
    // Loopback only, for development: the sign-in page names the demo account.
    let mut cfg = (*state.cfg).clone();
    // OpenID Connect on out of the box: a secrets key kept in the data directory.
    if cfg.var(mogplex_server::secrets::KEY_VAR).is_none() {
        cfg.env.insert(
            mogplex_server::secrets::KEY_VAR.into(),
            dev_secrets_key(&dir)?,
        );
    }
    // The demo MCP server, which requires its own OAuth (listed in the demo account as `demo`).
    cfg.demo_mcp = true;
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

/// A non-loopback `http` public URL sends passwords and tokens in the clear (and the CLI
/// refuses to sign in to one): refused unless the operator says `--insecure-http`.
fn public_url_allowed(public: &str, insecure_http: bool) -> Result<(), Failure> {
    let Ok(u) = url::Url::parse(public) else {
        return Ok(());
    };
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if u.scheme() == "http" && !loopback && !insecure_http {
        return Err(Failure::new(format!(
            "the public URL {public} is http:// but not a loopback address: passwords and tokens would cross the network unencrypted"
        ))
        .hint("use an https:// public URL (terminate TLS in a reverse proxy and pass --trust-proxy), or pass --insecure-http if you really mean it")
        .usage());
    }
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn signalled() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

async fn serve_until_signal(
    listener: tokio::net::TcpListener,
    state: AppState,
) -> Result<(), Failure> {
    let shutdown = signalled();
    mogplex_server::serve(listener, state, shutdown)
        .await
        .map_err(|e| Failure::new(format!("the server stopped: {e}")))
}

/// A SQLite database other users can read is refused before anything opens it.
fn sqlite_files(database: &str) -> Result<(), Failure> {
    let Some(path) = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
    else {
        return Ok(());
    };
    let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
    mogplex_server::db::files::check(path).map_err(|(e, hint)| Failure::new(e).hint(hint))
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, Failure> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Failure::new(format!("cannot listen on {addr}: {e}"))
            .hint("choose another address with --listen")
    })
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

/// The demo account's MCP definition `demo`: the demo MCP server of this very process (its URL
/// follows the address, so it is written again at every start).
async fn seed_demo_mcp(db: &Db, email: &str, public: &str) -> Result<(), Failure> {
    let Ok(Some((user, _))) = db.user_by_email(email).await else {
        return Err(Failure::new(
            "cannot seed the demo MCP server: no demo account",
        ));
    };
    let url = mogplex_server::oauth::resource::demo(public);
    let config = serde_json::json!({"type": "http", "url": url, "http_headers": {}});
    db.upsert_mcp(&user.id, "demo", true, &config.to_string(), None)
        .await
        .map_err(|e| Failure::new(format!("cannot seed the demo MCP server: {e}")))
}

/// The development server's secrets key, made once and kept (0600) in its data directory.
fn dev_secrets_key(dir: &std::path::Path) -> Result<String, Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = dir.join("secrets-key");
    if let Ok(k) = std::fs::read_to_string(&file) {
        return Ok(k.trim().to_owned());
    }
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode(crypto::random_bytes::<32>());
    // Written whole under another name, readable by the owner only from the start, then renamed.
    let tmp = dir.join("secrets-key.tmp");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(format!("{key}\n").as_bytes())?;
            f.sync_all()
        })
        .and_then(|_| std::fs::rename(&tmp, &file));
    written.map_err(|e| Failure::new(format!("cannot write {}: {e}", file.display())))?;
    Ok(key)
}
