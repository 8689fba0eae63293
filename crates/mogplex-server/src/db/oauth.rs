//! Authorization codes, token families, access and refresh tokens, and the bearer check.
//!
//! Codes and tokens are stored only as hashes. A sign-in is a token family: every token it ever
//! issued hangs off it, so revoking the family revokes them all (code replay, refresh reuse,
//! RFC 7009 revocation of a refresh token).

use super::{Cols, Db, DbError};
use crate::crypto::{self, now};

#[derive(Debug, Clone)]
pub struct Grant {
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
}

#[derive(Debug, Clone)]
pub struct CodeRow {
    pub user_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub expires_at: i64,
    /// The RFC 8707 resource the authorization request named, if any.
    pub resource: Option<String>,
}

/// What a refresh-token presentation found.
#[derive(Debug)]
pub enum Refresh {
    /// Rotated: the family and what the old token granted; the account's claims and the
    /// sign-in's `auth_time` when the rotation read them (for an ID token), and whether its
    /// audit row was written with it.
    Rotated {
        family_id: String,
        grant: Grant,
        claims: Option<(super::oidc::Claims, Option<i64>)>,
        audited: bool,
    },
    /// Already used: reuse. The family has been revoked.
    Reused,
    /// Unknown, expired, or its family revoked.
    Invalid,
    /// Bound to another resource than the request named (`None`: to none); nothing consumed.
    OtherResource(Option<String>),
}

/// The tokens a refresh issues, when they expire, and the scope of the access token when the
/// client asked for less than the sign-in's (`None`: all of it).
pub struct NextTokens {
    pub access: String,
    pub access_expires: i64,
    pub refresh: String,
    pub refresh_expires: i64,
    pub access_scope: Option<String>,
}

impl std::fmt::Debug for NextTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextTokens")
            .field("access_expires", &self.access_expires)
            .field("refresh_expires", &self.refresh_expires)
            .field("access_scope", &self.access_scope)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub scope: String,
    /// The resource (audience) the token is bound to: `None` for an account token, the only
    /// kind this server's own API and gateway accept.
    pub resource: Option<String>,
    /// The SHA-256 of the bearer, for per-token limits.
    pub token_hash: String,
}

