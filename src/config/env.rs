//! `Settings::from_lookup`: every variable read, defaulted and checked, one `ConfigError` naming
//! the first that is invalid.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use super::validate::{read_ca_file, validate_public_url, validate_smtp_url};
use super::{ConfigError, JwtAlgorithm, KeysSource, Secret, Settings, invalid};

impl Settings {
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
        let login_rate_per_minute = positive(get, "LOGIN_RATE_PER_MINUTE", 30u32)?;
        let client_auth_failures_per_minute = positive(get, "CLIENT_AUTH_FAILURES_PER_MINUTE", 10u32)?;

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
        let revocation_cache_capacity = positive(get, "REVOCATION_CACHE_CAPACITY", 1_000_000u64)?;
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
        let account_lock_after = positive(get, "ACCOUNT_LOCK_AFTER", 10u32)?;

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
}

/// The positive whole number `name` holds, or `default` when it is unset.
fn positive<T>(get: impl Fn(&str) -> Option<String>, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + Default,
{
    let Some(value) = get(name) else {
        return Ok(default);
    };
    value
        .parse::<T>()
        .ok()
        .filter(|number| *number > T::default())
        .ok_or_else(|| invalid(name, format!("must be a positive whole number, not {value:?}")))
}
