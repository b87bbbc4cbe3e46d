//! Liveness, readiness, and the public keys.

use actix_web::{HttpResponse, web};

use crate::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// 200 when the database (and Redis, when configured) answer; 503 naming the one that does not.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.unavailable_service().await {
        None => HttpResponse::Ok().json(
            serde_json::json!({ "status": "ready", "database": state.backend.name(), "redis": state.redis.is_some() }),
        ),
        Some(service) => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "error": "service_unavailable",
            "error_description": format!("{service} is not answering"),
            "unavailable": service,
        })),
    }
}

/// The public keys. Clients may cache them for `JWKS_MAX_AGE`: a rotated-in key is published
/// that long before it signs, so a cache never lacks the key of a token it is shown.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CACHE_CONTROL,
            format!("public, max-age={}", state.keys.jwks_max_age().as_secs()),
        ))
        .json(state.keys.jwks())
}

/// The server's public token and session policy, so clients (and `revocable demo`) know the limits.
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
