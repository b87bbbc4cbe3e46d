//! The caller's login sessions (devices): list, and revoke one.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::auth::client;
use crate::auth::strategy::{BearerOrCookie, Principal};
use crate::domain::now_millis;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::events::{self, EventKind, NewEvent};
use crate::store::login_sessions::{self, EndReason, LoginSession};

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

/// Revokes one of the caller's own login sessions; any other id, another user's included, is a 404.
/// Returns the device description of what was signed out.
pub async fn revoke_own_session(
    state: &AppState,
    principal: &Principal,
    session_id: &str,
    origin: &events::Origin,
) -> Result<String, ApiError> {
    let target = login_sessions::find(&state.db, session_id)
        .await?
        .filter(|session| session.user_id == principal.user_id && session.is_live(now_millis()))
        .ok_or(ApiError::NotFound)?;
    let own = target.id == principal.session_id;
    let reason = if own {
        EndReason::LoggedOut
    } else {
        EndReason::SignedOutFromAnotherDevice
    };
    state
        .revocation
        .revoke_session(&target.id, reason, Some(&principal.session_id))
        .await?;
    let device = client::describe_device(&target.user_agent);
    events::record(
        &state.db,
        NewEvent {
            user_id: &principal.user_id,
            kind: if own {
                EventKind::LoggedOut
            } else {
                EventKind::DeviceSignedOut
            },
            session_id: Some(&principal.session_id),
            other_session_id: Some(&target.id),
            origin,
            detail: device.clone(),
        },
    )
    .await?;
    Ok(device)
}

pub async fn revoke(
    request: HttpRequest,
    state: web::Data<AppState>,
    BearerOrCookie(principal): BearerOrCookie,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let origin = client::origin(&request, &state.settings.trusted_proxies);
    revoke_own_session(&state, &principal, &path.into_inner(), &origin).await?;
    Ok(HttpResponse::NoContent().finish())
}
