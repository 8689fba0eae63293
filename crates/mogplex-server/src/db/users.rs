//! Accounts, browser sessions and the sign-in throttles.

use super::{Cols, Db, DbError};
use crate::crypto::{self, now};

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub created_at: i64,
}

impl User {
    /// Columns 0..4: id, email, name, created_at.
    fn from_row(r: &impl Cols) -> Self {
        User {
            id: r.text(0),
            email: r.text(1),
            name: r.text(2),
            created_at: r.int(3),
        }
    }
}

impl Db {
    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        password_hash: &str,
    ) -> Result<User, DbError> {
        let user = User {
            id: crypto::id("usr_"),
            email: email.to_owned(),
            name: name.to_owned(),
            created_at: now(),
        };
        let q = "INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)";
        execute!(
            self,
            q,
            &user.id,
            &user.email,
            &user.name,
            password_hash,
            user.created_at
        )?;
        Ok(user)
    }

    pub async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<(), DbError> {
        let q = "UPDATE users SET password_hash = $1 WHERE id = $2";
        execute!(self, q, password_hash, user_id)?;
        Ok(())
    }

    /// The user and their password hash.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>, DbError> {
        let q = "SELECT id, email, name, created_at, password_hash FROM users WHERE email = $1";
        Ok(fetch_optional!(self, q, [email], |r| (
            User::from_row(r),
            r.text(4)
        )))
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, DbError> {
        let q = "SELECT id, email, name, created_at FROM users WHERE id = $1";
        Ok(fetch_optional!(self, q, [id], User::from_row))
    }

    // ----- browser sessions -----

    pub async fn create_web_session(
        &self,
        token: &str,
        user_id: &str,
        ttl: i64,
    ) -> Result<(), DbError> {
        let q = "INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
        let t = now();
        execute!(self, q, crypto::hash(token), user_id, t, t + ttl)?;
        Ok(())
    }

    pub async fn web_session_user(&self, token: &str) -> Result<Option<User>, DbError> {
        let q = "SELECT u.id, u.email, u.name, u.created_at FROM web_sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = $1 AND s.expires_at > $2";
        Ok(fetch_optional!(
            self,
            q,
            [crypto::hash(token), now()],
            User::from_row
        ))
    }

    pub async fn delete_web_session(&self, token: &str) -> Result<(), DbError> {
        let q = "DELETE FROM web_sessions WHERE token_hash = $1";
        execute!(self, q, crypto::hash(token))?;
        Ok(())
    }

    // ----- throttling -----

    /// Counts one event for `key` in a fixed window of `window` seconds; returns the count so far
    /// and when the window ends.
    pub async fn throttle_hit(&self, key: &str, window: i64) -> Result<(i64, i64), DbError> {
        let t = now();
        let q = "INSERT INTO throttle (key, window_start, count) VALUES ($1, $2, 1) \
                 ON CONFLICT (key) DO UPDATE SET \
                   count = CASE WHEN throttle.window_start <= $3 THEN 1 ELSE throttle.count + 1 END, \
                   window_start = CASE WHEN throttle.window_start <= $3 THEN $2 ELSE throttle.window_start END \
                 RETURNING count, window_start";
        let (count, start): (i64, i64) = on_pool!(self, |p| {
            let r = sqlx::query(q)
                .bind(key)
                .bind(t)
                .bind(t - window)
                // Stepped to the end, so a failed commit is an error (see `fetch_optional!`).
                .fetch_all(p)
                .await?;
            let r = r.first().ok_or(sqlx::Error::RowNotFound)?;
            (r.int(0), r.int(1))
        });
        Ok((count, start + window))
    }

    /// The count in the current window, and when it ends.
    pub async fn throttle_count(&self, key: &str, window: i64) -> Result<(i64, i64), DbError> {
        let q = "SELECT count, window_start FROM throttle WHERE key = $1 AND window_start > $2";
        let t = now();
        let found = fetch_optional!(self, q, [key, t - window], |r| (
            r.int(0),
            r.int(1) + window
        ));
        Ok(found.unwrap_or((0, t)))
    }

    pub async fn throttle_clear(&self, key: &str) -> Result<(), DbError> {
        execute!(self, "DELETE FROM throttle WHERE key = $1", key)?;
        Ok(())
    }
}
