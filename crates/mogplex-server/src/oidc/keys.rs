//! ES256 signing keys of ID tokens: made with aws-lc-rs (already the server's TLS crypto), the
//! private part sealed under `MOGPLEX_SECRETS_KEY` in the database, the public part published as
//! a JWK.
//!
//! The schedule is a pure function of the rows and the clock: keys ordered by `activates_at`
//! (then kid); the current key is the last one whose time has come; a key is published from its
//! creation (a rotated-in key is published before it signs, for at least the lead of `keys
//! rotate`) until the ID token lifetime after the next key took over (every token it signed has
//! expired by then). So every process signs with the same key at the same time, whatever it
//! cached, as long as its cache is younger than the lead.

use crate::crypto::{b64url, now};
use crate::db::Db;
use crate::db::keys::KeyRow;
use crate::secrets::{SealError, SecretBox};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mogplex_protocol::oauth::{ID_TOKEN_SIGNING_ALG, Jwk, JwkSet};
use std::sync::Arc;
use tokio::sync::Mutex;

/// The default time between `keys rotate` and the new key signing: longer than any process's
/// key cache, so every process has seen it published before it signs.
pub const DEFAULT_LEAD_SECS: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("the signing key {0} is damaged")]
    Damaged(String),
}

/// Where a key is in its life, at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    /// Signing.
    Current,
    /// Published until its last tokens expire, no longer signing.
    Retiring,
    /// No longer published.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Current => "current",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }
}

/// Each key's state at `t`, for rows ordered as [`Db::signing_keys`] returns them.
pub fn schedule(rows: &[KeyRow], t: i64, id_token_ttl: i64) -> Vec<KeyState> {
    let current = rows.iter().rposition(|k| k.activates_at <= t);
    rows.iter()
        .enumerate()
        .map(|(i, _)| match current {
            None => KeyState::Next,
            Some(c) if i > c => KeyState::Next,
            Some(c) if i == c => KeyState::Current,
            // Superseded when the next key activated.
            Some(_) if rows[i + 1].activates_at + id_token_ttl > t => KeyState::Retiring,
            Some(_) => KeyState::Retired,
        })
        .collect()
}

/// A new P-256 key activating at `activates_at`, sealed with `sealer`.
pub fn new_key(sealer: &SecretBox, activates_at: i64) -> Result<KeyRow, KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| KeyError::Damaged("(new)".into()))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| KeyError::Damaged("(new)".into()))?;
    let jwk =
        public_jwk(pair.public_key().as_ref()).ok_or_else(|| KeyError::Damaged("(new)".into()))?;
    Ok(KeyRow {
        kid: jwk.kid.clone(),
        alg: ID_TOKEN_SIGNING_ALG.to_owned(),
        public_jwk: serde_json::to_string(&jwk).map_err(|_| KeyError::Damaged(jwk.kid.clone()))?,
        private_sealed: sealer.seal(&STANDARD.encode(pkcs8.as_ref()))?,
        created_at: now(),
        activates_at,
    })
}

/// The JWK of an uncompressed P-256 point (`04 || x || y`), its kid the RFC 7638 thumbprint.
fn public_jwk(point: &[u8]) -> Option<Jwk> {
    if point.len() != 65 || point[0] != 4 {
        return None;
    }
    let (x, y) = (b64url(&point[1..33]), b64url(&point[33..]));
    let thumbprint_input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = b64url(&sha2_256(thumbprint_input.as_bytes()));
    Some(Jwk {
        kty: "EC".into(),
        kid,
        use_: Some("sig".into()),
        alg: Some(ID_TOKEN_SIGNING_ALG.into()),
        crv: Some("P-256".into()),
        x: Some(x),
        y: Some(y),
        n: None,
        e: None,
    })
}

fn sha2_256(b: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(b).to_vec()
}

/// The key that signs now, unsealed.
pub struct Signer {
    kid: String,
    pair: EcdsaKeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    fn open(row: &KeyRow, sealer: &SecretBox) -> Result<Self, KeyError> {
        let damaged = || KeyError::Damaged(row.kid.clone());
        let der = STANDARD
            .decode(sealer.open(&row.private_sealed)?)
            .map_err(|_| damaged())?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .map_err(|_| damaged())?;
        Ok(Self {
            kid: row.kid.clone(),
            pair,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A compact JWS (RFC 7515) of `claims`.
    pub fn sign(&self, claims: &impl serde::Serialize) -> Result<String, KeyError> {
        let damaged = || KeyError::Damaged(self.kid.clone());
        let header =
            serde_json::json!({"alg": ID_TOKEN_SIGNING_ALG, "typ": "JWT", "kid": self.kid});
        let payload = serde_json::to_vec(claims).map_err(|_| damaged())?;
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(&payload)
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| damaged())?;
        Ok(format!("{input}.{}", b64url(sig.as_ref())))
    }
}

struct Loaded {
    at: i64,
    rows: Vec<KeyRow>,
    signer: Option<(i64, Arc<Signer>)>,
}

/// The keys as last read from the database, re-read when older than the cache time.
#[derive(Default)]
pub struct KeyCache {
    loaded: Mutex<Option<Loaded>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache(…)")
    }
}

impl KeyCache {
    async fn with_rows<T>(
        &self,
        db: &Db,
        cache_secs: i64,
        f: impl FnOnce(&mut Loaded) -> T,
    ) -> Result<T, KeyError> {
        let mut g = self.loaded.lock().await;
        let t = now();
        let fresh = g
            .as_ref()
            .is_some_and(|l| t - l.at < cache_secs && cache_secs > 0);
        if !fresh {
            let rows = db.signing_keys().await?;
            let signer = g.take().and_then(|l| l.signer);
            *g = Some(Loaded {
                at: t,
                rows,
                signer,
            });
        }
        // Just set if it was empty.
        match g.as_mut() {
            Some(l) => Ok(f(l)),
            None => Err(KeyError::Damaged("(cache)".into())),
        }
    }

