//! `GET /dashboard`: every live device, recently ended ones with the reason, security activity.
//! The actions on devices are in `devices`.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use askama::Template;

use crate::account::Accounts;
use crate::auth::client::describe_device;
use crate::geoip::Places;
use crate::routes::web::format::{exact_time, iso_time, relative_time};
use crate::routes::web::layout::{Layout, render};
use crate::routes::web::page::{PageError, WebUser, find_user};
use crate::store;
use crate::store::events::{self, EventKind, SecurityEvent};
use crate::store::login_sessions::{self, EndReason, Kind, LoginSession};

#[derive(Clone)]
pub struct DeviceRow {
    pub id: String,
    pub device: String,
    pub user_agent: String,
    pub kind_label: &'static str,
    pub ip: String,
    pub location: Option<String>,
    pub created_relative: String,
    pub created_exact: String,
    pub created_iso: String,
    pub last_seen_relative: String,
    pub last_seen_exact: String,
    pub last_seen_iso: String,
    pub current: bool,
    pub rotation_count: Option<i64>,
    pub new_device: bool,
    /// Its browser/OS and address pair was reported as "not me" before.
    pub reported: bool,
    /// What tells it apart from the others in a button's accessible name.
    pub distinct_name: String,
    /// The start of its login session id, shown so that two look-alike rows read differently.
    pub short_id: String,
    /// Another live row has the same device, kind and address: the exact log-in time is shown
    /// beside the name, with the short id.
    pub look_alike: bool,
    /// The location is a place a lookup found (so "approximate"), not "unknown location" or a
    /// network's name.
    pub location_is_place: bool,
    /// What about it was new, for the notice.
    pub what_was_new: String,
}

pub struct EndedRow {
    pub device: String,
    pub kind_label: &'static str,
    pub ip: String,
    pub ended_relative: String,
    pub ended_exact: String,
    pub ended_iso: String,
    pub reason: String,
    pub reported: bool,
}

pub struct EventRow {
    pub description: String,
    pub device: String,
    pub ip: String,
    pub when_relative: String,
    pub when_exact: String,
    pub when_iso: String,
    pub warning: bool,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    devices: Vec<DeviceRow>,
    new_devices: Vec<DeviceRow>,
    any_reported: bool,
    other_count: usize,
    ended: Vec<EndedRow>,
    events: Vec<EventRow>,
    failed_logins: i64,
    second_factor: crate::routes::web::second_factor::DashboardSection,
    email_verified: bool,
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Cookie => "browser session",
        Kind::Token => "API token",
    }
}

/// What `Geoip::describe` says when it found no place.
const NOT_A_PLACE: [&str; 3] = ["unknown location", "private network", "this machine (loopback)"];

/// How much of a login session id a row shows: enough to tell a handful of devices apart.
const SHORT_ID_LENGTH: usize = 8;

fn device_row(
    places: &Places,
    session: &LoginSession,
    current_id: &str,
    reported: &[(String, String)],
    now: i64,
) -> DeviceRow {
    let device = describe_device(&session.user_agent);
    let is_reported = reported.contains(&(device.clone(), session.ip.clone()));
    let location = places.geoip().map(|geoip| geoip.describe(&session.ip));
    DeviceRow {
        id: session.id.clone(),
        user_agent: if session.user_agent.is_empty() {
            "(no user agent sent)".into()
        } else {
            session.user_agent.clone()
        },
        kind_label: kind_label(session.kind),
        ip: session.ip.clone(),
        location_is_place: location.as_deref().is_some_and(|place| !NOT_A_PLACE.contains(&place)),
        location,
        created_relative: relative_time(session.created_at, now),
        created_exact: exact_time(session.created_at),
        created_iso: iso_time(session.created_at),
        last_seen_relative: relative_time(session.last_seen_at, now),
        last_seen_exact: exact_time(session.last_seen_at),
        last_seen_iso: iso_time(session.last_seen_at),
        current: session.id == current_id,
        rotation_count: (session.kind == Kind::Token).then_some(session.rotation_count),
        new_device: session.new_device,
        reported: session.new_device && is_reported,
        distinct_name: format!(
            "{device}, {}, logged in {} from {}",
            kind_label(session.kind),
            relative_time(session.created_at, now),
            session.ip
        ),
        device,
        short_id: session.id.chars().take(SHORT_ID_LENGTH).collect(),
        look_alike: false,
        what_was_new: String::new(),
    }
}

