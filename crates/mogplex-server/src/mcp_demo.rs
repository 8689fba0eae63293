//! The demo MCP server at `/mcp/demo` (`mogplex-server dev`, or `Config::demo_mcp`): a small
//! Streamable HTTP server that requires its own OAuth, so the whole MCP authorization path can
//! be shown and tested against a real server.
//!
//! Protected resource metadata (RFC 9728) at `/.well-known/oauth-protected-resource/mcp/demo`
//! names this server as the authorization server. Every request needs an access token bound to
//! the resource `P/mcp/demo` (RFC 8707) with the scope `mcp:demo`; without one the answer is 401
//! with `WWW-Authenticate: Bearer resource_metadata="…", scope="mcp:demo"`. The tool
//! `admin_stats` needs `mcp:admin` as well: a token without it gets 403 `insufficient_scope`
//! naming the larger scope (step-up).
//!
//! The protocol is the JSON-RPC subset a tools-only server needs, written here rather than
//! pulling the SDK's server side into the account server: `initialize` (revision 2025-11-25,
//! the newest with that handshake in the workspace's `rmcp`; older ones it names are echoed),
//! `ping`, `tools/list`, `tools/call` (`whoami`: the account's email; `time`: the server's
//! time; `admin_stats`), notifications and responses accepted with 202. Stateless: no session,
//! each POST answered with one JSON body; no server-to-client stream (GET is 405).

use crate::api::{Bearer, any_bearer};
use crate::error::AppError;
use crate::oauth::resource;
use crate::{AppState, crypto};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mogplex_protocol::oauth::MCP_SCOPES;
use mogplex_protocol::routes;
use serde_json::{Map, Value, json};

/// The scope every request needs, and the one `admin_stats` needs besides.
pub const SCOPE: &str = "mcp:demo";
pub const ADMIN_SCOPE: &str = "mcp:admin";

/// The revision answered to a client that asks for one this server does not know (or a newer
/// one without the `initialize` handshake), and the older ones echoed when asked for.
pub const PROTOCOL_VERSION: &str = "2025-11-25";
const OLDER_VERSIONS: &[&str] = &["2025-06-18", "2025-03-26", "2024-11-05"];

/// JSON-RPC error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// The address of the RFC 9728 document.
fn metadata_url(issuer: &str) -> String {
    format!(
        "{issuer}{}",
        routes::protected_resource_metadata(routes::MCP_DEMO)
    )
}

/// `GET /.well-known/oauth-protected-resource/mcp/demo` (RFC 9728 §3).
pub async fn metadata(State(s): State<AppState>) -> Response {
    let issuer = &s.cfg.issuer;
    let mut r = Json(json!({
        "resource": resource::demo(issuer),
        "authorization_servers": [issuer],
        "scopes_supported": MCP_SCOPES,
        "bearer_methods_supported": ["header"],
    }))
    .into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    r
}

fn challenge(value: String) -> HeaderValue {
    // The issuer is a URL the server was started with: always a valid header value.
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("Bearer"))
}

/// 401: no usable token. The challenge names the metadata and the scope to ask for.
fn unauthorized(s: &AppState, description: &str) -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "invalid_token", "error_description": description})),
    )
        .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        challenge(format!(
            "Bearer resource_metadata=\"{}\", scope=\"{SCOPE}\"",
            metadata_url(&s.cfg.issuer)
        )),
    );
    r
}

/// 403: the token lacks a scope; the challenge names the scope to ask for (step-up).
fn insufficient_scope(s: &AppState, needed: &str) -> Response {
    let mut r = (
        StatusCode::FORBIDDEN,
        Json(json!({
            "error": "insufficient_scope",
            "error_description": format!("this needs the scope {needed}"),
        })),
    )
        .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        challenge(format!(
            "Bearer error=\"insufficient_scope\", scope=\"{needed}\", resource_metadata=\"{}\"",
            metadata_url(&s.cfg.issuer)
        )),
    );
    r
}

/// Who is calling: an account and the token's scopes, or the answer to send instead.
struct Caller {
    user_id: String,
    scopes: Vec<String>,
}

