//! The Mogplex account's hosted state in the cockpit (SPEC section 5): synced in the background
//! whenever a Mogplex credential resolves (and again on `/login`), kept in memory and in the
//! `hosted/` cache, shown from the cache and marked stale when the service cannot be reached, and
//! gone from the screen and the disk at once when the sign-in goes.
//!
//! A generation counter, behind a lock that saving also takes, makes sure a sync that was still
//! in flight when the user signed out can neither write the cache again nor show its result.

use super::{Cockpit, Msg};
use crate::error::CliError;
use crate::exec::provider_error;
use crate::signin::base_label;
use mogplex_auth::hosted::{Hosted, HostedCache, owner};
use mogplex_auth::{Credential, CredentialKind, Provider};
use mogplex_protocol::McpServer;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub(crate) enum HostedMsg {
    Fetched {
        generation: u64,
        result: Result<Box<Hosted>, CliError>,
    },
    SaveFailed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SyncState {
    /// No Mogplex credential, or not asked yet.
    Idle,
    Syncing,
    Synced,
    /// The last sync failed (why); what is shown, if anything, is the saved copy.
    Stale(String),
}

#[derive(Debug)]
pub(super) struct HostedSlot {
    pub state: Option<Hosted>,
    pub sync: SyncState,
    pub cache: HostedCache,
    pub generation: Arc<Mutex<u64>>,
}

impl HostedSlot {
    pub fn new(cache: HostedCache) -> Self {
        Self {
            state: None,
            sync: SyncState::Idle,
            cache,
            generation: Arc::new(Mutex::new(0)),
        }
    }

    fn generation(&self) -> u64 {
        self.generation.lock().map(|g| *g).unwrap_or(0)
    }
}

fn now_rfc3339() -> String {
    crate::log::now_rfc3339()
}

/// `2026-12-01T08:12:03Z` → `2026-12-01 08:12 UTC`.
fn short_time(rfc3339: &str) -> String {
    let t = rfc3339.replace('T', " ");
    match t.get(..16) {
        Some(head) => format!("{head} UTC"),
        None => t,
    }
}

impl Cockpit<'_> {
    pub(super) fn on_hosted(&mut self, msg: HostedMsg) {
        match msg {
            HostedMsg::Fetched { generation, result } => self.hosted_fetched(generation, result),
            HostedMsg::SaveFailed(e) => self.log.write(
                crate::log::Level::Warn,
                "hosted.save",
                "could not save the hosted state",
                serde_json::json!({"error": e}),
            ),
        }
    }

    /// The Mogplex credential in force and whose hosted state it sees.
    pub(super) fn mogplex_owner(&self) -> Option<(String, Credential)> {
        let c = self
            .creds
            .resolution
            .for_provider(Provider::Mogplex)?
            .clone();
        let account_id = self
            .creds
            .account
            .as_ref()
            .and_then(|(id, _)| id.as_deref());
        let who = match c.kind {
            CredentialKind::AccountSession => owner(account_id, None),
            _ => owner(None, Some(&c.secret)),
        }?;
        Some((who, c))
    }

    /// Shows the saved copy at once (if there is one and nothing newer is in memory), then
    /// fetches the account, its catalog and its MCP servers in the background.
    pub(super) fn sync_hosted(&mut self) {
        let Some((who, credential)) = self.mogplex_owner() else {
            if self.hosted.state.is_some() {
                self.drop_hosted();
            }
            return;
        };
        let Ok(base) = self.services.account_base() else {
            return;
        };
        let issuer = base_label(&base);
        if self
            .hosted
            .state
            .as_ref()
            .is_some_and(|h| h.owner != who || h.issuer != issuer)
        {
            self.hosted.state = None;
        }
        if self.hosted.state.is_none()
            && let Some(saved) = self.hosted.cache.load(&who, &issuer)
        {
            self.learn_hosted_secrets(&saved);
            self.connect_mcp(&saved.mcp);
            self.hosted.state = Some(saved);
        }
        self.hosted.sync = SyncState::Syncing;
        self.refresh_header();
        let generation = self.hosted.generation();
        let (cache, lock) = (self.hosted.cache.clone(), self.hosted.generation.clone());
        self.services.spawn(|s| async move {
            let result = async {
                let client = s.client().await?;
                let sel = s.account_selection(&credential, &base).await?;
                let token = sel.credential.secret.clone();
                let (user, models, mcp) = tokio::join!(
                    client.account_user(&base, &token),
                    client.account_models(&sel, &base),
                    client.mcp_servers(&base, &token),
                );
                let fail = |e: mogplex_providers::ProviderError| provider_error(&e, &sel, &base);
                Ok::<_, CliError>(Hosted {
                    owner: who,
                    issuer,
                    fetched_at: now_rfc3339(),
                    account: user.map_err(fail)?,
                    models: models.map_err(fail)?,
                    mcp: mcp.map_err(fail)?,
                })
            }
            .await;
            if let Ok(h) = &result {
                let h = h.clone();
                // Saved only if no sign-out happened since this sync began.
                let saved = tokio::task::spawn_blocking(move || {
                    let g = lock
                        .lock()
                        .map_err(|_| "the cache lock is poisoned".to_owned())?;
                    if *g == generation {
                        cache.save(&h).map_err(|e| e.to_string())?;
                    }
                    Ok::<_, String>(())
                })
                .await;
                if let Ok(Err(e)) = saved {
                    s.send(Msg::Hosted(HostedMsg::SaveFailed(e)));
                }
            }
            s.send(Msg::Hosted(HostedMsg::Fetched {
                generation,
                result: result.map(Box::new),
            }));
        });
    }

    fn hosted_fetched(&mut self, generation: u64, result: Result<Box<Hosted>, CliError>) {
        if generation != self.hosted.generation() {
            return;
        }
        match result {
            Ok(h) => {
                self.learn_hosted_secrets(&h);
                self.log.write(
                    crate::log::Level::Info,
                    "hosted.synced",
                    "synced the account's hosted state",
                    serde_json::json!({"models": h.models.len(), "mcp": h.mcp.len()}),
                );
                self.connect_mcp(&h.mcp);
                self.hosted.state = Some(*h);
                self.hosted.sync = SyncState::Synced;
                self.fill_default_model();
            }
            Err(e) => {
                let (message, _) = self.texts(&e);
                let reason = message.lines().next().unwrap_or_default().to_owned();
                self.log.write(
                    crate::log::Level::Warn,
                    "hosted.stale",
                    &reason,
                    serde_json::json!({"cached": self.hosted.state.is_some()}),
                );
                self.hosted.sync = SyncState::Stale(reason);
                self.fill_default_model();
            }
        }
        self.refresh_header();
    }

    fn learn_hosted_secrets(&mut self, h: &Hosted) {
        for s in h.mcp_values() {
            self.learn(&s);
        }
    }

    /// The account's first model for the header, from the hosted catalog.
    fn fill_default_model(&mut self) {
        let first = self
            .hosted
            .state
            .as_ref()
            .and_then(|h| h.models.first())
            .map(|m| m.slug.clone());
        if let Some(m) = first {
            self.set_default_model(Provider::Mogplex, m);
        }
    }

    /// Forgets the hosted state, in memory and on disk, before the next frame is drawn.
    pub(super) fn drop_hosted(&mut self) {
        let cleared = match self.hosted.generation.lock() {
            Ok(mut g) => {
                *g += 1;
                self.hosted.cache.clear()
            }
            Err(_) => self.hosted.cache.clear(),
        };
        if let Err(e) = cleared {
            self.note(format!("could not remove the saved account state: {e}"));
        }
        self.hosted.state = None;
        self.hosted.sync = SyncState::Idle;
        // Dropped connections stop their servers (this runs inside the runtime).
        drop(self.drop_mcp());
        self.app.update(mogplex_tui::Event::AccountListsGone);
        self.refresh_header();
    }

    /// The header's account parts: its catalog, its MCP servers, and whether they are a saved
    /// copy the service could not refresh.
    pub(super) fn hosted_header(&self) -> (Option<String>, Option<String>, bool) {
        let Some(h) = &self.hosted.state else {
            return (None, None, false);
        };
        let models = match h.models.len() {
            1 => "1 model".to_owned(),
            n => format!("{n} models"),
        };
        let mcp = (!h.mcp.is_empty()).then(|| {
            let names: Vec<&str> = h.mcp.iter().map(|s| s.name.as_str()).collect();
            format!("MCP: {}", names.join(", "))
        });
        let stale = matches!(self.hosted.sync, SyncState::Stale(_));
        (Some(models), mcp, stale)
    }

    /// After a Mogplex answer (its model, or `None` for a refusal): when what the header shows of
    /// the account disagrees (a stale copy while the service answers, a model missing from the
    /// catalog, a refusal while the catalog lists models), the account's state syncs again.
    pub(super) fn resync_after_answer(
        &mut self,
        selection: &mogplex_providers::Selection,
        model: Option<&str>,
    ) {
        if selection.provider() != Provider::Mogplex || self.hosted.sync == SyncState::Syncing {
            return;
        }
        let stale = matches!(self.hosted.sync, SyncState::Stale(_));
        let disagrees = match (&self.hosted.state, model) {
            (None, _) => false,
            (Some(h), Some(m)) => !h.models.iter().any(|c| c.slug == m),
            (Some(h), None) => !h.models.is_empty(),
        };
        if stale || disagrees {
            self.sync_hosted();
        }
    }

    /// The account's catalog as `/model` just fetched it: into the state the header shows (and,
    /// when that was a stale copy, a full sync, since the service answers again).
    pub(super) fn catalog_fetched(&mut self, models: &[mogplex_protocol::CliModel]) {
        let Some(h) = &mut self.hosted.state else {
            return;
        };
        h.models = models.to_vec();
        if matches!(self.hosted.sync, SyncState::Stale(_)) {
            self.sync_hosted();
        } else {
            self.refresh_header();
        }
    }

    /// `/model` could not fetch the catalog: what the header shows of the account is a saved
    /// copy now, and says so.
    pub(super) fn catalog_failed(&mut self, reason: String) {
        if self.hosted.state.is_some() && self.hosted.sync != SyncState::Syncing {
            self.hosted.sync = SyncState::Stale(reason);
            self.refresh_header();
        }
    }

    pub(super) fn hosted_status(&self) -> String {
        let when = self
            .hosted
            .state
            .as_ref()
            .map(|h| short_time(&h.fetched_at));
        match (&self.hosted.sync, when) {
            (SyncState::Idle, _) if self.mogplex_owner().is_none() => {
                "none (sign in with Mogplex to sync your account)".to_owned()
            }
            (SyncState::Idle, _) => "not synced yet".to_owned(),
            (SyncState::Syncing, Some(w)) => format!("saved {w}; syncing…"),
            (SyncState::Syncing, None) => "syncing…".to_owned(),
            (SyncState::Synced, Some(w)) => format!("synced {w}"),
            (SyncState::Synced, None) => "synced".to_owned(),
            (SyncState::Stale(why), Some(w)) => {
                format!("stale: saved {w}; the last sync failed: {why}")
            }
            (SyncState::Stale(why), None) => format!("not synced: {why}"),
        }
    }

    /// The account's MCP definitions, when they are known (synced or saved).
    pub(super) fn hosted_mcp(&self) -> Option<Vec<McpServer>> {
        self.mogplex_owner()?;
        self.hosted.state.as_ref().map(|h| h.mcp.clone())
    }

    pub(super) fn load_mcp(&mut self) {
        let rows = match (&self.hosted.state, self.mogplex_owner()) {
            (_, None) => vec![(
                "".to_owned(),
                "Sign in with Mogplex to use the MCP servers of your account (/login).".to_owned(),
            )],
            (None, Some(_)) => vec![(
                "".to_owned(),
                format!("Not synced yet ({}).", self.hosted_status()),
            )],
            (Some(h), Some(_)) => {
                let mut rows = Vec::new();
                for (def, (name, detail)) in h.mcp.iter().zip(mcp_rows(&h.mcp)) {
                    let (state, tools) = if def.enabled {
                        self.mcp_state_rows(&def.name)
                    } else {
                        ("not connected".to_owned(), Vec::new())
                    };
                    rows.push((name, format!("{detail} · {state}")));
                    rows.extend(tools);
                }
                rows
            }
        };
        let title = match &self.hosted.sync {
            SyncState::Stale(_) => "MCP servers (saved copy, stale)",
            _ => "MCP servers",
        };
        self.app.update(mogplex_tui::Event::ListReady {
            title: title.to_owned(),
            rows,
        });
    }
}

