//! What an ID token needs beyond the grant: the `nonce` of the authorization request and when the
//! user signed in (`auth_time`), kept by the code's hash and bound to the token family when the
//! code is redeemed, so refreshes can repeat `auth_time`. And the claims of an account.

use super::{Cols, Db, DbError};
use crate::crypto::{self, now};

#[derive(Debug, Clone, Default)]
pub struct AuthContext {
    pub nonce: Option<String>,
    pub auth_time: Option<i64>,
}

/// The account's claims.
#[derive(Debug, Clone)]
pub struct Claims {
    pub id: String,
    pub email: String,
    pub name: String,
    pub email_verified: bool,
}

impl Db {
    pub async fn save_auth_context(
        &self,
        code: &str,
        ctx: &AuthContext,
        expires_at: i64,
    ) -> Result<(), DbError> {
        let q = "INSERT INTO oidc_auth (code_hash, nonce, auth_time, expires_at) VALUES ($1, $2, $3, $4)";
        execute!(
            self,
            q,
            crypto::hash(code),
            &ctx.nonce,
            ctx.auth_time,
            expires_at
        )?;
        Ok(())
    }

    /// Binds the context of a redeemed code to its token family and returns it.
    pub async fn bind_auth_context(
        &self,
        code: &str,
        family_id: &str,
    ) -> Result<Option<AuthContext>, DbError> {
        let q = "UPDATE oidc_auth SET family_id = $1 WHERE code_hash = $2 AND family_id IS NULL \
                 RETURNING nonce, auth_time";
        Ok(fetch_optional!(
            self,
            q,
            [family_id, crypto::hash(code)],
            |r| AuthContext {
                nonce: r.text_opt(0),
                auth_time: r.int_opt(1),
            }
        ))
    }

    /// The `auth_time` of a token family's sign-in, if it began with an authorization code.
    pub async fn family_auth_time(&self, family_id: &str) -> Result<Option<i64>, DbError> {
        let q = "SELECT auth_time FROM oidc_auth WHERE family_id = $1";
        Ok(fetch_optional!(self, q, [family_id], |r| r.int_opt(0)).flatten())
    }

    /// When the browser session `token` signed in.
    pub async fn web_session_started(&self, token: &str) -> Result<Option<i64>, DbError> {
        let q = "SELECT created_at FROM web_sessions WHERE token_hash = $1 AND expires_at > $2";
        Ok(fetch_optional!(
            self,
            q,
            [crypto::hash(token), now()],
            |r| r.int(0)
        ))
    }

    /// [`Db::user_claims`] and [`Db::family_auth_time`] in one query, for the ID token of a
    /// refresh (one round trip on the refresh grant's hot path, not two).
    pub async fn claims_and_auth_time(
        &self,
        user_id: &str,
        family_id: &str,
    ) -> Result<Option<(Claims, Option<i64>)>, DbError> {
        let q = "SELECT id, email, name, email_verified, \
                   (SELECT auth_time FROM oidc_auth WHERE family_id = $2) \
                 FROM users WHERE id = $1";
        Ok(fetch_optional!(self, q, [user_id, family_id], |r| (
            Claims {
                id: r.text(0),
                email: r.text(1),
                name: r.text(2),
                email_verified: r.int(3) != 0,
            },
            r.int_opt(4)
        )))
    }

    pub async fn user_claims(&self, user_id: &str) -> Result<Option<Claims>, DbError> {
        let q = "SELECT id, email, name, email_verified FROM users WHERE id = $1";
        Ok(fetch_optional!(self, q, [user_id], |r| Claims {
            id: r.text(0),
            email: r.text(1),
            name: r.text(2),
            email_verified: r.int(3) != 0,
        }))
    }

    pub async fn set_email_verified(&self, user_id: &str, verified: bool) -> Result<(), DbError> {
        let q = "UPDATE users SET email_verified = $1 WHERE id = $2";
        execute!(self, q, i64::from(verified), user_id)?;
        Ok(())
    }

    /// The access token's client and expiry, for introspection: `(client_id, user_id, scope,
    /// expires_at, resource)` of a live token (the resource its sign-in is bound to, if any).
    pub async fn access_token_info(
        &self,
        token: &str,
    ) -> Result<Option<(String, String, String, i64, Option<String>)>, DbError> {
        let q = "SELECT f.client_id, a.user_id, a.scope, a.expires_at, f.resource FROM access_tokens a \
                 JOIN token_families f ON f.id = a.family_id \
                 WHERE a.token_hash = $1 AND a.expires_at > $2 AND a.revoked_at IS NULL AND f.revoked_at IS NULL";
        Ok(fetch_optional!(
            self,
            q,
            [crypto::hash(token), now()],
            |r| (r.text(0), r.text(1), r.text(2), r.int(3), r.text_opt(4))
        ))
    }

    /// A live refresh token's `(client_id, user_id, scope, expires_at, resource)`.
    pub async fn refresh_token_info(
        &self,
        token: &str,
    ) -> Result<Option<(String, String, String, i64, Option<String>)>, DbError> {
        let q = "SELECT f.client_id, f.user_id, f.scope, r.expires_at, f.resource FROM refresh_tokens r \
                 JOIN token_families f ON f.id = r.family_id \
                 WHERE r.token_hash = $1 AND r.expires_at > $2 AND r.used_at IS NULL AND f.revoked_at IS NULL";
        Ok(fetch_optional!(
            self,
            q,
            [crypto::hash(token), now()],
            |r| (r.text(0), r.text(1), r.text(2), r.int(3), r.text_opt(4))
        ))
    }

    /// The client a token (access or refresh) was issued to, live or not.
    pub async fn token_client(&self, token: &str) -> Result<Option<String>, DbError> {
        let h = crypto::hash(token);
        let q = "SELECT f.client_id FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id WHERE r.token_hash = $1";
        if let Some(c) = fetch_optional!(self, q, [&h], |r| r.text(0)) {
            return Ok(Some(c));
        }
        let q = "SELECT f.client_id FROM access_tokens a JOIN token_families f ON f.id = a.family_id WHERE a.token_hash = $1";
        Ok(fetch_optional!(self, q, [&h], |r| r.text(0)))
    }
}