/// Gives rows that would read the same a number, so every button has its own accessible name.
fn number_look_alikes(devices: &mut [DeviceRow]) {
    let names: Vec<String> = devices.iter().map(|device| device.distinct_name.clone()).collect();
    for (index, device) in devices.iter_mut().enumerate() {
        if names.iter().filter(|name| **name == names[index]).count() > 1 {
            let position = names[..=index].iter().filter(|name| **name == names[index]).count();
            device.distinct_name = format!("{} (#{position})", device.distinct_name);
            device.look_alike = true;
        }
    }
}

/// What was new about a device, in the words of what was actually new.
fn what_was_new(session: &LoginSession, reported: bool, seen_before: &[(String, String)]) -> String {
    let (thing, a_thing) = match session.kind {
        Kind::Cookie => ("browser", "A browser"),
        Kind::Token => ("API client", "An API client"),
    };
    if reported {
        return format!("This {thing} and address were reported as not you before.");
    }
    let device = describe_device(&session.user_agent);
    let known_address = seen_before.iter().any(|(_, ip)| *ip == session.ip);
    let known_thing = seen_before
        .iter()
        .any(|(user_agent, _)| describe_device(user_agent) == device);
    match (known_thing, known_address) {
        (false, false) => format!("{a_thing} and an address this account had not used before."),
        (true, false) => format!("{a_thing} this account had used, from a new address."),
        (false, true) => format!("A new {thing}, from an address this account had used."),
        (true, true) => format!("{a_thing} and an address this account had used, but not together."),
    }
}

fn describe_event(event: &SecurityEvent) -> (String, bool) {
    let detail = &event.detail;
    let Some(kind) = event.event_kind() else {
        return (event.kind.replace('_', " "), false);
    };
    match kind {
        EventKind::Registered => ("Account created".into(), false),
        EventKind::LoggedIn => (format!("Logged in ({detail})"), false),
        EventKind::LoginFailed => ("Failed log-in attempt (wrong password)".into(), true),
        EventKind::LoggedOut => ("Logged out".into(), false),
        EventKind::DeviceSignedOut => (format!("Signed out {detail}"), false),
        EventKind::OtherDevicesSignedOut => (format!("Signed out all other devices ({detail})"), false),
        EventKind::LoggedOutEverywhere => (format!("Logged out everywhere ({detail})"), false),
        EventKind::PasswordChanged => (format!("Password changed; {detail}"), false),
        EventKind::ReportedNotYou => (format!("Reported as not you and signed out: {detail}"), true),
        EventKind::DeviceRecognised => (format!("Confirmed as yours: {detail}"), false),
        EventKind::RevokedByClient => (format!("Revoked through a connected service: {detail}"), false),
        EventKind::SecondFactorEnabled => (format!("Two-step verification turned on ({detail})"), false),
        EventKind::SecondFactorDisabled => ("Two-step verification turned off".into(), true),
        EventKind::SecondFactorFailed => ("Wrong two-step verification code".into(), true),
        EventKind::RecoveryCodeUsed => (format!("Recovery code used; {detail}"), true),
        EventKind::RecoveryCodesReplaced => (format!("New recovery codes made; {detail}"), true),
        EventKind::SessionLimitReached => (format!("Limit on devices reached: {detail}"), false),
        EventKind::SignedOutByAdmin => (format!("Signed out by an administrator ({detail})"), true),
        EventKind::AccountLocked => ("Account locked by an administrator; log-ins refused".into(), true),
        EventKind::AccountUnlocked => ("Account unlocked by an administrator".into(), false),
        EventKind::EmailVerified => (format!("Email address verified: {detail}"), false),
        EventKind::PasswordResetRequested => (format!("Password reset link emailed ({detail})"), false),
        EventKind::PasswordReset => (format!("Password reset by email; {detail}"), false),
        EventKind::RefreshTokenReused => (
            "Refresh-token reuse detected: a stolen refresh token may have been used; that device was signed out"
                .into(),
            true,
        ),
        EventKind::RefreshTokenRetried => (
            "A spent refresh token was presented again by the same client within seconds (two tabs racing?); \
             nothing was revoked"
                .into(),
            false,
        ),
    }
}

