//! `GET /dashboard` (every live device, recently ended ones with the reason, security activity)
//! and the actions on devices: sign out one, all others, or everywhere.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::client::{self, describe_device};
use crate::auth::strategy::{AUTHENTICATED_AT_KEY, WebUser};
use crate::domain::now_millis;
use crate::error::PageError;
use crate::routes::web::login::NoFields;
use crate::routes::web::{CsrfForm, Layout, exact_time, flash, redirect, relative_time, render};
use crate::state::AppState;
use crate::store::events::{self, SecurityEvent};
use crate::store::login_sessions::{self, EndReason, Kind, LoginSession};
use crate::store::{self, users::User};

pub struct DeviceRow {
    pub id: String,
    pub device: String,
    pub user_agent: String,
    pub kind_label: &'static str,
    pub ip: String,
    pub created_relative: String,
    pub created_exact: String,
    pub last_seen_relative: String,
    pub last_seen_exact: String,
    pub current: bool,
    pub rotation_count: Option<i64>,
    pub new_device: bool,
}

pub struct EndedRow {
    pub device: String,
    pub kind_label: &'static str,
    pub ip: String,
    pub ended_relative: String,
    pub ended_exact: String,
    pub reason: String,
}

pub struct EventRow {
    pub description: String,
    pub device: String,
    pub ip: String,
    pub when_relative: String,
    pub when_exact: String,
    pub warning: bool,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    devices: Vec<DeviceRow>,
    new_devices: Vec<DeviceRow>,
    ended: Vec<EndedRow>,
    events: Vec<EventRow>,
    sudo_needed: bool,
    failed_logins: i64,
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Cookie => "browser session",
        Kind::Token => "API token",
    }
}

fn device_row(session: &LoginSession, current_id: &str, now: i64) -> DeviceRow {
    DeviceRow {
        id: session.id.clone(),
        device: describe_device(&session.user_agent),
        user_agent: if session.user_agent.is_empty() {
            "(no user agent sent)".into()
        } else {
            session.user_agent.clone()
        },
        kind_label: kind_label(session.kind),
        ip: session.ip.clone(),
        created_relative: relative_time(session.created_at, now),
        created_exact: exact_time(session.created_at),
        last_seen_relative: relative_time(session.last_seen_at, now),
        last_seen_exact: exact_time(session.last_seen_at),
        current: session.id == current_id,
        rotation_count: (session.kind == Kind::Token).then_some(session.rotation_count),
        new_device: session.new_device,
    }
}

fn describe_event(event: &SecurityEvent) -> (String, bool) {
    let detail = &event.detail;
    match event.kind.as_str() {
        "registered" => ("Account created".into(), false),
        "logged_in" => (format!("Logged in ({detail})"), detail.contains("new device")),
        "login_failed" => ("Failed log-in attempt (wrong password)".into(), true),
        "logged_out" => ("Logged out".into(), false),
        "device_signed_out" => (format!("Signed out {detail}"), false),
        "other_devices_signed_out" => (format!("Signed out all other devices ({detail})"), false),
        "logged_out_everywhere" => (format!("Logged out everywhere ({detail})"), false),
        "password_changed" => (format!("Password changed; {detail}"), false),
        "refresh_token_reused" => (
            "Refresh-token reuse detected: a stolen refresh token may have been used; that device was signed out"
                .into(),
            true,
        ),
        other => (other.replace('_', " "), false),
    }
}

pub async fn show(state: web::Data<AppState>, user: WebUser) -> Result<HttpResponse, PageError> {
    let principal = &user.0;
    let now = now_millis();
    let account = find_user(&state, &principal.user_id).await?;
    let live = login_sessions::list_live(&state.db, &principal.user_id, now).await?;
    let ended = login_sessions::list_ended_since(&state.db, &principal.user_id, now - 30 * 86_400_000, now).await?;
    let recent_events = events::recent(&state.db, &principal.user_id, 50).await?;

    let mut devices_by_id: HashMap<String, String> = live
        .iter()
        .chain(ended.iter())
        .map(|session| (session.id.clone(), describe_device(&session.user_agent)))
        .collect();
    let mut ended_rows = Vec::with_capacity(ended.len());
    for session in &ended {
        let reason = session.end_reason().unwrap_or(EndReason::LoggedOut);
        let by = match (&session.revoked_by_session_id, reason) {
            (Some(by), EndReason::SignedOutFromAnotherDevice) => {
                if !devices_by_id.contains_key(by)
                    && let Some(found) = login_sessions::find(&state.db, by).await?
                {
                    devices_by_id.insert(by.clone(), describe_device(&found.user_agent));
                }
                devices_by_id.get(by).map(|device| format!(" ({device})"))
            }
            _ => None,
        };
        let ended_at = session.ended_at().unwrap_or(now);
        ended_rows.push(EndedRow {
            device: describe_device(&session.user_agent),
            kind_label: kind_label(session.kind),
            ip: session.ip.clone(),
            ended_relative: relative_time(ended_at, now),
            ended_exact: exact_time(ended_at),
            reason: format!("{}{}", reason.describe(), by.unwrap_or_default()),
        });
    }
    // This device first, then the others by last activity (the order `list_live` returns).
    let mut devices: Vec<DeviceRow> = live
        .iter()
        .map(|session| device_row(session, &principal.session_id, now))
        .collect();
    devices.sort_by_key(|device| !device.current);
    let new_devices = live
        .iter()
        .filter(|session| session.new_device && session.id != principal.session_id)
        .map(|session| device_row(session, &principal.session_id, now))
        .collect();
    let events = recent_events
        .iter()
        .map(|event| {
            let (description, warning) = describe_event(event);
            EventRow {
                description,
                device: describe_device(&event.user_agent),
                ip: event.ip.clone(),
                when_relative: relative_time(event.created_at, now),
                when_exact: exact_time(event.created_at),
                warning,
            }
        })
        .collect();
    render(&DashboardPage {
        layout: Layout::new(user.session(), Some(account.email))?,
        devices,
        new_devices,
        ended: ended_rows,
        events,
        sudo_needed: !sudo_is_fresh(&state, &user),
        failed_logins: events::failed_logins_since_last_visit(&state.db, &principal.user_id, &principal.session_id)
            .await?,
    })
}

