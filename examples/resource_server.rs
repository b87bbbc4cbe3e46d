//! A service of its own that trusts revocable's tokens and still honours their revocation, through
//! the `revocable-verifier` crate.
//!
//! ```text
//! revocable clients add resource-server          # prints a client id and secret
//! REVOCABLE_URL=http://127.0.0.1:8080 CLIENT_ID=… CLIENT_SECRET=… BIND=127.0.0.1:9090 \
//!     cargo run --example resource_server
//! curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:9090/hello
//! ```
//!
//! `GET /hello` checks signature, claims and revocation; `GET /hello/signature-only` checks only
//! signature and claims (a revoked token passes until it expires: there for comparison);
//! `GET /status` says whether revocations currently come from the feed or from introspection.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use revocable_verifier::{Config, SignatureOnly, Verified, Verifier};

async fn hello(user: Verified) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "user_id": user.claims.sub,
        "session_id": user.claims.sid,
        "checked": "signature, claims and revocation",
    }))
}

async fn hello_signature_only(user: SignatureOnly) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "user_id": user.claims.sub,
        "session_id": user.claims.sid,
        "checked": "signature and claims",
    }))
}

async fn status(verifier: web::Data<Verifier>) -> HttpResponse {
    let source = if verifier.feed_is_live() {
        "feed"
    } else {
        "introspection"
    };
    HttpResponse::Ok().json(serde_json::json!({ "revocations_from": source }))
}

/// The service on `listener`, checking tokens with `verifier`.
pub fn serve(listener: TcpListener, verifier: Verifier, workers: usize) -> std::io::Result<Server> {
    let verifier = web::Data::new(verifier);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(verifier.clone())
            .route("/hello", web::get().to(hello))
            .route("/hello/signature-only", web::get().to(hello_signature_only))
            .route("/status", web::get().to(status))
    })
    .workers(workers)
    .listen(listener)?
    .run())
}

fn required(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} must be set"))
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::new(
        &std::env::var("REVOCABLE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned()),
        &required("CLIENT_ID")?,
        &required("CLIENT_SECRET")?,
    );
    if let Ok(audience) = std::env::var("JWT_AUDIENCE") {
        config.audience = audience;
    }
    if let Ok(issuer) = std::env::var("JWT_ISSUER") {
        config.issuer = issuer;
    }
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:9090".to_owned());
    let workers = std::thread::available_parallelism().map_or(2, |cores| cores.get());
    let verifier = Verifier::start(config);
    println!("resource_server listening on http://{bind}");
    serve(TcpListener::bind(&bind)?, verifier, workers)?.await?;
    Ok(())
}
