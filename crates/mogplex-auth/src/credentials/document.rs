//! The `auth.json` document, schema version 2 (SPEC section 3; design section 2).
//!
//! Several Mogplex accounts side by side, keyed by issuer and account id, each under a derived,
//! stable entry id that is never a secret; the stored default account; provider keys; which
//! store keeps the secrets. Every secret field holds either the value or, with the keyring store,
//! a reference to the keyring item that does (`{"keyring": "<ref>"}`), so non-secret metadata
//! (issuer, account, expiry) is always readable without an unlock.
//!
//! The one shape of a Mogplex credential is [`AccountEntry`]: sign-in results, refreshes and
//! personal access tokens are built as one, so no second entry type mirrors it.
//!
//! Tokens for remote MCP servers ([`McpTokenEntry`], `mcp_tokens`) sit beside the accounts, one
//! per (Mogplex account or none, MCP server), their tokens secret fields like every other; the
//! OAuth clients registered for them (RFC 7591) are remembered once per authorization server
//! ([`McpClientEntry`], `mcp_clients`).
//!
//! A version 1 file (`"mogplex": {…}`) reads as one account and is written back as version 2 on
//! the next write. Every level keeps the keys it does not know in an `extra` map; a file without
//! the MCP lists reads with them empty.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Digest;
use std::collections::BTreeMap;
use std::fmt;

pub use super::stored::{StoreKind, Stored};

/// The schema version this mogplex writes.
pub const VERSION: u32 = 2;

/// What a Mogplex credential is: an account session from sign-in, or a personal access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MogplexCredentialKind {
    Session,
    PersonalAccessToken,
}

/// The account a sign-in is for (its id and email at the account service).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One Mogplex credential: an account session from sign-in, or a stored personal access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountEntry {
    /// Derived from the issuer and the account (see [`account_entry_id`]); stable, not secret.
    #[serde(default)]
    pub id: String,
    #[serde(default = "hosted_issuer")]
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Stored>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Stored>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<Stored>,
    /// A stored `mog_` personal access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Stored>,
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
    /// RFC 3339: when the user last signed in as, switched to, or refreshed this account. Picks
    /// the next default when the default account logs out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn hosted_issuer() -> String {
    mogplex_protocol::DEFAULT_BASE_URL.to_owned()
}

/// A provider's stored key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderKey {
    #[serde(rename = "apiKey", default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Stored>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The tokens of one remote MCP server for one Mogplex account (or for none: a server reached
/// with a personal access token from the environment), as its authorization server issued them:
/// bound to `resource` (RFC 8707), for `client_id`, refreshed at `issuer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpTokenEntry {
    /// Derived from the account and the resource ([`mcp_token_id`]); stable, not secret.
    #[serde(default)]
    pub id: String,
    /// The account entry id (`acct_…`, `pat_…`) whose MCP definitions name the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The server's name in the definitions (`demo`).
    pub server: String,
    /// The server's canonical URL, the RFC 8707 resource every request names.
    pub resource: String,
    /// The authorization server that issued the tokens.
    pub issuer: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Stored>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Stored>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obtained_at: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An OAuth client this mogplex registered (RFC 7591) with an authorization server, reused by
/// every later MCP sign-in there. A public client: it has no secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpClientEntry {
    pub issuer: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_at: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `mcp_` + the first 12 hex digits of SHA-256(account entry id or "" + "\n" + resource).
pub fn mcp_token_id(account: Option<&str>, resource: &str) -> String {
    format!("mcp_{}", hash_hex(&[account.unwrap_or(""), resource], 6))
}

impl McpTokenEntry {
    pub fn access(&self) -> Option<&Secret> {
        self.access_token.as_ref().and_then(Stored::value)
    }

    pub fn refresh(&self) -> Option<&Secret> {
        self.refresh_token.as_ref().and_then(Stored::value)
    }

    /// Whether this entry is for `resource` as `account` reaches it.
    pub fn is_for(&self, account: Option<&str>, resource: &str) -> bool {
        self.account.as_deref() == account && self.resource == resource
    }

