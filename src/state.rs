//! What every request handler can reach: settings, database, stores, keys, the revocation layer,
//! the account rules' `Accounts`. The layers below take the narrow pieces they use, never this;
//! the extractors find `JwtKeys`, `Revocation`, `Accounts` and `auth::RequestSettings` registered
//! as app data of their own.

use std::sync::Arc;

use crate::account::Accounts;
use crate::auth::jwt::JwtKeys;
use crate::auth::login::{Issuer, Lifetimes};
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
    /// Log-in, sign-up and password attempts per client address (in Redis when configured).
    pub login_limit: crate::auth::rate_limit::RateLimit,
    /// Failed client authentications on `/oauth/*` per client address (in Redis when configured).
    pub client_auth_limit: crate::auth::rate_limit::RateLimit,
    /// Signs the CSRF tokens of the forms shown before log-in.
    pub anonymous_csrf: crate::auth::csrf::AnonymousCsrf,
    /// Approximate places of addresses, when `GEOIP_DB` is set.
    pub geoip: Option<crate::geoip::Geoip>,
    /// Turns `true` when the server starts to stop: long-lived responses (the revocation feed)
    /// end, so the graceful shutdown need not wait for them.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// The outbox's delivery side: `mail::enqueue` then `mailer.wake()`, or `mailer.send`.
    pub mailer: crate::mail::Mailer,
    /// The Shared Signals transmitter: streams, their events and their delivery.
    pub ssf: crate::ssf::Ssf,
    /// What the account rules and recovery use (`account::*` and `recovery::*` take only this);
    /// registered as app data of its own too, for the handlers that need nothing else.
    pub accounts: Arc<Accounts>,
}

impl AppState {
    /// What `auth::login` needs to open login sessions and issue tokens.
    pub fn issuer(&self) -> Issuer<'_> {
        Issuer {
            db: &self.db,
            keys: &self.keys,
            revocation: &self.revocation,
            lifetimes: Lifetimes::of(&self.settings),
            max_sessions_per_user: self.settings.max_sessions_per_user,
            sign_in_mail: crate::auth::sign_in_mail::SignInMail {
                mailer: &self.mailer,
                geoip: self.geoip.as_ref(),
                clock: self.revocation.clock(),
            },
        }
    }

    /// A receiver of `stopping`, for a long-lived response to end by.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }
}
