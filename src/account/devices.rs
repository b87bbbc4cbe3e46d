//! An earlier device's verdict on a later one: "this wasn't me" or "it was me".

use super::record;
use crate::account::Accounts;
use crate::auth::client::describe_device;
use crate::auth::strategy::Principal;
use crate::error::ApiError;
use crate::store::events::{EventKind, Origin};
use crate::store::login_sessions::{self, EndReason};
use crate::store::{self};

/// One of the caller's other live login sessions that logged in *after* the caller's own: only an
/// earlier device judges a later one, so a device that logged in later (perhaps with a stolen
/// password) can never report or vouch for the owner's earlier ones. Its own, an earlier one,
/// another user's or an ended one is a 404.
async fn later_live_session(
    accounts: &Accounts,
    principal: &Principal,
    session_id: &str,
) -> Result<login_sessions::LoginSession, ApiError> {
    let own_created_at = login_sessions::find(&accounts.db, &principal.session_id)
        .await?
        .map(|own| own.created_at)
        .ok_or(ApiError::NotFound)?;
    login_sessions::find(&accounts.db, session_id)
        .await?
        .filter(|session| {
            session.user_id == principal.user_id
                && session.id != principal.session_id
                && session.is_live(accounts.now())
                && logged_in_after(session, own_created_at, &principal.session_id)
        })
        .ok_or(ApiError::NotFound)
}

/// Whether `session` logged in after the device that opened `own_session_id` at `own_created_at`;
/// two log-ins in the same millisecond are ordered by id, so exactly one of them may judge the other.
pub fn logged_in_after(session: &login_sessions::LoginSession, own_created_at: i64, own_session_id: &str) -> bool {
    (session.created_at, session.id.as_str()) > (own_created_at, own_session_id)
}

/// "This wasn't me": signs the device out, records the report, and stops treating its
/// browser/OS and address pair as known, so that a later log-in from it is flagged again.
/// Returns the device description.
pub async fn report_not_you(
    accounts: &Accounts,
    principal: &Principal,
    session_id: &str,
    origin: &Origin,
) -> Result<String, ApiError> {
    let target = later_live_session(accounts, principal, session_id).await?;
    accounts
        .revocation
        .revoke_session(&target.id, EndReason::ReportedNotYou, Some(&principal.session_id))
        .await?;
    let device = describe_device(&target.user_agent);
    store::reported_devices::report(&accounts.db, &principal.user_id, &device, &target.ip, accounts.now()).await?;
    let detail = format!("{device} from {}", target.ip);
    record(
        accounts,
        principal,
        EventKind::ReportedNotYou,
        Some(&target.id),
        origin,
        detail,
    )
    .await?;
    Ok(device)
}

/// "It was me": the device is marked known, and its pair is no longer reported. Returns the
/// device description.
pub async fn recognise_device(
    accounts: &Accounts,
    principal: &Principal,
    session_id: &str,
    origin: &Origin,
) -> Result<String, ApiError> {
    let target = later_live_session(accounts, principal, session_id).await?;
    let device = describe_device(&target.user_agent);
    login_sessions::mark_known(&accounts.db, &target.id).await?;
    store::reported_devices::forget(&accounts.db, &principal.user_id, &device, &target.ip).await?;
    let detail = format!("{device} from {}", target.ip);
    record(
        accounts,
        principal,
        EventKind::DeviceRecognised,
        Some(&target.id),
        origin,
        detail,
    )
    .await?;
    Ok(device)
}
