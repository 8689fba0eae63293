//! Session logs: `<home>/logs/<session-id>.jsonl`, one JSON object a line, files 0600.
//!
//! Every line is redacted before it is written (secret-named keys, every credential value this
//! process resolved, token-shaped text). The file is created on the first line, so a run that
//! fails before doing anything leaves no log behind. Logging never fails the command: if the log
//! cannot be written, the session goes on without it.

use mogplex_auth::{MogplexHome, Redactor};
use rustix::fs::{Mode, OFlags};
use serde_json::{Value, json};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

#[derive(Debug)]
pub struct SessionLog {
    id: String,
    home: MogplexHome,
    redactor: Redactor,
    pub debug: bool,
    file: Option<File>,
    failed: bool,
}

#[derive(Debug, Clone, Copy)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl SessionLog {
    pub fn new(home: MogplexHome, redactor: Redactor, debug: bool) -> Self {
        let stamp = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap_or_default();
        let id = format!("{stamp}-{}", mogplex_auth::random::hex(4));
        Self {
            id,
            home,
            redactor,
            debug,
            file: None,
            failed: false,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn path(&self) -> PathBuf {
        self.home.logs_dir().join(format!("{}.jsonl", self.id))
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Redacts `secret` from every later line (a key stored or a token issued mid-session).
    pub fn learn(&mut self, secret: &mogplex_auth::Secret) {
        self.redactor.add(secret);
    }

    pub fn write(&mut self, level: Level, event: &str, message: &str, data: Value) {
        if matches!(level, Level::Debug) && !self.debug {
            return;
        }
        let mut line = json!({
            "ts": now_rfc3339(),
            "level": level.as_str(),
            "event": event,
            "message": message,
            "data": data,
        });
        self.redactor.redact_json(&mut line);
        let Some(file) = self.open() else { return };
        let mut text = line.to_string();
        text.push('\n');
        if file.write_all(text.as_bytes()).is_err() {
            self.failed = true;
        }
    }

    fn open(&mut self) -> Option<&mut File> {
        if self.file.is_none() && !self.failed {
            let path = self.path();
            let opened = self.home.ensure_subdir("logs").ok().and_then(|_| {
                rustix::fs::open(
                    &path,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC
                        | OFlags::APPEND,
                    Mode::from_raw_mode(0o600),
                )
                .ok()
            });
            match opened {
                Some(fd) => {
                    let f = File::from(fd);
                    let _ = f.set_permissions(std::fs::Permissions::from_mode(0o600));
                    self.file = Some(f);
                }
                None => self.failed = true,
            }
        }
        self.file.as_mut()
    }
}
