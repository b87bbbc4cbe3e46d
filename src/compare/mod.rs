//! `/compare`'s measuring harness, a room of its own beside the product: it observes the
//! revocation matrix and times each strategy's check on a throw-away instance of this build
//! (its own SQLite file and in-process stores), never on the served database, Redis or limits.
//!
//! Its parts, each importing only those listed after it:
//!
//! ```text
//! cache      the last report; a measurement at start-up or when a logged-in user asks
//! instance   the throw-away instance: its settings, its directory, removed however it ends
//! report     one measurement: the matrix over HTTP, then the costs in-process
//! costs      the strategies' check functions timed directly, with and without the cache
//! sizes      bytes of state each strategy keeps, read from the instance's stores
//! probe      the account the checks are timed with
//! scenario   the events, acted out over HTTP (also `revocable demo`)
//! client     the scenario's HTTP client, its errors, forms and the server's policy
//! matrix     events, cells, the documented matrix and what an observation differs in
//! benchmark  `docs/benchmarks.md`, compiled in, read into notes and tables
//! ```

pub mod benchmark;
pub mod cache;
pub mod client;
pub mod costs;
pub mod instance;
pub mod matrix;
pub mod probe;
pub mod report;
pub mod scenario;
pub mod sizes;