    fn field(&self, name: &str) -> Option<&Option<Stored>> {
        Some(match name {
            "access_token" => &self.access_token,
            "refresh_token" => &self.refresh_token,
            _ => return None,
        })
    }

    fn field_mut(&mut self, name: &str) -> Option<&mut Option<Stored>> {
        Some(match name {
            "access_token" => &mut self.access_token,
            "refresh_token" => &mut self.refresh_token,
            _ => return None,
        })
    }
}

/// The whole `auth.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawDocument")]
pub struct Document {
    /// The version the file was read with (the version written is always [`VERSION`]).
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreKind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_account: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub providers: BTreeMap<String, ProviderKey>,
    /// Tokens for remote MCP servers, one per (account, server).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_tokens: Vec<McpTokenEntry>,
    /// OAuth clients registered with authorization servers of MCP servers, one per issuer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_clients: Vec<McpClientEntry>,
    /// Keyring items that may exist without the document referencing them (being written, or
    /// replaced and not yet deleted). The next write under the lock deletes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keyring_pending: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for Document {
    fn default() -> Self {
        Self {
            version: VERSION,
            store: None,
            accounts: Vec::new(),
            default_account: None,
            providers: BTreeMap::new(),
            mcp_tokens: Vec::new(),
            mcp_clients: Vec::new(),
            keyring_pending: Vec::new(),
            extra: Map::new(),
        }
    }
}

/// What is on disk, version 1 or 2; turned into a [`Document`] (version 1's `mogplex` entry
/// becomes an account).
#[derive(Deserialize)]
struct RawDocument {
    #[serde(default = "version_one")]
    version: u32,
    #[serde(default)]
    store: Option<StoreKind>,
    #[serde(default)]
    mogplex: Option<AccountEntry>,
    #[serde(default)]
    accounts: Vec<AccountEntry>,
    #[serde(default)]
    default_account: Option<String>,
    #[serde(default)]
    providers: BTreeMap<String, ProviderKey>,
    #[serde(default)]
    mcp_tokens: Vec<McpTokenEntry>,
    #[serde(default)]
    mcp_clients: Vec<McpClientEntry>,
    #[serde(default)]
    keyring_pending: Vec<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// A file without a version is from before versions were written: version 1.
fn version_one() -> u32 {
    1
}

impl From<RawDocument> for Document {
    fn from(raw: RawDocument) -> Self {
        let mut doc = Document {
            version: raw.version,
            store: raw.store,
            accounts: raw.accounts,
            default_account: raw.default_account,
            providers: raw.providers,
            mcp_tokens: raw.mcp_tokens,
            mcp_clients: raw.mcp_clients,
            keyring_pending: raw.keyring_pending,
            extra: raw.extra,
        };
        for entry in &mut doc.accounts {
            if entry.id.is_empty() {
                entry.id = entry.derived_id();
            }
        }
        for entry in &mut doc.mcp_tokens {
            if entry.id.is_empty() {
                entry.id = mcp_token_id(entry.account.as_deref(), &entry.resource);
            }
        }
        if let Some(mut v1) = raw.mogplex {
            v1.id = v1.derived_id();
            if doc.default_account.is_none() {
                doc.default_account = Some(v1.id.clone());
            }
            if !doc.accounts.iter().any(|a| a.id == v1.id) {
                doc.accounts.push(v1);
            }
        }
        doc
    }
}

/// Issuers compare without a trailing slash.
pub fn normalize_issuer(issuer: &str) -> &str {
    issuer.trim_end_matches('/')
}

/// The first `2 * bytes` hex digits of SHA-256 of `parts` joined by newlines.
pub(crate) fn hash_hex(parts: &[&str], bytes: usize) -> String {
    let digest = sha2::Sha256::digest(parts.join("\n").as_bytes());
    digest[..bytes].iter().map(|b| format!("{b:02x}")).collect()
}

/// `acct_` + the first 12 hex digits of SHA-256(issuer + "\n" + account id).
pub fn account_entry_id(issuer: &str, account_id: &str) -> String {
    format!(
        "acct_{}",
        hash_hex(&[normalize_issuer(issuer), account_id], 6)
    )
}

/// `pat_` + the first 12 hex digits of SHA-256(issuer + "\n" + token), for a stored personal
/// access token whose account is unknown.
pub fn pat_entry_id(issuer: &str, token: &Secret) -> String {
    format!(
        "pat_{}",
        hash_hex(&[normalize_issuer(issuer), token.expose()], 6)
    )
}

/// Which secret field: the owner (an account entry id, or `providers.<name>`) and the field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot {
    pub owner: SlotOwner,
    pub field: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SlotOwner {
    Account(String),
    Provider(String),
    /// An MCP token entry id (`mcp_…`).
    Mcp(String),
}

impl Slot {
    /// The owner as it appears in keyring refs: the entry id, or `providers.<name>`.
    pub fn owner_label(&self) -> String {
        match &self.owner {
            SlotOwner::Account(id) | SlotOwner::Mcp(id) => id.clone(),
            SlotOwner::Provider(name) => format!("providers.{name}"),
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.owner {
            SlotOwner::Account(id) => write!(f, "accounts[{id}].{}", self.field),
            SlotOwner::Provider(name) => write!(f, "providers.{name}.{}", self.field),
            SlotOwner::Mcp(id) => write!(f, "mcp_tokens[{id}].{}", self.field),
        }
    }
}

const ACCOUNT_FIELDS: [&str; 4] = ["access_token", "refresh_token", "id_token", "api_key"];
const MCP_FIELDS: [&str; 2] = ["access_token", "refresh_token"];

impl AccountEntry {
    /// The id this entry should have: by account when known, else by personal access token.
    pub fn derived_id(&self) -> String {
        let account_id = self.account.as_ref().and_then(|a| a.id.as_deref());
        match (account_id, self.api_key.as_ref().and_then(Stored::value)) {
            (None, Some(token)) if self.access_token.is_none() => pat_entry_id(&self.issuer, token),
            (id, _) => account_entry_id(&self.issuer, id.unwrap_or("")),
        }
    }