    /// The published keys.
    pub async fn jwks(
        &self,
        db: &Db,
        cache_secs: i64,
        id_token_ttl: i64,
    ) -> Result<JwkSet, KeyError> {
        self.with_rows(db, cache_secs, |l| {
            let states = schedule(&l.rows, now(), id_token_ttl);
            JwkSet {
                keys: l
                    .rows
                    .iter()
                    .zip(states)
                    .filter(|(_, s)| *s != KeyState::Retired)
                    .filter_map(|(k, _)| serde_json::from_str(&k.public_jwk).ok())
                    .collect(),
            }
        })
        .await
    }

    /// The key that signs now; creates the first key of a database that has none.
    pub async fn signer(
        &self,
        db: &Db,
        sealer: &SecretBox,
        cache_secs: i64,
    ) -> Result<Arc<Signer>, KeyError> {
        let t = now();
        let pick = |l: &mut Loaded| -> Result<Option<Arc<Signer>>, KeyError> {
            let Some(row) = l.rows.iter().rev().find(|k| k.activates_at <= t) else {
                return Ok(None);
            };
            if let Some((_, s)) = l.signer.as_ref().filter(|(_, s)| s.kid == row.kid) {
                return Ok(Some(s.clone()));
            }
            let s = Arc::new(Signer::open(row, sealer)?);
            l.signer = Some((row.activates_at, s.clone()));
            Ok(Some(s))
        };
        if let Some(s) = self.with_rows(db, cache_secs, pick).await?? {
            return Ok(s);
        }
        // Another process may have made the first key since this one last read them.
        if let Some(s) = self.with_rows(db, 0, pick).await?? {
            return Ok(s);
        }
        // The first key: nothing was published before it, so it may sign at once. Two processes
        // starting together may both add one; both then pick the same (ordered by kid).
        db.add_signing_key(&new_key(sealer, t)?).await?;
        self.with_rows(db, 0, pick)
            .await??
            .ok_or_else(|| KeyError::Damaged("(first)".into()))
    }
}

/// `keys rotate`: a new key published now, signing from `now + lead`.
pub async fn rotate(db: &Db, sealer: &SecretBox, lead: i64) -> Result<KeyRow, KeyError> {
    // Strictly after every key there is, so it is the newest whatever the clock says.
    let latest = db.signing_keys().await?.last().map(|k| k.activates_at + 1);
    let row = new_key(sealer, (now() + lead.max(0)).max(latest.unwrap_or(0)))?;
    db.add_signing_key(&row).await?;
    Ok(row)
}

/// Deletes retired keys; returns how many.
pub async fn prune(db: &Db, id_token_ttl: i64) -> Result<usize, KeyError> {
    let rows = db.signing_keys().await?;
    let states = schedule(&rows, now(), id_token_ttl);
    let mut n = 0;
    for (k, s) in rows.iter().zip(states) {
        if s == KeyState::Retired {
            db.delete_signing_key(&k.kid).await?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kid: &str, at: i64) -> KeyRow {
        KeyRow {
            kid: kid.into(),
            alg: "ES256".into(),
            public_jwk: String::new(),
            private_sealed: String::new(),
            created_at: 0,
            activates_at: at,
        }
    }

    #[test]
    fn the_schedule_publishes_before_and_after_signing() {
        use KeyState::*;
        let rows = [row("a", 0), row("b", 100)];
        assert_eq!(schedule(&rows, 50, 60), [Current, Next]);
        assert_eq!(schedule(&rows, 100, 60), [Retiring, Current]);
        assert_eq!(schedule(&rows, 159, 60), [Retiring, Current]);
        assert_eq!(schedule(&rows, 160, 60), [Retired, Current]);
        assert_eq!(schedule(&rows[..1], -1, 60), [Next]);
    }

    #[test]
    fn a_signature_verifies_with_the_published_key() {
        let mut cfg = crate::Config::new("http://x");
        cfg.env
            .insert(crate::secrets::KEY_VAR.into(), STANDARD.encode([7u8; 32]));
        let sealer = SecretBox::from_config(&cfg).unwrap();
        let k = new_key(&sealer, 0).unwrap();
        assert!(!format!("{k:?}").contains(&k.private_sealed));
        let s = Signer::open(&k, &sealer).unwrap();
        let jws = s.sign(&serde_json::json!({"sub": "u"})).unwrap();
        let (input, sig) = jws.rsplit_once('.').unwrap();
        let jwk: Jwk = serde_json::from_str(&k.public_jwk).unwrap();
        let b = |v: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(v)
                .unwrap()
        };
        let mut point = vec![4u8];
        point.extend(b(jwk.x.as_deref().unwrap()));
        point.extend(b(jwk.y.as_deref().unwrap()));
        let key = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
            point,
        );
        key.verify(input.as_bytes(), &b(sig)).unwrap();
        assert_eq!(jwk.kid, k.kid);
    }
}
