//! The model catalog and plans: which models exist, where their requests go, and which models
//! an account's plan allows.

use super::{Cols, Db, DbError};
use crate::crypto::{self, now};

/// A model: its catalog entry and where requests for it go.
#[derive(Debug, Clone)]
pub struct ModelRow {
    pub slug: String,
    pub provider: String,
    pub display_name: String,
    /// The catalog entry, JSON of `mogplex_protocol::CliModel`.
    pub spec: String,
    /// `echo` or `openai` (an OpenAI-compatible upstream).
    pub upstream_kind: String,
    pub upstream_base_url: Option<String>,
    /// The name of the server-side environment variable holding the upstream key (never the key).
    pub upstream_key_env: Option<String>,
    pub upstream_model: Option<String>,
}

impl ModelRow {
    /// Columns 0..8: slug, provider, display_name, spec, upstream_kind, upstream_base_url,
    /// upstream_key_env, upstream_model.
    fn from_row(r: &impl Cols) -> Self {
        ModelRow {
            slug: r.text(0),
            provider: r.text(1),
            display_name: r.text(2),
            spec: r.text(3),
            upstream_kind: r.text(4),
            upstream_base_url: r.text_opt(5),
            upstream_key_env: r.text_opt(6),
            upstream_model: r.text_opt(7),
        }
    }
}

impl Db {
    /// Adds or replaces a model. `spec` is its catalog entry (JSON of `CliModel`).
    pub async fn upsert_model(&self, m: &ModelRow) -> Result<(), DbError> {
        let q = "INSERT INTO models (slug, provider, display_name, spec, upstream_kind, upstream_base_url, upstream_key_env, upstream_model, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (slug) DO UPDATE SET provider = $2, display_name = $3, spec = $4, upstream_kind = $5, \
                   upstream_base_url = $6, upstream_key_env = $7, upstream_model = $8";
        execute!(
            self,
            q,
            &m.slug,
            &m.provider,
            &m.display_name,
            &m.spec,
            &m.upstream_kind,
            &m.upstream_base_url,
            &m.upstream_key_env,
            &m.upstream_model,
            now()
        )?;
        Ok(())
    }

    /// Creates a plan (or finds it by name) and sets its models. `Ok(Err(slug))` names a model
    /// that does not exist (nothing is changed then).
    pub async fn set_plan(
        &self,
        name: &str,
        models: &[String],
    ) -> Result<Result<String, String>, DbError> {
        for slug in models {
            if self.model(slug).await?.is_none() {
                return Ok(Err(slug.clone()));
            }
        }
        let id = match self.plan_id(name).await? {
            Some(id) => id,
            None => {
                let id = crypto::id("plan_");
                let q = "INSERT INTO plans (id, name, created_at) VALUES ($1, $2, $3)";
                execute!(self, q, &id, name, now())?;
                id
            }
        };
        execute!(self, "DELETE FROM plan_models WHERE plan_id = $1", &id)?;
        for slug in models {
            let q = "INSERT INTO plan_models (plan_id, model_slug) VALUES ($1, $2) ON CONFLICT DO NOTHING";
            execute!(self, q, &id, slug)?;
        }
        Ok(Ok(id))
    }

    pub async fn plan_id(&self, name: &str) -> Result<Option<String>, DbError> {
        let q = "SELECT id FROM plans WHERE name = $1";
        Ok(fetch_optional!(self, q, [name], |r| r.text(0)))
    }

    /// Gives a user a plan (`None`: no plan). Returns false when the user does not exist.
    pub async fn assign_plan(&self, user_id: &str, plan_id: Option<&str>) -> Result<bool, DbError> {
        let q = "UPDATE users SET plan_id = $1 WHERE id = $2";
        let n = execute!(self, q, plan_id, user_id)?;
        Ok(n == 1)
    }

    pub async fn model(&self, slug: &str) -> Result<Option<ModelRow>, DbError> {
        let q = "SELECT slug, provider, display_name, spec, upstream_kind, upstream_base_url, upstream_key_env, upstream_model FROM models WHERE slug = $1";
        Ok(fetch_optional!(self, q, [slug], ModelRow::from_row))
    }

    /// The models the user's plan allows, in slug order.
    pub async fn plan_models(&self, user_id: &str) -> Result<Vec<ModelRow>, DbError> {
        let q = "SELECT m.slug, m.provider, m.display_name, m.spec, m.upstream_kind, m.upstream_base_url, m.upstream_key_env, m.upstream_model \
                 FROM users u JOIN plan_models pm ON pm.plan_id = u.plan_id JOIN models m ON m.slug = pm.model_slug \
                 WHERE u.id = $1 ORDER BY m.slug";
        Ok(fetch_all!(self, q, [user_id], ModelRow::from_row))
    }

    /// The model, if the user's plan allows it.
    pub async fn allowed_model(
        &self,
        user_id: &str,
        slug: &str,
    ) -> Result<Option<ModelRow>, DbError> {
        let q = "SELECT m.slug, m.provider, m.display_name, m.spec, m.upstream_kind, m.upstream_base_url, m.upstream_key_env, m.upstream_model \
                 FROM users u JOIN plan_models pm ON pm.plan_id = u.plan_id JOIN models m ON m.slug = pm.model_slug \
                 WHERE u.id = $1 AND m.slug = $2";
        Ok(fetch_optional!(
            self,
            q,
            [user_id, slug],
            ModelRow::from_row
        ))
    }

    /// The name of the user's plan, if any.
    pub async fn user_plan(&self, user_id: &str) -> Result<Option<String>, DbError> {
        let q = "SELECT p.name FROM users u JOIN plans p ON p.id = u.plan_id WHERE u.id = $1";
        Ok(fetch_optional!(self, q, [user_id], |r| r.text(0)))
    }
}
