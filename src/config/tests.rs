//! The settings read from a map: defaults, and one message per invalid variable.

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

#[test]
fn limits_and_capacities_are_positive_whole_numbers_defaulted_when_unset() {
    let defaults = settings(&[]).unwrap();
    assert_eq!(defaults.login_rate_per_minute, 30);
    assert_eq!(defaults.client_auth_failures_per_minute, 10);
    assert_eq!(defaults.account_lock_after, 10);
    assert_eq!(defaults.revocation_cache_capacity, 1_000_000);
    let set = settings(&[
        ("LOGIN_RATE_PER_MINUTE", "5"),
        ("CLIENT_AUTH_FAILURES_PER_MINUTE", "6"),
        ("ACCOUNT_LOCK_AFTER", "7"),
        ("REVOCATION_CACHE_CAPACITY", "8"),
    ])
    .unwrap();
    assert_eq!(
        (
            set.login_rate_per_minute,
            set.client_auth_failures_per_minute,
            set.account_lock_after,
            set.revocation_cache_capacity
        ),
        (5, 6, 7, 8)
    );
    for name in [
        "LOGIN_RATE_PER_MINUTE",
        "CLIENT_AUTH_FAILURES_PER_MINUTE",
        "ACCOUNT_LOCK_AFTER",
        "REVOCATION_CACHE_CAPACITY",
    ] {
        for bad in ["0", "-1", "1.5", "ten"] {
            let error = settings(&[(name, bad)]).unwrap_err().to_string();
            assert!(
                error.contains(name) && error.contains("must be a positive whole number") && error.contains(bad),
                "{name}={bad}: {error}"
            );
        }
    }
}
