//! The account server, tested over real HTTP on SQLite and PostgreSQL alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
mod chromium;
mod clients;
mod contract;
mod device;
mod gateway;
pub mod harness;
mod limits;
mod migrations;
mod oauth;
pub mod oidc;
mod runs;
mod signin;
mod sso;
mod third_party;
