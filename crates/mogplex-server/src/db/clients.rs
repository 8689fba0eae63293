//! Registered OAuth clients (besides the built-in `mogplex-cli`) and remembered consent.
//! Client secrets are stored only as hashes.

use super::{Cols, Db, DbError};
use crate::crypto::now;

#[derive(Clone)]
pub struct ClientRow {
    pub client_id: String,
    pub name: String,
    /// SHA-256 of the secret; `None` for a public client.
    pub secret_hash: Option<String>,
    pub auth_method: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub created_at: i64,
    /// Registered by the client itself (RFC 7591), not by an administrator.
    pub dynamic: bool,
}

impl std::fmt::Debug for ClientRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRow")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("confidential", &self.secret_hash.is_some())
            .field("auth_method", &self.auth_method)
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .field("dynamic", &self.dynamic)
            .finish()
    }
}

fn decode_client(r: &impl Cols) -> ClientRow {
    ClientRow {
        client_id: r.text(0),
        name: r.text(1),
        secret_hash: r.text_opt(2),
        auth_method: r.text(3),
        redirect_uris: serde_json::from_str(&r.text(4)).unwrap_or_default(),
        grant_types: r
            .text(5)
            .split(' ')
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: r.int(6),
        dynamic: r.int(7) != 0,
    }
}

impl Db {
    /// `false` when a client with that id exists already.
    pub async fn add_client(&self, c: &ClientRow) -> Result<bool, DbError> {
        let q = "INSERT INTO oauth_clients (client_id, name, secret_hash, auth_method, redirect_uris, grant_types, created_at, dynamic) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (client_id) DO NOTHING";
        let n = execute!(
            self,
            q,
            &c.client_id,
            &c.name,
            &c.secret_hash,
            &c.auth_method,
            serde_json::Value::from(c.redirect_uris.clone()).to_string(),
            c.grant_types.join(" "),
            c.created_at,
            i64::from(c.dynamic)
        )?;
        Ok(n == 1)
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRow>, DbError> {
        let q = "SELECT client_id, name, secret_hash, auth_method, redirect_uris, grant_types, created_at, dynamic \
                 FROM oauth_clients WHERE client_id = $1";
        Ok(fetch_optional!(self, q, [client_id], decode_client))
    }

    pub async fn clients(&self) -> Result<Vec<ClientRow>, DbError> {
        let q = "SELECT client_id, name, secret_hash, auth_method, redirect_uris, grant_types, created_at, dynamic \
                 FROM oauth_clients ORDER BY client_id";
        Ok(fetch_all!(self, q, [], decode_client))
    }

    /// How many clients registered themselves (RFC 7591).
    pub async fn dynamic_client_count(&self) -> Result<i64, DbError> {
        let q = "SELECT COUNT(*) FROM oauth_clients WHERE dynamic <> 0";
        Ok(fetch_optional!(self, q, [], |r| r.int(0)).unwrap_or(0))
    }

    /// Removes the client, its consents, and revokes every sign-in it holds. `false` if unknown.
    pub async fn remove_client(&self, client_id: &str) -> Result<bool, DbError> {
        let q =
            "UPDATE token_families SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL";
        execute!(self, q, now(), client_id)?;
        execute!(self, "DELETE FROM consents WHERE client_id = $1", client_id)?;
        let n = execute!(
            self,
            "DELETE FROM oauth_clients WHERE client_id = $1",
            client_id
        )?;
        Ok(n == 1)
    }

    /// The scope the account consented to for the client, if it did.
    pub async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<String>, DbError> {
        let q = "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2";
        Ok(fetch_optional!(self, q, [user_id, client_id], |r| r.text(0)))
    }

    pub async fn remember_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
    ) -> Result<(), DbError> {
        let q = "INSERT INTO consents (user_id, client_id, scope, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id, client_id) DO UPDATE SET scope = $3, created_at = $4";
        execute!(self, q, user_id, client_id, scope, now())?;
        Ok(())
    }
}
