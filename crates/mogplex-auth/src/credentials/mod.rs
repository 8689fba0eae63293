//! Stored credentials behind one seam: the [`CredentialStore`] (design section 1).
//!
//! `auth.json` (schema version 2, [`document`]) is always the index and the lock. The file store
//! keeps the secret values in it; the keyring store keeps them in the OS keyring and leaves
//! references in `auth.json`, so non-secret metadata (issuer, account, expiry) reads without an
//! unlock. `MOGPLEX_CREDENTIAL_STORE=file|keyring|auto` chooses ([`StoreChoice`], default
//! `file`); `auto` falls back to the file only with a recorded reason ([`StoreInfo::fallback`]).
//!
//! Every credential operation (store a key, a sign-in, refresh, remove, log out, switch the
//! default, migrate) is a function over the trait in [`ops`], so the binary holds no store
//! logic.

pub mod document;
mod engine;
pub mod error;
pub mod mcp;
pub mod ops;
mod stored;
pub mod vault;

pub use document::{
    AccountEntry, Document, McpClientEntry, McpTokenEntry, ProviderKey, Slot, SlotOwner, StoreKind,
    Stored,
};
pub use engine::Locked;
pub use error::{CredentialError, KeyringError};
pub use vault::{KEYRING_TIMEOUT, KeyringVault, Vault};

use crate::env::Env;
use crate::home::MogplexHome;
use crate::store::MovedAside;
use engine::Engine;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The variable that chooses the store.
pub const STORE_VAR: &str = "MOGPLEX_CREDENTIAL_STORE";

/// What `MOGPLEX_CREDENTIAL_STORE` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreChoice {
    /// `auth.json` holds the secrets (the default).
    #[default]
    File,
    /// The OS keyring holds them; no fallback.
    Keyring,
    /// The keyring when one answers within the bound, else the file, saying why.
    Auto,
}

impl StoreChoice {
    /// Reads `MOGPLEX_CREDENTIAL_STORE` (unset or empty: `file`).
    pub fn from_env(env: &dyn Env) -> Result<Self, CredentialError> {
        match env.var(STORE_VAR) {
            None => Ok(StoreChoice::File),
            Some(v) => Self::parse(&v),
        }
    }

    pub fn parse(value: &str) -> Result<Self, CredentialError> {
        match value.trim() {
            "file" => Ok(StoreChoice::File),
            "keyring" => Ok(StoreChoice::Keyring),
            "auto" => Ok(StoreChoice::Auto),
            _ => Err(CredentialError::BadChoice {
                value: value.to_owned(),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StoreChoice::File => "file",
            StoreChoice::Keyring => "keyring",
            StoreChoice::Auto => "auto",
        }
    }
}

/// Which store is in use, where, and why (for `/status` and `mogplex status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    /// Where new secrets go: [`StoreKind::File`] or [`StoreKind::Keyring`].
    pub kind: StoreKind,
    pub choice: StoreChoice,
    /// `auth.json`: the secrets (file store) or the index (keyring store).
    pub path: PathBuf,
    /// With `auto`: why the keyring was not used.
    pub fallback: Option<String>,
    /// Why the chosen store could not be opened ([`UnavailableStore`]): nothing stored is read.
    pub unavailable: Option<String>,
}

impl StoreInfo {
    /// `keyring (the Secret Service keyring; index /h/auth.json)` or `/h/auth.json`.
    pub fn label(&self) -> String {
        match self.kind {
            StoreKind::Keyring => format!(
                "keyring ({}; index {})",
                vault::keyring_name(),
                self.path.display()
            ),
            _ => self.path.display().to_string(),
        }
    }

    /// The one-line note for a write the fallback caused; never silent.
    pub fn fallback_note(&self) -> Option<String> {
        self.fallback.as_ref().map(|why| {
            format!(
                "note: {STORE_VAR}=auto, but the keyring is not available ({why}); credentials are kept in {}",
                self.path.display()
            )
        })
    }
}

/// Something the user should be told about what a read or write found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The keyring item `auth.json` names is gone (deleted outside mogplex): that credential
    /// reads as absent.
    Missing { slot: Slot },
    /// The keyring item holds something that is not a mogplex credential: ignored, and removed
    /// by the next write.
    Unreadable { slot: Slot, reason: &'static str },
    /// The keyring store moved secrets that `auth.json` held in plain text into the keyring.
    MovedIntoKeyring { path: PathBuf },
    /// The chosen store could not be opened: nothing stored was read.
    Unavailable { why: String, hint: String },
}

impl Note {
    pub fn text(&self) -> String {
        match self {
            Note::Missing { slot } => format!(
                "note: the keyring item for {slot} is gone (removed outside mogplex); that credential is treated as not stored"
            ),
            Note::Unreadable { slot, reason } => format!(
                "note: the keyring item for {slot} cannot be used ({reason}); it is ignored and will be removed with the next change to stored credentials"
            ),
            Note::Unavailable { why, hint } => {
                format!("warning: {why}; stored credentials are not read (hint: {hint})")
            }
            Note::MovedIntoKeyring { path } => format!(
                "note: moved the secrets {} held into the keyring; it now keeps only references",
                path.display()
            ),
        }
    }
}

/// What a read found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The document; empty when `auth.json` is missing or was moved aside.
    pub doc: Document,
    /// Whether `auth.json` existed and parsed.
    pub exists: bool,
    pub moved_aside: Option<MovedAside>,
    pub notes: Vec<Note>,
}

