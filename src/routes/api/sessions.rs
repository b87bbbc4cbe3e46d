//! The caller's login sessions (devices): list, and revoke one.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::account::Accounts;
use crate::auth::client::ClientAddress;
use crate::auth::strategy::BearerOrCookie;
use crate::error::ApiError;
use crate::store::login_sessions::{self, LoginSession};

pub fn rfc3339(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionView {
    id: String,
    kind: &'static str,
    user_agent: String,
    device: String,
    ip: String,
    created_at: String,
    last_seen_at: String,
    expires_at: String,
    current: bool,
    rotation_count: i64,
}

impl SessionView {
    fn new(session: LoginSession, current_id: &str) -> Self {
        Self {
            current: session.id == current_id,
            device: crate::auth::client::describe_device(&session.user_agent),
            kind: session.kind.as_str(),
            created_at: rfc3339(session.created_at),
            last_seen_at: rfc3339(session.last_seen_at),
            expires_at: rfc3339(session.expires_at.min(session.idle_expires_at)),
            rotation_count: session.rotation_count,
            id: session.id,
            user_agent: session.user_agent,
            ip: session.ip,
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/sessions",
    tag = "api",
    summary = "The caller's live login sessions (devices)",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "live login sessions", body = Vec<SessionView>),
        (status = 401, description = "no credential, or a refused one (`reason` says why)", body = crate::error::ErrorResponse),
        (status = 403, description = "a cookie request without this site's Origin or X-CSRF-Token", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn list(
    accounts: web::Data<Accounts>,
    BearerOrCookie(principal): BearerOrCookie,
) -> Result<HttpResponse, ApiError> {
    let sessions = login_sessions::list_live(&accounts.db, &principal.user_id, accounts.now()).await?;
    let views: Vec<SessionView> = sessions
        .into_iter()
        .map(|session| SessionView::new(session, &principal.session_id))
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

#[utoipa::path(
    delete,
    path = "/api/sessions/{id}",
    tag = "api",
    summary = "Revoke one of the caller's login sessions",
    params(("id" = String, Path, description = "a login session id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "revoked"),
        (status = 401, description = "no credential, or a refused one (`reason` says why)", body = crate::error::ErrorResponse),
        (status = 403, description = "a cookie request without this site's Origin or X-CSRF-Token", body = crate::error::ErrorResponse),
        (status = 404, description = "not a live login session of the caller, or not an id at all", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn revoke(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    BearerOrCookie(principal): BearerOrCookie,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    crate::account::revoke_own_session(&accounts, &principal, &path.into_inner(), &origin).await?;
    Ok(HttpResponse::NoContent().finish())
}
