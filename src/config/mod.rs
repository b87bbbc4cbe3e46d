//! Settings from the environment (and `.env` when present), validated once at start-up.
//!
//! Every variable of API.md's configuration table is read in `env` and nowhere else. An invalid value
//! stops the start-up with one line naming the variable (see `cli`), exit status 2.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;

mod env;
mod validate;

#[cfg(test)]
mod tests;

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret(**redacted**)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    EdDsa,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so that instances of separate deployments (or tests) can share
    /// one Redis without seeing each other's state.
    pub redis_prefix: String,
    pub bind: SocketAddr,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub session_idle_ttl: Duration,
    pub session_ttl: Duration,
    pub refresh_reuse_grace: Duration,
    pub sudo_ttl: Duration,
    pub jwt_secret: Option<Secret>,
    /// Seals the TOTP secrets at rest (`MFA_ENCRYPTION_KEY`); unset: a key generated once and
    /// kept in the database's `secrets` table.
    pub mfa_encryption_key: Option<Secret>,
    pub jwt_algorithm: JwtAlgorithm,
    /// `JWT_ISSUER` when set; unset, the issuer is the public origin (`Settings::issuer`).
    pub jwt_issuer: Option<String>,
    pub jwt_audience: String,
    /// Clock skew tolerated on `exp` and `nbf`; at most 30 s.
    pub jwt_leeway: Duration,
    pub trusted_proxies: Vec<IpNet>,
    /// A MaxMind-format city or country database (`GEOIP_DB`): devices show an approximate place.
    pub geoip_db: Option<std::path::PathBuf>,
    /// `Secure` cookies: forced on or off by `COOKIE_SECURE`, else on unless bound to loopback.
    pub cookie_secure: bool,
    /// Log-in and sign-up attempts per minute and client address.
    pub login_rate_per_minute: u32,
    /// Failed client authentications on `/oauth/*` per minute and client address.
    pub client_auth_failures_per_minute: u32,
    /// Failed password log-ins one account may take within `account_lock_window` before new
    /// password log-ins to it are refused for the rest of that window.
    pub account_lock_after: u32,
    pub account_lock_window: Duration,
    /// How long a browser stays known to an account after logging in to it (`auth::known_browser`).
    pub known_browser_ttl: Duration,
    /// Live login sessions one user may hold; a log-in beyond it ends the least recently active.
    /// `None`: no limit.
    pub max_sessions_per_user: Option<u32>,
    /// How often expired denylist entries, tokens and sessions are purged.
    pub purge_interval: Duration,
    /// `REVOCATION_CACHE`: checks answer from the in-process cache (`on`) or look up the stores on
    /// every request (`off`, the approach the cache is measured against).
    pub revocation_cache: bool,
    /// `REVOCATION_PUSH`: send invalidations on commit (PostgreSQL NOTIFY, Redis PUBLISH). `off`
    /// leaves only the poll, to measure and test the worst case.
    pub revocation_push: bool,
    /// How often each instance polls the revocation log: the worst-case delay when pushes fail.
    pub revocation_poll_interval: Duration,
    /// `REVOCATION_MAX_STALENESS`: the lease within which memory may answer a check.
    pub revocation_max_staleness: Duration,
    /// `DATABASE_MAX_CONNECTIONS`: the request pool's size (unset: 8 on SQLite, 16 on PostgreSQL).
    pub database_max_connections: Option<u32>,
    /// Entries per in-process map (user versions, login sessions, cookie state, denylist).
    pub revocation_cache_capacity: u64,
    /// `VERIFIED_TOKEN_CACHE`: access tokens kept verified in memory (0: verify every time).
    pub verified_token_cache: usize,
    /// How long revocation log entries are kept for instances and feed readers to catch up.
    pub revocation_log_retention: Duration,
    /// Ed25519 signing keys supplied by the operator (`JWT_KEYS`, or the file `JWT_KEYS_FILE`)
    /// instead of the database: a JWK Set of private keys, the first one signing.
    pub jwt_keys: Option<KeysSource>,
    /// How long clients may cache the JWKS; a rotated-in key signs only after this long.
    pub jwks_max_age: Duration,
    /// How often the revocation feed proves it is alive when nothing is revoked.
    pub feed_heartbeat: Duration,
    /// `SMTP_URL`: `smtp://` (STARTTLS when offered) or `smtps://` (implicit TLS), credentials
    /// in the URL. Unset: messages are written as `.eml` files into `mail_outbox`.
    pub smtp_url: Option<Secret>,
    /// `MAIL_OUTBOX`: where messages go without `SMTP_URL`.
    pub mail_outbox: std::path::PathBuf,
    /// `MAIL_FROM`: the sender of every message, `Name <address>` or a bare address.
    pub mail_from: String,
    /// `PUBLIC_URL`: the origin links in messages point to, without a trailing slash. Unset: the
    /// address this instance is bound to (`startup` fills it in once bound).
    pub public_url: Option<String>,
    /// `MAIL_RETRY_AFTER`: the wait after a first failed delivery; it doubles with every attempt.
    pub mail_retry_after: Duration,
    /// `MAIL_POLL_INTERVAL`: how often the outbox is read besides a wake-up by a new message.
    pub mail_poll_interval: Duration,
    /// `SSF_PUSH_CA_FILE`: certificate authorities (PEM) trusted for push receivers' https
    /// endpoints besides the system's trust store, read once at start-up; for receivers whose
    /// certificate a private CA signed.
    pub ssf_push_ca: Vec<reqwest::Certificate>,
    /// `SSF_MIN_VERIFICATION_INTERVAL`: the least time between two verification requests of one
    /// stream (SSF 1.0 section 8.1.1's `min_verification_interval`); sooner is a 429. Whole
    /// seconds; zero: no limit.
    pub ssf_min_verification_interval: Duration,
    /// `COMPARE_AT_START`: measure `/compare`'s report once when the server starts (on its own
    /// throw-away instance); later measurements are asked for by a logged-in user.
    pub compare_at_start: bool,
}

/// Where operator-supplied signing keys are read from.
#[derive(Debug, Clone)]
pub enum KeysSource {
    File(std::path::PathBuf),
    Environment(Secret),
}

/// One invalid variable: `NAME must be …`.
#[derive(Debug, thiserror::Error)]
#[error("{variable} {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn invalid(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

impl Settings {
    /// Reads the process environment, after loading `.env` from the working directory if present.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is the normal case; a broken one is worth saying.
        if let Err(error) = dotenvy::dotenv()
            && !error.not_found()
        {
            return Err(invalid(".env", format!("could not be read: {error}")));
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// How often a busy session's `last_seen_at` may be written: once a minute, or more often
    /// when the idle limit is so short that a minute would matter.
    pub fn last_seen_interval(&self) -> Duration {
        (self.session_idle_ttl / 30).min(Duration::from_secs(60))
    }

    /// The origin this deployment is reached at: `PUBLIC_URL`, else `http://` + `BIND` (an
    /// unspecified address such as 0.0.0.0 reads as loopback).
    pub fn public_origin(&self) -> String {
        match &self.public_url {
            Some(url) => url.clone(),
            None if self.bind.ip().is_unspecified() => format!("http://127.0.0.1:{}", self.bind.port()),
            None => format!("http://{}", self.bind),
        }
    }

    /// The `iss` of every token issued and required (RFC 9068), and the RFC 8414 `issuer`:
    /// `JWT_ISSUER` when set, else the public origin.
    pub fn issuer(&self) -> String {
        self.jwt_issuer.clone().unwrap_or_else(|| self.public_origin())
    }
}
