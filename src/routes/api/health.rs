//! Liveness, readiness, and the public keys.

use actix_web::{HttpResponse, web};

use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "Liveness",
    responses(
        (status = 200, description = "the process runs", body = Object)
    )
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// 200 when the database (and Redis, when configured) answer; 503 naming the one that does not.
/// `revocation` says whether this instance is receiving invalidations: while it is not
/// (`"feed": "disconnected"`), it answers every check from the database, correctly but slower.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "Readiness: the database and Redis answer",
    responses(
        (status = 200, description = "ready", body = Object),
        (status = 503, description = "a backing service does not answer (`unavailable` names it)", body = crate::routes::api::openapi::ErrorResponse)
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let feed = state.revocation.feed_status();
    let revocation = serde_json::json!({
        "cache": if state.revocation.cache_enabled() { "on" } else { "off" },
        "feed": if feed.current { "current" } else { "disconnected" },
        "applied_seq": feed.applied_seq,
        "known_seq": feed.known_seq,
        "postgres_listening": feed.postgres_listening,
        "redis_subscribed": feed.redis_subscribed,
        "last_poll_millis_ago": feed.last_poll_millis_ago,
    });
    match state.unavailable_service().await {
        None => HttpResponse::Ok().json(serde_json::json!({
            "status": if feed.current { "ready" } else { "degraded" },
            "database": state.backend.name(),
            "redis": state.redis.is_some(),
            "revocation": revocation,
        })),
        Some(service) => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "error": "service_unavailable",
            "error_description": format!("{service} is not answering"),
            "unavailable": service,
            "revocation": revocation,
        })),
    }
}

/// The public keys. Clients may cache them for `JWKS_MAX_AGE`: a rotated-in key is published
/// that long before it signs, so a cache never lacks the key of a token it is shown.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "operations",
    summary = "Public keys (EdDSA signing)",
    responses(
        (status = 200, description = "a JWK set; empty with HS256", body = Object)
    )
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CACHE_CONTROL,
            format!("public, max-age={}", state.keys.jwks_max_age().as_secs()),
        ))
        .json(state.keys.jwks())
}

/// The server's public token and session policy, so clients (and `revocable demo`) know the limits.
#[utoipa::path(
    get,
    path = "/api/policy",
    tag = "operations",
    summary = "The server's token and session lifetimes",
    responses(
        (status = 200, description = "the policy", body = crate::scenario::Policy)
    )
)]
pub async fn policy(state: web::Data<AppState>) -> HttpResponse {
    let settings = &state.settings;
    HttpResponse::Ok().json(crate::scenario::Policy {
        access_ttl_seconds: settings.access_ttl.as_secs(),
        refresh_ttl_seconds: settings.refresh_ttl.as_secs(),
        session_idle_ttl_seconds: settings.session_idle_ttl.as_secs(),
        session_ttl_seconds: settings.session_ttl.as_secs(),
        refresh_reuse_grace_seconds: settings.refresh_reuse_grace.as_secs(),
        jwt_leeway_seconds: settings.jwt_leeway.as_secs(),
        jwt_algorithm: state.keys.algorithm_name().to_owned(),
    })
}
