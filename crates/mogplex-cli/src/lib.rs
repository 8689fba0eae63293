//! The `mogplex` command line as a library: arguments, `exec`, sign-in and sign-out, session logs
//! and the cockpit's runtime. `main.rs` only turns a parsed command line into one of these.
//!
//! A library so that the cockpit's controllers (see [`cockpit`]) are tested on their own, with a
//! channel in place of the terminal, as well as through the real binary in a pseudo-terminal.

pub mod account;
pub mod args;
pub mod cockpit;
pub mod ctx;
pub mod error;
pub mod exec;
pub mod exit;
pub mod log;
pub mod login;
pub mod mcp;
pub mod signin;
pub mod status;
pub mod suggest;
pub mod tools;
