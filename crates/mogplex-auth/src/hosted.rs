//! The hosted state of a Mogplex account, cached under `<home>/hosted/` (SPEC section 5): who the
//! account is, its model catalog, and its MCP server definitions.
//!
//! The cockpit fetches these in the background and falls back to this cache, marked stale, when
//! the service cannot be reached. Each file says whose it is (`owner`: the account, or for a
//! personal access token a fingerprint of it) and which service it came from (`issuer`); a cache
//! written for anyone else is never read. Files are 0600 (MCP definitions can carry tokens),
//! replaced whole, and removed together with the sign-in.

use crate::home::{HomeError, MogplexHome, ensure_private_dir};
use crate::private_file;
use crate::secret::Secret;
use mogplex_protocol::{AccountUser, CliModel, McpServer};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::path::{Path, PathBuf};

const MAX_CACHE_FILE: u64 = 4 * 1024 * 1024;
const FILES: [&str; 3] = ["account.json", "models.json", "mcp.json"];

/// What a Mogplex account brings, as fetched at `fetched_at` (RFC 3339).
#[derive(Clone, PartialEq)]
pub struct Hosted {
    pub owner: String,
    pub issuer: String,
    pub fetched_at: String,
    pub account: Option<AccountUser>,
    pub models: Vec<CliModel>,
    pub mcp: Vec<McpServer>,
}

impl std::fmt::Debug for Hosted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosted")
            .field("owner", &self.owner)
            .field("issuer", &self.issuer)
            .field("fetched_at", &self.fetched_at)
            .field("models", &self.models.len())
            .field("mcp", &self.mcp.len())
            .finish_non_exhaustive()
    }
}

impl Hosted {
    /// Every value in the MCP definitions, for redaction: they may be tokens.
    pub fn mcp_values(&self) -> Vec<Secret> {
        let mut out = Vec::new();
        for s in &self.mcp {
            for section in ["env", "http_headers"] {
                if let Some(map) = s.config.get(section).and_then(|v| v.as_object()) {
                    out.extend(
                        map.values()
                            .filter_map(|v| v.as_str())
                            .filter(|v| v.len() >= 8)
                            .map(Secret::new),
                    );
                }
            }
        }
        out
    }
}

/// Whose hosted state a credential sees: the signed-in account, or a personal access token
/// (which names no account until it has been asked).
pub fn owner(account_id: Option<&str>, pat: Option<&Secret>) -> Option<String> {
    if let Some(id) = account_id {
        return Some(format!("account:{id}"));
    }
    let token = pat?;
    let digest = sha2::Sha256::digest(token.expose().as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("token:{hex}"))
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    owner: String,
    issuer: String,
    fetched_at: String,
    data: T,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Home(#[from] HomeError),
}

#[derive(Debug, Clone)]
pub struct HostedCache {
    dir: PathBuf,
}

impl HostedCache {
    pub fn new(home: &MogplexHome) -> Self {
        Self {
            dir: home.path().join("hosted"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read<T: DeserializeOwned>(&self, name: &str) -> Option<Envelope<T>> {
        let bytes = private_file::read(&self.dir.join(name), MAX_CACHE_FILE)
            .ok()
            .flatten()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The cached state for `owner` from `issuer`, if all of it is there and theirs.
    pub fn load(&self, owner: &str, issuer: &str) -> Option<Hosted> {
        let account: Envelope<Option<AccountUser>> = self.read("account.json")?;
        let models: Envelope<Vec<CliModel>> = self.read("models.json")?;
        let mcp: Envelope<Vec<McpServer>> = self.read("mcp.json")?;
        let theirs = |o: &str, i: &str| {
            o == owner && i.trim_end_matches('/') == issuer.trim_end_matches('/')
        };
        if !(theirs(&account.owner, &account.issuer)
            && theirs(&models.owner, &models.issuer)
            && theirs(&mcp.owner, &mcp.issuer))
        {
            return None;
        }
        Some(Hosted {
            owner: account.owner,
            issuer: account.issuer,
            fetched_at: account.fetched_at,
            account: account.data,
            models: models.data,
            mcp: mcp.data,
        })
    }

    fn write<T: Serialize>(&self, h: &Hosted, name: &str, data: T) -> Result<(), CacheError> {
        let path = self.dir.join(name);
        let envelope = Envelope {
            owner: h.owner.clone(),
            issuer: h.issuer.clone(),
            fetched_at: h.fetched_at.clone(),
            data,
        };
        let mut bytes = serde_json::to_vec_pretty(&envelope).map_err(|e| CacheError::Io {
            op: "encode",
            path: path.clone(),
            source: e.into(),
        })?;
        bytes.push(b'\n');
        private_file::write(&path, &bytes).map_err(|e| CacheError::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        })
    }

    /// Replaces the cache with `h` (the directory is 0700, the files 0600).
    pub fn save(&self, h: &Hosted) -> Result<(), CacheError> {
        ensure_private_dir(&self.dir)?;
        self.write(h, "account.json", &h.account)?;
        self.write(h, "models.json", &h.models)?;
        self.write(h, "mcp.json", &h.mcp)
    }

    /// Removes every cached file and the directory. Returns whether anything was there.
    pub fn clear(&self) -> Result<bool, CacheError> {
        let mut any = false;
        for name in FILES {
            let path = self.dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => any = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(CacheError::Io {
                        op: "remove",
                        path,
                        source,
                    });
                }
            }
        }
        for name in FILES {
            private_file::remove_stale_temp_files(&self.dir.join(name));
        }
        match std::fs::remove_dir(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // Something else is in there (not ours): leave the directory.
            Err(_) => {}
        }
        Ok(any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample(owner: &str) -> Hosted {
        Hosted {
            owner: owner.into(),
            issuer: "http://127.0.0.1:1".into(),
            fetched_at: "2026-12-01T00:00:00Z".into(),
            account: Some(AccountUser {
                id: "u1".into(),
                email: "ada@example.com".into(),
                name: None,
                created_at: None,
            }),
            models: vec![],
            mcp: vec![
                serde_json::from_value(serde_json::json!(
                    {"name": "gh", "config": {"command": "x", "env": {"TOKEN": "ghp_0123456789"}}}
                ))
                .unwrap(),
            ],
        }
    }

    #[test]
    fn saved_private_read_only_by_its_owner_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let home = MogplexHome::at(dir.path().join("h"));
        let cache = HostedCache::new(&home);
        let h = sample("account:u1");
        cache.save(&h).unwrap();
        for f in FILES {
            let mode = std::fs::metadata(cache.dir().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        assert_eq!(
            cache.load("account:u1", "http://127.0.0.1:1/"),
            Some(h.clone())
        );
        assert_eq!(cache.load("account:u2", "http://127.0.0.1:1"), None);
        assert_eq!(cache.load("account:u1", "http://127.0.0.1:2"), None);
        assert!(
            !format!("{h:?}").contains("ghp_"),
            "Debug shows no MCP values"
        );
        assert_eq!(h.mcp_values()[0].expose(), "ghp_0123456789");
        assert!(cache.clear().unwrap());
        assert!(!cache.dir().exists());
        assert!(!cache.clear().unwrap());
    }

    #[test]
    fn owners() {
        assert_eq!(owner(Some("u1"), None).unwrap(), "account:u1");
        let a = owner(None, Some(&Secret::new("mog_a"))).unwrap();
        assert!(a.starts_with("token:") && !a.contains("mog_"));
        assert_ne!(a, owner(None, Some(&Secret::new("mog_b"))).unwrap());
        assert_eq!(owner(None, None), None);
    }
}
