//! The account server, tested over real HTTP on SQLite and PostgreSQL alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod binary;
mod chromium;
mod clients;
mod contract;
mod device;
mod edge;
mod gateway;
pub mod harness;
mod limits;
mod mcp_demo;
mod migrations;
mod oauth;
mod observe;
pub mod oidc;
mod ops;
mod outage;
mod refresh;
mod register;
pub mod resource;
mod runs;
mod signin;
mod soak;
mod sso;
mod storage;
mod third_party;
mod throttles;
