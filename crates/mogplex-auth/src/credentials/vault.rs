//! Secret values in the OS keyring: Secret Service on Linux and the BSDs, the Keychain on macOS,
//! Credential Manager on Windows (crate `keyring`, service `mogplex`, user = the ref).
//!
//! A keyring can hang (a locked collection waiting on an unlock prompt nobody sees, a daemon
//! that stopped answering), so every call runs on its own thread and is abandoned after
//! [`KEYRING_TIMEOUT`]. Once a call has been abandoned the vault answers every later call at
//! once with the same error: the keyring's connection is shared, so they would hang too.
//!
//! What a keyring item holds is a small JSON object, `{"value": "<secret>"}`, so an item
//! changed behind our back to something else is recognised (and reported) instead of being
//! sent somewhere as a credential.

use super::error::KeyringError;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// The bound on every keyring call.
pub const KEYRING_TIMEOUT: Duration = Duration::from_secs(3);

/// The keyring service name every mogplex item is stored under.
pub const SERVICE: &str = "mogplex";

/// What a keyring lookup found.
#[derive(Debug)]
pub enum Fetched {
    /// No such item (never set, or deleted behind our back).
    Missing,
    Value(Secret),
    /// The item exists but does not hold a mogplex credential; `reason` names why, never the
    /// content.
    Unreadable(&'static str),
}

/// Get, set and delete secret values by ref.
pub trait Vault: Send + Sync + std::fmt::Debug {
    /// Whether a keyring answers at all (connects; a lookup of a probe ref), within the bound.
    fn probe(&self, probe_ref: &str) -> Result<(), KeyringError>;
    fn get(&self, r: &str) -> Result<Fetched, KeyringError>;
    fn set(&self, r: &str, value: &Secret) -> Result<(), KeyringError>;
    /// Deletes the item; `false` when there was none.
    fn delete(&self, r: &str) -> Result<bool, KeyringError>;
    /// The keyring's name for messages ("the Secret Service", "the macOS Keychain", …).
    fn name(&self) -> &'static str {
        keyring_name()
    }
}

/// The OS keyring's name on this platform.
pub fn keyring_name() -> &'static str {
    if cfg!(target_os = "macos") {
        "the macOS Keychain"
    } else if cfg!(windows) {
        "Windows Credential Manager"
    } else {
        "the Secret Service keyring"
    }
}

#[derive(Serialize, Deserialize)]
struct Blob {
    value: Secret,
}

fn encode(value: &Secret) -> Secret {
    // Serialising a struct of one string cannot fail.
    Secret::new(
        serde_json::to_string(&Blob {
            value: value.clone(),
        })
        .unwrap_or_default(),
    )
}

fn decode(blob: &str) -> Fetched {
    match serde_json::from_str::<Blob>(blob) {
        Ok(b) if !b.value.is_empty() => Fetched::Value(b.value),
        Ok(_) => Fetched::Unreadable("it is empty"),
        Err(_) => Fetched::Unreadable("it does not hold a mogplex credential"),
    }
}

/// The OS keyring through crate `keyring`.
#[derive(Debug, Default)]
pub struct KeyringVault {
    /// Set once a call was abandoned: later calls fail at once.
    hung: AtomicBool,
}

impl KeyringVault {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `call` on its own thread; gives up after [`KEYRING_TIMEOUT`].
    fn bounded<T: Send + 'static>(
        &self,
        op: &'static str,
        call: impl FnOnce() -> Result<T, KeyringError> + Send + 'static,
    ) -> Result<T, KeyringError> {
        if self.hung.load(Ordering::Relaxed) {
            return Err(KeyringError::Unresponsive {
                op,
                after: KEYRING_TIMEOUT,
            });
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("mogplex-keyring".into())
            .spawn(move || {
                let _ = tx.send(call());
            });
        if let Err(e) = spawned {
            return Err(KeyringError::Failed {
                op,
                detail: format!("cannot start a thread: {e}"),
            });
        }
        match rx.recv_timeout(KEYRING_TIMEOUT) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.hung.store(true, Ordering::Relaxed);
                Err(KeyringError::Unresponsive {
                    op,
                    after: KEYRING_TIMEOUT,
                })
            }
            // The thread ended without an answer: the keyring library panicked.
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(KeyringError::Failed {
                op,
                detail: "the keyring library failed unexpectedly".into(),
            }),
        }
    }
}

