//! Settings from the environment (and `.env` when present), validated once at start-up.
//!
//! Every variable of API.md's configuration table is read here and nowhere else. An invalid value
//! stops the start-up with one line naming the variable (see `cli`), exit status 2.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

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

    /// Builds settings from any source of variables; tests pass a map.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };

        let database_url = get("DATABASE_URL").unwrap_or_else(|| "sqlite://revocable.db?mode=rwc".to_owned());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(invalid("DATABASE_URL", "must start with sqlite: or postgres://"));
        }
        let redis_url = get("REDIS_URL");
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(invalid("REDIS_URL", "must start with redis:// or rediss://"));
        }
        let bind: SocketAddr = match get("BIND") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(value) => value.parse().map_err(|_| {
                invalid(
                    "BIND",
                    format!("must be an address and port such as 127.0.0.1:8080, not {value:?}"),
                )
            })?,
        };
        let duration = |name: &'static str, default: &str, allow_zero: bool| -> Result<Duration, ConfigError> {
            let raw = get(name).unwrap_or_else(|| default.to_owned());
            let parsed = if raw == "0" {
                Duration::ZERO
            } else {
                humantime::parse_duration(&raw)
                    .map_err(|_| invalid(name, format!("must be a duration such as 15m, 14d or 30s, not {raw:?}")))?
            };
            if parsed.is_zero() && !allow_zero {
                return Err(invalid(name, "must be longer than zero"));
            }
            Ok(parsed)
        };
        let access_ttl = duration("ACCESS_TTL", "15m", false)?;
        let refresh_ttl = duration("REFRESH_TTL", "14d", false)?;
        let session_idle_ttl = duration("SESSION_IDLE_TTL", "30m", false)?;
        let session_ttl = duration("SESSION_TTL", "30d", false)?;
        let refresh_reuse_grace = duration("REFRESH_REUSE_GRACE", "10s", true)?;
        let sudo_ttl = duration("SUDO_TTL", "10m", true)?;
        let purge_interval = duration("PURGE_INTERVAL", "60s", false)?;
        let jwt_leeway = duration("JWT_LEEWAY", "5s", true)?;
        let jwks_max_age = duration("JWKS_MAX_AGE", "5m", true)?;
        let feed_heartbeat = duration("FEED_HEARTBEAT", "15s", false)?;
        let ssf_min_verification_interval = duration("SSF_MIN_VERIFICATION_INTERVAL", "30s", true)?;
        if ssf_min_verification_interval.subsec_nanos() != 0 {
            return Err(invalid(
                "SSF_MIN_VERIFICATION_INTERVAL",
                "must be whole seconds (SSF publishes it as an integer number of seconds)",
            ));
        }
        if jwt_leeway > Duration::from_secs(30) {
            return Err(invalid("JWT_LEEWAY", "must be at most 30s"));
        }
        if access_ttl >= session_ttl {
            return Err(invalid("ACCESS_TTL", "must be shorter than SESSION_TTL"));
        }

        let jwt_secret = match get("JWT_SECRET") {
            None => None,
            Some(secret) if secret.len() < 32 => return Err(invalid("JWT_SECRET", "must be at least 32 bytes")),
            Some(secret) => Some(Secret::new(secret)),
        };
        let mfa_encryption_key = match get("MFA_ENCRYPTION_KEY") {
            None => None,
            Some(key) if key.len() < 32 => return Err(invalid("MFA_ENCRYPTION_KEY", "must be at least 32 bytes")),
            Some(key) => Some(Secret::new(key)),
        };
        let jwt_algorithm = match get("JWT_ALG").as_deref() {
            None | Some("HS256") => JwtAlgorithm::Hs256,
            Some("EdDSA") => JwtAlgorithm::EdDsa,
            Some(other) => return Err(invalid("JWT_ALG", format!("must be HS256 or EdDSA, not {other:?}"))),
        };
        let jwt_keys = match (get("JWT_KEYS"), get("JWT_KEYS_FILE")) {
            (Some(_), Some(_)) => return Err(invalid("JWT_KEYS", "and JWT_KEYS_FILE cannot both be set")),
            (Some(keys), None) => Some(KeysSource::Environment(Secret::new(keys))),
            (None, Some(path)) => Some(KeysSource::File(path.into())),
            (None, None) => None,
        };
        if jwt_keys.is_some() && jwt_algorithm != JwtAlgorithm::EdDsa {
            return Err(invalid(
                "JWT_KEYS",
                "and JWT_KEYS_FILE hold Ed25519 keys: set JWT_ALG=EdDSA",
            ));
        }
        let trusted_proxies = match get("TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(|entry| {
                    entry
                        .parse::<IpNet>()
                        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| {
                            invalid(
                                "TRUSTED_PROXIES",
                                format!(
                                    "must be a comma-separated list of addresses or CIDR ranges; {entry:?} is neither"
                                ),
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let geoip_db = match get("GEOIP_DB").filter(|path| !path.is_empty()) {
            None => None,
            Some(path) if std::path::Path::new(&path).is_file() => Some(std::path::PathBuf::from(path)),
            Some(path) => {
                return Err(invalid(
                    "GEOIP_DB",
                    format!("must name a MaxMind-format .mmdb file; {path:?} is not a file"),
                ));
            }
        };
        let cookie_secure = match get("COOKIE_SECURE").as_deref() {
            None => !bind.ip().is_loopback(),
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(other) => {
                return Err(invalid(
                    "COOKIE_SECURE",
                    format!("must be true or false, not {other:?}"),
                ));
            }
        };
        let login_rate_per_minute = match get("LOGIN_RATE_PER_MINUTE") {
            None => 30,
            Some(value) => value.parse::<u32>().ok().filter(|rate| *rate > 0).ok_or_else(|| {
                invalid(
                    "LOGIN_RATE_PER_MINUTE",
                    format!("must be a positive whole number, not {value:?}"),
                )
            })?,
        };
        let client_auth_failures_per_minute = match get("CLIENT_AUTH_FAILURES_PER_MINUTE") {
            None => 10,
            Some(value) => value.parse::<u32>().ok().filter(|rate| *rate > 0).ok_or_else(|| {
                invalid(
                    "CLIENT_AUTH_FAILURES_PER_MINUTE",
                    format!("must be a positive whole number, not {value:?}"),
                )
            })?,
        };

        let switch = |name: &'static str, default: bool| -> Result<bool, ConfigError> {
            match get(name).as_deref() {
                None => Ok(default),
                Some("on" | "true" | "1") => Ok(true),
                Some("off" | "false" | "0") => Ok(false),
                Some(other) => Err(invalid(name, format!("must be on or off, not {other:?}"))),
            }
        };
        let revocation_cache = switch("REVOCATION_CACHE", true)?;
        let revocation_push = switch("REVOCATION_PUSH", true)?;
        let compare_at_start = switch("COMPARE_AT_START", true)?;
        let revocation_poll_interval = duration("REVOCATION_POLL_INTERVAL", "250ms", false)?;
        if revocation_poll_interval > Duration::from_secs(10) {
            return Err(invalid("REVOCATION_POLL_INTERVAL", "must be at most 10s"));
        }
        let database_max_connections = match get("DATABASE_MAX_CONNECTIONS") {
            None => None,
            Some(value) => Some(
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|max| (1..=1000).contains(max))
                    .ok_or_else(|| {
                        invalid(
                            "DATABASE_MAX_CONNECTIONS",
                            format!("must be a whole number from 1 to 1000, not {value:?}"),
                        )
                    })?,
            ),
        };
        let revocation_max_staleness = duration("REVOCATION_MAX_STALENESS", "1s", false)?;
        if revocation_max_staleness < revocation_poll_interval * 2 {
            return Err(invalid(
                "REVOCATION_MAX_STALENESS",
                "must be at least twice REVOCATION_POLL_INTERVAL",
            ));
        }
        let revocation_cache_capacity = match get("REVOCATION_CACHE_CAPACITY") {
            None => 1_000_000,
            Some(value) => value
                .parse::<u64>()
                .ok()
                .filter(|capacity| *capacity > 0)
                .ok_or_else(|| {
                    invalid(
                        "REVOCATION_CACHE_CAPACITY",
                        format!("must be a positive whole number, not {value:?}"),
                    )
                })?,
        };
        let verified_token_cache = match get("VERIFIED_TOKEN_CACHE") {
            None => 10_000,
            Some(value) => value.parse::<usize>().map_err(|_| {
                invalid(
                    "VERIFIED_TOKEN_CACHE",
                    format!("must be a whole number of tokens (0 turns the cache off), not {value:?}"),
                )
            })?,
        };
        let revocation_log_retention = duration("REVOCATION_LOG_RETENTION", "24h", false)?;
        if revocation_log_retention <= access_ttl {
            return Err(invalid("REVOCATION_LOG_RETENTION", "must be longer than ACCESS_TTL"));
        }
        let account_lock_window = duration("ACCOUNT_LOCK_WINDOW", "15m", false)?;
        let known_browser_ttl = duration("KNOWN_BROWSER_TTL", "90d", false)?;
        let max_sessions_per_user = match get("MAX_SESSIONS_PER_USER") {
            None => None,
            Some(value) => match value.parse::<u32>() {
                Ok(0) => None,
                Ok(count) => Some(count),
                Err(_) => {
                    return Err(invalid(
                        "MAX_SESSIONS_PER_USER",
                        format!("must be a whole number (0: no limit), not {value:?}"),
                    ));
                }
            },
        };
        let account_lock_after = match get("ACCOUNT_LOCK_AFTER") {
            None => 10,
            Some(value) => value.parse::<u32>().ok().filter(|count| *count > 0).ok_or_else(|| {
                invalid(
                    "ACCOUNT_LOCK_AFTER",
                    format!("must be a positive whole number, not {value:?}"),
                )
            })?,
        };

        let smtp_url = match get("SMTP_URL") {
            None => None,
            Some(url) => Some(validate_smtp_url(&url)?),
        };
        let mail_from = get("MAIL_FROM").unwrap_or_else(|| "revocable <no-reply@localhost>".to_owned());
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "MAIL_FROM",
                format!("must be an address such as \"revocable <no-reply@example.com>\", not {mail_from:?}"),
            ));
        }
        let public_url = match get("PUBLIC_URL") {
            None => None,
            Some(url) => Some(validate_public_url(&url)?),
        };
        let ssf_push_ca = match get("SSF_PUSH_CA_FILE").filter(|path| !path.is_empty()) {
            None => Vec::new(),
            Some(path) => read_ca_file(&path)?,
        };
        let mail_retry_after = duration("MAIL_RETRY_AFTER", "30s", false)?;
        let mail_poll_interval = duration("MAIL_POLL_INTERVAL", "5s", false)?;

        Ok(Self {
            smtp_url,
            mail_outbox: get("MAIL_OUTBOX").unwrap_or_else(|| "outbox".to_owned()).into(),
            mail_from,
            public_url,
            mail_retry_after,
            mail_poll_interval,
            database_url,
            redis_url,
            redis_prefix: get("REDIS_PREFIX").unwrap_or_else(|| "revocable:".to_owned()),
            bind,
            access_ttl,
            refresh_ttl,
            session_idle_ttl,
            session_ttl,
            refresh_reuse_grace,
            sudo_ttl,
            jwt_secret,
            mfa_encryption_key,
            jwt_algorithm,
            jwt_issuer: get("JWT_ISSUER"),
            jwt_audience: get("JWT_AUDIENCE").unwrap_or_else(|| "revocable".to_owned()),
            jwt_leeway,
            trusted_proxies,
            geoip_db,
            cookie_secure,
            login_rate_per_minute,
            client_auth_failures_per_minute,
            account_lock_after,
            account_lock_window,
            known_browser_ttl,
            max_sessions_per_user,
            purge_interval,
            revocation_cache,
            revocation_push,
            revocation_poll_interval,
            revocation_max_staleness,
            database_max_connections,
            revocation_cache_capacity,
            verified_token_cache,
            revocation_log_retention,
            jwt_keys,
            jwks_max_age,
            feed_heartbeat,
            compare_at_start,
            ssf_push_ca,
            ssf_min_verification_interval,
        })
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