    pub fn email(&self) -> Option<&str> {
        self.account.as_ref()?.email.as_deref()
    }

    pub fn account_id(&self) -> Option<&str> {
        self.account.as_ref()?.id.as_deref()
    }

    /// Whether this entry belongs to the account service at `issuer`.
    pub fn is_for(&self, issuer: &str) -> bool {
        normalize_issuer(&self.issuer) == normalize_issuer(issuer)
    }

    /// The bearer this entry supplies, and what kind it is (values only; a reference that was
    /// not resolved supplies nothing).
    pub fn bearer(&self) -> Option<(&Secret, MogplexCredentialKind)> {
        if let Some(t) = self.access_token.as_ref().and_then(Stored::value) {
            return Some((t, MogplexCredentialKind::Session));
        }
        self.api_key
            .as_ref()
            .and_then(Stored::value)
            .map(|t| (t, MogplexCredentialKind::PersonalAccessToken))
    }

    fn field(&self, name: &str) -> Option<&Option<Stored>> {
        Some(match name {
            "access_token" => &self.access_token,
            "refresh_token" => &self.refresh_token,
            "id_token" => &self.id_token,
            "api_key" => &self.api_key,
            _ => return None,
        })
    }

    fn field_mut(&mut self, name: &str) -> Option<&mut Option<Stored>> {
        Some(match name {
            "access_token" => &mut self.access_token,
            "refresh_token" => &mut self.refresh_token,
            "id_token" => &mut self.id_token,
            "api_key" => &mut self.api_key,
            _ => return None,
        })
    }

