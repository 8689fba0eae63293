//! The `auth.json` document, schema version 1 (SPEC section 3).
//!
//! Every level keeps the keys it does not know in an `extra` map, so a file written by a newer
//! mogplex (or edited by hand) survives a rewrite by this one.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthFile {
    #[serde(default = "schema_version")]
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mogplex: Option<MogplexEntry>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub providers: BTreeMap<String, ProviderEntry>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn schema_version() -> u32 {
    SCHEMA_VERSION
}

impl Default for AuthFile {
    fn default() -> Self {
        Self {
            version: SCHEMA_VERSION,
            mogplex: None,
            providers: BTreeMap::new(),
            extra: Map::new(),
        }
    }
}

/// The Mogplex credential: an account session from browser or device sign-in, or a stored
/// personal access token (`api_key`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MogplexEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obtained_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    /// A stored `mog_` personal access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MogplexEntry {
    /// The bearer this entry supplies, and what kind it is.
    pub fn bearer(&self) -> Option<(&Secret, MogplexCredentialKind)> {
        if let Some(t) = self.access_token.as_ref().filter(|t| !t.is_empty()) {
            return Some((t, MogplexCredentialKind::Session));
        }
        self.api_key
            .as_ref()
            .filter(|t| !t.is_empty())
            .map(|t| (t, MogplexCredentialKind::PersonalAccessToken))
    }

    pub fn pat(api_key: Secret) -> Self {
        Self {
            api_key: Some(api_key),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MogplexCredentialKind {
    Session,
    PersonalAccessToken,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderEntry {
    #[serde(rename = "apiKey", default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AuthFile {
    pub fn provider_key(&self, id: &str) -> Option<&Secret> {
        self.providers
            .get(id)?
            .api_key
            .as_ref()
            .filter(|k| !k.is_empty())
    }

    /// Stores a provider key, keeping whatever else that provider's entry holds.
    pub fn set_provider_key(&mut self, id: &str, key: Secret) {
        self.providers.entry(id.to_owned()).or_default().api_key = Some(key);
    }

    /// Removes a provider key; the entry goes too when nothing else is left in it.
    /// Returns whether a key was there.
    pub fn remove_provider_key(&mut self, id: &str) -> bool {
        let Some(entry) = self.providers.get_mut(id) else {
            return false;
        };
        let had = entry.api_key.take().is_some();
        if entry.extra.is_empty() {
            self.providers.remove(id);
        }
        had
    }
}
