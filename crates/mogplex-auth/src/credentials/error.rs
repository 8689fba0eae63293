//! What can go wrong with stored credentials, each with the fix in its hint. No message ever
//! holds a secret value: keyring refs and field names only.

use crate::store::StoreError;
use std::path::PathBuf;
use std::time::Duration;

/// The OS keyring did not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyringError {
    /// No D-Bus session bus to find the Secret Service on.
    #[error(
        "the keyring credential store cannot reach {}: there is no D-Bus session ({detail})",
        super::vault::keyring_name()
    )]
    NoSession { detail: String },
    /// A bus, but nothing answering as a keyring, or the keyring refused to open.
    #[error(
        "the keyring credential store cannot reach {}: {detail}",
        super::vault::keyring_name()
    )]
    Unavailable { detail: String },
    /// The keyring (or the collection mogplex uses) is locked and could not be unlocked.
    #[error("{} is locked ({detail})", super::vault::keyring_name())]
    Locked { detail: String },
    /// A call did not return within the bound.
    #[error("{} did not answer within {} s (a {op})", super::vault::keyring_name(), after.as_secs())]
    Unresponsive { op: &'static str, after: Duration },
    #[error(
        "{} failed to {op} a credential: {detail}",
        super::vault::keyring_name()
    )]
    Failed { op: &'static str, detail: String },
}

const USE_FILE: &str = "or set MOGPLEX_CREDENTIAL_STORE=file to keep credentials in auth.json";

fn unlock_how() -> &'static str {
    if cfg!(target_os = "macos") {
        "unlock the login keychain in Keychain Access (or `security unlock-keychain`)"
    } else if cfg!(windows) {
        "sign in to Windows with your account so Credential Manager is available"
    } else {
        "unlock it (`echo -n <password> | gnome-keyring-daemon --unlock`, or Seahorse / your keyring app)"
    }
}

impl KeyringError {
    pub fn hint(&self) -> String {
        match self {
            KeyringError::NoSession { .. } => format!(
                "run mogplex in a desktop session, or start one for this shell (`dbus-run-session -- $SHELL` with gnome-keyring-daemon or KeePassXC providing the Secret Service), {USE_FILE}"
            ),
            KeyringError::Unavailable { .. } => format!(
                "start a keyring (gnome-keyring-daemon, KWallet, KeePassXC with Secret Service enabled), {USE_FILE}"
            ),
            KeyringError::Locked { .. } => format!("{}, {USE_FILE}", unlock_how()),
            KeyringError::Unresponsive { .. } => format!(
                "the keyring may be waiting for an unlock prompt: {}, {USE_FILE}",
                unlock_how()
            ),
            KeyringError::Failed { .. } => format!("try again; if it keeps failing, {USE_FILE}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(transparent)]
    File(#[from] StoreError),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error("MOGPLEX_CREDENTIAL_STORE is {value:?}; it must be one of file, keyring or auto")]
    BadChoice { value: String },
    #[error(
        "{path} has schema version {version}; this mogplex understands version {}",
        super::document::VERSION
    )]
    NewerVersion { path: PathBuf, version: u32 },
    #[error("{path} keeps its secrets in a store this mogplex does not know ({store})")]
    UnknownStore { path: PathBuf, store: String },
    #[error(
        "{path} keeps its secrets in the keyring, and MOGPLEX_CREDENTIAL_STORE chooses the file"
    )]
    KeyringDocument { path: PathBuf },
    #[error("no stored account has the id {id}")]
    NoSuchAccount { id: String },
}

impl CredentialError {
    pub fn hint(&self) -> Option<String> {
        match self {
            CredentialError::File(e) => e.hint(),
            CredentialError::Keyring(e) => Some(e.hint()),
            CredentialError::BadChoice { .. } => Some(
                "set MOGPLEX_CREDENTIAL_STORE=file (the default: auth.json), keyring (the OS keyring) or auto (the keyring when one answers, else the file), or unset it".into(),
            ),
            CredentialError::NewerVersion { .. } | CredentialError::UnknownStore { .. } => Some(
                "upgrade mogplex; this version will not modify a file it does not fully understand"
                    .into(),
            ),
            CredentialError::KeyringDocument { .. } => Some(
                "run `mogplex credentials migrate --to file` to move them, or set MOGPLEX_CREDENTIAL_STORE=keyring"
                    .into(),
            ),
            CredentialError::NoSuchAccount { .. } => {
                Some("`mogplex account list` shows the stored accounts".into())
            }
        }
    }
}
