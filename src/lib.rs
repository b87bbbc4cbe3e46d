//! revocable: server-side sessions and revocable JWTs, side by side.
//!
//! The modules stand in layers, and each imports only from the layers below its own:
//!
//! ```text
//! startup, cli              the pools, the app data and the route table; the command line
//! routes                    the HTTP handlers, JSON and HTML; a page error becomes a page here
//! recovery                  account recovery by email: verify the address, reset, "this wasn't me"
//! account, compare, oauth   what a person, `/compare`'s measuring harness and a client service do
//! state                     AppState: what a handler can reach
//! auth                      who is calling; takes &Revocation, &JwtKeys, &Db and pieces of settings
//! revocation, mail          "is this still valid?", and the cookie-state store behind it; the
//!                           outbox of messages and its delivery
//! store                     SQL, a file per table
//! domain, config, error, geoip, telemetry
//! ```
//!
//! The `crate::` imports as they stand (a module not named on the left imports none):
//!
//! ```text
//! cli        -> startup, account, compare, oauth, auth, store, config, domain, telemetry
//! startup    -> routes, compare, state, auth, revocation, mail, store, geoip, config, error, domain, telemetry
//! routes     -> recovery, account, compare, oauth, state, auth, revocation, store, config, error, domain
//! recovery   -> account, state, auth, mail, store, error, domain
//! account    -> state, auth, mail, store, error, domain
//! compare    -> state, auth, revocation, store, config, error, domain
//! oauth      -> auth, revocation, store, error, domain
//! state      -> auth, revocation, mail, store, geoip, config
//! auth       -> revocation, mail, store, geoip, config, error, domain
//! revocation -> store, error, domain
//! mail       -> store, config, domain
//! store      -> domain
//! ```

pub mod account;
pub mod auth;
pub mod cli;
pub mod compare;
pub mod config;
pub mod domain;
pub mod error;
pub mod geoip;
pub mod mail;
pub mod oauth;
pub mod recovery;
pub mod revocation;
pub mod routes;
pub mod ssf;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
