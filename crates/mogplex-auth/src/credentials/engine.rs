//! What both stores do: read `auth.json` (through [`AuthStore`], so every guarantee of SPEC
//! section 3 holds: refusals, corrupt move-aside, lock, re-read, atomic 0600 write, size cap,
//! control characters), fill keyring references in from the vault, and commit a changed
//! document so that no interruption ever loses a credential.
//!
//! A write that puts a new secret in the keyring goes:
//! 1. `auth.json` is rewritten as it was, plus the new refs in `keyring_pending`;
//! 2. each new secret is set in the keyring under its new ref (a ref is never rewritten);
//! 3. `auth.json` is replaced by the new document (the rename is the commit point), its
//!    `keyring_pending` listing the refs it no longer uses;
//! 4. those refs are deleted from the keyring, and `keyring_pending` is cleared.
//!
//! Killed anywhere, the file on disk is a whole document whose refs all exist: the old one with
//! its old secrets (1–2), or the new one with its new secrets (3–4). What a dead writer leaves
//! in the keyring is listed in `keyring_pending`, and the next write deletes what the document
//! does not reference.

use super::document::{Document, Slot, StoreKind, Stored, VERSION, hash_hex};
use super::error::{CredentialError, KeyringError};
use super::vault::{Fetched, Vault};
use super::{Loaded, Note, StoreInfo};
use crate::secret::Secret;
use crate::store::{AuthStore, MovedAside, reject_control_characters};
use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

#[derive(Debug)]
pub(crate) struct Engine {
    file: AuthStore,
    home: PathBuf,
    /// Where new secret values go.
    writes: StoreKind,
    vault: Arc<dyn Vault>,
    home_id: OnceLock<String>,
    pub(crate) info: StoreInfo,
}

/// `auth.json` as read, before references are filled in.
struct Raw {
    doc: Document,
    exists: bool,
    moved_aside: Option<MovedAside>,
}

