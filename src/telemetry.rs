//! Logging: one line per request (`access_log`: status and latency, inside tracing-actix-web's
//! request span, which adds method, route, client and request id), filtered by `RUST_LOG`.
//! Request bodies, headers and query strings are never logged, so passwords, tokens and cookies
//! cannot reach the log.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// The request's line: written when the response is ready.
pub async fn access_log(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.path().to_owned();
    let outcome = next.call(request).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = match &outcome {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.as_response_error().status_code().as_u16(),
    };
    tracing::info!(%method, path, status, latency_ms = format!("{latency_ms:.2}"), "request");
    outcome
}
