//! Session logs: `<home>/logs/<session-id>.jsonl`, one JSON object a line (`ts`, `level`,
//! `event`, `message`, `data`), files 0600 in a 0700 directory (SPEC section 6).
//!
//! Code logs with `tracing` macros; this module is the one `tracing` layer that writes the file:
//!
//! ```ignore
//! tracing::info!(event = "login.api_key", provider = provider.id(), "stored the key");
//! tracing::warn!(event = "credential.override", data = %json!({"variable": var}), "{notice}");
//! ```
//!
//! `event` names the line; the message is the macro's message; every other field goes into
//! `data`, and a field named `data` holding a JSON object (as `%json!(…)`) is merged into it.
//! Only events from mogplex's own crates that carry an `event` field are written, at `info` and
//! above, plus `debug` (stream chunks) when `MOGPLEX_DEBUG=1`; spans are not written.
//!
//! Every line is redacted as a whole, just before it is written, by the one process-wide
//! [`Redactor`]: secret-named keys, every credential value this process has learned ([`learn`]),
//! token-shaped text. The file is created on the first line, so a run that logs nothing leaves no
//! file behind, and nothing is installed until a command asks for its [`SessionLog`], so start-up
//! before that costs nothing. Logging never fails the command: if the log cannot be written, the
//! session goes on without it.

use mogplex_auth::{MogplexHome, Redactor, Secret};
use rustix::fs::{Mode, OFlags};
use serde_json::{Map, Value, json};
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError, RwLock};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level as TracingLevel, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Every secret this process knows, for the log. Grows for the whole session.
static KNOWN: LazyLock<Arc<RwLock<Redactor>>> = LazyLock::new(Default::default);
/// This process's log, once a command has asked for it.
static SESSION: OnceLock<Arc<Sink>> = OnceLock::new();

/// Redacts `secret` from every later log line (a key stored or a token issued mid-session).
/// Call it as soon as the value is in hand, before anything could log it.
pub fn learn(secret: &Secret) {
    write_lock(&KNOWN).add(secret);
}

fn write_lock(r: &RwLock<Redactor>) -> std::sync::RwLockWriteGuard<'_, Redactor> {
    r.write().unwrap_or_else(PoisonError::into_inner)
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A handle on this process's session log. The first one installs the `tracing` layer; later
/// ones are the same session.
#[derive(Debug, Clone)]
pub struct SessionLog {
    sink: Arc<Sink>,
}

/// The old call style, kept so callers can move to `tracing` macros one at a time.
#[derive(Debug, Clone, Copy)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl SessionLog {
    /// This session's log under `home`, with stream chunks when `debug`. The first call in a
    /// process installs the layer; later calls return the same session.
    pub fn start(home: &MogplexHome, debug: bool) -> Self {
        let sink = SESSION
            .get_or_init(|| {
                let sink = Arc::new(Sink::new(home, KNOWN.clone(), debug));
                let layer = JsonlLayer { sink: sink.clone() };
                // Fails only when a subscriber is installed already, which this binary never does.
                let _ = tracing::subscriber::set_global_default(
                    tracing_subscriber::Registry::default().with(layer),
                );
                sink
            })
            .clone();
        Self { sink }
    }

    pub fn id(&self) -> &str {
        &self.sink.id
    }

    pub fn path(&self) -> PathBuf {
        self.sink.path.clone()
    }

    /// What the log redacts with now, for output that must be redacted the same way.
    pub fn redactor(&self) -> Redactor {
        self.sink.redactor()
    }

    /// See [`learn`].
    pub fn learn(&mut self, secret: &Secret) {
        write_lock(&self.sink.known).add(secret);
    }

    /// Writes one line through `tracing` (the older call style; new code calls the macros).
    pub fn write(&mut self, level: Level, event: &str, message: &str, data: Value) {
        match level {
            Level::Debug => tracing::debug!(event, data = %data, "{message}"),
            Level::Info => tracing::info!(event, data = %data, "{message}"),
            Level::Warn => tracing::warn!(event, data = %data, "{message}"),
            Level::Error => tracing::error!(event, data = %data, "{message}"),
        }
    }
}

/// Where the lines go, and what they are redacted with.
#[derive(Debug)]
struct Sink {
    id: String,
    path: PathBuf,
    home: MogplexHome,
    debug: bool,
    known: Arc<RwLock<Redactor>>,
    file: Mutex<FileState>,
}

#[derive(Debug)]
enum FileState {
    NotOpened,
    Open(File),
    Failed,
}

