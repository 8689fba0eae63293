//! Credential helpers (SPEC section 2): `MOGPLEX_API_KEY_HELPER` and one per provider, named
//! after the provider table's variable (`OPENAI_API_KEY_HELPER`, `VERCEL_API_TOKEN_HELPER`).
//!
//! The variable holds a command, split into words here (single and double quotes and
//! backslashes group; nothing is expanded: there is no shell, so no `$VAR`, no globbing, no
//! pipes). Its stdout is a key, or `{"token": "…", "expires_at": "<RFC 3339>"}` (or seconds since
//! the epoch). It runs with stdin closed, in an environment without credential variables
//! ([`crate::child_env`]), for at most [`TIMEOUT`], its output capped at [`OUTPUT_CAP`], one
//! helper at a time in a process. The result is cached until it expires (by default
//! [`DEFAULT_TTL`]); [`invalidate`] drops it so that a 401 runs the helper again once.
//!
//! A helper's failure is a [`HelperError`] whose text names the variable and quotes the helper's
//! stderr (the caller redacts it), never its stdout: stdout is where the secret would be.

use crate::env::Env;
use crate::provider::Provider;
use crate::secret::Secret;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// How long a helper may run.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How much of its stdout (and of its stderr) is read.
pub const OUTPUT_CAP: usize = 64 * 1024;
/// How long a key without `expires_at` is used before the helper runs again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// How much of a failing helper's stderr is shown.
const STDERR_SHOWN: usize = 2000;

/// The helper variable of `provider`: its key variable with `_HELPER` after it.
pub fn helper_var(provider: Provider) -> &'static str {
    static NAMES: OnceLock<Vec<(Provider, String)>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        Provider::ALL
            .into_iter()
            .map(|p| (p, format!("{}_HELPER", p.env_var())))
            .collect()
    });
    names
        .iter()
        .find(|(p, _)| *p == provider)
        .map(|(_, n)| n.as_str())
        .unwrap_or("MOGPLEX_API_KEY_HELPER")
}

/// Why a helper gave no key. The text never holds the helper's stdout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    #[error("{var} is not a command (its words do not parse: {why})")]
    BadCommand { var: &'static str, why: String },
    #[error("the credential helper in {var} could not be started: {why}")]
    Spawn { var: &'static str, why: String },
    #[error("the credential helper in {var} did not finish within {} s and was stopped", TIMEOUT.as_secs())]
    Timeout { var: &'static str },
    #[error("the credential helper in {var} failed ({status}){}", stderr_said(.stderr))]
    Failed {
        var: &'static str,
        status: String,
        stderr: String,
    },
    #[error("the credential helper in {var} printed nothing")]
    Empty { var: &'static str },
    #[error("the credential helper in {var} printed more than {} KiB", OUTPUT_CAP / 1024)]
    TooLarge { var: &'static str },
    #[error("the credential helper in {var} printed a key with control characters or spaces in it")]
    ControlCharacters { var: &'static str },
    #[error(
        "the credential helper in {var} printed JSON without a usable \"token\" or \"expires_at\": {why}"
    )]
    BadJson { var: &'static str, why: String },
    #[error("the credential helper in {var} printed a token that expired at {expires_at}")]
    Expired {
        var: &'static str,
        expires_at: String,
    },
}

fn stderr_said(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("; it said: {}", stderr.trim())
    }
}

impl HelperError {
    pub fn var(&self) -> &'static str {
        match self {
            HelperError::BadCommand { var, .. }
            | HelperError::Spawn { var, .. }
            | HelperError::Timeout { var }
            | HelperError::Failed { var, .. }
            | HelperError::Empty { var }
            | HelperError::TooLarge { var }
            | HelperError::ControlCharacters { var }
            | HelperError::BadJson { var, .. }
            | HelperError::Expired { var, .. } => var,
        }
    }

    pub fn hint(&self) -> String {
        format!(
            "run the command in {} yourself to see what it prints, fix it, or unset {}",
            self.var(),
            self.var()
        )
    }
}

/// Splits a helper command into words: whitespace separates, `'…'` and `"…"` group, `\`
/// escapes the next character (outside single quotes). Nothing is expanded.
pub fn split_words(command: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("a ' is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => cur.push(c),
                            None => return Err("a \" is not closed".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("a \" is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err("it ends with a lone \\".into()),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if words.is_empty() {
        return Err("it is empty".into());
    }
    Ok(words)
}

/// What a helper printed, checked.
#[derive(Debug, Clone)]
pub struct HelperKey {
    pub secret: Secret,
    /// When it stops being used (its `expires_at`, else [`DEFAULT_TTL`] from now).
    pub until: SystemTime,
}

fn parse_expiry(v: &serde_json::Value) -> Result<Option<SystemTime>, String> {
    match v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(n) => n
            .as_u64()
            .map(|s| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(s)))
            .ok_or_else(|| "expires_at is not a time".to_owned()),
        serde_json::Value::String(s) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(|t| Some(SystemTime::from(t)))
                .map_err(|_| "expires_at is not an RFC 3339 time".to_owned())
        }
        _ => Err("expires_at is not a time".to_owned()),
    }
}

/// Checks what a helper printed on stdout.
pub fn parse_output(
    var: &'static str,
    stdout: &[u8],
    now: SystemTime,
) -> Result<HelperKey, HelperError> {
    let text = String::from_utf8_lossy(stdout);
    let text = text.trim();
    if text.is_empty() {
        return Err(HelperError::Empty { var });
    }
    let (token, expires) = if text.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|_| HelperError::BadJson {
                var,
                why: "it does not parse".into(),
            })?;
        let token = v["token"]
            .as_str()
            .ok_or_else(|| HelperError::BadJson {
                var,
                why: "\"token\" is missing or not a string".into(),
            })?
            .to_owned();
        let expires =
            parse_expiry(&v["expires_at"]).map_err(|why| HelperError::BadJson { var, why })?;
        (token, expires)
    } else {
        (text.to_owned(), None)
    };
    if token.is_empty() {
        return Err(HelperError::Empty { var });
    }
    if token.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(HelperError::ControlCharacters { var });
    }
    if let Some(at) = expires
        && at <= now
    {
        let shown = time::OffsetDateTime::from(at)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        return Err(HelperError::Expired {
            var,
            expires_at: shown,
        });
    }
    Ok(HelperKey {
        secret: Secret::new(token),
        until: expires.unwrap_or(now + DEFAULT_TTL),
    })
}

