//! `mogplex-server serve` and `mogplex-server dev`: the account service on a listener, and a
//! loopback development instance with a seeded demo account.

use super::args::{DevArgs, ServeArgs};
use super::user::add_user;
use super::{Failure, http_url};
use mogplex_server::db::Db;
use mogplex_server::{AppState, Config, crypto, password};
use std::net::SocketAddr;

pub async fn serve(a: ServeArgs) -> Result<(), Failure> {
    mogplex_server::log::init();
    let listener = bind(a.listen).await?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::new(e.to_string()))?;
    let public = a.public_url.unwrap_or_else(|| format!("http://{addr}"));
    http_url("--public-url", &public)?;
    let mut cfg = Config::new(&public);
    cfg.gateway_per_minute = a.rate_limit.max(1);
    cfg.refresh_grace = a.refresh_grace;
    sqlite_files(&a.database)?;
    let state = AppState::new(&a.database, cfg)
        .await
        .map_err(|e| Failure::new(format!("cannot start: {e}")))?;
    tracing::info!(
        "listening on {addr} as {public} ({} database)",
        state.db.backend()
    );
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

async fn serve_until_signal(
    listener: tokio::net::TcpListener,
    state: AppState,
) -> Result<(), Failure> {
    // Ctrl-C or SIGTERM (what service managers send): stop accepting, finish, checkpoint.
    let shutdown = async {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut t) => {
                    t.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    };
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
