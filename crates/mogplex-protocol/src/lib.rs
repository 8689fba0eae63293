//! Wire types both sides of the Mogplex protocol share.
//!
//! This crate exists so that the `mogplex` CLI and `mogplex-server` agree on the exact JSON they
//! exchange (SPEC section 4) without either importing the other. It holds plain data and nothing
//! else: no I/O, no secrets handling, no dependencies on the other workspace crates.

pub mod chat;
pub mod error;
pub mod hosted;
pub mod models;
pub mod sse;

pub use chat::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage, ChunkChoice,
    ChunkDelta, CompletionChoice, Role, StreamOptions, Usage,
};
pub use error::{ApiError, ApiErrorBody, V1Error, V1ErrorBody};
pub use hosted::{AccountUser, McpServer, McpServers, RunEvent, RunInfo, UserResponse, V1Ok};
pub use models::{CliModel, ModelCaps, Pricing};
pub use sse::{SseEvent, SseParser};

/// The path of the OpenAI-shaped chat completions endpoint of the Mogplex gateway.
pub const INFERENCE_PATH: &str = "/api/cli/inference/chat/completions";
/// Alias of [`INFERENCE_PATH`] that the hosted service also answers.
pub const INFERENCE_ALIAS_PATH: &str = "/api/cli/openai/chat/completions";
/// The model catalog for the CLI (`?format=cli`).
pub const MODELS_PATH: &str = "/api/models";
/// The hosted service's base URL when `MOGPLEX_URL` is not set.
pub const DEFAULT_BASE_URL: &str = "https://www.mogplex.com";
/// The error code a gateway uses for "signed in, but no access to that model".
pub const NO_MODEL_ACCESS_CODE: &str = "no_model_access";