/// Whether a value shown for an MCP server should be masked.
fn looks_secret(key: &str, value: &str) -> bool {
    mogplex_auth::redact::is_secret_key(key)
        || mogplex_auth::redact::redact_patterns(value) != value
        || (value.len() >= 20 && !value.contains(char::is_whitespace) && !value.contains('/'))
}

/// One row per server: kind, state, what it runs or where it is, and its variables or headers
/// with secret-looking values masked.
pub(super) fn mcp_rows(servers: &[McpServer]) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for s in servers {
        let mut parts = vec![
            s.kind().to_owned(),
            if s.enabled { "enabled" } else { "disabled" }.to_owned(),
        ];
        let c = &s.config;
        if let Some(cmd) = c.get("command").and_then(|v| v.as_str()) {
            let args: Vec<String> = c
                .get("args")
                .and_then(|a| a.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str())
                        .map(mogplex_auth::redact::redact_patterns)
                        .collect()
                })
                .unwrap_or_default();
            parts.push(
                std::iter::once(cmd.to_owned())
                    .chain(args)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        if let Some(url) = c.get("url").and_then(|v| v.as_str()) {
            parts.push(mogplex_auth::redact::redact_patterns(url));
        }
        for (section, sep) in [("env", "="), ("http_headers", ": ")] {
            if let Some(map) = c.get(section).and_then(|v| v.as_object()) {
                for (k, v) in map {
                    let v = v.as_str().unwrap_or_default();
                    let shown = if looks_secret(k, v) {
                        mogplex_auth::secret::mask(v)
                    } else {
                        v.to_owned()
                    };
                    parts.push(format!("{k}{sep}{shown}"));
                }
            }
        }
        rows.push((s.name.clone(), parts.join(" · ")));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_values_that_look_secret_are_masked() {
        let servers: Vec<McpServer> = serde_json::from_value(serde_json::json!([
            {"name": "github", "enabled": true, "config": {"command": "github-mcp", "args": ["--stdio"],
                "env": {"GITHUB_TOKEN": "ghp_0123456789abcdefghijklmn", "LOG_LEVEL": "debug"}}},
            {"name": "docs", "enabled": false, "config": {"url": "https://mcp.example.com/sse",
                "http_headers": {"Authorization": "Bearer abcdefghijklmnopqrstuvwxyz", "X-Team": "core"}}}
        ]))
        .unwrap();
        let rows = mcp_rows(&servers);
        let text = format!("{rows:?}");
        assert!(!text.contains("ghp_0123456789"), "{text}");
        assert!(!text.contains("abcdefghijklmnop"), "{text}");
        assert!(
            text.contains("LOG_LEVEL=debug") && text.contains("X-Team: core"),
            "{text}"
        );
        assert_eq!(rows[0].0, "github");
        assert!(
            rows[0]
                .1
                .starts_with("stdio · enabled · github-mcp --stdio"),
            "{}",
            rows[0].1
        );
        assert!(
            rows[1]
                .1
                .starts_with("http · disabled · https://mcp.example.com/sse"),
            "{}",
            rows[1].1
        );
    }
}
