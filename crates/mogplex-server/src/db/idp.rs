//! Single sign-on storage: identity providers, sign-ins in flight (single use, 10 minutes), and
//! the links from an upstream identity (issuer's provider id + `sub`) to an account.

use super::{Cols, Db, DbError};
use crate::crypto::{self, now};

#[derive(Debug, Clone)]
pub struct IdpRow {
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    /// The environment variable holding the client secret (never the secret).
    pub secret_env: String,
    pub allowed_domains: Vec<String>,
    pub create_accounts: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct SsoState {
    pub idp_id: String,
    pub binding_hash: String,
    pub nonce: String,
    pub verifier: String,
    pub next: String,
    pub expires_at: i64,
}

fn decode_idp(r: &impl Cols) -> IdpRow {
    IdpRow {
        id: r.text(0),
        name: r.text(1),
        issuer: r.text(2),
        client_id: r.text(3),
        secret_env: r.text(4),
        allowed_domains: r
            .text(5)
            .split(' ')
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect(),
        create_accounts: r.int(6) != 0,
        created_at: r.int(7),
    }
}

impl Db {
    pub async fn add_idp(&self, i: &IdpRow) -> Result<bool, DbError> {
        let q = "INSERT INTO identity_providers (id, name, issuer, client_id, secret_env, allowed_domains, create_accounts, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING";
        let n = execute!(
            self,
            q,
            &i.id,
            &i.name,
            &i.issuer,
            &i.client_id,
            &i.secret_env,
            i.allowed_domains.join(" "),
            i64::from(i.create_accounts),
            i.created_at
        )?;
        Ok(n == 1)
    }

    pub async fn idps(&self) -> Result<Vec<IdpRow>, DbError> {
        let q = "SELECT id, name, issuer, client_id, secret_env, allowed_domains, create_accounts, created_at \
                 FROM identity_providers ORDER BY name, id";
        Ok(fetch_all!(self, q, [], decode_idp))
    }

    pub async fn idp(&self, id: &str) -> Result<Option<IdpRow>, DbError> {
        let q = "SELECT id, name, issuer, client_id, secret_env, allowed_domains, create_accounts, created_at \
                 FROM identity_providers WHERE id = $1";
        Ok(fetch_optional!(self, q, [id], decode_idp))
    }

    pub async fn remove_idp(&self, id: &str) -> Result<bool, DbError> {
        execute!(self, "DELETE FROM sso_identities WHERE idp_id = $1", id)?;
        Ok(execute!(self, "DELETE FROM identity_providers WHERE id = $1", id)? == 1)
    }

    pub async fn save_sso_state(&self, state: &str, s: &SsoState) -> Result<(), DbError> {
        execute!(self, "DELETE FROM sso_states WHERE expires_at <= $1", now())?;
        let q = "INSERT INTO sso_states (state_hash, binding_hash, idp_id, nonce, verifier, next, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)";
        execute!(
            self,
            q,
            crypto::hash(state),
            &s.binding_hash,
            &s.idp_id,
            &s.nonce,
            &s.verifier,
            &s.next,
            s.expires_at
        )?;
        Ok(())
    }

    /// Takes the sign-in in flight for `state` (single use: deleted as it is read).
    pub async fn take_sso_state(&self, state: &str) -> Result<Option<SsoState>, DbError> {
        let q = "DELETE FROM sso_states WHERE state_hash = $1 \
                 RETURNING idp_id, binding_hash, nonce, verifier, next, expires_at";
        Ok(fetch_optional!(self, q, [crypto::hash(state)], |r| {
            SsoState {
                idp_id: r.text(0),
                binding_hash: r.text(1),
                nonce: r.text(2),
                verifier: r.text(3),
                next: r.text(4),
                expires_at: r.int(5),
            }
        }))
    }

    pub async fn sso_user(&self, idp_id: &str, subject: &str) -> Result<Option<String>, DbError> {
        let q = "SELECT user_id FROM sso_identities WHERE idp_id = $1 AND subject = $2";
        Ok(fetch_optional!(self, q, [idp_id, subject], |r| r.text(0)))
    }

    pub async fn link_sso(
        &self,
        idp_id: &str,
        subject: &str,
        user_id: &str,
    ) -> Result<(), DbError> {
        let q = "INSERT INTO sso_identities (idp_id, subject, user_id, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (idp_id, subject) DO NOTHING";
        execute!(self, q, idp_id, subject, user_id, now())?;
        Ok(())
    }
}
