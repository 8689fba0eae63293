//! The audit log's table (migration 0008): append, read back for `mogplex-server audit`, and
//! prune past the retention. Rows are never updated (a trigger refuses it on both backends).

use super::{Cols, Db, DbError};

/// One stored event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub outcome: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub client: Option<String>,
    pub detail: String,
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewAuditRow {
    pub at: i64,
    pub kind: &'static str,
    pub outcome: &'static str,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub client: Option<String>,
    pub detail: String,
}

impl Db {
    #[allow(clippy::too_many_arguments)]
    pub async fn append_audit(
        &self,
        at: i64,
        kind: &str,
        outcome: &str,
        user_id: Option<&str>,
        email: Option<&str>,
        client: Option<&str>,
        detail: &str,
    ) -> Result<(), DbError> {
        let q = "INSERT INTO audit_log (at, kind, outcome, user_id, email, client, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)";
        // One writer at a time on SQLite, like every other write of this process.
        let _serialised = self.write_guard().await;
        execute!(self, q, at, kind, outcome, user_id, email, client, detail)?;
        Ok(())
    }

    /// Appends several events in one transaction (one commit for all: the audit log's group
    /// commit, see `audit::Sink`).
    pub async fn append_audit_batch(&self, rows: &[NewAuditRow]) -> Result<(), DbError> {
        let q = "INSERT INTO audit_log (at, kind, outcome, user_id, email, client, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let _serialised = self.write_guard().await;
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            for r in rows {
                sqlx::query(q)
                    .bind(r.at)
                    .bind(r.kind)
                    .bind(r.outcome)
                    .bind(r.user_id.as_deref())
                    .bind(r.email.as_deref())
                    .bind(r.client.as_deref())
                    .bind(r.detail.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Events since `since` (unix seconds), of one account if `user_id` is given (matched on the
    /// id or the email), oldest first, at most `limit`.
    pub async fn audit_since(
        &self,
        since: i64,
        user: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, DbError> {
        let q = "SELECT id, at, kind, outcome, user_id, email, client, detail FROM audit_log \
                 WHERE at >= $1 AND ($2 = '' OR user_id = $2 OR email = $2) ORDER BY id LIMIT $3";
        let user = user.unwrap_or_default();
        Ok(fetch_all!(self, q, [since, user, limit], |r| AuditRow {
            id: r.int(0),
            at: r.int(1),
            kind: r.text(2),
            outcome: r.text(3),
            user_id: r.text_opt(4),
            email: r.text_opt(5),
            client: r.text_opt(6),
            detail: r.text(7),
        }))
    }

    /// Deletes events older than `before`; the count deleted.
    pub async fn prune_audit(&self, before: i64) -> Result<u64, DbError> {
        Ok(execute!(
            self,
            "DELETE FROM audit_log WHERE at < $1",
            before
        )?)
    }

    /// The account a refresh token belongs to, if the token is known (for the audit of a refused
    /// refresh).
    pub async fn refresh_token_owner(&self, token: &str) -> Result<Option<String>, DbError> {
        let q = "SELECT f.user_id FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id \
                 WHERE r.token_hash = $1";
        Ok(fetch_optional!(
            self,
            q,
            [crate::crypto::hash(token)],
            |r| r.text(0)
        ))
    }
}
