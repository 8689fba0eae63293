//! The mogplex credential system.
//!
//! Everything that decides which credential a session uses, and everything that touches where
//! credentials are kept, lives here so the CLI and the cockpit share one implementation:
//! the Mogplex home ([`home`]), stored credentials behind one seam ([`credentials`]: the
//! `auth.json` version 2 document, the file and keyring stores, every operation on them; the
//! file's guarantees in [`store`]), resolution with provenance ([`resolve`]), the [`Secret`]
//! type and redaction ([`redact`]).

pub mod child_env;
pub mod credentials;
pub mod env;
pub mod helper;
pub mod home;
pub mod hosted;
pub mod html;
pub mod mcp_signin;
pub mod oauth;
pub mod private_file;
pub mod provider;
pub mod random;
pub mod redact;
pub mod resolve;
pub mod secret;
pub mod session;
pub mod signin;
pub mod state;
pub mod store;

pub use credentials::document::{Account, AccountEntry, MogplexCredentialKind};
pub use env::{Env, MapEnv, ProcessEnv};
pub use home::{HomeError, MogplexHome};
pub use provider::Provider;
pub use redact::Redactor;
pub use resolve::{Credential, CredentialKind, Override, Resolution, Source};
pub use secret::Secret;
pub use store::StoreError;
