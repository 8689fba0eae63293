//! Reading and writing `auth.json` without ever losing or exposing a credential: the file layer
//! under both credential stores ([`crate::credentials`], whose engine holds the lock around each
//! read-modify-write through these functions).
//!
//! Rules (SPEC section 3), all enforced here and nowhere else:
//! - reads refuse symlinks, non-regular files, files owned by someone else and files group or
//!   others can read, with the fix in the hint and nothing overwritten;
//! - a file that does not parse is moved aside to `auth.json.corrupt-<timestamp>` (under the
//!   lock) and treated as empty;
//! - every read-modify-write holds an exclusive lock on the sidecar `auth.json.lock`, re-reads the
//!   file after taking it, writes a 0600 temp file created exclusively in the same directory,
//!   fsyncs it, renames it over `auth.json` and fsyncs the directory;
//! - files are capped at 1 MiB, and values with control characters are refused on write.

use crate::home::HomeError;
use rustix::io::Errno;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The largest `auth.json` mogplex reads or writes.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct AuthStore {
    path: PathBuf,
    dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct MovedAside {
    pub from: PathBuf,
    pub to: PathBuf,
    /// Where parsing failed, without any of the file's content.
    pub reason: String,
}

impl MovedAside {
    pub fn warning(&self) -> String {
        format!(
            "warning: {} could not be read ({}); moved it to {} and continuing without stored credentials",
            self.from.display(),
            self.reason,
            self.to.display()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("refusing to read {path}: it is a symbolic link")]
    Symlink { path: PathBuf },
    #[error("refusing to read {path}: it is not a regular file ({kind})")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("refusing to read {path}: it is owned by user {owner}, not by you (user {me})")]
    WrongOwner { path: PathBuf, owner: u32, me: u32 },
    #[error("refusing to read {path}: its mode is {mode:04o}, so other users can read it")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("refusing to read {path}: it is {size} bytes, over the 1 MiB limit")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("refusing to store {field}: it contains control characters")]
    ControlCharacters { field: String },
    #[error("refusing to write {path}: the result would be over the 1 MiB limit")]
    WouldBeTooLarge { path: PathBuf },
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Home(#[from] HomeError),
}

impl StoreError {
    /// What the user should do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            StoreError::Symlink { path } => format!(
                "mogplex does not follow links for credentials; replace the link with the file itself (`cp --remove-destination \"$(readlink -f {p})\" {p}`), or set MOGPLEX_HOME to a directory of your own",
                p = path.display()
            ),
            StoreError::NotRegular { path, .. } => format!(
                "move {} out of the way; mogplex will create a new one when you sign in",
                path.display()
            ),
            StoreError::WrongOwner { path, .. } => format!(
                "take ownership with `sudo chown \"$(id -u)\" {}`, or set MOGPLEX_HOME to a directory of your own",
                path.display()
            ),
            StoreError::TooOpen { path, .. } => {
                format!(
                    "run `chmod 600 {}` and try again; if other users may have read it, replace the keys it holds",
                    path.display()
                )
            }
            StoreError::TooLarge { path, .. } => format!(
                "this is not a file mogplex wrote; move {} aside and sign in again",
                path.display()
            ),
            StoreError::ControlCharacters { .. } => {
                "check for a stray newline, tab or escape sequence in the value and try again"
                    .into()
            }
            StoreError::WouldBeTooLarge { .. } => {
                "remove unused entries from auth.json and try again".into()
            }
            StoreError::Io { path, .. } => format!(
                "check that {} is on a writable file system with free space",
                path.parent().unwrap_or(path).display()
            ),
            StoreError::Home(e) => return e.hint(),
        })
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// The file could not be parsed; the reason is a location only, never content (serde's own
/// messages can quote values, and values here are secrets).
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let describe = |e: serde_json::Error| {
        let what = match e.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "unexpected structure",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        format!("{what} at line {}, column {}", e.line(), e.column())
    };
    // The common case in one pass: an object that is a valid document (every command reads
    // auth.json at start; going through a `Value` first costs about as much again). Anything
    // else takes the path below only to say what is wrong.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && let Ok(doc) = serde_json::from_slice::<T>(bytes)
    {
        return Ok(doc);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(describe)?;
    if !value.is_object() {
        return Err("unexpected structure: the top level is not a JSON object".into());
    }
    // `from_value` errors carry no location; say which kind of problem it is instead.
    serde_json::from_value(value)
        .map_err(|_| "unexpected structure: a known key holds a value of the wrong type".to_owned())
}

enum ReadOutcome<T> {
    Missing,
    Parsed(Box<T>),
    Corrupt(String),
}

impl AuthStore {
    pub fn new(auth_file: impl Into<PathBuf>) -> Self {
        let path: PathBuf = auth_file.into();
        let dir = path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));
        Self { path, dir }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads without taking the lock (the file is only ever replaced by rename, so a reader
    /// sees either the old or the new version) any document type that lives in `auth.json` (the version 2
    /// document of [`crate::credentials`] reads through here too): the document, whether the
    /// file existed and parsed, and the corrupt file moved aside during this read.
    pub(crate) fn load_as<T: DeserializeOwned + Default>(
        &self,
    ) -> Result<(T, bool, Option<MovedAside>), StoreError> {
        match self.read_checked()? {
            ReadOutcome::Missing => Ok((T::default(), false, None)),
            ReadOutcome::Parsed(file) => Ok((*file, true, None)),
            ReadOutcome::Corrupt(_) => {
                let _lock = self.lock()?;
                self.read_locked_as()
            }
        }
    }

    /// The exclusive lock on `auth.json.lock`, held until the file is dropped.
    pub(crate) fn lock(&self) -> Result<File, StoreError> {
        crate::private_file::lock(&self.path).map_err(|e| {
            if e.source.raw_os_error() == Some(Errno::LOOP.raw_os_error()) {
                StoreError::Symlink { path: e.path }
            } else {
                StoreError::Io {
                    op: e.op,
                    path: e.path,
                    source: e.source,
                }
            }
        })
    }

    /// Reads with the lock held: a corrupt file is moved aside here.
    pub(crate) fn read_locked_as<T: DeserializeOwned + Default>(
        &self,
    ) -> Result<(T, bool, Option<MovedAside>), StoreError> {
        match self.read_checked()? {
            ReadOutcome::Missing => Ok((T::default(), false, None)),
            ReadOutcome::Parsed(file) => Ok((*file, true, None)),
            ReadOutcome::Corrupt(reason) => {
                let to = self.corrupt_name();
                std::fs::rename(&self.path, &to).map_err(io_err("move aside", &self.path))?;
                crate::private_file::sync_dir(&self.dir).map_err(io_err("sync", &self.dir))?;
                let moved = MovedAside {
                    from: self.path.clone(),
                    to,
                    reason,
                };
                Ok((T::default(), false, Some(moved)))
            }
        }
    }

    fn corrupt_name(&self) -> PathBuf {
        let stamp = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap_or_else(|_| "unknown-time".into());
        let base = format!("{}.corrupt-{stamp}", self.path.display());
        let mut candidate = PathBuf::from(&base);
        let mut n = 1;
        while candidate.symlink_metadata().is_ok() {
            n += 1;
            candidate = PathBuf::from(format!("{base}-{n}"));
        }
        candidate
    }

    /// Opens without following links and without blocking on FIFOs, then checks what was opened
    /// (not the path, which could change in between).
    fn read_checked<T: DeserializeOwned>(&self) -> Result<ReadOutcome<T>, StoreError> {
        use crate::private_file::ReadError;
        let path = self.path.clone();
        let bytes = match crate::private_file::read(&self.path, MAX_FILE_SIZE) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(ReadOutcome::Missing),
            Err(ReadError::Symlink) => return Err(StoreError::Symlink { path }),
            Err(ReadError::NotRegular(kind)) => return Err(StoreError::NotRegular { path, kind }),
            Err(ReadError::WrongOwner { owner, me }) => {
                return Err(StoreError::WrongOwner { path, owner, me });
            }
            Err(ReadError::TooOpen { mode }) => return Err(StoreError::TooOpen { path, mode }),
            Err(ReadError::TooLarge { size }) => return Err(StoreError::TooLarge { path, size }),
            Err(ReadError::Io(e)) => return Err(io_err("read", &self.path)(e)),
        };
        Ok(match parse(&bytes) {
            Ok(file) => ReadOutcome::Parsed(Box::new(file)),
            Err(reason) => ReadOutcome::Corrupt(reason),
        })
    }

    /// Writes a document with the lock held (control characters refused, size capped, atomic
    /// 0600 replace).
    pub(crate) fn write_locked(&self, file: &impl Serialize) -> Result<(), StoreError> {
        let value =
            serde_json::to_value(file).map_err(|e| io_err("encode", &self.path)(e.into()))?;
        reject_control_characters(&value, "auth.json")?;
        let mut bytes = serde_json::to_vec_pretty(&value)
            .map_err(|e| io_err("encode", &self.path)(e.into()))?;
        bytes.push(b'\n');
        if bytes.len() as u64 > MAX_FILE_SIZE {
            return Err(StoreError::WouldBeTooLarge {
                path: self.path.clone(),
            });
        }

        crate::private_file::write(&self.path, &bytes).map_err(|e| StoreError::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        })
    }
}

/// Refuses control characters in any key or string value, naming where (never the value).
pub fn reject_control_characters(value: &Value, at: &str) -> Result<(), StoreError> {
    let bad = |s: &str| s.chars().any(char::is_control);
    match value {
        Value::String(s) if bad(s) => Err(StoreError::ControlCharacters {
            field: at.to_owned(),
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| reject_control_characters(v, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            let path = format!("{at}.{}", k.escape_debug());
            if bad(k) {
                return Err(StoreError::ControlCharacters { field: path });
            }
            reject_control_characters(v, &path)
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_never_quote_content() {
        let e =
            parse::<crate::credentials::Document>(br#"{"providers":{"openai":"sk-secret-value"}}"#)
                .unwrap_err();
        assert!(!e.contains("sk-secret"), "{e}");
    }
}
