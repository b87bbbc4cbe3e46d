//! What every request handler can reach: settings, database, stores, keys, the revocation layer.
//! The layers below take the narrow pieces they use, never this; the extractors find `JwtKeys`,
//! `Revocation` and `auth::RequestSettings` registered as app data of their own.

use std::sync::Arc;

use crate::auth::jwt::JwtKeys;
use crate::auth::login::{Issuer, Lifetimes};
use crate::auth::throttle::AccountLock;
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
    /// Recognises browsers that have logged in to an account before (device cookies).
    pub known_browsers: crate::auth::known_browser::KnownBrowsers,
    /// Approximate places of addresses, when `GEOIP_DB` is set.
    pub geoip: Option<crate::geoip::Geoip>,
    /// Turns `true` when the server starts to stop: long-lived responses (the revocation feed)
    /// end, so the graceful shutdown need not wait for them.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// Seals and opens the stored TOTP secrets.
    pub totp_sealing: crate::auth::totp::SealingKey,
    /// The outbox's delivery side: `mail::enqueue` then `mailer.wake()`, or `mailer.send`.
    pub mailer: crate::mail::Mailer,
    /// Messages asked for per recipient (reset links, verification links), so that nobody can
    /// flood one inbox; counted the same way whether or not the address has an account.
    pub mail_limit: crate::auth::rate_limit::RateLimit,
    /// The Shared Signals transmitter: streams, their events and their delivery.
    pub ssf: crate::ssf::Ssf,
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

    /// The per-account limit on failed password log-ins.
    pub fn account_lock(&self) -> AccountLock {
        AccountLock::of(&self.settings, self.revocation.clock().clone())
    }
}
