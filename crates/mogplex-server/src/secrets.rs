//! Encryption at rest for values an administrator marks secret (MCP server env values and
//! headers): ChaCha20-Poly1305 under a 32-byte key from `MOGPLEX_SECRETS_KEY` (base64), a fresh
//! random nonce per value. Stored as base64(nonce || ciphertext).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::Aead;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};

pub const KEY_VAR: &str = "MOGPLEX_SECRETS_KEY";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{KEY_VAR} is not set")]
    NoKey,
    #[error("{KEY_VAR} must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("a stored secret could not be decrypted (wrong {KEY_VAR}?)")]
    Corrupt,
}

pub struct SecretBox(ChaCha20Poly1305);

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(…)")
    }
}

impl SecretBox {
    /// The key from the server's configuration or environment.
    pub fn from_config(cfg: &crate::Config) -> Result<Self, SealError> {
        let raw = cfg.var(KEY_VAR).ok_or(SealError::NoKey)?;
        let raw = raw.trim();
        let key = STANDARD
            .decode(raw)
            .or_else(|_| URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')))
            .map_err(|_| SealError::BadKey)?;
        ChaCha20Poly1305::new_from_slice(&key)
            .map(Self)
            .map_err(|_| SealError::BadKey)
    }

    pub fn seal(&self, plaintext: &str) -> Result<String, SealError> {
        let nonce = crate::crypto::random_bytes::<12>();
        let ct = self
            .0
            .encrypt(&nonce.into(), plaintext.as_bytes())
            .map_err(|_| SealError::Corrupt)?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<String, SealError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| SealError::Corrupt)?;
        if bytes.len() < 12 + 16 {
            return Err(SealError::Corrupt);
        }
        let (nonce, ct) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SealError::Corrupt)?;
        let pt = self
            .0
            .decrypt(&nonce.into(), ct)
            .map_err(|_| SealError::Corrupt)?;
        String::from_utf8(pt).map_err(|_| SealError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let mut cfg = crate::Config::new("http://x");
        cfg.env.insert(KEY_VAR.into(), STANDARD.encode([9u8; 32]));
        let b = SecretBox::from_config(&cfg).unwrap();
        let sealed = b.seal("token-123").unwrap();
        assert!(!sealed.contains("token-123"));
        assert_ne!(
            sealed,
            b.seal("token-123").unwrap(),
            "fresh nonce each time"
        );
        assert_eq!(b.open(&sealed).unwrap(), "token-123");
        let mut bytes = STANDARD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(b.open(&STANDARD.encode(bytes)).is_err());
        cfg.env.insert(KEY_VAR.into(), "short".into());
        assert!(matches!(
            SecretBox::from_config(&cfg),
            Err(SealError::BadKey)
        ));
    }
}
