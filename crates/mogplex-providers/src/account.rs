//! The Mogplex account's endpoints besides chat: who is signed in, its MCP server definitions,
//! and runs (for `mogplex --attach`). The same client and the same error kinds as the adapters,
//! so a failure here reads like any other.

use crate::catalog::join;
use crate::client::{Flow, ModelClient, bearer, check_status, read_sse};
use crate::error::{ErrorKind, ProviderError};
use mogplex_auth::{Provider, Secret};
use mogplex_protocol::hosted::{MCP_SERVERS_PATH, RUNS_PATH, USER_PATH};
use mogplex_protocol::{AccountUser, McpServer, McpServers, RunInfo, UserResponse, V1Ok};
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde::de::DeserializeOwned;

const P: Provider = Provider::Mogplex;

fn unparsable(what: &str, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::new(ErrorKind::Protocol, P, format!("{what} did not parse: {e}"))
}

impl ModelClient {
    async fn account_get<T: DeserializeOwned>(
        &self,
        base: &Url,
        path: &str,
        token: &Secret,
        what: &str,
    ) -> Result<T, ProviderError> {
        let resp = self
            .http
            .get(join(base, path))
            .header(AUTHORIZATION, bearer(token.expose())?)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| ProviderError::from_reqwest(P, &e))?;
        let resp = check_status(P, resp).await?;
        resp.json().await.map_err(|e| unparsable(what, e))
    }

    /// `GET /api/auth/user`: the signed-in account (`None` when the token is not signed in).
    pub async fn account_user(
        &self,
        base: &Url,
        token: &Secret,
    ) -> Result<Option<AccountUser>, ProviderError> {
        let r: UserResponse = self
            .account_get(base, USER_PATH, token, "the account")
            .await?;
        Ok(r.user)
    }

    /// `GET /api/v1/mogplex/mcp/servers`.
    pub async fn mcp_servers(
        &self,
        base: &Url,
        token: &Secret,
    ) -> Result<Vec<McpServer>, ProviderError> {
        let r: V1Ok<McpServers> = self
            .account_get(base, MCP_SERVERS_PATH, token, "the MCP server list")
            .await?;
        Ok(r.data.servers)
    }

    /// `POST /api/v1/mogplex/runs`.
    pub async fn create_run(
        &self,
        base: &Url,
        token: &Secret,
        title: &str,
    ) -> Result<RunInfo, ProviderError> {
        let resp = self
            .http
            .post(join(base, RUNS_PATH))
            .header(AUTHORIZATION, bearer(token.expose())?)
            .header(CONTENT_TYPE, "application/json")
            .body(serde_json::json!({ "title": title }).to_string())
            .send()
            .await
            .map_err(|e| ProviderError::from_reqwest(P, &e))?;
        let r: V1Ok<RunInfo> = check_status(P, resp)
            .await?
            .json()
            .await
            .map_err(|e| unparsable("the new run", e))?;
        Ok(r.data)
    }

    /// `GET /api/v1/mogplex/runs/{id}`: [`ErrorKind::NotFound`] when it does not exist or belongs
    /// to another account (the server does not tell the two apart).
    pub async fn run_snapshot(
        &self,
        base: &Url,
        token: &Secret,
        id: &str,
    ) -> Result<RunInfo, ProviderError> {
        let r: V1Ok<RunInfo> = self
            .account_get(base, &format!("{RUNS_PATH}/{id}"), token, "the run")
            .await?;
        Ok(r.data)
    }

    /// `POST /api/v1/mogplex/runs/{id}/events`; returns the event's sequence number.
    pub async fn append_run_event(
        &self,
        base: &Url,
        token: &Secret,
        id: &str,
        event: &serde_json::Value,
    ) -> Result<i64, ProviderError> {
        let resp = self
            .http
            .post(join(base, &format!("{RUNS_PATH}/{id}/events")))
            .header(AUTHORIZATION, bearer(token.expose())?)
            .header(CONTENT_TYPE, "application/json")
            .body(event.to_string())
            .send()
            .await
            .map_err(|e| ProviderError::from_reqwest(P, &e))?;
        #[derive(serde::Deserialize)]
        struct Seq {
            id: i64,
        }
        let r: V1Ok<Seq> = check_status(P, resp)
            .await?
            .json()
            .await
            .map_err(|e| unparsable("the appended event", e))?;
        Ok(r.data.id)
    }

    /// `GET /api/v1/mogplex/runs/{id}/events` from after `after`: the history, then live events,
    /// each handed to `on` with its sequence number, until the stream ends or `on` returns false.
    pub async fn follow_run(
        &self,
        base: &Url,
        token: &Secret,
        id: &str,
        after: i64,
        on: &mut (dyn FnMut(i64, serde_json::Value) -> bool + Send),
    ) -> Result<(), ProviderError> {
        let resp = self
            .http
            .get(join(base, &format!("{RUNS_PATH}/{id}/events")))
            .header(AUTHORIZATION, bearer(token.expose())?)
            .header(ACCEPT, "text/event-stream")
            .header("last-event-id", after.to_string())
            .send()
            .await
            .map_err(|e| ProviderError::from_reqwest(P, &e))?;
        let resp = check_status(P, resp).await?;
        read_sse(P, resp, |ev| {
            let seq = ev.id.as_deref().and_then(|i| i.parse::<i64>().ok());
            if let (Some(seq), Ok(v)) = (seq, serde_json::from_str(&ev.data))
                && !on(seq, v)
            {
                return Ok(Flow::Done);
            }
            Ok(Flow::More)
        })
        .await
    }
}
