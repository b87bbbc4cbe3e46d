//! Turning two-step verification on: a new authenticator's secret, shown until its first right
//! code confirms it and makes the recovery codes.

use super::{ENROLMENT_TTL_MILLIS, RECOVERY_CODE_COUNT, open_secret, tell_the_owner};
use crate::account::Accounts;
use crate::account::RecentProof;
use crate::auth::strategy::Principal;
use crate::auth::totp;
use crate::domain::{RecoveryCode, SecondFactorCode};
use crate::error::ApiError;
use crate::mail::messages::Change;
use crate::revocation::SecondFactorChange;
use crate::store::events::{self, EventKind, NewEvent, Origin};
use crate::store::users::User;
use crate::store::{self, recovery_codes, totp_factors};

/// A started enrolment: the secret as text to type in, and the URI its QR code carries.
pub struct Enrolment {
    pub secret: String,
    pub otpauth_uri: String,
}

impl Enrolment {
    fn of(secret: &[u8], email: &str) -> Result<Self, ApiError> {
        Ok(Self {
            secret: totp::secret_text(secret),
            otpauth_uri: totp::otpauth_uri(secret, email)?,
        })
    }

    /// The QR code of the URI, as an inline SVG element.
    pub fn qr_svg(&self) -> Result<String, ApiError> {
        Ok(totp::qr_svg(&self.otpauth_uri)?)
    }
}

async fn find_user(accounts: &Accounts, user_id: &str) -> Result<User, ApiError> {
    store::users::find_by_id(&accounts.db, user_id)
        .await?
        .ok_or(ApiError::NotFound)
}

fn already_on() -> ApiError {
    ApiError::Conflict("two-step verification is already on: turn it off first to set up another authenticator".into())
}

/// Starts enrolment after a fresh proof (`account::require_recent_proof`): a new secret, stored
/// sealed and pending until `confirm_enrolment` sees a right code. A second start replaces a
/// pending one; with an authenticator already confirmed it is a 409.
pub async fn start_enrolment(
    accounts: &Accounts,
    principal: &Principal,
    _proved: &RecentProof,
) -> Result<Enrolment, ApiError> {
    let user = find_user(accounts, &principal.user_id).await?;
    let secret = totp::new_secret();
    let sealed = accounts.totp_sealing.seal(&user.id, &secret)?;
    if !totp_factors::start_enrolment(&accounts.db, &user.id, &sealed, accounts.now()).await? {
        return Err(already_on());
    }
    Enrolment::of(&secret, &user.email)
}

/// The enrolment waiting for its first code, to show again; `None` when there is none (or it expired).
pub async fn pending_enrolment(accounts: &Accounts, user_id: &str) -> Result<Option<Enrolment>, ApiError> {
    let Some(factor) = totp_factors::find(&accounts.db, user_id).await? else {
        return Ok(None);
    };
    if factor.confirmed_at.is_some() || accounts.now() - factor.created_at > ENROLMENT_TTL_MILLIS {
        return Ok(None);
    }
    let user = find_user(accounts, user_id).await?;
    let Some(secret) = open_secret(accounts, user_id, &factor.sealed_secret) else {
        return Ok(None);
    };
    Ok(Some(Enrolment::of(&secret, &user.email)?))
}

/// A right code from the new authenticator turns two-step verification on and makes the ten
/// recovery codes, returned here once (only their hashes are kept). A wrong code is a 422 on
/// `code`: the caller is logged in, so it is a form field that is wrong, not a credential.
pub async fn confirm_enrolment(
    accounts: &Accounts,
    principal: &Principal,
    code: &str,
    origin: &Origin,
) -> Result<Vec<String>, ApiError> {
    let now = accounts.now();
    let factor = match totp_factors::find(&accounts.db, &principal.user_id).await? {
        Some(factor) if factor.confirmed_at.is_some() => return Err(already_on()),
        Some(factor) if now - factor.created_at <= ENROLMENT_TTL_MILLIS => factor,
        _ => {
            return Err(ApiError::Conflict(
                "no enrolment is waiting for a code: start one again".into(),
            ));
        }
    };
    let Some(SecondFactorCode::Totp(code)) = SecondFactorCode::parse(code) else {
        return Err(ApiError::invalid_field(
            "code",
            "enter the 6-digit code your authenticator app shows",
        ));
    };
    let Some(secret) = open_secret(accounts, &principal.user_id, &factor.sealed_secret) else {
        return Err(ApiError::Conflict(
            "the started enrolment can no longer be read: start one again".into(),
        ));
    };
    let Some(step) = totp::accepted_step(&secret, &code, (now / 1000) as u64, 0)? else {
        return Err(ApiError::invalid_field(
            "code",
            "that code is not right: check that the app shows this account and that the device's clock is right",
        ));
    };
    let codes: Vec<RecoveryCode> = (0..RECOVERY_CODE_COUNT).map(|_| RecoveryCode::generate()).collect();
    let hashes: Vec<String> = codes.iter().map(RecoveryCode::hash).collect();
    let mut transaction = accounts.db.begin().await?;
    if !totp_factors::confirm(&mut *transaction, &principal.user_id, step as i64, now).await? {
        return Err(already_on());
    }
    recovery_codes::replace_all(&mut transaction, &principal.user_id, &hashes, now).await?;
    events::record(
        &mut *transaction,
        NewEvent {
            user_id: &principal.user_id,
            kind: EventKind::SecondFactorEnabled,
            session_id: Some(&principal.session_id),
            other_session_id: None,
            origin,
            detail: format!("authenticator app; {RECOVERY_CODE_COUNT} recovery codes"),
        },
    )
    .await?;
    tell_the_owner(accounts, &mut transaction, &principal.user_id, Change::TurnedOn, origin).await?;
    accounts
        .revocation
        .commit_second_factor_change(transaction, &principal.user_id, SecondFactorChange::Enabled)
        .await?;
    accounts.mailer.wake();
    Ok(codes.iter().map(RecoveryCode::display).collect())
}
