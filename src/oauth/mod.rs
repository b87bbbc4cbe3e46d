//! What other services use to trust revocable's tokens and still honour their revocation: client
//! credentials and a client's own token, RFC 8414 metadata, RFC 7662 introspection, RFC 7009
//! revocation, and the revocation feed.
//!
//! Nothing here knows about HTTP; `routes::oauth` turns requests into these calls.

pub mod clients;
pub mod feed;
pub mod introspection;
pub mod metadata;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::auth::jwt::JwtKeys;
use crate::auth::rate_limit::RateLimit;
use crate::revocation::Revocation;
use crate::store::Db;

/// What the endpoints other services call use (`routes::oauth`, and the bearer check of the
/// Shared Signals endpoints), built once at start-up and registered as app data of its own.
pub struct ClientEndpoints {
    pub db: Db,
    /// Shared with the app's own `JwtKeys`, so a key reload reaches these endpoints too.
    pub keys: Arc<JwtKeys>,
    pub revocation: Revocation,
    /// Failed client authentications per client id and address (`client::address`; in Redis
    /// when configured).
    pub client_auth_failures: RateLimit,
    /// The lifetime of a client's own access token (`ACCESS_TTL`).
    pub access_ttl: Duration,
    /// How far back a resumed revocation feed replays: an access token's lifetime and the leeway.
    pub feed_window: Duration,
    pub feed_heartbeat: Duration,
    /// Turns `true` when the server starts to stop, ending the long-lived answers (the feed, a
    /// long poll) so the graceful shutdown need not wait for them.
    pub stopping: watch::Sender<bool>,
}

impl ClientEndpoints {
    /// A receiver of `stopping`, for a long-lived response to end by.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }
}
