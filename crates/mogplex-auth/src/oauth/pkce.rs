//! The per-sign-in secrets of the authorization code flow: the PKCE verifier and its S256
//! challenge (RFC 7636), and the random values (`state`, `nonce`) made the same way, from the
//! operating system's random source or not at all.

use super::OAuthError;
use crate::secret::Secret;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::Digest;

/// PKCE verifier (64 random bytes, base64url) and its S256 challenge.
#[derive(Debug)]
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: String,
}

/// `bytes` random bytes, base64url. Without an OS random source no sign-in can be safe, so that
/// is an error rather than a fallback.
pub fn random_b64(bytes: usize) -> Result<String, OAuthError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| {
        OAuthError::Protocol(format!("no randomness from the operating system: {e}"))
    })?;
    Ok(URL_SAFE_NO_PAD.encode(&buf))
}

impl Pkce {
    pub fn new() -> Result<Self, OAuthError> {
        let verifier = random_b64(64)?;
        let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        Ok(Self {
            verifier: Secret::new(verifier),
            challenge,
        })
    }
}
