//! A string that must never be shown.
//!
//! Every credential the CLI holds lives in a [`Secret`]: `Debug` and `Display` print only the
//! masked form, the bytes are zeroed when the value is dropped, and the raw value is reachable
//! only through [`Secret::expose`], which is easy to search for in review.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use zeroize::Zeroize;

/// Keys this long or shorter show no trailing characters at all when masked.
const MASK_MIN_LEN_FOR_SUFFIX: usize = 16;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value. Call only to send it where it belongs (a request header, the auth file).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The masked form: a known kind prefix, an ellipsis, and the last four characters only when
    /// the key is longer than 16 characters (`sk-…abcd`, `mog_…wxyz`, `…`).
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Masks any secret string; see [`Secret::masked`].
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    // The longest known key prefix (the provider table's), which names a kind of key rather
    // than carry secret material.
    let prefix = crate::provider::key_prefixes()
        .filter(|p| value.starts_with(p) && value.len() > p.len() + 4)
        .max_by_key(|p| p.len())
        .unwrap_or("");
    if chars.len() > MASK_MIN_LEN_FOR_SUFFIX {
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{prefix}…{tail}")
    } else {
        format!("{prefix}…")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("sk-proj-abcdefghijklmnopqrstuvwxyz0123");
        assert_eq!(format!("{s}"), "sk-proj-…0123");
        assert_eq!(format!("{s:?}"), "Secret(sk-proj-…0123)");
        assert!(!format!("{s:?}{s}").contains("abcdefgh"));
    }

    #[test]
    fn short_keys_show_no_suffix() {
        assert_eq!(mask("sk-short12345"), "sk-…");
        assert_eq!(mask("abcd"), "…");
        assert_eq!(mask(""), "…");
        // exactly 16 characters: still no suffix
        assert_eq!(mask("0123456789abcdef"), "…");
        assert_eq!(mask("0123456789abcdefg"), "…defg");
    }

    #[test]
    fn the_longest_known_prefix_stays_visible() {
        let tail = "abcdefghijklmnopqrstuvwxyz0123";
        for (prefix, masked) in [
            ("sk-proj-", "sk-proj-…0123"),
            ("sk-ant-", "sk-ant-…0123"),
            ("sk-or-", "sk-or-…0123"),
            ("sk-", "sk-…0123"),
            ("mog_", "mog_…0123"),
            ("gsk_", "gsk_…0123"),
            ("xai-", "xai-…0123"),
            ("vck_", "vck_…0123"),
            ("AIza", "AIza…0123"),
            ("zz-", "…0123"),
        ] {
            assert_eq!(mask(&format!("{prefix}{tail}")), masked);
        }
    }

    #[test]
    fn a_bare_prefix_is_not_revealed_as_the_whole_key() {
        assert_eq!(mask("sk-"), "…");
        assert_eq!(mask("mog_ab"), "…");
    }

    #[test]
    fn multibyte_values_mask_on_char_boundaries() {
        assert_eq!(mask("ééééééééééééééééééé"), "…éééé");
    }
}
