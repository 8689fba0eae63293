//! ID token signing keys: every key the server ever made, with when it starts signing. Which key
//! signs and which are published follows from these rows and the clock alone (see
//! `oidc::keys`), so every process of a scaled-out deployment agrees without talking to the
//! others.

use super::{Cols, Db, DbError};

#[derive(Clone)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    /// The public JWK, JSON.
    pub public_jwk: String,
    /// The PKCS#8 private key, sealed (`secrets::SecretBox`).
    pub private_sealed: String,
    pub created_at: i64,
    pub activates_at: i64,
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Every signing key, oldest activation first (ties by kid, so all processes order alike).
    pub async fn signing_keys(&self) -> Result<Vec<KeyRow>, DbError> {
        let q = "SELECT kid, alg, public_jwk, private_sealed, created_at, activates_at FROM signing_keys \
                 ORDER BY activates_at, kid";
        Ok(fetch_all!(self, q, [], |r| KeyRow {
            kid: r.text(0),
            alg: r.text(1),
            public_jwk: r.text(2),
            private_sealed: r.text(3),
            created_at: r.int(4),
            activates_at: r.int(5),
        }))
    }

    pub async fn add_signing_key(&self, k: &KeyRow) -> Result<(), DbError> {
        let q = "INSERT INTO signing_keys (kid, alg, public_jwk, private_sealed, created_at, activates_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)";
        execute!(
            self,
            q,
            &k.kid,
            &k.alg,
            &k.public_jwk,
            &k.private_sealed,
            k.created_at,
            k.activates_at
        )?;
        Ok(())
    }

    /// Deletes keys no longer published (their tokens have all expired).
    pub async fn delete_signing_key(&self, kid: &str) -> Result<(), DbError> {
        execute!(self, "DELETE FROM signing_keys WHERE kid = $1", kid)?;
        Ok(())
    }
}
