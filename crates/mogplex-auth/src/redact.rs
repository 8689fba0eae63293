//! Redaction of anything that may reach a log line or the terminal.
//!
//! Four layers, applied in this order: values under secret-named keys are replaced whole;
//! known secret values (every credential resolved in this process) are replaced wherever they
//! appear; token-shaped text (`sk-…`, `mog_…`, `Bearer …`) is replaced even when it is not a
//! value we know; and the userinfo of any address (`http://user:PASS@host`) is masked
//! ([`mask_userinfo`]), so a password in `MOGPLEX_URL` or a provider's base URL never shows.

use crate::secret::Secret;
use serde_json::Value;

pub const REDACTED: &str = "[REDACTED]";

/// Key names (compared lowercase, without `_` and `-`) whose values are always secret.
const SECRET_KEYS: &[&str] = &[
    "authorization",
    "proxyauthorization",
    "apikey",
    "xapikey",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "token",
    "password",
    "secret",
    "clientsecret",
    "code",
    "codeverifier",
    "cookie",
    "setcookie",
];

/// Token-shaped strings (a key prefix of the provider table) are redacted when the prefix is
/// followed by at least this many token characters.
const TOKEN_MIN_TAIL: usize = 8;
/// Known values shorter than this are not searched for (they would match ordinary text).
const MIN_KNOWN_SECRET_LEN: usize = 6;

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    known: Vec<Secret>,
}