/// Reads at most `OUTPUT_CAP + 1` bytes, then drains the rest so that the child is not blocked
/// on a full pipe.
fn read_capped(mut r: impl Read) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = (&mut r).take(OUTPUT_CAP as u64 + 1).read_to_end(&mut buf);
    let _ = std::io::copy(&mut r, &mut std::io::sink());
    buf
}

/// Runs the helper `command` (from `var`) once, now.
pub fn run_helper(var: &'static str, command: &str) -> Result<HelperKey, HelperError> {
    let words = split_words(command).map_err(|why| HelperError::BadCommand { var, why })?;
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..])
        .env_clear()
        .envs(crate::child_env::child_env_of_process(&BTreeMap::new()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| HelperError::Spawn {
        var,
        why: format!("{}: {e}", words[0]),
    })?;
    let out = child
        .stdout
        .take()
        .map(|o| std::thread::spawn(|| read_capped(o)));
    let err = child
        .stderr
        .take()
        .map(|e| std::thread::spawn(|| read_capped(e)));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                return Err(HelperError::Spawn {
                    var,
                    why: e.to_string(),
                });
            }
        }
    };
    // The pipes close when the helper (and anything it started that kept them) ends; a
    // grandchild holding them open is not waited for past the deadline.
    let join = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        let h = h?;
        while !h.is_finished() {
            if Instant::now() >= deadline + Duration::from_secs(1) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        h.join().ok()
    };
    let Some(status) = status else {
        return Err(HelperError::Timeout { var });
    };
    let stdout = join(out).unwrap_or_default();
    let stderr = join(err).unwrap_or_default();
    if !status.success() {
        let text = String::from_utf8_lossy(&stderr);
        let shown: String = text
            .chars()
            .take(STDERR_SHOWN)
            .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
            .collect();
        return Err(HelperError::Failed {
            var,
            status: match status.code() {
                Some(c) => format!("exit status {c}"),
                None => "killed by a signal".to_owned(),
            },
            stderr: shown,
        });
    }
    if stdout.len() > OUTPUT_CAP {
        return Err(HelperError::TooLarge { var });
    }
    parse_output(var, &stdout, SystemTime::now())
}

/// One helper at a time in this process, and what each gave while it lasts.
fn cache() -> &'static Mutex<HashMap<&'static str, HelperKey>> {
    static CACHE: OnceLock<Mutex<HashMap<&'static str, HelperKey>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The key `provider`'s helper gives, when its variable is set: from the cache while it lasts,
/// else by running it (holding the one lock, so helpers never run side by side).
pub fn key(env: &dyn Env, provider: Provider) -> Option<Result<Secret, HelperError>> {
    let var = helper_var(provider);
    let command = env.var(var)?;
    let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(k) = cache.get(var)
        && k.until > SystemTime::now()
    {
        return Some(Ok(k.secret.clone()));
    }
    cache.remove(var);
    let result = run_helper(var, &command);
    if let Ok(k) = &result {
        cache.insert(var, k.clone());
    }
    Some(result.map(|k| k.secret))
}

/// Forgets what `var`'s helper gave (the service answered 401 for it): the next [`key`] runs it
/// again.
pub fn invalidate(var: &str) {
    cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|k, _| *k != var);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_without_a_shell() {
        assert_eq!(
            split_words(r#"vault read -field=key 'secret/my key' "a \"b\"" c\ d $HOME"#).unwrap(),
            vec![
                "vault",
                "read",
                "-field=key",
                "secret/my key",
                "a \"b\"",
                "c d",
                "$HOME"
            ]
        );
        assert!(split_words("  ").is_err());
        assert!(split_words("a 'b").is_err());
    }

    #[test]
    fn names_come_from_the_provider_table() {
        assert_eq!(helper_var(Provider::Mogplex), "MOGPLEX_API_KEY_HELPER");
        assert_eq!(helper_var(Provider::OpenAi), "OPENAI_API_KEY_HELPER");
    }

    #[test]
    fn output_is_a_key_or_json() {
        let now = SystemTime::now();
        let v = "MOGPLEX_API_KEY_HELPER";
        assert_eq!(
            parse_output(v, b"sk-abc\n", now).unwrap().secret.expose(),
            "sk-abc"
        );
        let k = parse_output(
            v,
            br#"{"token":"t1","expires_at":"2999-01-01T00:00:00Z"}"#,
            now,
        )
        .unwrap();
        assert_eq!(k.secret.expose(), "t1");
        assert!(matches!(
            parse_output(
                v,
                br#"{"token":"t1","expires_at":"2000-01-01T00:00:00Z"}"#,
                now
            ),
            Err(HelperError::Expired { .. })
        ));
        assert!(matches!(
            parse_output(v, b"sk-\x1b[2Jabc", now),
            Err(HelperError::ControlCharacters { .. })
        ));
        assert!(matches!(
            parse_output(v, b"  \n", now),
            Err(HelperError::Empty { .. })
        ));
    }
}
