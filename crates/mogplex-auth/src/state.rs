//! What the cockpit remembers between sessions, in `<home>/state.json` (0600): the model last
//! picked for each provider (SPEC section 2, "the model last picked in this home"), and the
//! credential the user chose most recently (signing in, storing a key, a `/model` pick,
//! `account use`), which among stored credentials is the one used.
//!
//! Nothing here is secret, and nothing here is worth stopping a session for: a missing,
//! unreadable or corrupt file reads as empty. Writes are read-modify-write under a sidecar lock
//! and replace the file atomically, so two cockpits picking models at once lose nothing.

use crate::home::MogplexHome;
use crate::provider::Provider;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const MAX_STATE_SIZE: u64 = 64 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Provider id (or `mogplex:<account id>`) → model.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub last_model: BTreeMap<String, String>,
    /// The stored credential the user chose most recently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_choice: Option<Choice>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A credential the user chose: a provider's stored key, or (for the Mogplex provider) an
/// account entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// The provider id (`groq`, `mogplex`).
    pub provider: String,
    /// For Mogplex: the account entry id (`acct_…`, `pat_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// How it was chosen: `sign-in`, `key`, `model`, `account`.
    pub how: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Choice {
    pub fn new(provider: Provider, account: Option<&str>, how: &str) -> Self {
        Self {
            provider: provider.id().to_owned(),
            account: account.map(str::to_owned),
            how: how.to_owned(),
            at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .ok(),
            extra: Map::new(),
        }
    }

    /// The provider, when this mogplex knows it.
    pub fn provider(&self) -> Option<Provider> {
        self.provider.parse().ok()
    }

    /// How the user made the choice, as a notice says it: `you signed in last`.
    pub fn how_said(&self) -> &'static str {
        match self.how.as_str() {
            "sign-in" => "you signed in with it last",
            "key" => "you stored it last",
            "model" => "you picked its model last",
            "account" => "you switched to it last",
            _ => "you chose it last",
        }
    }
}

/// The key a model choice is remembered under: the provider, and for a Mogplex account the
/// account too (two accounts may have different catalogs).
pub fn model_key(provider: Provider, account_id: Option<&str>) -> String {
    match (provider, account_id) {
        (Provider::Mogplex, Some(id)) => format!("mogplex:{id}"),
        (p, _) => p.id().to_owned(),
    }
}

impl State {
    pub fn load(home: &MogplexHome) -> Self {
        crate::private_file::read(&home.state_file(), MAX_STATE_SIZE)
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// The model last picked for each provider; for the Mogplex provider, the one picked for
    /// `account_id` when given.
    pub fn last_picked(&self, account_id: Option<&str>) -> BTreeMap<Provider, String> {
        Provider::ALL
            .into_iter()
            .filter_map(|p| {
                self.last_model
                    .get(&model_key(p, account_id))
                    .map(|m| (p, m.clone()))
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the model name contains control characters")]
    ControlCharacters,
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
}

impl From<crate::private_file::WriteError> for StateError {
    fn from(e: crate::private_file::WriteError) -> Self {
        StateError::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        }
    }
}

/// Remembers `model` as the last one picked under `key` (see [`model_key`]).
pub fn remember_model(home: &MogplexHome, key: &str, model: &str) -> Result<(), StateError> {
    if key.chars().chain(model.chars()).any(char::is_control) {
        return Err(StateError::ControlCharacters);
    }
    update(home, |state| {
        if state.last_model.get(key).map(String::as_str) == Some(model) {
            return false;
        }
        state.last_model.insert(key.to_owned(), model.to_owned());
        true
    })
}

/// Remembers `choice` as the credential the user chose most recently.
pub fn remember_choice(home: &MogplexHome, choice: Choice) -> Result<(), StateError> {
    let bad = |s: &str| s.chars().any(char::is_control);
    if bad(&choice.provider) || choice.account.as_deref().is_some_and(bad) {
        return Err(StateError::ControlCharacters);
    }
    update(home, |state| {
        state.last_choice = Some(choice);
        true
    })
}

/// Read-modify-write of `state.json` under its lock; `change` says whether it changed anything.
fn update(home: &MogplexHome, change: impl FnOnce(&mut State) -> bool) -> Result<(), StateError> {
    home.ensure()?;
    let path = home.state_file();
    let _lock = crate::private_file::lock(&path)?;
    let mut state = State::load(home);
    if !change(&mut state) {
        return Ok(());
    }
    crate::private_file::remove_stale_temp_files(&path);
    let mut bytes = serde_json::to_vec_pretty(&state).map_err(|e| StateError::Io {
        op: "encode",
        path: path.clone(),
        source: e.into(),
    })?;
    bytes.push(b'\n');
    crate::private_file::write(&path, &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn remembers_per_provider_and_account_keeping_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let home = MogplexHome::at(dir.path().join("h"));
        assert_eq!(State::load(&home), State::default());
        remember_model(&home, "openai", "gpt-4.1-mini").unwrap();
        remember_model(
            &home,
            &model_key(Provider::Mogplex, Some("u1")),
            "mogplex/echo",
        )
        .unwrap();
        let path = home.state_file();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A key this version does not know survives the next write.
        let mut v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        v["future"] = Value::from(1);
        std::fs::write(&path, v.to_string()).unwrap();
        remember_model(&home, "openai", "gpt-4.1").unwrap();
        let state = State::load(&home);
        assert_eq!(state.extra.get("future"), Some(&Value::from(1)));
        let picked = state.last_picked(Some("u1"));
        assert_eq!(picked.get(&Provider::OpenAi).unwrap(), "gpt-4.1");
        assert_eq!(picked.get(&Provider::Mogplex).unwrap(), "mogplex/echo");
        assert!(
            !state
                .last_picked(Some("u2"))
                .contains_key(&Provider::Mogplex)
        );
        assert!(matches!(
            remember_model(&home, "openai", "gpt\u{1b}[2J"),
            Err(StateError::ControlCharacters)
        ));
    }

    #[test]
    fn a_corrupt_or_open_file_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let home = MogplexHome::at(dir.path().join("h"));
        home.ensure().unwrap();
        std::fs::write(home.state_file(), "{not json").unwrap();
        std::fs::set_permissions(home.state_file(), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        assert_eq!(State::load(&home), State::default());
        remember_model(&home, "groq", "llama").unwrap();
        assert_eq!(State::load(&home).last_model["groq"], "llama");
    }
}
