//! The caller's login sessions (devices): list, and revoke one.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::auth::client;
use crate::auth::strategy::BearerOrCookie;
use crate::domain::now_millis;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::login_sessions::{self, LoginSession};

pub fn rfc3339(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Serialize)]
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
            device: client::describe_device(&session.user_agent),
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

pub async fn list(
    state: web::Data<AppState>,
    BearerOrCookie(principal): BearerOrCookie,
) -> Result<HttpResponse, ApiError> {
    let sessions = login_sessions::list_live(&state.db, &principal.user_id, now_millis()).await?;
    let views: Vec<SessionView> = sessions
        .into_iter()
        .map(|session| SessionView::new(session, &principal.session_id))
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

pub async fn revoke(
    request: HttpRequest,
    state: web::Data<AppState>,
    BearerOrCookie(principal): BearerOrCookie,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let origin = client::origin(&request, &state.settings.trusted_proxies);
    crate::account::revoke_own_session(&state, &principal, &path.into_inner(), &origin).await?;
    Ok(HttpResponse::NoContent().finish())
}
