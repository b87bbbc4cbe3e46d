//! The OpenAPI 3 document of the JSON API, generated from the handlers' annotations and the
//! request and response types themselves, served at `/openapi.json` and read as a page at
//! `/api-docs/` (`routes::web::api_docs`).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorCode, ErrorResponse, RejectReason};

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "revocable_session",
                "The session cookie of a browser log-in (`__Host-revocable` when cookies are Secure). A request \
                 that changes state also needs this site's `Origin` or the session's CSRF token in `X-CSRF-Token`.",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "revocable",
        description = "Server-side cookie sessions and revocable JWTs side by side. Every error has the \
                       `ErrorResponse` shape; `reason` on a refused credential is one of `RejectReason`."
    ),
    paths(
        super::account::register,
        super::token::issue,
        super::token::refresh,
        super::token::logout,
        super::second_factor::finish_log_in,
        super::second_factor::start_enrolment,
        super::second_factor::confirm_enrolment,
        super::second_factor::disable,
        super::second_factor::replace_recovery_codes,
        super::account::logout_all,
        super::account::change_password,
        super::account::delete_account,
        super::recovery::forgot,
        super::recovery::reset,
        super::me::stateless,
        super::me::version,
        super::me::denylist,
        super::me::allowlist,
        super::me::cookie,
        super::sessions::list,
        super::sessions::revoke,
        super::health::policy,
        super::health::healthz,
        super::health::readyz,
        super::health::jwks,
        crate::routes::oauth::client_token,
        crate::routes::oauth::authorization_server_metadata,
        crate::routes::oauth::introspect,
        crate::routes::oauth::revoke,
        crate::routes::oauth::revocations,
        crate::routes::ssf::configuration,
        crate::routes::ssf::create_stream,
        crate::routes::ssf::read_streams,
        crate::routes::ssf::update_stream,
        crate::routes::ssf::replace_stream,
        crate::routes::ssf::delete_stream,
        crate::routes::ssf::read_status,
        crate::routes::ssf::update_status,
        crate::routes::ssf::add_subject,
        crate::routes::ssf::remove_subject,
        crate::routes::ssf::verify,
        crate::routes::ssf::poll,
    ),
    components(schemas(ErrorResponse, ErrorCode, RejectReason)),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

/// The document as JSON, serialised once: what `/openapi.json` answers and `/api-docs/` reads.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::to_string(&ApiDoc::openapi()).expect("the OpenAPI document serialises"))
}

/// `/openapi.json`.
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_json_route() {
        let document = ApiDoc::openapi();
        for path in [
            "/api/register",
            "/api/token",
            "/api/token/refresh",
            "/api/token/mfa",
            "/api/mfa/totp",
            "/api/mfa/totp/confirm",
            "/api/mfa/recovery-codes",
            "/api/logout",
            "/api/logout-all",
            "/api/password",
            "/api/account",
            "/api/stateless/me",
            "/api/cookie/me",
            "/api/sessions",
            "/api/sessions/{id}",
            "/oauth/introspect",
            "/oauth/revoke",
            "/oauth/revocations",
            "/oauth/token",
            "/.well-known/oauth-authorization-server",
            "/api/password/forgot",
            "/api/password/reset",
        ] {
            assert!(document.paths.paths.contains_key(path), "{path} is missing");
        }
    }
}