/// What an [`update`](CredentialStore::update) did.
#[derive(Debug)]
pub struct Updated<T> {
    pub value: T,
    /// Whether `auth.json` was rewritten.
    pub written: bool,
    pub moved_aside: Option<MovedAside>,
    pub notes: Vec<Note>,
}

/// Where stored credentials live.
pub trait CredentialStore: Send + Sync + fmt::Debug {
    /// Which store, where, why.
    fn info(&self) -> &StoreInfo;

    /// Reads without the lock (the file is only ever replaced by rename), every keyring
    /// reference filled in. A corrupt file is moved aside; keyring items found gone or
    /// unreadable read as absent, with a [`Note`].
    fn load(&self) -> Result<Loaded, CredentialError>;

    /// Reads the document without touching the keyring: references stay references. For
    /// status and account lists, which need no secret and no unlock.
    fn load_metadata(&self) -> Result<Loaded, CredentialError>;

    /// Takes the lock and re-reads, for a read-modify-write (blocking while another process
    /// holds it). [`Locked::write`] commits.
    fn locked(&self) -> Result<Locked, CredentialError>;
}

impl dyn CredentialStore + '_ {
    /// `auth.json`.
    pub fn path(&self) -> &Path {
        &self.info().path
    }

    /// Read-modify-write under the lock. `change` sees the document as it is after the lock
    /// was taken, secrets filled in. Nothing is written when it leaves the document unchanged.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut Document) -> Result<T, CredentialError>,
    ) -> Result<Updated<T>, CredentialError> {
        let mut locked = self.locked()?;
        let mut doc = locked.document().clone();
        let value = change(&mut doc)?;
        let written = locked.write(doc)?;
        Ok(Updated {
            value,
            written,
            moved_aside: locked.take_moved_aside(),
            notes: locked.take_notes(),
        })
    }

    /// Removes the named credentials (an account entry and its keyring items, or a provider
    /// key). Returns those that were there.
    pub fn remove(
        &self,
        what: &[CredentialId],
    ) -> Result<Updated<Vec<CredentialId>>, CredentialError> {
        self.update(|doc| {
            let mut removed = Vec::new();
            for id in what {
                if ops::remove_from(doc, id) {
                    removed.push(id.clone());
                }
            }
            Ok(removed)
        })
    }
}

/// A stored credential by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialId {
    /// An account entry id (`acct_…`, `pat_…`).
    Account(String),
    /// A provider id (`openai`).
    Provider(String),
}

/// `auth.json` with the secrets in it.
#[derive(Debug)]
pub struct FileStore {
    engine: Arc<Engine>,
}

impl FileStore {
    pub fn new(home: &MogplexHome) -> Self {
        Self::with(home, StoreChoice::File, None)
    }

    fn with(home: &MogplexHome, choice: StoreChoice, fallback: Option<String>) -> Self {
        let info = StoreInfo {
            kind: StoreKind::File,
            choice,
            path: home.auth_file(),
            fallback,
            unavailable: None,
        };
        // A document a keyring session wrote still reads: its secrets are in the keyring.
        let vault = Arc::new(KeyringVault::new());
        Self {
            engine: Arc::new(Engine::new(home.path(), StoreKind::File, vault, info)),
        }
    }
}

/// Secrets in the OS keyring; `auth.json` the index and the lock.
#[derive(Debug)]
pub struct KeyringStore {
    engine: Arc<Engine>,
}

impl KeyringStore {
    /// Opens the keyring store, checking that a keyring answers (within the bound).
    pub fn open(home: &MogplexHome) -> Result<Self, CredentialError> {
        Self::open_as(home, StoreChoice::Keyring)
    }

    fn open_as(home: &MogplexHome, choice: StoreChoice) -> Result<Self, CredentialError> {
        let info = StoreInfo {
            kind: StoreKind::Keyring,
            choice,
            path: home.auth_file(),
            fallback: None,
            unavailable: None,
        };
        let vault = Arc::new(KeyringVault::new());
        let engine = Arc::new(Engine::new(home.path(), StoreKind::Keyring, vault, info));
        engine.probe()?;
        Ok(Self { engine })
    }

