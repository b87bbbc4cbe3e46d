//! What the app is built from: settings, database, stores, keys, the revocation layer, the
//! account rules' `Accounts`, the log-ins' `Issuer`, the client endpoints' `ClientEndpoints`.
//! Only `startup` (which builds the server from it), the `/compare` harness (which measures an
//! instance of it) and the tests hold it. The layers below take the narrow pieces they use, and
//! so does every handler and extractor: `startup` registers `JwtKeys`, `Revocation`, `Accounts`,
//! `Issuer`, `Places`, `Ssf`, `AnonymousCsrf`, `oauth::ClientEndpoints`, `LoginLimit`,
//! `auth::RequestSettings` and `compare::cache::CompareCache` as app data of their own, and not
//! `AppState` itself.

use std::sync::Arc;

use crate::account::Accounts;
use crate::auth::jwt::JwtKeys;
use crate::auth::login::Issuer;
use crate::config::Settings;
use crate::revocation::Revocation;
use crate::store::{Backend, Db};
use crate::web_session::CookieStateStore;

pub struct AppState {
    pub settings: Settings,
    pub db: Db,
    pub backend: Backend,
    pub redis: Option<deadpool_redis::Pool>,
    /// Shared with the `web::Data<JwtKeys>` the extractors read, so a key reload reaches both.
    pub keys: Arc<JwtKeys>,
    pub revocation: Revocation,
    pub web_sessions: CookieStateStore,
    /// Log-in, sign-up and password attempts per client address (in Redis when configured);
    /// registered as app data of its own, for the middleware that counts them.
    pub login_limit: Arc<crate::auth::rate_limit::LoginLimit>,
    /// What the endpoints other services call use (`/oauth/*`, the Shared Signals bearer check);
    /// registered as app data of its own.
    pub client_endpoints: Arc<crate::oauth::ClientEndpoints>,
    /// Signs the CSRF tokens of the forms shown before log-in.
    pub anonymous_csrf: crate::auth::csrf::AnonymousCsrf,
    /// Approximate places of addresses, when `GEOIP_DB` is set; registered as app data of its
    /// own for the dashboard.
    pub places: crate::geoip::Places,
    /// Turns `true` when the server starts to stop: long-lived responses (the revocation feed,
    /// a long poll) and background deliveries end, so the graceful shutdown need not wait for
    /// them. `client_endpoints` holds the same sender.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// The outbox's delivery side: `mail::enqueue` then `mailer.wake()`, or `mailer.send`.
    pub mailer: crate::mail::Mailer,
    /// The Shared Signals transmitter: streams, their events and their delivery.
    pub ssf: crate::ssf::Ssf,
    /// What the account rules and recovery use (`account::*` and `recovery::*` take only this);
    /// registered as app data of its own too, for the handlers that need nothing else.
    pub accounts: Arc<Accounts>,
    /// What opens login sessions and issues tokens (`auth::login`); registered as app data of
    /// its own, for the handlers that log in or hand out tokens.
    pub issuer: Arc<Issuer>,
}

impl AppState {
    /// A receiver of `stopping`, for a long-lived response to end by.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }
}