/// `smtp://[user:pass@]host:port` or `smtps://…`, checked by the mail transport's own parser.
/// The certificates of a PEM file of certificate authorities, at least one.
fn read_ca_file(path: &str) -> Result<Vec<reqwest::Certificate>, ConfigError> {
    let pem = std::fs::read(path).map_err(|error| {
        invalid(
            "SSF_PUSH_CA_FILE",
            format!("must name a readable PEM file; {path:?}: {error}"),
        )
    })?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certificates) if !certificates.is_empty() => Ok(certificates),
        Ok(_) => Err(invalid(
            "SSF_PUSH_CA_FILE",
            format!("must hold at least one PEM certificate (-----BEGIN CERTIFICATE-----); {path:?} holds none"),
        )),
        Err(error) => Err(invalid(
            "SSF_PUSH_CA_FILE",
            format!("must hold PEM certificates; {path:?} does not: {error}"),
        )),
    }
}

fn validate_smtp_url(url: &str) -> Result<Secret, ConfigError> {
    let problem = || {
        invalid(
            "SMTP_URL",
            "must be smtp://[user:pass@]host:port or smtps://[user:pass@]host:port (the value is not shown: it may hold a password)",
        )
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(problem());
    };
    let host = rest.rsplit('@').next().unwrap_or("");
    let host = host.split(['/', '?']).next().unwrap_or("");
    if !matches!(scheme, "smtp" | "smtps") || host.is_empty() || host.starts_with(':') {
        return Err(problem());
    }
    if let Some((_, port)) = host.rsplit_once(':')
        && port.parse::<u16>().is_err()
    {
        return Err(problem());
    }
    lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url).map_err(|_| problem())?;
    Ok(Secret::new(url.to_owned()))
}

