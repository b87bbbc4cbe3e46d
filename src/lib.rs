//! revocable: server-side sessions and revocable JWTs, side by side.
//!
//! The modules stand in layers, and each imports only from the layers below its own:
//!
//! ```text
//! startup, cli              the pools, the app data and the route table; the command line
//! routes                    the HTTP handlers, JSON and HTML; a page error becomes a page here
//! compare                   `/compare`'s measuring harness, on instances of the app of its own
//! state                     AppState: what the app is built from; startup registers its pieces
//! recovery                  account recovery by email: verify the address, reset, "this wasn't me"
//! account, oauth            what a person and a client service do; `account::Accounts` is all
//!                           that the account rules and recovery are given
//! ssf                       the Shared Signals transmitter: streams, events, delivery
//! auth                      who is calling; takes &Revocation, &JwtKeys, &Db and pieces of settings
//! web_session               actix-session's store: an adapter over the revocation layer's cookie state
//! error                     ApiError, the one error policy; converts `revocation::Error` and sqlx errors
//! revocation, mail          "is this still valid?" and the one writer of validity (cookie state
//!                           included), with its own `revocation::Error`; the outbox of messages
//! store                     SQL, a file per table; tells an outage or a lock conflict from a bug
//! domain, config, geoip, telemetry
//! ```
//!
//! Neither `revocation` nor `store` knows the web framework: no actix type and no `ApiError`
//! below `error`. The `crate::` imports as they stand (a module not named on the left imports
//! none):
//!
//! ```text
//! cli         -> startup, account, compare, oauth, auth, store, config, domain, telemetry
//! startup     -> routes, compare, state, oauth, web_session, auth, revocation, mail, store, geoip, config, error, domain, telemetry
//! routes      -> recovery, account, compare, oauth, ssf, auth, revocation, store, geoip, config, error, domain
//! compare     -> state, web_session, auth, revocation, store, config, error, domain
//! state       -> account, oauth, ssf, web_session, auth, revocation, mail, store, geoip, config
//! recovery    -> account, auth, mail, store, error, domain
//! account     -> auth, revocation, mail, store, error, domain
//! oauth       -> auth, revocation, store, error, domain
//! ssf         -> revocation, store, error, domain
//! auth        -> revocation, mail, store, geoip, config, error, domain
//! web_session -> revocation
//! error       -> revocation, store
//! revocation  -> store, domain
//! mail        -> store, config, domain
//! store       -> domain
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
pub mod web_session;
