//! What the administrator's commands read and change beyond the other domains: listing and
//! removing accounts, models and MCP definitions, disabling an account (migration 0009).

use super::{Cols, Db, DbError};
use crate::crypto::now;

/// An account as `user list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccountRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub created_at: i64,
    pub plan: Option<String>,
    pub disabled_at: Option<i64>,
}

/// A plan and its models.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanRow {
    pub name: String,
    pub models: Vec<String>,
    pub accounts: i64,
}

impl Db {
    pub async fn list_accounts(&self) -> Result<Vec<AccountRow>, DbError> {
        let q = "SELECT u.id, u.email, u.name, u.created_at, p.name, u.disabled_at FROM users u \
                 LEFT JOIN plans p ON p.id = u.plan_id ORDER BY u.email";
        Ok(fetch_all!(self, q, [], |r| AccountRow {
            id: r.text(0),
            email: r.text(1),
            name: r.text(2),
            created_at: r.int(3),
            plan: r.text_opt(4),
            disabled_at: r.int_opt(5),
        }))
    }

    /// Removes an account and everything it owns (sessions, tokens, runs, MCP definitions).
    pub async fn remove_account(&self, user_id: &str) -> Result<bool, DbError> {
        // Access tokens carry the user without a foreign key to it.
        execute!(
            self,
            "DELETE FROM access_tokens WHERE user_id = $1",
            user_id
        )?;
        Ok(execute!(self, "DELETE FROM users WHERE id = $1", user_id)? > 0)
    }

    /// Ends every way the account is signed in: browser sessions, OAuth sign-ins, access tokens,
    /// personal access tokens.
    pub async fn sign_out_everywhere(&self, user_id: &str) -> Result<(), DbError> {
        let t = now();
        execute!(self, "DELETE FROM web_sessions WHERE user_id = $1", user_id)?;
        execute!(
            self,
            "UPDATE token_families SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            t,
            user_id
        )?;
        execute!(
            self,
            "UPDATE access_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            t,
            user_id
        )?;
        execute!(
            self,
            "UPDATE personal_access_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            t,
            user_id
        )?;
        Ok(())
    }

    /// Disables (or enables again) an account; disabling also signs it out everywhere.
    pub async fn set_disabled(&self, user_id: &str, disabled: bool) -> Result<(), DbError> {
        let at = disabled.then(now);
        execute!(
            self,
            "UPDATE users SET disabled_at = $1 WHERE id = $2",
            at,
            user_id
        )?;
        if disabled {
            self.sign_out_everywhere(user_id).await?;
        }
        Ok(())
    }

    pub async fn is_disabled(&self, user_id: &str) -> Result<bool, DbError> {
        let q = "SELECT disabled_at FROM users WHERE id = $1";
        Ok(fetch_optional!(self, q, [user_id], |r| r.int_opt(0))
            .flatten()
            .is_some())
    }

    pub async fn list_plans(&self) -> Result<Vec<PlanRow>, DbError> {
        let q = "SELECT p.name, m.model_slug FROM plans p LEFT JOIN plan_models m ON m.plan_id = p.id \
                 ORDER BY p.name, m.model_slug";
        let pairs: Vec<(String, Option<String>)> =
            fetch_all!(self, q, [], |r| (r.text(0), r.text_opt(1)));
        let q = "SELECT p.name, COUNT(u.id) FROM plans p LEFT JOIN users u ON u.plan_id = p.id GROUP BY p.name";
        let counts: Vec<(String, i64)> = fetch_all!(self, q, [], |r| (r.text(0), r.int(1)));
        let mut plans: Vec<PlanRow> = Vec::new();
        for (name, model) in pairs {
            if plans.last().is_none_or(|p| p.name != name) {
                let accounts = counts
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(0, |(_, c)| *c);
                plans.push(PlanRow {
                    name: name.clone(),
                    models: Vec::new(),
                    accounts,
                });
            }
            if let (Some(m), Some(p)) = (model, plans.last_mut()) {
                p.models.push(m);
            }
        }
        Ok(plans)
    }

    /// Every model of the catalog, by slug.
    pub async fn list_models(&self) -> Result<Vec<super::ModelRow>, DbError> {
        let mut out = Vec::new();
        let q = "SELECT slug FROM models ORDER BY slug";
        let slugs: Vec<String> = fetch_all!(self, q, [], |r| r.text(0));
        for slug in slugs {
            if let Some(m) = self.model(&slug).await? {
                out.push(m);
            }
        }
        Ok(out)
    }

    pub async fn remove_model(&self, slug: &str) -> Result<bool, DbError> {
        Ok(execute!(self, "DELETE FROM models WHERE slug = $1", slug)? > 0)
    }

    pub async fn remove_mcp(&self, user_id: &str, name: &str) -> Result<bool, DbError> {
        let q = "DELETE FROM mcp_servers WHERE user_id = $1 AND name = $2";
        Ok(execute!(self, q, user_id, name)? > 0)
    }
}

impl Db {
    /// One round trip, for the readiness check.
    pub async fn ping(&self) -> Result<(), DbError> {
        execute!(self, "SELECT 1")?;
        Ok(())
    }
}