fn entry(op: &'static str, r: &str) -> Result<keyring::Entry, KeyringError> {
    keyring::Entry::new(SERVICE, r).map_err(|e| classify(op, e))
}

/// Turns the keyring crate's error into one that names the fix.
fn classify(op: &'static str, e: keyring::Error) -> KeyringError {
    match e {
        keyring::Error::NoDefaultStore => match keyring::Entry::store_status() {
            Err(inner) => connect_error(inner),
            Ok(()) => KeyringError::Unavailable {
                detail: "the keyring could not be opened".into(),
            },
        },
        keyring::Error::NoStorageAccess(inner) => KeyringError::Locked {
            detail: inner.to_string(),
        },
        other => KeyringError::Failed {
            op,
            detail: other.to_string(),
        },
    }
}

/// Why the keyring could not be opened at all.
fn connect_error(e: &keyring::Error) -> KeyringError {
    let detail = match e {
        keyring::Error::PlatformFailure(inner) | keyring::Error::NoStorageAccess(inner) => {
            inner.to_string()
        }
        other => other.to_string(),
    };
    // zbus's "Failed to connect to address …" (no bus at the session address, or no address),
    // and secret-service's "no secret service provider or dbus session found".
    let no_session = detail.contains("connect to address")
        || detail.contains("dbus session")
        || detail.contains("DBUS_SESSION_BUS_ADDRESS");
    if cfg!(all(unix, not(target_os = "macos"))) && no_session {
        KeyringError::NoSession { detail }
    } else {
        KeyringError::Unavailable { detail }
    }
}

impl Vault for KeyringVault {
    fn probe(&self, probe_ref: &str) -> Result<(), KeyringError> {
        self.get(probe_ref).map(|_| ())
    }

    fn get(&self, r: &str) -> Result<Fetched, KeyringError> {
        let r = r.to_owned();
        self.bounded("read", move || {
            let entry = entry("read", &r)?;
            match entry.get_password() {
                Ok(blob) => Ok(decode(Secret::new(blob).expose())),
                Err(keyring::Error::NoEntry) => Ok(Fetched::Missing),
                Err(keyring::Error::BadEncoding(_)) => Ok(Fetched::Unreadable("it is not text")),
                Err(keyring::Error::Ambiguous(_)) => Ok(Fetched::Unreadable(
                    "several keyring items answer to its name",
                )),
                Err(e) => Err(classify("read", e)),
            }
        })
    }

    fn set(&self, r: &str, value: &Secret) -> Result<(), KeyringError> {
        let r = r.to_owned();
        let blob = encode(value);
        self.bounded("write", move || {
            entry("write", &r)?
                .set_password(blob.expose())
                .map_err(|e| classify("write", e))
        })
    }

    fn delete(&self, r: &str) -> Result<bool, KeyringError> {
        let r = r.to_owned();
        self.bounded("delete", move || {
            match entry("delete", &r)?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring::Error::NoEntry) => Ok(false),
                Err(e) => Err(classify("delete", e)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_foreign_content_is_unreadable() {
        let blob = encode(&Secret::new("rt-123"));
        assert!(matches!(decode(blob.expose()), Fetched::Value(v) if v.expose() == "rt-123"));
        assert!(matches!(decode("rt-123"), Fetched::Unreadable(_)));
        assert!(matches!(decode(r#"{"value":""}"#), Fetched::Unreadable(_)));
        assert!(matches!(decode(r#"{"other":1}"#), Fetched::Unreadable(_)));
    }
}