impl Sink {
    fn new(home: &MogplexHome, known: Arc<RwLock<Redactor>>, debug: bool) -> Self {
        let stamp = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap_or_default();
        let id = format!("{stamp}-{}", mogplex_auth::random::hex(4));
        Self {
            path: home.logs_dir().join(format!("{id}.jsonl")),
            id,
            home: home.clone(),
            debug,
            known,
            file: Mutex::new(FileState::NotOpened),
        }
    }

    fn redactor(&self) -> Redactor {
        self.known
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether a callsite is a session log event this session writes.
    fn wants(&self, meta: &Metadata<'_>) -> bool {
        meta.is_event()
            && meta.target().starts_with("mogplex")
            && meta.fields().field("event").is_some()
            && (*meta.level() <= TracingLevel::INFO
                || (self.debug && *meta.level() == TracingLevel::DEBUG))
    }

    fn write(&self, level: &TracingLevel, fields: Fields) {
        let mut line = json!({
            "ts": now_rfc3339(),
            "level": level.as_str().to_ascii_lowercase(),
            "event": fields.event,
            "message": fields.message,
            "data": fields.data,
        });
        self.known
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .redact_json(&mut line);
        let mut text = line.to_string();
        text.push('\n');
        let mut state = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*state, FileState::NotOpened) {
            *state = self.open().map_or(FileState::Failed, FileState::Open);
        }
        if let FileState::Open(file) = &mut *state
            && file.write_all(text.as_bytes()).is_err()
        {
            *state = FileState::Failed;
        }
    }

    /// Creates the file: never through a link, never one that exists, 0600 whatever the umask.
    fn open(&self) -> Option<File> {
        self.home.ensure_subdir("logs").ok()?;
        let fd = rustix::fs::open(
            &self.path,
            OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::EXCL
                | OFlags::NOFOLLOW
                | OFlags::CLOEXEC
                | OFlags::APPEND,
            Mode::from_raw_mode(0o600),
        )
        .ok()?;
        let file = File::from(fd);
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .ok()?;
        Some(file)
    }
}

/// The `tracing` layer that writes session log lines.
struct JsonlLayer {
    sink: Arc<Sink>,
}

