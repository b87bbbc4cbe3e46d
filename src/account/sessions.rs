//! Ending the caller's login sessions: this one, one other, all the others, or all of them.

use super::{count_devices, record};
use crate::account::Accounts;
use crate::auth::client::describe_device;
use crate::auth::strategy::Principal;
use crate::domain::SessionId;
use crate::error::ApiError;
use crate::store::events::{EventKind, Origin};
use crate::store::login_sessions::{self, EndReason};

/// Ends the caller's own login session (log out); `how` says which kind, for the activity list.
pub async fn log_out(accounts: &Accounts, principal: &Principal, origin: &Origin, how: &str) -> Result<(), ApiError> {
    accounts
        .revocation
        .revoke_session(&principal.session_id, EndReason::LoggedOut, Some(&principal.session_id))
        .await?;
    record(accounts, principal, EventKind::LoggedOut, None, origin, how.to_owned()).await
}

/// Revokes one of the caller's own login sessions; any other id, another user's included, is a
/// 404. Returns the device description of what was signed out.
pub async fn revoke_own_session(
    accounts: &Accounts,
    principal: &Principal,
    session_id: &str,
    origin: &Origin,
) -> Result<String, ApiError> {
    let session_id = SessionId::parse(session_id).ok_or(ApiError::NotFound)?;
    let target = login_sessions::find(&accounts.db, session_id.as_str())
        .await?
        .filter(|session| session.user_id == principal.user_id && session.is_live(accounts.now()))
        .ok_or(ApiError::NotFound)?;
    let own = target.id == principal.session_id;
    let (reason, kind) = if own {
        (EndReason::LoggedOut, EventKind::LoggedOut)
    } else {
        (EndReason::SignedOutFromAnotherDevice, EventKind::DeviceSignedOut)
    };
    accounts
        .revocation
        .revoke_session(&target.id, reason, Some(&principal.session_id))
        .await?;
    let device = describe_device(&target.user_agent);
    record(accounts, principal, kind, Some(&target.id), origin, device.clone()).await?;
    Ok(device)
}

/// Every login session but the caller's; returns how many.
pub async fn sign_out_other_devices(
    accounts: &Accounts,
    principal: &Principal,
    origin: &Origin,
) -> Result<usize, ApiError> {
    let revoked = accounts
        .revocation
        .revoke_all_sessions(
            &principal.user_id,
            Some(&principal.session_id),
            EndReason::SignedOutFromAnotherDevice,
            Some(&principal.session_id),
            false,
        )
        .await?;
    let count = revoked.sessions.len();
    record(
        accounts,
        principal,
        EventKind::OtherDevicesSignedOut,
        None,
        origin,
        count_devices(count, false),
    )
    .await?;
    Ok(count)
}

/// Bumps `token_version` and revokes every login session, the caller's included; returns how many.
pub async fn log_out_everywhere(
    accounts: &Accounts,
    principal: &Principal,
    origin: &Origin,
) -> Result<usize, ApiError> {
    let revoked = accounts
        .revocation
        .revoke_all_sessions(
            &principal.user_id,
            None,
            EndReason::LoggedOutEverywhere,
            Some(&principal.session_id),
            true,
        )
        .await?;
    let count = revoked.sessions.len();
    record(
        accounts,
        principal,
        EventKind::LoggedOutEverywhere,
        None,
        origin,
        count_devices(count, false),
    )
    .await?;
    Ok(count)
}
