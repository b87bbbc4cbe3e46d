//! The values that need more than a parse: certificate files, SMTP and public URLs.

use super::{ConfigError, Secret, invalid};

/// The certificates of a PEM file of certificate authorities, at least one.
pub(super) fn read_ca_file(path: &str) -> Result<Vec<reqwest::Certificate>, ConfigError> {
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

/// `smtp://[user:pass@]host:port` or `smtps://…`, checked by the mail transport's own parser.
pub(super) fn validate_smtp_url(url: &str) -> Result<Secret, ConfigError> {
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
pub(super) fn validate_public_url(url: &str) -> Result<String, ConfigError> {
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