pub fn is_secret_key(key: &str) -> bool {
    let norm: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    SECRET_KEYS.contains(&norm.as_str())
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers a value to redact wherever it appears.
    pub fn add(&mut self, secret: &Secret) {
        if secret.expose().len() >= MIN_KNOWN_SECRET_LEN && !self.known.contains(secret) {
            self.known.push(secret.clone());
            // Longest first, so a secret containing another is replaced whole.
            self.known
                .sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
        }
    }

    pub fn with<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut r = Self::new();
        for s in secrets {
            r.add(s);
        }
        r
    }

    /// Redacts free text.
    pub fn redact_str(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.known {
            if out.contains(s.expose()) {
                out = out.replace(s.expose(), REDACTED);
            }
        }
        let out = redact_patterns(&out);
        match mask_userinfo(&out) {
            std::borrow::Cow::Borrowed(_) => out,
            std::borrow::Cow::Owned(masked) => masked,
        }
    }

    /// Redacts a JSON value in place.
    pub fn redact_json(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                let r = self.redact_str(s);
                if r != *s {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if is_secret_key(k) && !v.is_null() {
                        *v = Value::String(REDACTED.to_owned());
                    } else {
                        self.redact_json(v);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Replaces token-shaped substrings and `Bearer <token>`.
///
/// One pass over the bytes: only a word start whose first byte can begin a pattern is looked at
/// closely, and the text between matches is copied whole (this runs on every error printed).
pub fn redact_patterns(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    let mut at_boundary = true;
    while i < bytes.len() {
        if at_boundary
            && is_pattern_start(bytes[i])
            && let Some((keep, end)) = match_at(&text[i..])
        {
            out.push_str(&text[copied..i + keep]);
            out.push_str(REDACTED);
            i += end;
            copied = i;
            // What follows a redaction starts a new word, as after `]`.
            at_boundary = true;
            continue;
        }
        let b = bytes[i];
        at_boundary = !(b.is_ascii() && is_token_char(b as char));
        // Step over one character (a UTF-8 lead byte says how long it is).
        i += match b {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
    }
    out.push_str(&text[copied.min(text.len())..]);
    out
}

/// Masks the userinfo of every address in `text`: `http://user:PASS@host/x` becomes
/// `http://[REDACTED]@host/x` (the user name too: it is often a token). Text without `://` is
/// returned as it is, without copying.
pub fn mask_userinfo(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("://") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(i) = rest.find("://") {
        let start = i + 3;
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = after
            .find(|c: char| {
                matches!(
                    c,
                    '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '\\' | '`' | ')'
                ) || c.is_whitespace()
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) if !authority[..at].starts_with(REDACTED) => {
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
                changed = true;
            }
            _ => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    if changed {
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// An address for display: without its userinfo, and without the trailing slash.
pub fn display_url(url: &url::Url) -> String {
    let mut u = url.clone();
    // Only fails for addresses that cannot have userinfo, which then have none.
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.as_str().trim_end_matches('/').to_owned()
}

/// Whether a byte can begin `Bearer `, `bearer ` or a key prefix of the provider table.
fn is_pattern_start(b: u8) -> bool {
    b == b'B' || b == b'b' || crate::provider::key_prefixes().any(|p| p.as_bytes()[0] == b)
}

/// A pattern at the start of `rest`: how much of it to keep, and where the redacted part ends.
fn match_at(rest: &str) -> Option<(usize, usize)> {
    if let Some(tail) = rest
        .strip_prefix("Bearer ")
        .or_else(|| rest.strip_prefix("bearer "))
    {
        let len = tail.find(char::is_whitespace).unwrap_or(tail.len());
        // Token-shaped only: "bearer token" in prose is not a secret.
        let word = &tail[..len];
        let token_like = len >= 8
            && !word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_punctuation());
        if token_like && !tail.starts_with(REDACTED) {
            return Some((7, 7 + len));
        }
    }
    // Prefix characters are token characters, so whichever prefix matches, the token runs to the
    // same end; it is redacted when some prefix leaves at least TOKEN_MIN_TAIL characters after it.
    let run = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
    crate::provider::key_prefixes()
        .any(|p| rest.starts_with(p) && run >= p.len() + TOKEN_MIN_TAIL)
        .then_some((0, run))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn userinfo_in_addresses_is_masked() {
        assert_eq!(
            mask_userinfo("at http://ada:S3cretPass@127.0.0.1:9/v1 now"),
            "at http://[REDACTED]@127.0.0.1:9/v1 now"
        );
        assert_eq!(
            mask_userinfo("\"https://tok@example.com\", ftp://x"),
            "\"https://[REDACTED]@example.com\", ftp://x"
        );
        assert_eq!(
            mask_userinfo("https://example.com/a@b"),
            "https://example.com/a@b"
        );
        assert!(matches!(
            mask_userinfo("nothing here"),
            std::borrow::Cow::Borrowed(_)
        ));
        let r = Redactor::new();
        assert_eq!(
            r.redact_str("cannot reach http://u:pw-value@h.example/x"),
            "cannot reach http://[REDACTED]@h.example/x"
        );
        let url: url::Url = "http://ada:S3cret@127.0.0.1:9/".parse().unwrap();
        assert_eq!(display_url(&url), "http://127.0.0.1:9");
    }

    #[test]
    fn patterns() {
        assert_eq!(redact_patterns("key sk-abcdefgh12 ok"), "key [REDACTED] ok");
        assert_eq!(
            redact_patterns("Authorization: Bearer abc.def.Ghi"),
            "Authorization: Bearer [REDACTED]"
        );
        assert_eq!(
            redact_patterns("task-force-abcdefghij"),
            "task-force-abcdefghij"
        );
        assert_eq!(redact_patterns("sk-short"), "sk-short");
        assert_eq!(redact_patterns("(mog_0123456789abcdef)"), "([REDACTED])");
    }

    #[test]
    fn patterns_around_text_of_every_kind() {
        assert_eq!(
            redact_patterns("é sk-abcdefgh12é, (AIzaabcdefghij) x-sk-abcdefghij"),
            "é [REDACTED]é, ([REDACTED]) x-sk-abcdefghij"
        );
        assert_eq!(
            redact_patterns("sk-abcdefgh12sk-abcdefgh12 sk-ant-abcdefgh"),
            "[REDACTED] [REDACTED]"
        );
        assert_eq!(redact_patterns("Bearer "), "Bearer ");
        assert_eq!(redact_patterns(""), "");
        assert_eq!(redact_patterns("bearer [REDACTED]"), "bearer [REDACTED]");
        assert_eq!(
            redact_patterns("Bearer abcdefgh12Bearer x"),
            "Bearer [REDACTED] x"
        );
    }

    #[test]
    fn bearer_needs_a_token_shaped_word() {
        assert_eq!(
            redact_patterns("Bearer mog_at_x1y2z3w4"),
            "Bearer [REDACTED]"
        );
        assert_eq!(
            redact_patterns("send a valid bearer token"),
            "send a valid bearer token"
        );
        assert_eq!(
            redact_patterns("Bearer realm=\"mogplex\""),
            "Bearer realm=\"mogplex\""
        );
    }

    #[test]
    fn known_values_and_keys() {
        let r = Redactor::with([&Secret::new("plain-secret-99")]);
        assert_eq!(r.redact_str("x plain-secret-99 y"), "x [REDACTED] y");
        let mut v = json!({"access_token": "zzz", "nested": {"apiKey": "q"}, "msg": "plain-secret-99", "exit_code": 1});
        r.redact_json(&mut v);
        assert_eq!(
            v,
            json!({"access_token": "[REDACTED]", "nested": {"apiKey": "[REDACTED]"}, "msg": "[REDACTED]", "exit_code": 1})
        );
    }
    /// The one-pass scan against the char-by-char version it replaced, on generated text.
    #[test]
    fn same_as_the_char_by_char_scan() {
        fn reference(text: &str) -> String {
            let mut out = String::with_capacity(text.len());
            let mut rest = text;
            let mut prev: Option<char> = None;
            'scan: while let Some(c) = rest.chars().next() {
                let at_boundary = prev.is_none_or(|p| !is_token_char(p));
                if at_boundary {
                    if let Some(tail) = rest
                        .strip_prefix("Bearer ")
                        .or_else(|| rest.strip_prefix("bearer "))
                    {
                        let len = tail.find(char::is_whitespace).unwrap_or(tail.len());
                        // Token-shaped only: "bearer token" in prose is not a secret.
                        let word = &tail[..len];
                        let token_like = len >= 8
                            && !word
                                .chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_punctuation());
                        if token_like && !tail.starts_with(REDACTED) {
                            out.push_str(&rest[..7]);
                            out.push_str(REDACTED);
                            rest = &tail[len..];
                            prev = Some(']');
                            continue 'scan;
                        }
                    }
                    for prefix in ["sk-", "mog_", "gsk_", "xai-", "vck_", "AIza"] {
                        if let Some(tail) = rest.strip_prefix(prefix) {
                            let len = tail.find(|c: char| !is_token_char(c)).unwrap_or(tail.len());
                            if len >= TOKEN_MIN_TAIL {
                                out.push_str(REDACTED);
                                rest = &tail[len..];
                                prev = Some(']');
                                continue 'scan;
                            }
                        }
                    }
                }
                out.push(c);
                rest = &rest[c.len_utf8()..];
                prev = Some(c);
            }
            out
        }

        let pieces = [
            "sk-",
            "sk-ant-",
            "sk-proj-",
            "mog_",
            "gsk_",
            "xai-",
            "vck_",
            "AIza",
            "Bearer ",
            "bearer ",
            "abcdefgh",
            "12",
            "-",
            "_",
            ".",
            " ",
            "é",
            "(",
            "]",
            "[REDACTED]",
            "x",
            "\n",
            "Bearer realm",
            "ü🙂",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(seed % 12) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            }
            assert_eq!(redact_patterns(&text), reference(&text), "{text:?}");
            seed = seed.wrapping_add(1);
        }
    }
}
