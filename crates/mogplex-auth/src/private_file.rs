//! Small private files in the Mogplex home (`auth.json`, `state.json`, the hosted-state cache):
//! always replaced whole, never half-written, never readable by anyone else.
//!
//! A write goes to a temp file created exclusively with mode 0600 in the same directory, is
//! fsynced, renamed over the target, and the directory is fsynced; a failure removes the temp
//! file and leaves the old file as it was. A read does not follow links and refuses anything but
//! a regular file of at most `max` bytes.

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The prefix of the temp files that stand in for `path` while it is written.
pub fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp-")
}

fn dir_of(path: &Path) -> PathBuf {
    path.parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where a write failed, for the caller's error message.
#[derive(Debug)]
pub struct WriteError {
    pub op: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

/// Replaces `path` with `bytes`, atomically, as a 0600 file.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = dir_of(path);
    let temp = dir.join(format!(
        "{}{}-{}",
        temp_prefix(path),
        std::process::id(),
        crate::random::hex(8)
    ));
    let fail = |op: &'static str, p: &Path| {
        let p = p.to_owned();
        move |source: io::Error| WriteError {
            op,
            path: p,
            source,
        }
    };
    let result = (|| {
        let fd = rustix::fs::open(
            &temp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| fail("create", &temp)(e.into()))?;
        let mut out = File::from(fd);
        // The umask can only narrow the create mode; set it exactly.
        out.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail("set permissions on", &temp))?;
        out.write_all(bytes).map_err(fail("write", &temp))?;
        out.sync_all().map_err(fail("sync", &temp))?;
        drop(out);
        std::fs::rename(&temp, path).map_err(fail("replace", path))?;
        sync_dir(&dir).map_err(fail("sync", &dir))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Why a private file was not read.
#[derive(Debug)]
pub enum ReadError {
    Symlink,
    NotRegular(&'static str),
    WrongOwner { owner: u32, me: u32 },
    TooOpen { mode: u32 },
    TooLarge { size: u64 },
    Io(io::Error),
}

/// Reads `path` if it exists: not through a link, only a regular file owned by this user that
/// nobody else can read, at most `max` bytes. `Ok(None)` when it does not exist.
pub fn read(path: &Path, max: u64) -> Result<Option<Vec<u8>>, ReadError> {
    let fd = match rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => return Err(ReadError::Symlink),
        Err(Errno::NXIO) => return Err(ReadError::NotRegular("a socket")),
        Err(e) => return Err(ReadError::Io(e.into())),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| ReadError::Io(e.into()))?;
    let file_type = rustix::fs::FileType::from_raw_mode(stat.st_mode);
    if file_type != rustix::fs::FileType::RegularFile {
        return Err(ReadError::NotRegular(match file_type {
            rustix::fs::FileType::Directory => "a directory",
            rustix::fs::FileType::Fifo => "a named pipe",
            rustix::fs::FileType::CharacterDevice | rustix::fs::FileType::BlockDevice => "a device",
            rustix::fs::FileType::Socket => "a socket",
            _ => "not a regular file",
        }));
    }
    let me = rustix::process::geteuid().as_raw();
    if stat.st_uid != me {
        return Err(ReadError::WrongOwner {
            owner: stat.st_uid,
            me,
        });
    }
    let mode = stat.st_mode & 0o7777;
    if mode & 0o077 != 0 {
        return Err(ReadError::TooOpen { mode });
    }
    let size = u64::try_from(stat.st_size).unwrap_or(u64::MAX);
    if size > max {
        return Err(ReadError::TooLarge { size });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    File::from(fd)
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
        });
    }
    Ok(Some(bytes))
}

/// Temp files left beside `path` by a writer that died before its rename. Only call this while
/// holding the lock that serialises writers of `path`, so no live writer owns one.
pub fn remove_stale_temp_files(path: &Path) {
    let prefix = temp_prefix(path);
    let Ok(entries) = std::fs::read_dir(dir_of(path)) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// An exclusive lock on the sidecar `<path>.lock` (created 0600, never followed through a
/// link), held until the returned file is dropped. Blocks while another process holds it.
pub fn lock(path: &Path) -> Result<File, WriteError> {
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    let lock = PathBuf::from(lock);
    let fd = rustix::fs::open(
        &lock,
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| WriteError {
        op: "open the lock file",
        path: lock.clone(),
        source: e.into(),
    })?;
    let file = File::from(fd);
    file.lock().map_err(|source| WriteError {
        op: "lock",
        path: lock,
        source,
    })?;
    Ok(file)
}
