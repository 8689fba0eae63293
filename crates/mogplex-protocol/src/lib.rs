//! Wire types both sides of the Mogplex protocol share.
//!
//! This crate exists so that the `mogplex` CLI and `mogplex-server` agree on the exact JSON they
//! exchange (SPEC section 4) without either importing the other. It holds plain data and nothing
//! else: no I/O, no secrets handling, no dependencies on the other workspace crates.
//!
//! - [`oauth`]: the client id, scopes, grants, loopback redirect, RFC 8414 metadata, token,
//!   device authorization and error bodies;
//! - [`routes`]: every path the server serves and the CLI calls;
//! - [`hosted`]: the user endpoint, `/api/v1` envelopes, MCP definitions, runs;
//! - [`models`], [`chat`], [`sse`], [`error`]: the gateway's catalog, chat completions, event
//!   streams and error bodies.

pub mod chat;
pub mod error;
pub mod hosted;
pub mod models;
pub mod oauth;
pub mod routes;
pub mod sse;

pub use chat::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage, ChunkChoice,
    ChunkDelta, CompletionChoice, FunctionCall, FunctionCallDelta, FunctionDef, Role,
    StreamOptions, Tool, ToolCall, ToolCallDelta, Usage, tool_wire_name,
};
pub use error::{ApiError, ApiErrorBody, V1Error, V1ErrorBody};
pub use hosted::{
    AccountUser, AppendedRunEvent, McpServer, McpServers, RunEvent, RunInfo, UserResponse, V1Ok,
};
pub use models::{CliModel, ModelCaps, Pricing};
pub use oauth::{
    AuthorizationServerMetadata, CALLBACK_PATH, CLIENT_ID, DEFAULT_SCOPE,
    DeviceAuthorizationResponse, IdTokenClaims, IntrospectionResponse, Jwk, JwkSet, LOOPBACK_PORTS,
    OAuthErrorBody, OpenIdProviderMetadata, TokenResponse, UserInfo,
};
pub use sse::{SseEvent, SseParser};

/// The path of the OpenAI-shaped chat completions endpoint of the Mogplex gateway.
pub use routes::INFERENCE as INFERENCE_PATH;
/// Alias of [`INFERENCE_PATH`] that the hosted service also answers.
pub use routes::INFERENCE_ALIAS as INFERENCE_ALIAS_PATH;
/// The model catalog for the CLI (`?format=cli`).
pub use routes::MODELS as MODELS_PATH;
/// The hosted service's base URL when `MOGPLEX_URL` is not set.
pub const DEFAULT_BASE_URL: &str = "https://www.mogplex.com";
/// The error code a gateway uses for "signed in, but no access to that model".
pub const NO_MODEL_ACCESS_CODE: &str = "no_model_access";
