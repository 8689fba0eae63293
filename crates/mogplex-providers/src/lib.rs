//! Model adapters for mogplex.
//!
//! Three API shapes cover every provider mogplex speaks to: the Mogplex gateway (OpenAI-shaped,
//! bearer token from the Mogplex credential), OpenAI-compatible chat completions (most providers)
//! and Anthropic Messages; each provider's row of the table in [`mogplex_auth::provider`] says which
//! it speaks. All stream. [`select`] decides which provider and model a session uses; [`client`]
//! talks to them.

pub mod account;
pub mod catalog;
pub mod client;
pub mod error;
pub mod select;

pub use catalog::{Api, BaseUrlError, ProviderSpec, known_models, spec};
pub use client::{ChatRequest, Finish, ModelClient, StreamEvent};
pub use error::{ErrorKind, ProviderError};
pub use reqwest::Url;
pub use select::{ModelSource, SelectError, Selection, select};
