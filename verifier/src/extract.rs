//! actix-web extractors: a handler that takes `Verified` only runs for a valid, unrevoked token;
//! one that takes `SignatureOnly` skips the revocation check. Both need the `Verifier` registered
//! as `web::Data<Verifier>`. Refusals are JSON in revocable's shape: 401 with
//! `WWW-Authenticate: Bearer error="invalid_token"` and a `reason`, or 503 when revocation cannot
//! be checked.

use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::future::LocalBoxFuture;

use crate::{Claims, Rejection, Verifier};

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if *self == Self::Unavailable {
            return response
                .insert_header((header::RETRY_AFTER, "5"))
                .json(serde_json::json!({
                    "error": "service_unavailable",
                    "error_description": "whether the token was revoked cannot be checked right now",
                }));
        }
        response
            .insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#))
            .json(serde_json::json!({
                "error": "invalid_token",
                "error_description": "the access token was refused",
                "reason": self.reason(),
            }))
    }
}

fn bearer(request: &HttpRequest) -> Result<String, Rejection> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(Rejection::NoCredential)?
        .to_str()
        .map_err(|_| Rejection::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(Rejection::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Rejection::Malformed);
    }
    Ok(token.trim().to_owned())
}

fn verifier(request: &HttpRequest) -> Verifier {
    request
        .app_data::<web::Data<Verifier>>()
        .map(|data| data.get_ref().clone())
        .expect("register the Verifier with App::app_data(web::Data::new(verifier))")
}

/// A request whose Bearer token is valid and not revoked.
pub struct Verified {
    pub claims: Claims,
}

impl FromRequest for Verified {
    type Error = Rejection;
    type Future = LocalBoxFuture<'static, Result<Self, Rejection>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(request);
        let verifier = verifier(request);
        Box::pin(async move {
            let claims = verifier.verify(&token?).await?;
            Ok(Self { claims })
        })
    }
}

/// A request whose Bearer token is signed by revocable and within its lifetime: revoked or not.
pub struct SignatureOnly {
    pub claims: Claims,
}

impl FromRequest for SignatureOnly {
    type Error = Rejection;
    type Future = LocalBoxFuture<'static, Result<Self, Rejection>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(request);
        let verifier = verifier(request);
        Box::pin(async move {
            let claims = verifier.verify_signature(&token?).await?;
            Ok(Self { claims })
        })
    }
}
