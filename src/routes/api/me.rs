//! `GET /api/{strategy}/me`: the same answer behind each of the five checks.

use actix_web::HttpResponse;
use serde::Serialize;

use crate::auth::strategy::{Allowlist, Authenticated, Cookie, Denylist, Stateless, Strategy, Version};

#[derive(Serialize, utoipa::ToSchema)]
struct Me<'a> {
    user_id: &'a str,
    session_id: &'a str,
    strategy: &'static str,
}

fn answer<S: Strategy>(user: &Authenticated<S>) -> HttpResponse {
    HttpResponse::Ok().json(Me {
        user_id: &user.user_id,
        session_id: &user.session_id,
        strategy: S::NAME,
    })
}

#[utoipa::path(
    get,
    path = "/api/stateless/me",
    tag = "api",
    summary = "Who is calling, checked by the `stateless` strategy",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller", body = Me),
        (status = 401, description = "no credential, or a refused one (`reason` says why)", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn stateless(user: Authenticated<Stateless>) -> HttpResponse {
    answer(&user)
}

#[utoipa::path(
    get,
    path = "/api/version/me",
    tag = "api",
    summary = "Who is calling, checked by the `version` strategy",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller", body = Me),
        (status = 401, description = "no credential, or a refused one (`reason` says why)", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn version(user: Authenticated<Version>) -> HttpResponse {
    answer(&user)
}

#[utoipa::path(
    get,
    path = "/api/denylist/me",
    tag = "api",
    summary = "Who is calling, checked by the `denylist` strategy",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller", body = Me),
        (status = 401, description = "no credential, or a refused one (`reason` says why)", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn denylist(user: Authenticated<Denylist>) -> HttpResponse {
    answer(&user)
}

#[utoipa::path(
    get,
    path = "/api/allowlist/me",
    tag = "api",
    summary = "Who is calling, checked by the `allowlist` strategy",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller", body = Me),
        (status = 401, description = "no credential, or a refused one (`reason` says why)", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn allowlist(user: Authenticated<Allowlist>) -> HttpResponse {
    answer(&user)
}

#[utoipa::path(
    get,
    path = "/api/cookie/me",
    tag = "api",
    summary = "Who is calling, checked by the `cookie` strategy",
    security(("cookie" = [])),
    responses(
        (status = 200, description = "the caller", body = Me),
        (status = 401, description = "no credential, or a refused one (`reason` says why)", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn cookie(user: Authenticated<Cookie>) -> HttpResponse {
    answer(&user)
}