async fn find_user(state: &AppState, user_id: &str) -> Result<User, PageError> {
    store::users::find_by_id(&state.db, user_id)
        .await?
        .ok_or(PageError::LoginRequired)
}

/// Sudo mode: sensitive actions need the password proved within `SUDO_TTL`.
pub fn sudo_is_fresh(state: &AppState, user: &WebUser) -> bool {
    let proved_at = user
        .session()
        .get::<i64>(AUTHENTICATED_AT_KEY)
        .ok()
        .flatten()
        .unwrap_or(0);
    now_millis() - proved_at <= state.settings.sudo_ttl.as_millis() as i64
}

/// The re-authentication rule of every route (`account::require_recent_password`): fresh
/// sudo, or the password given with the form is right (which refreshes sudo).
pub async fn confirm_sudo(state: &AppState, user: &WebUser, password_given: Option<String>) -> Result<bool, PageError> {
    match crate::account::require_recent_password(state, &user.0, password_given).await {
        Ok(()) => Ok(true),
        Err(crate::error::ApiError::ReauthenticationRequired(_)) => Ok(false),
        Err(other) => Err(other.into()),
    }
}

pub async fn revoke_one(
    request: HttpRequest,
    state: web::Data<AppState>,
    user: WebUser,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    let origin = client::origin(&request, &state.settings.trusted_proxies);
    let target = path.into_inner();
    let device = crate::account::revoke_own_session(&state, &user.0, &target, &origin).await?;
    if target == user.0.session_id {
        user.session().purge();
        return Ok(redirect("/login?ended=logout"));
    }
    flash(user.session(), "success", format!("Signed out of {device}"));
    Ok(redirect("/dashboard"))
}

#[derive(Deserialize)]
pub struct SudoForm {
    password: Option<String>,
    confirm: Option<String>,
}

pub async fn revoke_others(
    request: HttpRequest,
    state: web::Data<AppState>,
    user: WebUser,
    CsrfForm(form): CsrfForm<SudoForm>,
) -> Result<HttpResponse, PageError> {
    if !confirm_sudo(&state, &user, form.password).await? {
        flash(
            user.session(),
            "error",
            "Confirm with your password to sign out other devices.",
        );
        return Ok(redirect("/dashboard"));
    }
    let origin = client::origin(&request, &state.settings.trusted_proxies);
    let count = crate::account::sign_out_other_devices(&state, &user.0, &origin).await?;
    let signed_out = crate::account::count_devices(count, true);
    flash(user.session(), "success", format!("Signed out of {signed_out}"));
    Ok(redirect("/dashboard"))
}

#[derive(Template)]
#[template(path = "logout_all.html")]
struct LogoutAllPage {
    layout: Layout,
    device_count: usize,
    sudo_needed: bool,
}

/// The confirmation step before logging out everywhere.
pub async fn confirm_logout_all(state: web::Data<AppState>, user: WebUser) -> Result<HttpResponse, PageError> {
    let account = find_user(&state, &user.0.user_id).await?;
    let device_count = login_sessions::list_live(&state.db, &user.0.user_id, now_millis())
        .await?
        .len();
    render(&LogoutAllPage {
        layout: Layout::new(user.session(), Some(account.email))?,
        device_count,
        sudo_needed: !sudo_is_fresh(&state, &user),
    })
}

pub async fn logout_all(
    request: HttpRequest,
    state: web::Data<AppState>,
    user: WebUser,
    CsrfForm(form): CsrfForm<SudoForm>,
) -> Result<HttpResponse, PageError> {
    if form.confirm.as_deref() != Some("yes") {
        return Ok(redirect("/logout-all"));
    }
    if !confirm_sudo(&state, &user, form.password).await? {
        flash(
            user.session(),
            "error",
            "Confirm with your password to log out everywhere.",
        );
        return Ok(redirect("/logout-all"));
    }
    let origin = client::origin(&request, &state.settings.trusted_proxies);
    let count = crate::account::log_out_everywhere(&state, &user.0, &origin).await?;
    user.session().purge();
    Ok(redirect(&format!("/login?ended=everywhere&count={count}")))
}
