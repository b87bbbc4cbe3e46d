//! revocable: server-side sessions and revocable JWTs, side by side.

pub mod account;
pub mod auth;
pub mod cli;
pub mod compare;
pub mod config;
pub mod domain;
pub mod error;
pub mod geoip;
pub mod oauth;
pub mod revocation;
pub mod routes;
pub mod scenario;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
