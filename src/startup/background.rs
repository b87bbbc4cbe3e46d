//! What runs beside the server: Shared Signals delivery, the purge of expired state, the signing
//! key reload, and the warning about a JWKS cache time too short for rotations.

use std::time::Duration;

use actix_web::web;

use crate::config::Settings;
use crate::state::AppState;
use crate::store;

/// The Shared Signals delivery task: fills streams from the log and pushes their events. An
/// https receiver is trusted when its certificate chains to the system's trust store, or to a CA
/// of `SSF_PUSH_CA_FILE`.
pub(super) fn spawn_ssf_delivery(state: &AppState) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("revocable/", env!("CARGO_PKG_VERSION")))
        .tls_certs_merge(state.settings.ssf_push_ca.iter().cloned())
        .build()?;
    tokio::spawn(crate::ssf::delivery::run(state.ssf.clone(), http, state.stopping()));
    Ok(())
}

/// Purges expired state on a timer; a failure is logged and retried on the next tick.
pub(super) fn spawn_purge(state: web::Data<AppState>) {
    let interval = state.settings.purge_interval;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            purge_expired(&state).await;
        }
    });
}

/// Deletes what has expired by the app's clock: verified tokens held in memory, revocation state,
/// past log-in attempt windows, ended second-factor challenges. Run every `PURGE_INTERVAL`, and
/// directly by tests that move the clock. A failure is logged and left to the next run.
pub async fn purge_expired(state: &AppState) {
    state.keys.purge_verified_tokens();
    if let Err(error) = state.revocation.purge_expired().await {
        tracing::warn!(error = %error, "purge of expired state failed");
    }
    if let Err(error) = crate::auth::throttle::purge(&state.db, state.accounts.lock.clone()).await {
        tracing::warn!(error = %error, "purge of past log-in attempt windows failed");
    }
    let now = state.revocation.clock().now_millis();
    if let Err(error) = store::mfa_challenges::purge_ended(&state.db, now).await {
        tracing::warn!(error = %error, "purge of ended second-factor challenges failed");
    }
}

/// `jose` and PyJWT refetch a JWKS at most once per 30 s whatever its `max-age` says; a key that
/// signs sooner after its publication than a minute reaches them before they may look for it.
pub(super) fn warn_of_short_jwks_max_age(settings: &Settings) {
    if settings.jwt_algorithm == crate::config::JwtAlgorithm::EdDsa && settings.jwks_max_age < Duration::from_secs(60) {
        tracing::warn!(
            jwks_max_age = ?settings.jwks_max_age,
            "JWKS_MAX_AGE is under a minute: a rotated-in key starts signing before clients with a 30 s JWKS refetch cooldown (jose, PyJWT) can fetch it, and they refuse its first tokens"
        );
    }
}

/// Re-reads the signing keys as soon as the revocation log announces a new one (a rotation by
/// any process, this one or the command line, reaches every instance as a revocation does),
/// every `auth::keys::reload_interval` as a backstop (an edited `JWT_KEYS_FILE`), and within a
/// second of a token naming a key this instance does not know.
pub(super) fn spawn_key_reload(state: web::Data<AppState>) {
    if state.settings.jwt_algorithm != crate::config::JwtAlgorithm::EdDsa {
        return;
    }
    let every = crate::auth::keys::reload_interval(&state.settings);
    let mut log = state.revocation.subscribe();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        let mut last = tokio::time::Instant::now();
        loop {
            let announced = tokio::select! {
                received = log.recv() => match received {
                    Ok(entry) => entry.change.kind == crate::store::revocation_log::EntryKind::SigningKeyAdded,
                    // Entries were missed: one of them may have been a key.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                    // Never while the process runs; the timed reload still does.
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        ticker.tick().await;
                        false
                    }
                },
                _ = ticker.tick() => false,
            };
            let now = tokio::time::Instant::now();
            if announced || state.keys.wants_reload() || now.duration_since(last) >= every {
                if let Err(error) = state.keys.reload(&state.db).await {
                    tracing::warn!(error = %error, "signing keys could not be reloaded; keeping the ones in use");
                }
                last = now;
            }
        }
    });
}