impl Db {
    pub async fn create_code(&self, code: &str, row: &CodeRow) -> Result<(), DbError> {
        let q = "INSERT INTO auth_codes (code_hash, user_id, client_id, redirect_uri, code_challenge, scope, expires_at, resource) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        execute!(
            self,
            q,
            crypto::hash(code),
            &row.user_id,
            &row.client_id,
            &row.redirect_uri,
            &row.code_challenge,
            &row.scope,
            row.expires_at,
            &row.resource
        )?;
        Ok(())
    }

    /// Marks the code used, atomically, binding it to a new token family. `Ok(Some)` for exactly
    /// one caller; a second presentation gets `Ok(None)` and the family the code issued (if any)
    /// is revoked.
    pub async fn redeem_code(
        &self,
        code: &str,
        family_id: &str,
    ) -> Result<Option<CodeRow>, DbError> {
        let h = crypto::hash(code);
        let t = now();
        let q = "UPDATE auth_codes SET used_at = $1, family_id = $2 WHERE code_hash = $3 AND used_at IS NULL \
                 RETURNING user_id, client_id, redirect_uri, code_challenge, scope, expires_at, resource";
        let row = fetch_optional!(self, q, [t, family_id, &h], |r| CodeRow {
            user_id: r.text(0),
            client_id: r.text(1),
            redirect_uri: r.text(2),
            code_challenge: r.text(3),
            scope: r.text(4),
            expires_at: r.int(5),
            resource: r.text_opt(6),
        });
        if row.is_none() {
            // A replay: revoke whatever the code issued. The family row may not be committed yet
            // if the first redemption is still running, so revoke by upsert.
            let q =
                "SELECT family_id, user_id, client_id, scope FROM auth_codes WHERE code_hash = $1";
            let found = fetch_optional!(self, q, [&h], |r| (
                r.text_opt(0),
                r.text(1),
                r.text(2),
                r.text(3)
            ));
            if let Some((Some(fid), user_id, client_id, scope)) = found {
                let q = "INSERT INTO token_families (id, user_id, client_id, scope, created_at, revoked_at) \
                         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO UPDATE SET revoked_at = $5";
                execute!(self, q, fid, user_id, client_id, scope, t)?;
            }
        }
        Ok(row)
    }

    /// Creates the family and its first tokens. If a replay of the code got in first, the family
    /// row already exists, revoked, and stays so: the tokens issued here are dead on arrival, as
    /// the replay rule demands.
    pub async fn start_family(
        &self,
        family_id: &str,
        grant: &Grant,
        access: &str,
        access_expires: i64,
        refresh: &str,
        refresh_expires: i64,
    ) -> Result<(), DbError> {
        let tokens = (access, access_expires, refresh, refresh_expires);
        self.start_bound_family(family_id, grant, None, tokens)
            .await
    }

    /// [`Db::start_family`] for a sign-in bound to `resource` (RFC 8707): every access token it
    /// issues has that audience. `tokens`: access, its expiry, refresh, its expiry.
    pub async fn start_bound_family(
        &self,
        family_id: &str,
        grant: &Grant,
        resource: Option<&str>,
        tokens: (&str, i64, &str, i64),
    ) -> Result<(), DbError> {
        let (access, access_expires, refresh, refresh_expires) = tokens;
        let q = "INSERT INTO token_families (id, user_id, client_id, scope, created_at, resource) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (id) DO NOTHING";
        execute!(
            self,
            q,
            family_id,
            &grant.user_id,
            &grant.client_id,
            &grant.scope,
            now(),
            resource
        )?;
        let t = now();
        let qa = "INSERT INTO access_tokens (token_hash, family_id, user_id, scope, expires_at) VALUES ($1, $2, $3, $4, $5)";
        let qr = "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
        execute!(
            self,
            qa,
            crypto::hash(access),
            family_id,
            &grant.user_id,
            &grant.scope,
            access_expires
        )?;
        execute!(
            self,
            qr,
            crypto::hash(refresh),
            family_id,
            t,
            refresh_expires
        )?;
        Ok(())
    }

    /// The scope of the sign-in a refresh token belongs to and the resource it is bound to, if
    /// the token is known: a refresh is checked against them before anything changes.
    pub async fn refresh_binding(
        &self,
        refresh: &str,
    ) -> Result<Option<(String, Option<String>)>, DbError> {
        let q = "SELECT f.scope, f.resource FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id WHERE r.token_hash = $1";
        Ok(fetch_optional!(self, q, [crypto::hash(refresh)], |r| (
            r.text(0),
            r.text_opt(1)
        )))
    }

    /// The rotation of `refresh` into `next` by `client_id`, for [`Db::rotate_batch`], with the
    /// audit row it writes if it wins (`None`: none).
    pub fn rotation(
        refresh: &str,
        client_id: &str,
        next: &NextTokens,
        resource: Option<&str>,
        audit: Option<super::rotation::AuditNote>,
    ) -> super::rotation::Rotation {
        super::rotation::Rotation {
            token_hash: crypto::hash(refresh),
            access_hash: crypto::hash(&next.access),
            access_expires: next.access_expires,
            refresh_hash: crypto::hash(&next.refresh),
            refresh_expires: next.refresh_expires,
            client_id: client_id.to_owned(),
            access_scope: next.access_scope.clone(),
            resource: resource.map(str::to_owned),
            audit,
        }
    }

    /// What a rotation came to: `won` if it won ([`super::rotation::Batcher`] rotated it, many
    /// rotations in one commit), else reuse, a retry inside the grace interval, another resource,
    /// or an invalid token. Exactly one presentation of a token wins; any later one is reuse and
    /// revokes the whole family, except a retry of the immediately previous token within `grace`
    /// seconds of its use (its response was lost), which retires the successor nobody saw and
    /// answers a fresh one. Only a family bound to `resource` (RFC 8707; `None`: to none) can
    /// win, so the resource check costs no query of its own; a token of another resource is
    /// [`Refresh::OtherResource`], consumed by nothing.
    pub async fn settle_rotation(
        &self,
        refresh: &str,
        client_id: &str,
        next: &NextTokens,
        grace: i64,
        resource: Option<&str>,
        won: Option<super::rotation::Won>,
    ) -> Result<Refresh, DbError> {
        let h = crypto::hash(refresh);
        let t = now();
        let won = match won {
            Some(w) if w.grant.client_id != client_id => {
                self.revoke_family(&w.family_id).await?;
                None
            }
            other => other,
        };
        if let Some(w) = won {
            return Ok(Refresh::Rotated {
                family_id: w.family_id,
                grant: w.grant,
                claims: w.claims,
                audited: w.audited,
            });
        }
        // Not won: bound to another resource, unknown, expired, revoked, or used. A used token is
        // reuse unless it is a retry inside the grace interval whose successor has not been used.
        if let Some((_, bound)) = self.refresh_binding(refresh).await?
            && bound.as_deref() != resource
        {
            return Ok(Refresh::OtherResource(bound));
        }
        let q = "SELECT r.family_id, r.used_at, r.next_access_hash, r.next_refresh_hash,                    f.user_id, f.client_id, f.scope, f.revoked_at                  FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id WHERE r.token_hash = $1";
        // Each pass that finds the successor replaced means a concurrent retry won: progress.
        for _ in 0..32 {
            let seen = fetch_optional!(self, q, [&h], |r| (
                r.text(0),
                r.int_opt(1),
                r.text_opt(2),
                r.text_opt(3),
                Grant {
                    user_id: r.text(4),
                    client_id: r.text(5),
                    scope: r.text(6),
                },
                r.int_opt(7)
            ));
            let Some((family, Some(used_at), old_access, Some(successor), grant, revoked)) = seen
            else {
                return Ok(match seen {
                    Some((family, Some(_), ..)) => {
                        self.revoke_family(&family).await?;
                        Refresh::Reused
                    }
                    _ => Refresh::Invalid,
                });
            };
            if revoked.is_some() {
                return Ok(Refresh::Invalid);
            }
            if grant.client_id != client_id || t - used_at >= grace {
                self.revoke_family(&family).await?;
                return Ok(Refresh::Reused);
            }
            let retried = self
                .retry_rotation(&h, &successor, old_access.as_deref(), &family, &grant, next)
                .await?;
            if retried {
                tracing::info!("refresh retried within the grace interval; successor replaced");
                return Ok(Refresh::Rotated {
                    family_id: family,
                    grant,
                    claims: None,
                    audited: false,
                });
            }
            // The successor was used meanwhile: reuse, unless a concurrent retry of this same
            // token replaced it (then its successor is new: look again).
            let q = "SELECT next_refresh_hash FROM refresh_tokens WHERE token_hash = $1";
            let now_next = fetch_optional!(self, q, [&h], |r| r.text_opt(0)).flatten();
            if now_next.as_deref() == Some(successor.as_str()) {
                self.revoke_family(&family).await?;
                return Ok(Refresh::Reused);
            }
        }
        Ok(Refresh::Invalid)
    }

    /// The grace retry, in one transaction: retires the unused successor `successor` of the
    /// token hashed `h` (and the access token issued with it), issues `next`, and records it as
    /// the token's successor. `false` if the successor was used meanwhile (nothing changes).
    async fn retry_rotation(
        &self,
        h: &str,
        successor: &str,
        old_access: Option<&str>,
        family: &str,
        grant: &Grant,
        next: &NextTokens,
    ) -> Result<bool, DbError> {
        let t = now();
        let (access_hash, refresh_hash) = (crypto::hash(&next.access), crypto::hash(&next.refresh));
        let scope = next.access_scope.as_deref().unwrap_or(&grant.scope);
        let _serialised = self.write_guard().await;
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let q =
                "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL";
            let retired = sqlx::query(q)
                .bind(t)
                .bind(successor)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if retired != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            let q = "UPDATE access_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL";
            sqlx::query(q)
                .bind(t)
                .bind(old_access.unwrap_or_default())
                .execute(&mut *tx)
                .await?;
            let q = "INSERT INTO access_tokens (token_hash, family_id, user_id, scope, expires_at) VALUES ($1, $2, $3, $4, $5)";
            sqlx::query(q)
                .bind(&access_hash)
                .bind(family)
                .bind(&grant.user_id)
                .bind(scope)
                .bind(next.access_expires)
                .execute(&mut *tx)
                .await?;
            let q = "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
            sqlx::query(q)
                .bind(&refresh_hash)
                .bind(family)
                .bind(t)
                .bind(next.refresh_expires)
                .execute(&mut *tx)
                .await?;
            let q = "UPDATE refresh_tokens SET next_access_hash = $1, next_refresh_hash = $2, next_access_scope = $3 WHERE token_hash = $4";
            sqlx::query(q)
                .bind(&access_hash)
                .bind(&refresh_hash)
                .bind(next.access_scope.as_deref())
                .bind(h)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    pub async fn revoke_family(&self, family_id: &str) -> Result<(), DbError> {
        let q = "UPDATE token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
        execute!(self, q, now(), family_id)?;
        Ok(())
    }

    /// RFC 7009: a refresh token revokes its family (and so its access tokens); an access token
    /// or a personal access token revokes itself. Unknown tokens are not an error.
    pub async fn revoke_token(&self, token: &str) -> Result<(), DbError> {
        let h = crypto::hash(token);
        let q = "SELECT family_id FROM refresh_tokens WHERE token_hash = $1";
        if let Some(f) = fetch_optional!(self, q, [&h], |r| r.text(0)) {
            return self.revoke_family(&f).await;
        }
        let q = if crypto::is_personal_access_token(token) {
            // Presenting a personal access token proves possession of it: revoked like any other.
            "UPDATE personal_access_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL"
        } else {
            "UPDATE access_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL"
        };
        execute!(self, q, now(), &h)?;
        Ok(())
    }

    /// The account's live sign-ins bound to `resource` (not revoked, with a refresh token not
    /// yet expired).
    pub async fn live_sign_ins_for(&self, user_id: &str, resource: &str) -> Result<i64, DbError> {
        let q = "SELECT COUNT(DISTINCT f.id) FROM token_families f JOIN refresh_tokens r ON r.family_id = f.id \
                 WHERE f.user_id = $1 AND f.resource = $2 AND f.revoked_at IS NULL AND r.used_at IS NULL AND r.expires_at > $3";
        Ok(fetch_optional!(self, q, [user_id, resource, now()], |r| r.int(0)).unwrap_or(0))
    }

    /// The bearer check: an unexpired, unrevoked access token or personal access token, one
    /// indexed lookup.
    pub async fn principal(&self, bearer: &str) -> Result<Option<Principal>, DbError> {
        let h = crypto::hash(bearer);
        let q = if crypto::is_personal_access_token(bearer) {
            super::pats::PRINCIPAL
        } else {
            "SELECT a.user_id, a.scope, f.resource FROM access_tokens a JOIN token_families f ON f.id = a.family_id \
             WHERE a.token_hash = $1 AND a.expires_at > $2 AND a.revoked_at IS NULL AND f.revoked_at IS NULL"
        };
        Ok(fetch_optional!(self, q, [&h, now()], |r| Principal {
            user_id: r.text(0),
            scope: r.text(1),
            resource: r.text_opt(2),
            token_hash: h.clone(),
        }))
    }
}
