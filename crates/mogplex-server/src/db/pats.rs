//! Personal access tokens (`mog_…`): stored as hashes, listed by id and prefix only, revoked by
//! id or by the token itself.

use super::{Cols, Db, DbError};
use crate::crypto::{self, now};

#[derive(Debug, Clone)]
pub struct PatRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// The bearer check for a personal access token (`$1` its hash, `$2` now): the user and the
/// scope it carries, every scope of the CLI.
pub(super) const PRINCIPAL: &str = "SELECT user_id, 'openid profile email offline_access read write', CAST(NULL AS TEXT) FROM personal_access_tokens \
     WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)";

impl Db {
    pub async fn create_pat(
        &self,
        user_id: &str,
        name: &str,
        token: &str,
        expires_at: Option<i64>,
    ) -> Result<PatRow, DbError> {
        let row = PatRow {
            id: crypto::id("pat_"),
            name: name.to_owned(),
            prefix: format!("{}…", &token[..8.min(token.len())]),
            created_at: now(),
            expires_at,
            revoked_at: None,
        };
        let q = "INSERT INTO personal_access_tokens (token_hash, id, user_id, name, prefix, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)";
        execute!(
            self,
            q,
            crypto::hash(token),
            &row.id,
            user_id,
            &row.name,
            &row.prefix,
            row.created_at,
            row.expires_at
        )?;
        Ok(row)
    }

    pub async fn list_pats(&self, user_id: &str) -> Result<Vec<PatRow>, DbError> {
        let q = "SELECT id, name, prefix, created_at, expires_at, revoked_at FROM personal_access_tokens WHERE user_id = $1 ORDER BY created_at";
        Ok(fetch_all!(self, q, [user_id], |r| PatRow {
            id: r.text(0),
            name: r.text(1),
            prefix: r.text(2),
            created_at: r.int(3),
            expires_at: r.int_opt(4),
            revoked_at: r.int_opt(5),
        }))
    }

    /// Revokes by id (`pat_…`) or by the token itself. Returns whether one was revoked.
    pub async fn revoke_pat(&self, user_id: &str, id_or_token: &str) -> Result<bool, DbError> {
        let q = "UPDATE personal_access_tokens SET revoked_at = $1 WHERE user_id = $2 AND (id = $3 OR token_hash = $4) AND revoked_at IS NULL";
        let n = execute!(
            self,
            q,
            now(),
            user_id,
            id_or_token,
            crypto::hash(id_or_token)
        )?;
        Ok(n > 0)
    }
}
