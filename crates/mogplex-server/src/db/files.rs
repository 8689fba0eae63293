//! The SQLite files' permissions: they hold password and token hashes, so the data directory is
//! created 0700 and the database 0600 (SQLite gives its `-wal` and `-shm` files the database
//! file's mode), and a database that other users can read is refused at start-up with the fix.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The size the WAL is truncated back to after a checkpoint resets it (`journal_size_limit`).
pub const WAL_SIZE_LIMIT: u64 = 16 * 1024 * 1024;

/// The WAL's size in pages (4 KiB) at which a commit checkpoints it (`wal_autocheckpoint`):
/// [`WAL_SIZE_LIMIT`]'s worth.
pub const WAL_CHECKPOINT_PAGES: u64 = WAL_SIZE_LIMIT / 4096;

/// Group or world permission bits on a database file: refused.
const OTHERS: u32 = 0o077;

/// A `chmod` that fixes what [`check`] refuses.
pub fn fix(path: &Path) -> String {
    let p = path.display();
    format!("chmod 600 {p} {p}-wal {p}-shm")
}

/// Refuses a database (or its WAL or shared-memory file) that other users can read or write:
/// the message and the command that fixes it.
pub fn check(path: &Path) -> Result<(), (String, String)> {
    for f in [
        path.to_path_buf(),
        suffixed(path, "-wal"),
        suffixed(path, "-shm"),
    ] {
        if let Ok(m) = std::fs::metadata(&f)
            && m.permissions().mode() & OTHERS != 0
        {
            return Err((
                format!(
                    "the database file {} is readable by other users (mode {:o}); it holds password and token hashes",
                    f.display(),
                    m.permissions().mode() & 0o777
                ),
                format!("run `{}`, then start again", fix(path)),
            ));
        }
    }
    Ok(())
}

fn suffixed(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

/// Before SQLite opens `path`: refuses loose permissions, creates a missing data directory 0700
/// and a missing database file 0600 (empty; SQLite initialises it).
pub(super) fn prepare(path: &Path) -> Result<(), String> {
    if path.as_os_str().is_empty() || path.starts_with(":memory:") {
        return Ok(());
    }
    check(path).map_err(|(e, hint)| format!("{e} ({hint})"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!(
            "cannot create the database {}: {e}",
            path.display()
        )),
    }
}