/// An `http://` or `https://` origin (a path prefix allowed), without query, fragment or
/// trailing slash.
fn validate_public_url(url: &str) -> Result<String, ConfigError> {
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    let valid = rest.is_some_and(|rest| {
        let host = rest.split('/').next().unwrap_or("");
        !host.is_empty()
            && !rest.contains(['?', '#', ' ', '"', '<', '>', '\\'])
            && host
                .rsplit_once(':')
                .is_none_or(|(_, port)| port.parse::<u16>().is_ok())
    });
    if !valid {
        return Err(invalid(
            "PUBLIC_URL",
            format!("must be an http:// or https:// address such as https://accounts.example.com, not {url:?}"),
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_documented_table() {
        let settings = settings(&[]).expect("defaults are valid");
        assert_eq!(settings.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.access_ttl, Duration::from_secs(15 * 60));
        assert_eq!(settings.refresh_ttl, Duration::from_secs(14 * 86400));
        assert_eq!(settings.session_idle_ttl, Duration::from_secs(30 * 60));
        assert_eq!(settings.session_ttl, Duration::from_secs(30 * 86400));
        assert_eq!(settings.jwt_algorithm, JwtAlgorithm::Hs256);
        assert!(settings.database_url.starts_with("sqlite:"));
        assert!(!settings.cookie_secure, "loopback binds do not force Secure");
    }

    #[test]
    fn the_issuer_is_the_public_url_unless_jwt_issuer_is_set() {
        assert_eq!(settings(&[]).unwrap().issuer(), "http://127.0.0.1:8080");
        assert_eq!(
            settings(&[("BIND", "0.0.0.0:9000")]).unwrap().issuer(),
            "http://127.0.0.1:9000"
        );
        let public = settings(&[("PUBLIC_URL", "https://accounts.example.com/")]).unwrap();
        assert_eq!(public.issuer(), "https://accounts.example.com");
        let named = settings(&[
            ("PUBLIC_URL", "https://accounts.example.com"),
            ("JWT_ISSUER", "revocable"),
        ])
        .unwrap();
        assert_eq!(named.issuer(), "revocable");
        assert_eq!(named.public_origin(), "https://accounts.example.com");
        for bad in ["ftp://example.com", "https://", "https://example.com/?x=1"] {
            assert_eq!(
                settings(&[("PUBLIC_URL", bad)]).unwrap_err().variable,
                "PUBLIC_URL",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_short_jwt_secret_is_refused_by_name() {
        let error = settings(&[("JWT_SECRET", "short")]).unwrap_err();
        assert_eq!(error.to_string(), "JWT_SECRET must be at least 32 bytes");
    }

    #[test]
    fn a_short_mfa_encryption_key_is_refused_by_name() {
        let error = settings(&[("MFA_ENCRYPTION_KEY", "short")]).unwrap_err();
        assert_eq!(error.to_string(), "MFA_ENCRYPTION_KEY must be at least 32 bytes");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("ACCESS_TTL", "soon"),
            ("BIND", "nowhere"),
            ("JWT_ALG", "none"),
            ("TRUSTED_PROXIES", "10.0.0.0/8,garbage"),
            ("DATABASE_URL", "mysql://x"),
            ("REDIS_URL", "http://x"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("DATABASE_MAX_CONNECTIONS", "many"),
        ] {
            let error = settings(&[(name, value)]).unwrap_err();
            assert_eq!(error.variable, name, "{error}");
        }
    }

    #[test]
    fn the_staleness_bound_is_one_second_and_at_least_two_polls() {
        let defaults = settings(&[]).unwrap();
        assert_eq!(defaults.revocation_max_staleness, Duration::from_secs(1));
        assert!(defaults.revocation_max_staleness >= defaults.revocation_poll_interval * 2);
        for (poll, staleness) in [("250ms", "400ms"), ("1s", "1s"), ("10s", "1s")] {
            let error = settings(&[
                ("REVOCATION_POLL_INTERVAL", poll),
                ("REVOCATION_MAX_STALENESS", staleness),
            ])
            .unwrap_err();
            assert_eq!(error.variable, "REVOCATION_MAX_STALENESS", "{error}");
        }
        assert!(
            settings(&[
                ("REVOCATION_POLL_INTERVAL", "100ms"),
                ("REVOCATION_MAX_STALENESS", "200ms")
            ])
            .is_ok()
        );
        assert_eq!(
            settings(&[("REVOCATION_MAX_STALENESS", "0")]).unwrap_err().variable,
            "REVOCATION_MAX_STALENESS"
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let settings = settings(&[("JWT_SECRET", "0123456789abcdef0123456789abcdef")]).unwrap();
        assert!(!format!("{settings:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn mail_settings_are_checked_once_and_named() {
        let defaults = settings(&[]).unwrap();
        assert!(defaults.smtp_url.is_none());
        assert_eq!(defaults.mail_outbox, std::path::PathBuf::from("outbox"));
        assert_eq!(defaults.mail_from, "revocable <no-reply@localhost>");
        assert_eq!(defaults.public_url, None);
        for (name, value) in [
            ("SMTP_URL", "http://mail.example.com"),
            ("SMTP_URL", "smtp://"),
            ("SMTP_URL", "smtp://mail.example.com:port"),
            ("PUBLIC_URL", "ftp://example.com"),
            ("PUBLIC_URL", "https://"),
            ("PUBLIC_URL", "https://example.com/?x=1"),
            ("MAIL_FROM", "not an address"),
        ] {
            let error = settings(&[(name, value)]).unwrap_err();
            assert_eq!(error.variable, name, "{value}: {error}");
        }
        let error = settings(&[("SMTP_URL", "smtp://user:hunter2@:25")]).unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let good = settings(&[
            ("SMTP_URL", "smtps://user:hunter2pass@mail.example.com:465"),
            ("PUBLIC_URL", "https://accounts.example.com/"),
        ])
        .unwrap();
        assert_eq!(good.public_url.as_deref(), Some("https://accounts.example.com"));
        assert!(!format!("{good:?}").contains("hunter2pass"));
        assert!(settings(&[("SMTP_URL", "smtp://127.0.0.1:2525")]).is_ok());
    }

    #[test]
    fn a_public_bind_turns_secure_cookies_on() {
        assert!(settings(&[("BIND", "0.0.0.0:8080")]).unwrap().cookie_secure);
        assert!(
            !settings(&[("BIND", "0.0.0.0:8080"), ("COOKIE_SECURE", "false")])
                .unwrap()
                .cookie_secure
        );
    }
}
