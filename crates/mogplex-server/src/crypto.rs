//! Randomness, hashing and the token formats the server hands out.
//!
//! Every token and code is stored only as its SHA-256 (hex). Tokens carry a short kind prefix so
//! leaked ones are recognisable (and redacted by the CLI's `mog_` pattern).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The user-code alphabet of RFC 8628 §6.1: no vowels, no look-alikes.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS random source failing is not something a server can carry on from: every token
    // would be predictable. `getrandom` only fails when the kernel has no source at all.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("the operating system's random source is unavailable");
    buf
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `prefix` + 32 random bytes, base64url.
pub fn token(prefix: &str) -> String {
    format!("{prefix}{}", b64url(&random_bytes::<32>()))
}

pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// The stored form of a token or code.
pub fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// A short random id for rows (`usr_…`, `fam_…`).
pub fn id(prefix: &str) -> String {
    format!("{prefix}{}", hex(&random_bytes::<12>()))
}

/// `count` characters drawn uniformly from `alphabet` (rejection sampling: no modulo bias).
pub fn random_from(alphabet: &[u8], count: usize) -> String {
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(count);
    while out.len() < count {
        for b in random_bytes::<32>() {
            if (b as usize) < limit && out.len() < count {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// A personal access token: `mog_` + 32 base62 characters.
pub fn personal_access_token() -> String {
    format!("mog_{}", random_from(BASE62, 32))
}

pub fn is_personal_access_token(t: &str) -> bool {
    t.strip_prefix("mog_")
        .is_some_and(|r| r.len() == 32 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// An 8-character user code (stored and compared without the display dash).
pub fn user_code() -> String {
    random_from(USER_CODE_ALPHABET, 8)
}

/// `BCDF-GHJK` for display.
pub fn display_user_code(code: &str) -> String {
    if code.len() == 8 {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

/// Uppercases and drops dashes and spaces; `None` unless 8 characters of the alphabet remain.
pub fn normalize_user_code(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 8 && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(code)
}

pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
pub fn valid_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An S256 challenge is the base64url SHA-256 of the verifier: exactly 43 characters.
pub fn valid_s256_challenge(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

pub fn pkce_s256(verifier: &str) -> String {
    b64url(&Sha256::digest(verifier.as_bytes()))
}

pub fn verify_pkce(verifier: &str, challenge: &str) -> bool {
    ct_eq(&pkce_s256(verifier), challenge)
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_uniform_over_the_alphabet() {
        let mut counts = [0u32; 20];
        for _ in 0..2000 {
            for b in user_code().bytes() {
                counts[USER_CODE_ALPHABET.iter().position(|a| *a == b).unwrap()] += 1;
            }
        }
        // 16000 draws, 800 expected each; a biased generator (b % 20 over 0..=255) would give
        // the first 16 letters about 6% more.
        for c in counts {
            assert!((680..=920).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn user_code_normalisation() {
        assert_eq!(
            normalize_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalize_user_code(" BCDF GHJK ").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalize_user_code("BCDF-GHJA"), None);
        assert_eq!(normalize_user_code("BCDFGHJ"), None);
    }

    #[test]
    fn pkce_rfc7636_appendix_b() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn pats() {
        let t = personal_access_token();
        assert!(is_personal_access_token(&t), "{t}");
        assert!(!is_personal_access_token("mog_at_abc"));
    }
}
