//! Who is calling: passwords, tokens, cookie sessions, CSRF, and the five checking strategies.
//!
//! Nothing here reads `AppState`: the extractors find what they use (`Revocation`, `JwtKeys`,
//! `RequestSettings`) as app data of its own, and the functions take it as arguments.

pub mod client;
pub mod csrf;
pub mod jwt;
pub mod keys;
pub mod known_browser;
pub mod login;
pub mod password;
pub mod rate_limit;
pub mod sign_in_mail;
pub mod strategy;
pub mod throttle;
pub mod totp;

use std::time::Duration;

use crate::config::Settings;

/// The settings the extractors and the CSRF checks read on a request, registered by `startup` as
/// app data of their own.
pub struct RequestSettings {
    /// `SESSION_IDLE_TTL`: how long a cookie session may go unused.
    pub session_idle_ttl: Duration,
    /// `TRUSTED_PROXIES`: whose forwarded host and address are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl RequestSettings {
    pub fn of(settings: &Settings) -> Self {
        Self {
            session_idle_ttl: settings.session_idle_ttl,
            trusted_proxies: settings.trusted_proxies.clone(),
        }
    }
}
