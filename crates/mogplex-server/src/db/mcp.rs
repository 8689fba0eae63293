//! An account's MCP server definitions: the public configuration as JSON, the values an
//! administrator marked secret sealed separately (`crate::secrets`).

use super::{Cols, Db, DbError};
use crate::crypto::{self, now};

impl Db {
    /// Adds or replaces the user's MCP server `name`. `secrets` is already sealed.
    pub async fn upsert_mcp(
        &self,
        user_id: &str,
        name: &str,
        enabled: bool,
        config: &str,
        secrets: Option<&str>,
    ) -> Result<(), DbError> {
        let q = "INSERT INTO mcp_servers (id, user_id, name, enabled, config, secrets, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (user_id, name) DO UPDATE SET enabled = $4, config = $5, secrets = $6";
        execute!(
            self,
            q,
            crypto::id("mcp_"),
            user_id,
            name,
            i64::from(enabled),
            config,
            secrets,
            now()
        )?;
        Ok(())
    }

    /// The user's MCP servers: (name, enabled, config JSON, sealed secrets), by name.
    pub async fn list_mcp(
        &self,
        user_id: &str,
    ) -> Result<Vec<(String, bool, String, Option<String>)>, DbError> {
        let q = "SELECT name, enabled, config, secrets FROM mcp_servers WHERE user_id = $1 ORDER BY name";
        Ok(fetch_all!(self, q, [user_id], |r| (
            r.text(0),
            r.int(1) != 0,
            r.text(2),
            r.text_opt(3)
        )))
    }
}