impl Engine {
    pub(crate) fn new(
        home: &Path,
        writes: StoreKind,
        vault: Arc<dyn Vault>,
        info: StoreInfo,
    ) -> Self {
        Self {
            file: AuthStore::new(home.join("auth.json")),
            home: home.to_owned(),
            writes,
            vault,
            home_id: OnceLock::new(),
            info,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    /// First 8 hex digits of SHA-256 of the canonical home path: keeps two homes' keyring items
    /// apart.
    pub(crate) fn home_id(&self) -> &str {
        self.home_id.get_or_init(|| {
            let canonical = std::fs::canonicalize(&self.home).unwrap_or_else(|_| self.home.clone());
            hash_hex(&[&canonical.to_string_lossy()], 4)
        })
    }

    /// A ref that is never reused: `<home id>/<entry id or providers.name>/<field>/<8 hex>`.
    fn new_ref(&self, slot: &Slot) -> String {
        format!(
            "{}/{}/{}/{}",
            self.home_id(),
            slot.owner_label(),
            slot.field,
            crate::random::hex(4)
        )
    }

    /// Asks the keyring for an item that never exists: proves it answers, within the bound.
    pub(crate) fn probe(&self) -> Result<(), KeyringError> {
        self.vault.probe(&format!("{}/probe", self.home_id()))
    }

    fn raw(&self, locked: bool) -> Result<Raw, CredentialError> {
        let (doc, exists, moved_aside) = if locked {
            self.file.read_locked_as::<Document>()?
        } else {
            self.file.load_as::<Document>()?
        };
        Ok(Raw {
            doc,
            exists,
            moved_aside,
        })
    }

    /// The document with every reference replaced by its value; a reference whose item is
    /// gone or unreadable becomes absent, with a note.
    fn resolve(&self, raw: &Document) -> Result<(Document, Vec<Note>), CredentialError> {
        let mut doc = raw.clone();
        let mut notes = Vec::new();
        for (slot, stored) in raw.slots() {
            let Stored::Keyring(r) = stored else {
                continue;
            };
            let value = match self.vault.get(r)? {
                Fetched::Value(v) => Some(Stored::Value(v)),
                Fetched::Missing => {
                    notes.push(Note::Missing { slot: slot.clone() });
                    None
                }
                Fetched::Unreadable(reason) => {
                    notes.push(Note::Unreadable {
                        slot: slot.clone(),
                        reason,
                    });
                    None
                }
            };
            if let Some(field) = doc.slot_mut(&slot) {
                *field = value;
            }
        }
        Ok((doc, notes))
    }

    pub(crate) fn load(&self) -> Result<Loaded, CredentialError> {
        let raw = self.raw(false)?;
        let (doc, notes) = self.resolve(&raw.doc)?;
        if !notes.iter().any(|n| matches!(n, Note::Missing { .. })) {
            return Ok(Loaded {
                doc,
                exists: raw.exists,
                moved_aside: raw.moved_aside,
                notes,
            });
        }
        // A writer may have replaced those refs between our read and our lookups: look again
        // with writers held off, so only an item really deleted behind our back reads as gone.
        let _lock = self.lock()?;
        let again = self.raw(true)?;
        let (doc, notes) = self.resolve(&again.doc)?;
        Ok(Loaded {
            doc,
            exists: again.exists,
            moved_aside: raw.moved_aside.or(again.moved_aside),
            notes,
        })
    }

    pub(crate) fn load_metadata(&self) -> Result<Loaded, CredentialError> {
        let raw = self.raw(false)?;
        Ok(Loaded {
            doc: raw.doc,
            exists: raw.exists,
            moved_aside: raw.moved_aside,
            notes: Vec::new(),
        })
    }

    fn lock(&self) -> Result<File, CredentialError> {
        if let Some(dir) = self.path().parent() {
            crate::home::ensure_private_dir(dir).map_err(crate::store::StoreError::from)?;
        }
        Ok(self.file.lock()?)
    }

    pub(crate) fn locked(self: &Arc<Self>) -> Result<Locked, CredentialError> {
        let lock = self.lock()?;
        let raw = self.raw(true)?;
        let (resolved, notes) = self.resolve(&raw.doc)?;
        Ok(Locked {
            engine: self.clone(),
            _lock: lock,
            raw: raw.doc,
            resolved,
            exists: raw.exists,
            moved_aside: raw.moved_aside,
            notes,
        })
    }
}

/// `auth.json` held under its lock for a read-modify-write, possibly awaiting something in
/// the middle (a token refresh). Dropping it releases the lock.
#[derive(Debug)]
pub struct Locked {
    engine: Arc<Engine>,
    _lock: File,
    /// As on disk (references).
    raw: Document,
    /// With references filled in.
    resolved: Document,
    exists: bool,
    moved_aside: Option<MovedAside>,
    notes: Vec<Note>,
}

impl Locked {
    /// The document as it is now, secrets filled in.
    pub fn document(&self) -> &Document {
        &self.resolved
    }

    pub fn exists(&self) -> bool {
        self.exists
    }

    /// A corrupt file moved aside when the lock was taken.
    pub fn take_moved_aside(&mut self) -> Option<MovedAside> {
        self.moved_aside.take()
    }

    /// Notes about keyring items found gone or unreadable, and about what writes did.
    pub fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    pub fn path(&self) -> &Path {
        self.engine.path()
    }

    /// Where the document on disk keeps its secrets, and whether every one of them (and nothing
    /// left over) is in `to` already.
    pub(crate) fn placement(&self, to: &StoreKind) -> (StoreKind, bool) {
        let settled = self.raw.keyring_pending.is_empty()
            && match to {
                StoreKind::Keyring => !self.raw.has_inline_secrets(),
                _ => self.raw.keyring_refs().is_empty(),
            };
        (self.raw.store_kind(), settled)
    }

    /// Writes `doc` unless nothing would change. Returns whether it wrote.
    pub fn write(&mut self, doc: Document) -> Result<bool, CredentialError> {
        let unchanged = self.exists && doc == self.resolved && self.raw.keyring_pending.is_empty();
        if unchanged {
            return Ok(false);
        }
        self.commit(doc, false)?;
        Ok(true)
    }

    /// The commit protocol of this module's header. `store_change` lets a migration rewrite a
    /// keyring document with the file store.
    pub(crate) fn commit(
        &mut self,
        new: Document,
        store_change: bool,
    ) -> Result<(), CredentialError> {
        let engine = self.engine.clone();
        let path = engine.path().to_owned();
        if self.raw.version > VERSION {
            return Err(CredentialError::NewerVersion {
                path,
                version: self.raw.version,
            });
        }
        match self.raw.store_kind() {
            StoreKind::Other(store) => return Err(CredentialError::UnknownStore { path, store }),
            StoreKind::Keyring if engine.writes == StoreKind::File && !store_change => {
                return Err(CredentialError::KeyringDocument { path });
            }
            _ => {}
        }
        // Refuse bad values before anything touches the disk or the keyring.
        let plain = serde_json::to_value(&new).map_err(|e| crate::store::StoreError::Io {
            op: "encode",
            path: path.clone(),
            source: e.into(),
        })?;
        reject_control_characters(&plain, "auth.json")?;

        let to_keyring = engine.writes == StoreKind::Keyring;
        let mut next = new.clone();
        next.version = VERSION;
        next.store = Some(engine.writes.clone());
        next.keyring_pending.clear();
        let mut fresh: Vec<(String, Secret)> = Vec::new();
        for (slot, stored) in new.slots() {
            let Stored::Value(value) = stored else {
                continue;
            };
            if !to_keyring {
                continue;
            }
            let unchanged_ref = match (self.raw.slot(&slot), self.resolved.slot(&slot)) {
                (Some(Some(Stored::Keyring(r))), Some(Some(Stored::Value(old))))
                    if old == value =>
                {
                    Some(r.clone())
                }
                _ => None,
            };
            let r = unchanged_ref.unwrap_or_else(|| {
                let r = engine.new_ref(&slot);
                fresh.push((r.clone(), value.clone()));
                r
            });
            if let Some(field) = next.slot_mut(&slot) {
                *field = Some(Stored::Keyring(r));
            }
        }
        let keep: BTreeSet<&str> = next.keyring_refs().into_iter().collect();
        let doomed: Vec<String> = self
            .raw
            .keyring_refs()
            .into_iter()
            .chain(self.raw.keyring_pending.iter().map(String::as_str))
            .filter(|r| !keep.contains(r))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let moved_in = to_keyring && self.raw.has_inline_secrets();

        if to_keyring {
            engine.probe()?;
        }
        crate::private_file::remove_stale_temp_files(&path);
        if !fresh.is_empty() {
            let mut staging = self.raw.clone();
            staging.version = VERSION;
            staging
                .keyring_pending
                .extend(fresh.iter().map(|(r, _)| r.clone()));
            engine.file.write_locked(&staging)?;
            for (i, (r, value)) in fresh.iter().enumerate() {
                if let Err(e) = engine.vault.set(r, value) {
                    if i == 0 && !matches!(e, KeyringError::Unresponsive { .. }) {
                        // The keyring refused the first item: nothing of this write exists
                        // anywhere, so put auth.json back as it was.
                        self.restore()?;
                    }
                    return Err(e.into());
                }
            }
        }
        next.keyring_pending = doomed.clone();
        engine.file.write_locked(&next)?;
        if !doomed.is_empty() {
            // What cannot be deleted now stays listed for the next write.
            next.keyring_pending = doomed
                .into_iter()
                .filter(|r| engine.vault.delete(r).is_err())
                .collect();
            engine.file.write_locked(&next)?;
        }
        if moved_in {
            self.notes
                .push(Note::MovedIntoKeyring { path: path.clone() });
        }
        self.raw = next;
        self.resolved = new;
        self.exists = true;
        Ok(())
    }

    /// Puts `auth.json` back as it was read (or removes it if there was none).
    fn restore(&self) -> Result<(), CredentialError> {
        let path = self.engine.path();
        if self.exists {
            let mut before = self.raw.clone();
            before.version = VERSION;
            self.engine.file.write_locked(&before)?;
        } else {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(crate::store::StoreError::Io {
                        op: "remove",
                        path: path.to_owned(),
                        source,
                    }
                    .into());
                }
            }
        }
        Ok(())
    }
}
