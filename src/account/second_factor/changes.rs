//! Changing two-step verification once it is on: turning it off, or a new set of recovery codes.

use super::{RECOVERY_CODE_COUNT, is_enabled, tell_the_owner};
use crate::account::Accounts;
use crate::account::RecentProof;
use crate::auth::strategy::Principal;
use crate::domain::RecoveryCode;
use crate::error::ApiError;
use crate::mail::messages::Change;
use crate::revocation::SecondFactorChange;
use crate::store::events::{self, EventKind, NewEvent, Origin};
use crate::store::{recovery_codes, totp_factors};

/// Turns two-step verification off after a fresh proof: the authenticator and every recovery
/// code go, and the security activity records it. A 404 when it was not on.
///
/// This is the one place it is turned off; the account's address is told (`tell_the_owner`).
pub async fn disable(
    accounts: &Accounts,
    principal: &Principal,
    _proved: &RecentProof,
    origin: &Origin,
) -> Result<(), ApiError> {
    let mut transaction = accounts.db.begin().await?;
    if !totp_factors::remove(&mut *transaction, &principal.user_id).await? {
        return Err(ApiError::NotFound);
    }
    recovery_codes::remove_all(&mut *transaction, &principal.user_id).await?;
    events::record(
        &mut *transaction,
        NewEvent {
            user_id: &principal.user_id,
            kind: EventKind::SecondFactorDisabled,
            session_id: Some(&principal.session_id),
            other_session_id: None,
            origin,
            detail: String::new(),
        },
    )
    .await?;
    tell_the_owner(
        accounts,
        &mut transaction,
        &principal.user_id,
        Change::TurnedOff,
        origin,
    )
    .await?;
    accounts
        .revocation
        .commit_second_factor_change(transaction, &principal.user_id, SecondFactorChange::Disabled)
        .await?;
    accounts.mailer.wake();
    Ok(())
}

/// A new set of recovery codes after a fresh proof, for an account whose two-step verification
/// is on: every earlier code stops working in the same transaction, the security activity
/// records it, and the account's address is told. Returned here once; only hashes are kept.
/// A 404 when two-step verification is not on.
pub async fn replace_recovery_codes(
    accounts: &Accounts,
    principal: &Principal,
    _proved: &RecentProof,
    origin: &Origin,
) -> Result<Vec<String>, ApiError> {
    if !is_enabled(accounts, &principal.user_id).await? {
        return Err(ApiError::NotFound);
    }
    let now = accounts.now();
    let codes: Vec<RecoveryCode> = (0..RECOVERY_CODE_COUNT).map(|_| RecoveryCode::generate()).collect();
    let hashes: Vec<String> = codes.iter().map(RecoveryCode::hash).collect();
    // Counted before the transaction, whose first statement is then a write: on SQLite a
    // transaction that reads first and writes after another connection's commit (the outbox
    // sending the enrolment's email, say) is refused as a stale snapshot instead of waiting.
    let earlier_unused = recovery_codes::count_unused(&accounts.db, &principal.user_id).await?;
    let mut transaction = accounts.db.begin().await?;
    recovery_codes::replace_all(&mut transaction, &principal.user_id, &hashes, now).await?;
    events::record(
        &mut *transaction,
        NewEvent {
            user_id: &principal.user_id,
            kind: EventKind::RecoveryCodesReplaced,
            session_id: Some(&principal.session_id),
            other_session_id: None,
            origin,
            detail: format!("{RECOVERY_CODE_COUNT} new codes; the {earlier_unused} unused earlier ones no longer work"),
        },
    )
    .await?;
    tell_the_owner(
        accounts,
        &mut transaction,
        &principal.user_id,
        Change::RecoveryCodesReplaced,
        origin,
    )
    .await?;
    accounts
        .revocation
        .commit_second_factor_change(
            transaction,
            &principal.user_id,
            SecondFactorChange::RecoveryCodesReplaced,
        )
        .await?;
    accounts.mailer.wake();
    Ok(codes.iter().map(RecoveryCode::display).collect())
}