pub async fn show(
    accounts: web::Data<Accounts>,
    places: web::Data<Places>,
    user: WebUser,
) -> Result<HttpResponse, PageError> {
    let principal = &user.0;
    let now = accounts.now();
    let account = find_user(&accounts, &principal.user_id).await?;
    let live = login_sessions::list_live(&accounts.db, &principal.user_id, now).await?;
    let ended = login_sessions::list_ended_since(&accounts.db, &principal.user_id, now - 30 * 86_400_000, now).await?;
    let recent_events = events::recent(&accounts.db, &principal.user_id, 50).await?;
    let reported = store::reported_devices::list(&accounts.db, &principal.user_id).await?;

    let mut devices_by_id: HashMap<String, String> = live
        .iter()
        .chain(ended.iter())
        .map(|session| (session.id.clone(), describe_device(&session.user_agent)))
        .collect();
    let mut ended_rows = Vec::with_capacity(ended.len());
    for session in &ended {
        let reason = session.end_reason(now).unwrap_or(EndReason::LoggedOut);
        let by = match (&session.revoked_by_session_id, reason) {
            (Some(by), EndReason::SignedOutFromAnotherDevice | EndReason::ReportedNotYou) => {
                if !devices_by_id.contains_key(by)
                    && let Some(found) = login_sessions::find(&accounts.db, by).await?
                {
                    devices_by_id.insert(by.clone(), describe_device(&found.user_agent));
                }
                devices_by_id.get(by).map(|device| format!(" ({device})"))
            }
            _ => None,
        };
        let ended_at = session.ended_at(now).unwrap_or(now);
        ended_rows.push(EndedRow {
            device: describe_device(&session.user_agent),
            kind_label: kind_label(session.kind),
            ip: session.ip.clone(),
            ended_relative: relative_time(ended_at, now),
            ended_exact: exact_time(ended_at),
            ended_iso: iso_time(ended_at),
            reason: format!("{}{}", reason.describe(), by.unwrap_or_default()),
            reported: reason == EndReason::ReportedNotYou,
        });
    }
    // This device first, then the others by last activity (the order `list_live` returns).
    let mut devices: Vec<DeviceRow> = live
        .iter()
        .map(|session| device_row(&places, session, &principal.session_id, &reported, now))
        .collect();
    devices.sort_by_key(|device| !device.current);
    number_look_alikes(&mut devices);
    // Only log-ins after this device's own are this device's to judge (as `account::devices` checks it).
    let own_created_at = live
        .iter()
        .find(|session| session.id == principal.session_id)
        .map_or(i64::MAX, |own| own.created_at);
    let to_judge = |session: &&login_sessions::LoginSession| {
        session.new_device && crate::account::logged_in_after(session, own_created_at, &principal.session_id)
    };
    let mut new_devices = Vec::new();
    for session in live.iter().filter(to_judge) {
        let Some(row) = devices.iter().find(|device| device.id == session.id) else {
            continue;
        };
        let seen_before =
            login_sessions::devices_before(&accounts.db, &principal.user_id, session.created_at, &session.id).await?;
        new_devices.push(DeviceRow {
            what_was_new: what_was_new(session, row.reported, &seen_before),
            ..row.clone()
        });
    }
    // A log-in is red while its device is still unrecognised (and not the one reading this).
    let unrecognised: Vec<&str> = live
        .iter()
        .chain(ended.iter())
        .filter(to_judge)
        .map(|session| session.id.as_str())
        .collect();
    let events = recent_events
        .iter()
        .map(|event| {
            let (description, warning) = describe_event(event);
            let unrecognised_log_in =
                event.kind == "logged_in" && event.session_id.as_deref().is_some_and(|id| unrecognised.contains(&id));
            EventRow {
                description,
                device: describe_device(&event.user_agent),
                ip: event.ip.clone(),
                when_relative: relative_time(event.created_at, now),
                when_exact: exact_time(event.created_at),
                when_iso: iso_time(event.created_at),
                warning: warning || unrecognised_log_in,
            }
        })
        .collect();
    let other_count = devices.iter().filter(|device| !device.current).count();
    render(&DashboardPage {
        layout: Layout::new(user.session(), Some(account.email))?,
        devices,
        any_reported: new_devices.iter().any(|device| device.reported),
        new_devices,
        other_count,
        ended: ended_rows,
        events,
        failed_logins: events::failed_logins_since_last_visit(&accounts.db, &principal.user_id, &principal.session_id)
            .await?,
        second_factor: crate::routes::web::second_factor::DashboardSection::of(&accounts, &principal.user_id).await?,
        email_verified: account.email_verified_at.is_some(),
    })
}
