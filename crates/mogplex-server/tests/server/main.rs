//! The account server, tested over real HTTP on SQLite and PostgreSQL alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
mod chromium;
mod contract;
mod device;
mod gateway;
pub mod harness;
mod limits;
mod migrations;
mod oauth;
mod outage;
mod refresh;
mod runs;
mod signin;
mod storage;
mod third_party;
mod throttles;