    /// A stored personal access token of the service at `issuer`, under its derived id.
    pub fn pat(issuer: &str, token: Secret) -> Self {
        let mut e = AccountEntry {
            issuer: issuer.to_owned(),
            api_key: Some(Stored::Value(token)),
            ..AccountEntry::default()
        };
        e.id = e.derived_id();
        e
    }
}

impl Default for AccountEntry {
    /// An empty entry of the hosted service (no id yet: [`AccountEntry::derived_id`]).
    fn default() -> Self {
        Self {
            id: String::new(),
            issuer: hosted_issuer(),
            access_token: None,
            refresh_token: None,
            id_token: None,
            api_key: None,
            token_type: None,
            scope: None,
            expires_at: None,
            obtained_at: None,
            used_at: None,
            account: None,
            extra: Map::new(),
        }
    }
}

impl Document {
    pub fn account(&self, id: &str) -> Option<&AccountEntry> {
        self.accounts.iter().find(|a| a.id == id)
    }

    pub fn account_mut(&mut self, id: &str) -> Option<&mut AccountEntry> {
        self.accounts.iter_mut().find(|a| a.id == id)
    }

    /// The stored default account, if it is still there.
    pub fn default_entry(&self) -> Option<&AccountEntry> {
        self.account(self.default_account.as_deref()?)
    }

    /// The accounts of the account service at `issuer`.
    pub fn accounts_for<'a>(&'a self, issuer: &'a str) -> impl Iterator<Item = &'a AccountEntry> {
        self.accounts.iter().filter(move |a| a.is_for(issuer))
    }

    /// A provider's key, when its value is here.
    pub fn provider_key(&self, id: &str) -> Option<&Secret> {
        self.providers.get(id)?.api_key.as_ref()?.value()
    }

    /// Which store the secrets live in (a document that does not say is the file's).
    pub fn store_kind(&self) -> StoreKind {
        self.store.clone().unwrap_or(StoreKind::File)
    }

    /// Every secret field that is set, in document order.
    pub fn slots(&self) -> Vec<(Slot, &Stored)> {
        let mut out = Vec::new();
        for a in &self.accounts {
            for field in ACCOUNT_FIELDS {
                if let Some(Some(s)) = a.field(field) {
                    let owner = SlotOwner::Account(a.id.clone());
                    out.push((Slot { owner, field }, s));
                }
            }
        }
        for m in &self.mcp_tokens {
            for field in MCP_FIELDS {
                if let Some(Some(s)) = m.field(field) {
                    let owner = SlotOwner::Mcp(m.id.clone());
                    out.push((Slot { owner, field }, s));
                }
            }
        }
        for (name, p) in &self.providers {
            if let Some(s) = &p.api_key {
                let owner = SlotOwner::Provider(name.clone());
                out.push((
                    Slot {
                        owner,
                        field: "apiKey",
                    },
                    s,
                ));
            }
        }
        out
    }

    /// The field at `slot`, if its owner exists.
    pub fn slot(&self, slot: &Slot) -> Option<&Option<Stored>> {
        match &slot.owner {
            SlotOwner::Account(id) => self.account(id)?.field(slot.field),
            SlotOwner::Provider(name) => Some(&self.providers.get(name)?.api_key),
            SlotOwner::Mcp(id) => self
                .mcp_tokens
                .iter()
                .find(|m| &m.id == id)?
                .field(slot.field),
        }
    }

    pub fn slot_mut(&mut self, slot: &Slot) -> Option<&mut Option<Stored>> {
        match &slot.owner {
            SlotOwner::Account(id) => self.account_mut(id)?.field_mut(slot.field),
            SlotOwner::Provider(name) => Some(&mut self.providers.get_mut(name)?.api_key),
            SlotOwner::Mcp(id) => self
                .mcp_tokens
                .iter_mut()
                .find(|m| &m.id == id)?
                .field_mut(slot.field),
        }
    }

    /// The MCP tokens of `resource` as `account` reaches it.
    pub fn mcp_token(&self, account: Option<&str>, resource: &str) -> Option<&McpTokenEntry> {
        self.mcp_tokens.iter().find(|m| m.is_for(account, resource))
    }

