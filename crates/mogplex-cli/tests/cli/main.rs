//! Integration tests of the real `mogplex` binary: one test binary, a module per concern.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;
mod accounts;
mod choice;
mod cockpit;
mod escapes;
mod helpers;
mod hosted;
mod issuers;
mod leak;
mod mcp;
mod mcp_leak;
mod mcp_oauth;
mod messages;
mod misconfigured;
mod oidc;
mod precedence;
mod screens;
mod shell;
mod signin;
mod skill;
mod status;
mod store;
mod stores;
