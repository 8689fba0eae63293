//! Every path the account server serves and the CLI calls, defined once (SPEC section 4).
//!
//! The server's router is built from these constants and the CLI joins them to its base URL, so a
//! path renamed on one side is renamed on both. Paths with a `{id}` segment are axum route
//! templates; [`run`] and [`run_events`] fill them in for a client.

/// RFC 8414 authorization server metadata.
pub const AUTHORIZATION_SERVER_METADATA: &str = "/.well-known/oauth-authorization-server";
/// OpenID Connect Discovery 1.0: the same document with the OpenID provider's members.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// The prefix of every discovery document (unknown ones answer a JSON 404).
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/";
/// The ID token signing keys (a JWK set).
pub const JWKS: &str = "/api/auth/mcp/jwks";
/// OpenID Connect userinfo (`GET` or `POST` with a bearer).
pub const USERINFO: &str = "/api/auth/mcp/userinfo";
/// RFC 7662 token introspection, for confidential clients.
pub const INTROSPECT: &str = "/api/auth/mcp/introspect";
/// The consent page's form posts here.
pub const CONSENT: &str = "/api/auth/mcp/consent";
/// The authorization endpoint (the browser's sign-in starts here).
pub const AUTHORIZE: &str = "/api/auth/mcp/authorize";
/// The token endpoint: authorization code, refresh token and device code grants.
pub const TOKEN: &str = "/api/auth/mcp/token";
/// RFC 7009 token revocation.
pub const REVOKE: &str = "/api/auth/mcp/revoke";
/// RFC 8628 device authorization.
pub const DEVICE_AUTHORIZATION: &str = "/api/auth/mcp/device";
/// RFC 7591 dynamic client registration (for MCP clients).
pub const REGISTER: &str = "/api/auth/mcp/register";
/// RFC 9728 protected resource metadata: the document of the resource at path `P` is served at
/// this prefix followed by `P` (RFC 9728 §3.1).
pub const PROTECTED_RESOURCE_METADATA: &str = "/.well-known/oauth-protected-resource";
/// The demo MCP server (Streamable HTTP) that `mogplex-server dev` serves; it requires its own
/// OAuth access token, bound to this resource (RFC 8707).
pub const MCP_DEMO: &str = "/mcp/demo";
/// The prefix every OAuth endpoint shares (their errors are RFC 6749 JSON).
pub const OAUTH_PREFIX: &str = "/api/auth/mcp/";

/// `GET`: who the bearer is (`UserResponse`).
pub const USER: &str = "/api/auth/user";
/// `GET ?format=cli`: the model catalog (`Vec<CliModel>`).
pub const MODELS: &str = "/api/models";
/// `POST`: OpenAI-shaped chat completions through the gateway.
pub const INFERENCE: &str = "/api/cli/inference/chat/completions";
/// Alias of [`INFERENCE`] that the hosted service also answers.
pub const INFERENCE_ALIAS: &str = "/api/cli/openai/chat/completions";
/// The prefix of the gateway's endpoints (their bodies may be larger).
pub const CLI_PREFIX: &str = "/api/cli/";

/// The prefix of the `/api/v1/…` family (its errors are the `V1ErrorBody` envelope).
pub const V1_PREFIX: &str = "/api/v1/";
/// `GET`: the account's MCP server definitions (`V1Ok<McpServers>`).
pub const MCP_SERVERS: &str = "/api/v1/mogplex/mcp/servers";
/// `POST`: create a run (`V1Ok<RunInfo>`).
pub const RUNS: &str = "/api/v1/mogplex/runs";
/// `GET`: a run's snapshot (`V1Ok<RunInfo>`).
pub const RUN: &str = "/api/v1/mogplex/runs/{id}";
/// `GET`: a run's events as server-sent events; `POST`: append one (`V1Ok<AppendedRunEvent>`).
pub const RUN_EVENTS: &str = "/api/v1/mogplex/runs/{id}/events";

/// Browser pages.
pub const HOME_PAGE: &str = "/";
pub const LOGIN_PAGE: &str = "/login";
pub const LOGOUT: &str = "/logout";
/// RFC 8628 `verification_uri`: where a user types the device's code.
pub const DEVICE_PAGE: &str = "/device";
pub const DEVICE_APPROVE: &str = "/device/approve";
/// Available Models: what the signed-in account's plan allows.
pub const MODELS_PAGE: &str = "/web/models";
/// Plans & Billing: the signed-in account's plan.
pub const PLANS_PAGE: &str = "/plans-and-billing";

/// Every endpoint above as `(method, path)`: what the server's router must answer (its contract
/// test walks this list).
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", AUTHORIZATION_SERVER_METADATA),
    ("GET", OPENID_CONFIGURATION),
    ("GET", JWKS),
    ("GET", USERINFO),
    ("POST", USERINFO),
    ("POST", INTROSPECT),
    ("POST", CONSENT),
    ("GET", AUTHORIZE),
    ("POST", TOKEN),
    ("POST", REVOKE),
    ("POST", DEVICE_AUTHORIZATION),
    ("POST", REGISTER),
    ("GET", USER),
    ("GET", MODELS),
    ("POST", INFERENCE),
    ("POST", INFERENCE_ALIAS),
    ("GET", MCP_SERVERS),
    ("POST", RUNS),
    ("GET", RUN),
    ("GET", RUN_EVENTS),
    ("POST", RUN_EVENTS),
    ("GET", HOME_PAGE),
    ("GET", LOGIN_PAGE),
    ("POST", LOGIN_PAGE),
    ("POST", LOGOUT),
    ("GET", DEVICE_PAGE),
    ("POST", DEVICE_PAGE),
    ("POST", DEVICE_APPROVE),
    ("GET", MODELS_PAGE),
    ("GET", PLANS_PAGE),
];

/// The path of the RFC 9728 document of the resource at `resource_path` (e.g. [`MCP_DEMO`]).
pub fn protected_resource_metadata(resource_path: &str) -> String {
    format!("{PROTECTED_RESOURCE_METADATA}{resource_path}")
}

/// The path of run `id`.
pub fn run(id: &str) -> String {
    format!("{RUNS}/{id}")
}

/// The path of run `id`'s events.
pub fn run_events(id: &str) -> String {
    format!("{RUNS}/{id}/events")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_and_their_fillers_agree() {
        assert_eq!(run("run_1"), RUN.replace("{id}", "run_1"));
        assert_eq!(run_events("run_1"), RUN_EVENTS.replace("{id}", "run_1"));
        for p in [
            AUTHORIZE,
            TOKEN,
            REVOKE,
            DEVICE_AUTHORIZATION,
            REGISTER,
            JWKS,
            USERINFO,
            INTROSPECT,
            CONSENT,
        ] {
            assert!(p.starts_with(OAUTH_PREFIX), "{p}");
        }
        for p in [INFERENCE, INFERENCE_ALIAS] {
            assert!(p.starts_with(CLI_PREFIX), "{p}");
        }
        for p in [MCP_SERVERS, RUNS, RUN, RUN_EVENTS] {
            assert!(p.starts_with(V1_PREFIX), "{p}");
        }
    }
}
