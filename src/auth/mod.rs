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
    /// `COOKIE_SECURE`: cookies travel over HTTPS only, so only an `https://` page is this site.
    pub cookie_secure: bool,
    /// `PUBLIC_URL`'s scheme, host and port (no path), when set: a page there is this site.
    pub public_origin: Option<String>,
}

impl RequestSettings {
    pub fn of(settings: &Settings) -> Self {
        Self {
            session_idle_ttl: settings.session_idle_ttl,
            trusted_proxies: settings.trusted_proxies.clone(),
            cookie_secure: settings.cookie_secure,
            public_origin: settings.public_url.as_deref().map(|url| {
                let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
                format!("{scheme}://{}", rest.split('/').next().unwrap_or(""))
            }),
        }
    }
}
