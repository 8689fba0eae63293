//! The audit log: security events appended to the `audit_log` table, for the administrator
//! (`mogplex-server audit`) and for incident response.
//!
//! Any part of the server records an event with `s.audit.record(Event::new(kind::…)…).await`
//! (the [`Sink`] in `AppState`: a group commit), an admin command with [`record`]`(&db, …)`. An
//! event names its kind, its outcome (`ok`, or `failed` with a reason), the account (id and
//! email) when known, the client address, and a short detail chosen by the code that records it.
//! Never a secret: no password, token, code, verifier or secret value is ever passed to an
//! [`Event`], and the fields are plain text written by this crate (the email is cut to 320
//! characters, the detail to 200). Recording never fails a request: a storage failure is
//! logged and the request goes on. Retention: [`prune`] deletes rows older than the configured
//! number of days (`serve --audit-retention-days`, default 365).

use crate::crypto::now;
use crate::db::Db;
use crate::db::audit::NewAuditRow;
use std::net::SocketAddr;

/// The kinds of event.
pub mod kind {
    pub const SIGN_IN: &str = "sign_in";
    pub const SIGN_OUT: &str = "sign_out";
    pub const TOKEN_ISSUED: &str = "token.issued";
    pub const TOKEN_REFRESHED: &str = "token.refreshed";
    pub const TOKEN_REVOKED: &str = "token.revoked";
    pub const REFRESH_REUSE: &str = "token.reuse_detected";
    pub const DEVICE_APPROVED: &str = "device.approved";
    pub const DEVICE_DENIED: &str = "device.denied";
    pub const PAT_CREATED: &str = "pat.created";
    pub const PAT_REVOKED: &str = "pat.revoked";
    /// A client registered itself (RFC 7591).
    pub const CLIENT_REGISTER: &str = "client.register";
    /// An administrator's command changed something (the detail says what).
    pub const ADMIN: &str = "admin";
}

/// One event to record; built with [`Event::new`] and the setters.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub kind: &'static str,
    pub failure: Option<String>,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub client: Option<String>,
    pub detail: String,
}

impl Event {
    pub fn new(kind: &'static str) -> Self {
        Self {
            kind,
            ..Self::default()
        }
    }
    pub fn user(mut self, id: &str) -> Self {
        self.user_id = Some(id.to_owned());
        self
    }
    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.chars().take(320).collect());
        self
    }
    pub fn client(mut self, addr: &SocketAddr) -> Self {
        self.client = Some(addr.ip().to_string());
        self
    }
    /// A failed attempt, and why (`wrong password`, `account disabled`, …).
    pub fn failed(mut self, reason: &str) -> Self {
        self.failure = Some(reason.chars().take(200).collect());
        self
    }
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into().chars().take(200).collect();
        self
    }
}

impl Event {
    fn into_row(self) -> NewAuditRow {
        let (outcome, detail) = match self.failure {
            None => ("ok", self.detail),
            Some(reason) if self.detail.is_empty() => ("failed", reason),
            Some(reason) => ("failed", format!("{reason}: {}", self.detail)),
        };
        NewAuditRow {
            at: now(),
            kind: self.kind,
            outcome,
            user_id: self.user_id,
            email: self.email,
            client: self.client,
            detail,
        }
    }
}

/// Appends `e` at once (for the admin commands; the server uses its [`Sink`]); a storage
/// failure is logged, never returned.
pub async fn record(db: &Db, e: Event) {
    let kind = e.kind;
    if let Err(err) = db.append_audit_batch(&[e.into_row()]).await {
        tracing::error!(kind, "cannot write the audit log: {err}");
    }
}

/// The server's way to the audit log: a group commit. [`Sink::record`] hands the event to one
/// writer task and waits until it is committed, so a response that follows an audited event is
/// sent only once the event is stored; events recorded meanwhile by other requests share that
/// commit (a refresh under load costs a fraction of a transaction, not one of its own).
#[derive(Debug, Clone)]
pub struct Sink(tokio::sync::mpsc::Sender<(NewAuditRow, tokio::sync::oneshot::Sender<()>)>);

/// Events one commit takes at most.
const BATCH: usize = 256;

impl Sink {
    /// Starts the writer for `db` (on the current runtime).
    pub fn start(db: Db) -> Self {
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<(NewAuditRow, tokio::sync::oneshot::Sender<()>)>(4096);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let (rows, waiting): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut batch).into_iter().unzip();
                if let Err(err) = db.append_audit_batch(&rows).await {
                    tracing::error!("cannot write {} audit events: {err}", rows.len());
                }
                for w in waiting {
                    let _ = w.send(());
                }
            }
        });
        Self(tx)
    }

    /// Records `e` and waits for its commit; a storage failure is logged, never returned.
    pub async fn record(&self, e: Event) {
        let (done, committed) = tokio::sync::oneshot::channel();
        if self.0.send((e.into_row(), done)).await.is_ok() {
            let _ = committed.await;
        }
    }
}

/// Deletes events older than `days` days (0 keeps everything); the count deleted.
pub async fn prune(db: &Db, days: u32) -> Result<u64, crate::db::DbError> {
    if days == 0 {
        return Ok(0);
    }
    db.prune_audit(now() - i64::from(days) * 86_400).await
}

/// Prunes once at start and then every hour, for as long as the server runs.
pub async fn prune_forever(db: Db, days: u32) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        match prune(&db, days).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("deleted {n} audit events older than {days} days"),
            Err(e) => tracing::warn!("cannot prune the audit log: {e}"),
        }
    }
}

/// The account a response concerns, left in its extensions by a handler that knows it (the
/// token endpoint), for the audit record written around it.
#[derive(Debug, Clone)]
pub struct Subject(pub String);

/// Left in a response's extensions when its audit row was written with the change itself (a
/// refresh's, in its rotation's transaction), so nothing records it twice.
#[derive(Debug, Clone, Copy)]
pub struct Audited;