    /// The keyring user name prefix of this home's items (`<home id>/`).
    pub fn namespace(&self) -> String {
        format!("{}/", self.engine.home_id())
    }
}

macro_rules! delegate_to_engine {
    ($t:ty) => {
        impl CredentialStore for $t {
            fn info(&self) -> &StoreInfo {
                &self.engine.info
            }
            fn load(&self) -> Result<Loaded, CredentialError> {
                self.engine.load()
            }
            fn load_metadata(&self) -> Result<Loaded, CredentialError> {
                self.engine.load_metadata()
            }
            fn locked(&self) -> Result<Locked, CredentialError> {
                self.engine.locked()
            }
        }
    };
}
delegate_to_engine!(FileStore);
delegate_to_engine!(KeyringStore);

/// The store that was chosen but could not be opened (the keyring did not answer), for the
/// commands that must still report (`mogplex status`): a read finds nothing and says why in a
/// [`Note::Unavailable`]; a write fails with the error, so nothing goes anywhere else.
#[derive(Debug)]
pub struct UnavailableStore {
    info: StoreInfo,
    why: KeyringError,
}

impl CredentialStore for UnavailableStore {
    fn info(&self) -> &StoreInfo {
        &self.info
    }
    fn load(&self) -> Result<Loaded, CredentialError> {
        Ok(Loaded {
            notes: vec![Note::Unavailable {
                why: self.why.to_string(),
                hint: self.why.hint(),
            }],
            ..Loaded::default()
        })
    }
    fn load_metadata(&self) -> Result<Loaded, CredentialError> {
        self.load()
    }
    fn locked(&self) -> Result<Locked, CredentialError> {
        Err(CredentialError::Keyring(self.why.clone()))
    }
}

/// [`open_store`], except that a keyring that does not answer gives an [`UnavailableStore`]
/// instead of the error (other errors, such as a bad `MOGPLEX_CREDENTIAL_STORE`, stay errors).
pub fn open_store_or_unavailable(
    env: &dyn Env,
    home: &MogplexHome,
) -> Result<Arc<dyn CredentialStore>, CredentialError> {
    let choice = StoreChoice::from_env(env)?;
    match open_store_with(choice, home) {
        Err(CredentialError::Keyring(why)) => Ok(Arc::new(UnavailableStore {
            info: StoreInfo {
                kind: StoreKind::Keyring,
                choice,
                path: home.auth_file(),
                fallback: None,
                unavailable: Some(why.to_string()),
            },
            why,
        })),
        other => other,
    }
}

/// Opens the store `MOGPLEX_CREDENTIAL_STORE` chooses for `home`.
pub fn open_store(
    env: &dyn Env,
    home: &MogplexHome,
) -> Result<Arc<dyn CredentialStore>, CredentialError> {
    open_store_with(StoreChoice::from_env(env)?, home)
}

/// Opens the store for `choice`: `keyring` fails when no keyring answers (within the bound,
/// nothing written); `auto` falls back to the file, recording why.
pub fn open_store_with(
    choice: StoreChoice,
    home: &MogplexHome,
) -> Result<Arc<dyn CredentialStore>, CredentialError> {
    Ok(match choice {
        StoreChoice::File => Arc::new(FileStore::new(home)),
        StoreChoice::Keyring => Arc::new(KeyringStore::open(home)?),
        StoreChoice::Auto => match KeyringStore::open_as(home, StoreChoice::Auto) {
            Ok(store) => Arc::new(store),
            Err(CredentialError::Keyring(why)) => Arc::new(FileStore::with(
                home,
                StoreChoice::Auto,
                Some(why.to_string()),
            )),
            Err(e) => return Err(e),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnv;

    #[test]
    fn the_choice_defaults_to_file_and_refuses_anything_else_naming_the_accepted_values() {
        assert_eq!(
            StoreChoice::from_env(&MapEnv::default()).unwrap(),
            StoreChoice::File
        );
        assert_eq!(
            StoreChoice::from_env(&MapEnv::new([(STORE_VAR, "")])).unwrap(),
            StoreChoice::File
        );
        for (v, c) in [
            ("file", StoreChoice::File),
            ("keyring", StoreChoice::Keyring),
            ("auto", StoreChoice::Auto),
        ] {
            assert_eq!(StoreChoice::parse(v).unwrap(), c);
        }
        let e = StoreChoice::from_env(&MapEnv::new([(STORE_VAR, "vault")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "MOGPLEX_CREDENTIAL_STORE is \"vault\"; it must be one of file, keyring or auto"
        );
        assert!(e.hint().unwrap().contains("file"));
    }
}