impl<S: Subscriber> Layer<S> for JsonlLayer {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.sink.wants(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        self.sink.wants(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(if self.sink.debug {
            LevelFilter::DEBUG
        } else {
            LevelFilter::INFO
        })
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if !self.sink.wants(meta) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.sink.write(meta.level(), fields);
    }
}

/// An event's fields, sorted into the line's parts.
#[derive(Default)]
struct Fields {
    event: String,
    message: String,
    data: Map<String, Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        match (field.name(), value) {
            ("event", Value::String(s)) => self.event = s,
            ("message", Value::String(s)) => self.message = s,
            (name, value) => {
                self.data.insert(name.to_owned(), value);
            }
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "data" {
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => self.data.extend(map),
                Ok(Value::Null) => {}
                Ok(other) => self.put(field, other),
                Err(_) => self.put(field, Value::String(text)),
            }
        } else {
            self.put(field, Value::String(text));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Logged {
        _dir: tempfile::TempDir,
        sink: Arc<Sink>,
    }

    impl Logged {
        /// Runs `f` with a layer writing under a fresh home that knows `known`.
        fn run(debug: bool, known: &[&str], f: impl FnOnce(&Arc<Sink>)) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let home = MogplexHome::at(dir.path().join("home"));
            let known: Vec<Secret> = known.iter().map(|s| Secret::new(*s)).collect();
            let known = Arc::new(RwLock::new(Redactor::with(&known)));
            let sink = Arc::new(Sink::new(&home, known, debug));
            let layer = JsonlLayer { sink: sink.clone() };
            let subscriber = tracing_subscriber::Registry::default().with(layer);
            tracing::subscriber::with_default(subscriber, || f(&sink));
            Self { _dir: dir, sink }
        }

        fn text(&self) -> String {
            std::fs::read_to_string(&self.sink.path).unwrap_or_default()
        }

        fn lines(&self) -> Vec<Value> {
            self.text()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn one_json_object_a_line_with_fields_in_data() {
        let log = Logged::run(false, &[], |_| {
            tracing::info!(
                event = "login.api_key",
                provider = "openai",
                n = 3_u64,
                ok = true,
                "stored the key"
            );
            tracing::warn!(event = "credential.override", data = %json!({"variable": "OPENAI_API_KEY", "list": [1, 2]}), "note {}", 1);
            tracing::error!(event = "response.error", status = ?Some(401), "failed");
        });
        let lines = log.lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        let keys: Vec<&String> = lines[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["ts", "level", "event", "message", "data"]);
        assert_eq!(lines[0]["level"], "info");
        assert_eq!(lines[0]["event"], "login.api_key");
        assert_eq!(lines[0]["message"], "stored the key");
        assert_eq!(
            lines[0]["data"],
            json!({"provider": "openai", "n": 3, "ok": true})
        );
        assert!(
            time::OffsetDateTime::parse(
                lines[0]["ts"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339
            )
            .is_ok()
        );
        assert_eq!(lines[1]["level"], "warn");
        assert_eq!(lines[1]["message"], "note 1");
        assert_eq!(
            lines[1]["data"],
            json!({"variable": "OPENAI_API_KEY", "list": [1, 2]})
        );
        assert_eq!(lines[2]["level"], "error");
        assert_eq!(lines[2]["data"], json!({"status": "Some(401)"}));
    }

    #[test]
    fn the_file_is_private_and_created_on_the_first_line() {
        let log = Logged::run(false, &[], |sink| {
            tracing::info!(target: "hyper", event = "x", "another crate's event");
            tracing::info!("no event field");
            tracing::debug!(event = "stream.chunk", "without MOGPLEX_DEBUG");
            let span = tracing::info_span!("span", event = "s");
            let _entered = span.enter();
            assert!(!sink.path.exists(), "nothing written yet");
            assert!(
                !sink.path.parent().unwrap().exists(),
                "no logs directory yet"
            );
        });
        assert!(log.text().is_empty());
        let log = Logged::run(false, &[], |_| {
            tracing::info!(event = "session.start", "started")
        });
        assert_eq!(log.lines().len(), 1);
        assert_eq!(mode(&log.sink.path), 0o600);
        assert_eq!(mode(log.sink.path.parent().unwrap()), 0o700);
        assert!(
            log.sink
                .path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with(".jsonl")
        );
        assert!(log.sink.path.to_str().unwrap().contains(&log.sink.id));
    }

    #[test]
    fn debug_lines_only_when_asked() {
        let chunk = || tracing::debug!(event = "stream.chunk", data = %json!({"frame": "f"}), "stream frame");
        assert!(Logged::run(false, &[], |_| chunk()).text().is_empty());
        let lines = Logged::run(true, &[], |_| chunk()).lines();
        assert_eq!(lines[0]["level"], "debug");
        assert_eq!(lines[0]["data"]["frame"], "f");
        assert!(
            Logged::run(true, &[], |_| tracing::trace!(event = "t", "trace"))
                .text()
                .is_empty()
        );
    }

    #[test]
    fn every_part_of_a_line_is_redacted_with_secrets_learned_later() {
        let log = Logged::run(false, &["known-secret-1234"], |sink| {
            tracing::info!(
                event = "a",
                detail = "known-secret-1234",
                "message known-secret-1234"
            );
            // A sign-in's new token, learned before anything logs it.
            write_lock(&sink.known).add(&Secret::new("fresh-token-5678"));
            tracing::info!(
                event = "b",
                data = %json!({"access_token": "x", "nested": {"code": "c", "text": "fresh-token-5678"}}),
                "Bearer abcdefgh12345 and sk-abcdefghijkl"
            );
        });
        let text = log.text();
        for secret in [
            "known-secret-1234",
            "fresh-token-5678",
            "abcdefgh12345",
            "sk-abcdefghijkl",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let lines = log.lines();
        assert_eq!(lines[0]["message"], "message [REDACTED]");
        assert_eq!(lines[0]["data"]["detail"], "[REDACTED]");
        assert_eq!(
            lines[1]["data"],
            json!({"access_token": "[REDACTED]", "nested": {"code": "[REDACTED]", "text": "[REDACTED]"}})
        );
        assert_eq!(lines[1]["message"], "Bearer [REDACTED] and [REDACTED]");
    }

    #[test]
    fn the_old_call_style_writes_the_same_lines() {
        let log = Logged::run(false, &[], |sink| {
            let mut handle = SessionLog { sink: sink.clone() };
            handle.write(
                Level::Info,
                "session.start",
                "cockpit started",
                json!({"provider": null}),
            );
            handle.write(
                Level::Debug,
                "stream.chunk",
                "stream frame",
                json!({"frame": "f"}),
            );
            handle.learn(&Secret::new("learned-through-the-handle"));
            handle.write(Level::Warn, "w", "learned-through-the-handle", json!({}));
        });
        let lines = log.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["data"], json!({"provider": null}));
        assert_eq!(lines[1]["message"], "[REDACTED]");
        assert_eq!(lines[1]["data"], json!({}));
    }
}
