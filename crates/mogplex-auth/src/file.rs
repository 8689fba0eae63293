//! A Mogplex credential in the shape of `auth.json` version 1's `mogplex` entry (SPEC section 3):
//! what a sign-in or a personal access token produces before it is stored as an account
//! ([`crate::credentials::AccountEntry::from_v1`]), and the account it names.
//!
//! Every level keeps the keys it does not know in an `extra` map, so a file written by a newer
//! mogplex (or edited by hand) survives a rewrite by this one.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
