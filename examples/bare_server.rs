//! The benchmark's baseline: a bare actix-web server (2 workers, no middleware) whose one route
//! verifies revocable's own access token the way the stateless strategy does — HS256 with the same
//! key, issuer and audience, `exp`/`nbf` required, `typ` checked — and answers the same JSON.
//!
//! `JWT_SECRET=… BIND=127.0.0.1:18081 cargo run --release --example bare_server`
//! (`JWT_ISSUER` and `JWT_AUDIENCE` default to `revocable` here: run the server with the same
//! `JWT_ISSUER`, as `scripts/bench.sh` does, since its own default is its URL.)

use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    sid: String,
}

#[derive(Serialize)]
struct Me<'a> {
    user_id: &'a str,
    session_id: &'a str,
    strategy: &'static str,
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized().json(serde_json::json!({ "error": "invalid_token" }))
}

async fn me(request: HttpRequest, verifier: web::Data<Verifier>) -> HttpResponse {
    let Some(token) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return unauthorized();
    };
    let Ok(decoded) = jsonwebtoken::decode::<Claims>(token, &verifier.key, &verifier.validation) else {
        return unauthorized();
    };
    if decoded.header.typ.as_deref().map(str::to_ascii_lowercase).as_deref() != Some("at+jwt") {
        return unauthorized();
    }
    HttpResponse::Ok().json(Me {
        user_id: &decoded.claims.sub,
        session_id: &decoded.claims.sid,
        strategy: "bare",
    })
}

fn main() -> std::io::Result<()> {
    let secret = std::env::var("JWT_SECRET").map_err(|_| std::io::Error::other("JWT_SECRET is required"))?;
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:18081".to_owned());
    let issuer = std::env::var("JWT_ISSUER").unwrap_or_else(|_| "revocable".to_owned());
    let audience = std::env::var("JWT_AUDIENCE").unwrap_or_else(|_| "revocable".to_owned());
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_issuer(&[&issuer]);
    validation.set_audience(&[&audience]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    let verifier = web::Data::new(Verifier {
        key: DecodingKey::from_secret(secret.as_bytes()),
        validation,
    });
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || App::new().app_data(verifier.clone()).route("/me", web::get().to(me)))
            .workers(2)
            .bind(&bind)?;
        println!("bare server listening on {bind}");
        server.run().await
    })
}