impl Caller {
    fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

async fn caller(s: &AppState, headers: &HeaderMap) -> Result<Result<Caller, Response>, AppError> {
    let demo = resource::demo(&s.cfg.issuer);
    let p = match any_bearer(s, headers).await? {
        Bearer::Valid(p) => p,
        Bearer::None => return Ok(Err(unauthorized(s, "send an access token for this server"))),
        Bearer::Invalid => {
            return Ok(Err(unauthorized(
                s,
                "the access token is invalid, expired or revoked",
            )));
        }
    };
    if p.resource.as_deref() != Some(demo.as_str()) {
        // An account token, or one for another resource: not for this server (RFC 8707).
        return Ok(Err(unauthorized(
            s,
            "the access token was not issued for this server",
        )));
    }
    let scopes: Vec<String> = p.scope.split(' ').map(str::to_owned).collect();
    let c = Caller {
        user_id: p.user_id,
        scopes,
    };
    if !c.has(SCOPE) {
        return Ok(Err(insufficient_scope(s, SCOPE)));
    }
    Ok(Ok(c))
}

/// Browsers send `Origin`; only this server's own may reach it (DNS rebinding, MCP
/// "Security Warning" of the Streamable HTTP transport).
fn origin_allowed(s: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let own = url::Url::parse(&s.cfg.issuer).map(|u| u.origin().ascii_serialization());
    matches!((origin.to_str(), own), (Ok(o), Ok(own)) if o == own)
}

fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn answer(status: StatusCode, body: Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn no_arguments() -> Value {
    json!({"type": "object", "properties": {}, "additionalProperties": false})
}

fn tools() -> Value {
    json!([
        {
            "name": "whoami",
            "title": "Who am I",
            "description": "The email address of the Mogplex account this server was signed in with.",
            "inputSchema": no_arguments(),
        },
        {
            "name": "time",
            "title": "Server time",
            "description": "The server's current time (RFC 3339, UTC).",
            "inputSchema": no_arguments(),
        },
        {
            "name": "admin_stats",
            "title": "Sign-in statistics",
            "description": "How many live sign-ins the account holds to this server. Needs the scope mcp:admin.",
            "inputSchema": no_arguments(),
        },
    ])
}

fn text(t: impl Into<String>, is_error: bool) -> Value {
    json!({"content": [{"type": "text", "text": t.into()}], "isError": is_error})
}

fn negotiate(params: &Map<String, Value>) -> &'static str {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    OLDER_VERSIONS
        .iter()
        .copied()
        .find(|v| Some(*v) == asked)
        .unwrap_or(PROTOCOL_VERSION)
}

/// `POST /mcp/demo`: one JSON-RPC message.
pub async fn post(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    if !origin_allowed(&s, &headers) {
        return Ok(answer(
            StatusCode::FORBIDDEN,
            json!({"error": "forbidden", "error_description": "requests from other origins are refused"}),
        ));
    }
    let c = match caller(&s, &headers).await? {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    if let Some(v) = headers.get("mcp-protocol-version") {
        let known = v
            .to_str()
            .is_ok_and(|v| v == PROTOCOL_VERSION || OLDER_VERSIONS.contains(&v));
        if !known {
            return Ok(answer(
                StatusCode::BAD_REQUEST,
                rpc_error(
                    &Value::Null,
                    INVALID_REQUEST,
                    "unsupported MCP-Protocol-Version",
                ),
            ));
        }
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return Ok(answer(
            StatusCode::BAD_REQUEST,
            rpc_error(&Value::Null, PARSE_ERROR, "the body is not JSON"),
        ));
    };
    let Some(m) = message.as_object() else {
        return Ok(answer(
            StatusCode::BAD_REQUEST,
            rpc_error(
                &Value::Null,
                INVALID_REQUEST,
                "send one JSON-RPC message (batches are not supported)",
            ),
        ));
    };
    let id = m.get("id").cloned();
    let method = m.get("method").and_then(Value::as_str);
    let (Some(id), Some(method)) = (id, method) else {
        // A notification or a response from the client: accepted, nothing to answer.
        return Ok(StatusCode::ACCEPTED.into_response());
    };
    if m.get("jsonrpc").and_then(Value::as_str) != Some("2.0")
        || !(id.is_string() || id.is_i64() || id.is_u64())
    {
        return Ok(answer(
            StatusCode::BAD_REQUEST,
            rpc_error(&Value::Null, INVALID_REQUEST, "not a JSON-RPC 2.0 request"),
        ));
    }
    let empty = Map::new();
    let params = m.get("params").and_then(Value::as_object).unwrap_or(&empty);
    let reply = match method {
        "initialize" => result(
            &id,
            json!({
                "protocolVersion": negotiate(params),
                "capabilities": {"tools": {"listChanged": false}},
                "serverInfo": {
                    "name": "mogplex-demo",
                    "title": "Mogplex demo MCP server",
                    "version": env!("CARGO_PKG_VERSION"),
                },
                "instructions": "A demo server of mogplex-server: whoami names the signed-in account, time tells the server's time.",
            }),
        ),
        "ping" => result(&id, json!({})),
        "tools/list" => result(&id, json!({"tools": tools()})),
        "tools/call" => return call(&s, &c, &id, params).await,
        _ => rpc_error(&id, METHOD_NOT_FOUND, "method not found"),
    };
    Ok(answer(StatusCode::OK, reply))
}

async fn call(
    s: &AppState,
    c: &Caller,
    id: &Value,
    params: &Map<String, Value>,
) -> Result<Response, AppError> {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    let args = params.get("arguments");
    let ok_args = match args {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(_) => false,
    };
    let content = match name {
        "whoami" | "time" | "admin_stats" if !ok_args => {
            text(format!("{name} takes no arguments"), true)
        }
        "whoami" => match s.db.user(&c.user_id).await? {
            Some(u) => text(u.email, false),
            None => text("the account no longer exists", true),
        },
        "time" => {
            let t = time::OffsetDateTime::from_unix_timestamp(crypto::now())
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            text(t, false)
        }
        "admin_stats" if !c.has(ADMIN_SCOPE) => {
            return Ok(insufficient_scope(s, &format!("{SCOPE} {ADMIN_SCOPE}")));
        }
        "admin_stats" => {
            let n =
                s.db.live_sign_ins_for(&c.user_id, &resource::demo(&s.cfg.issuer))
                    .await?;
            text(format!("live sign-ins to this server: {n}"), false)
        }
        _ => {
            return Ok(answer(
                StatusCode::OK,
                rpc_error(id, INVALID_PARAMS, &format!("unknown tool: {name}")),
            ));
        }
    };
    Ok(answer(StatusCode::OK, result(id, content)))
}

/// `GET` (a server-to-client stream) and `DELETE` (ending a session): neither is offered. The
/// token is checked first, so the challenge is the same whatever the method.
pub async fn not_offered(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Err(r) = caller(&s, &headers).await? {
        return Ok(r);
    }
    let mut r = StatusCode::METHOD_NOT_ALLOWED.into_response();
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    Ok(r)
}

/// The demo MCP server's routes (merged when `Config::demo_mcp` is on).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            &routes::protected_resource_metadata(routes::MCP_DEMO),
            get(metadata),
        )
        .route(
            routes::MCP_DEMO,
            axum::routing::post(post)
                .get(not_offered)
                .delete(not_offered),
        )
}
