//! Logging: one line per request (method, path, status, latency) through tracing-actix-web,
//! filtered by `RUST_LOG`. Request bodies, headers and query strings are never logged, so
//! passwords, tokens and cookies cannot reach the log.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