    /// The client registered with the authorization server `issuer`, if one is remembered.
    pub fn mcp_client(&self, issuer: &str) -> Option<&McpClientEntry> {
        self.mcp_clients
            .iter()
            .find(|c| normalize_issuer(&c.issuer) == normalize_issuer(issuer))
    }

    /// Every keyring item the document references.
    pub fn keyring_refs(&self) -> Vec<&str> {
        self.slots()
            .into_iter()
            .filter_map(|(_, s)| s.keyring_ref())
            .collect()
    }

    /// Whether any secret value is held in the document itself.
    pub fn has_inline_secrets(&self) -> bool {
        self.slots()
            .iter()
            .any(|(_, s)| matches!(s, Stored::Value(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Document {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn a_version_1_file_reads_as_one_default_account_keeping_unknown_keys() {
        let doc = parse(
            r#"{"version":1,"future":{"x":1},
                "mogplex":{"issuer":"http://127.0.0.1:9/","access_token":"at","refresh_token":"rt",
                           "account":{"id":"u_1","email":"ada@example.com","name":"Ada"},"later":true},
                "providers":{"openai":{"apiKey":"sk-1","org":"o"}}}"#,
        );
        assert_eq!(doc.version, 1);
        assert_eq!(doc.accounts.len(), 1);
        let a = &doc.accounts[0];
        assert_eq!(a.id, account_entry_id("http://127.0.0.1:9", "u_1"));
        assert_eq!(doc.default_account.as_deref(), Some(a.id.as_str()));
        assert_eq!(a.extra["later"], true);
        assert_eq!(a.account.as_ref().unwrap().extra["name"], "Ada");
        assert_eq!(doc.provider_key("openai").unwrap().expose(), "sk-1");

        let mut written = serde_json::to_value(&doc).unwrap();
        written["version"] = VERSION.into();
        assert!(written.get("mogplex").is_none());
        assert_eq!(written["future"]["x"], 1);
        assert_eq!(written["providers"]["openai"]["org"], "o");
        assert_eq!(written["accounts"][0]["later"], true);
        assert_eq!(written["accounts"][0]["account"]["name"], "Ada");
        // Read back as version 2: the same document.
        let again: Document = serde_json::from_value(written).unwrap();
        assert_eq!(again.accounts, doc.accounts);
        assert_eq!(again.default_account, doc.default_account);
    }

    #[test]
    fn a_version_1_entry_without_issuer_is_the_hosted_service_and_a_pat_gets_a_pat_id() {
        let doc = parse(r#"{"version":1,"mogplex":{"api_key":"mog_abc"}}"#);
        let a = &doc.accounts[0];
        assert_eq!(a.issuer, mogplex_protocol::DEFAULT_BASE_URL);
        assert!(a.id.starts_with("pat_"), "{}", a.id);
        assert_eq!(a.id, pat_entry_id(&a.issuer, &Secret::new("mog_abc")));
        assert_eq!(
            a.bearer().unwrap().1,
            MogplexCredentialKind::PersonalAccessToken
        );
    }

    #[test]
    fn ids_are_stable_per_issuer_and_account_and_never_contain_the_secret() {
        let a = account_entry_id("https://www.mogplex.com/", "u_1");
        assert_eq!(a, account_entry_id("https://www.mogplex.com", "u_1"));
        assert_ne!(a, account_entry_id("https://www.mogplex.com", "u_2"));
        assert_ne!(a, account_entry_id("http://127.0.0.1:8080", "u_1"));
        assert_eq!(a.len(), "acct_".len() + 12);
        let pat = pat_entry_id("https://www.mogplex.com", &Secret::new("mog_secretvalue"));
        assert!(!pat.contains("secret"));
        assert_eq!(pat.len(), "pat_".len() + 12);
    }

    #[test]
    fn keyring_references_round_trip_and_unknown_keys_survive_at_every_level() {
        let text = r#"{"version":2,"store":"keyring","top":1,
            "accounts":[{"id":"acct_1","issuer":"https://x","access_token":{"keyring":"h/acct_1/access_token/00"},
                         "refresh_token":"rt","account":{"id":"u","email":"e@x","deep":[1]},"mid":2}],
            "default_account":"acct_1",
            "providers":{"groq":{"apiKey":{"keyring":"h/providers.groq/apiKey/01"},"low":3}},
            "keyring_pending":["h/old"]}"#;
        let doc = parse(text);
        assert_eq!(doc.store_kind(), StoreKind::Keyring);
        assert_eq!(
            doc.keyring_refs(),
            ["h/acct_1/access_token/00", "h/providers.groq/apiKey/01"]
        );
        assert!(doc.has_inline_secrets());
        assert!(doc.provider_key("groq").is_none());
        let back = serde_json::to_value(&doc).unwrap();
        let original: Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, original);
    }

    #[test]
    fn mcp_tokens_and_clients_round_trip_as_secret_slots_keeping_unknown_keys() {
        // A file from before the MCP lists reads with them empty, and writes none.
        let old = parse(r#"{"version":2,"accounts":[{"id":"acct_1","issuer":"https://x"}]}"#);
        assert!(old.mcp_tokens.is_empty() && old.mcp_clients.is_empty());
        let back = serde_json::to_value(&old).unwrap();
        assert!(back.get("mcp_tokens").is_none() && back.get("mcp_clients").is_none());

        let text = r#"{"version":2,"store":"keyring",
            "mcp_tokens":[{"id":"mcp_1","account":"acct_1","server":"demo","resource":"https://x/mcp/demo",
                           "issuer":"https://x","client_id":"mcl_1","scope":"mcp:demo",
                           "access_token":{"keyring":"h/mcp_1/access_token/00"},"refresh_token":"rt",
                           "expires_at":"2099-01-01T00:00:00Z","later":[1]},
                          {"server":"other","resource":"https://y/mcp","issuer":"https://y","client_id":"c"}],
            "mcp_clients":[{"issuer":"https://x","client_id":"mcl_1","redirect_uris":["http://127.0.0.1:24816/auth/callback"],"kept":true}]}"#;
        let doc = parse(text);
        assert_eq!(doc.keyring_refs(), ["h/mcp_1/access_token/00"]);
        assert!(doc.has_inline_secrets());
        let slots: Vec<String> = doc.slots().iter().map(|(s, _)| s.to_string()).collect();
        assert_eq!(
            slots,
            [
                "mcp_tokens[mcp_1].access_token",
                "mcp_tokens[mcp_1].refresh_token"
            ]
        );
        // An entry without an id gets its derived one.
        assert_eq!(doc.mcp_tokens[1].id, mcp_token_id(None, "https://y/mcp"));
        assert_eq!(
            doc.mcp_token(Some("acct_1"), "https://x/mcp/demo")
                .unwrap()
                .refresh()
                .unwrap()
                .expose(),
            "rt"
        );
        assert!(doc.mcp_token(None, "https://x/mcp/demo").is_none());
        assert_eq!(doc.mcp_client("https://x/").unwrap().client_id, "mcl_1");
        let mut back = serde_json::to_value(&doc).unwrap();
        assert_eq!(back["mcp_tokens"][0]["later"], serde_json::json!([1]));
        assert_eq!(back["mcp_clients"][0]["kept"], true);
        back["mcp_tokens"][1].as_object_mut().unwrap().remove("id");
        let mut original: Value = serde_json::from_str(text).unwrap();
        original["version"] = 2.into();
        assert_eq!(back, original);
    }

    #[test]
    fn an_unknown_store_is_kept_as_written() {
        let doc = parse(r#"{"version":3,"store":"tpm"}"#);
        assert_eq!(doc.store_kind(), StoreKind::Other("tpm".into()));
        assert_eq!(serde_json::to_value(&doc).unwrap()["store"], "tpm");
    }

    #[test]
    fn a_malformed_reference_is_a_parse_error_that_quotes_nothing() {
        let e = serde_json::from_str::<Document>(
            r#"{"version":2,"providers":{"x":{"apiKey":{"vault":"sk-abcdef"}}}}"#,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("sk-abcdef"), "{e}");
    }
}
