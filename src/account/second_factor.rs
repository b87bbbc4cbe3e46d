//! Two-step verification of an account: enrolling an authenticator app (TOTP) with recovery
//! codes, the second step of both ways of logging in, codes as a re-authentication proof, and
//! turning it off. The JSON and the HTML routes both call these.
//!
//! Codes are counted like passwords (`auth::throttle`), before they are checked: at log-in against
//! the account's own second-factor key, which only a right code resets (a right password does
//! not, so knowing the password buys no extra guesses); in re-authentication against the caller's
//! login session, as its passwords are.

use crate::account::Proof;
use crate::auth::strategy::Principal;
use crate::auth::{throttle, totp};
use crate::domain::{MfaToken, RecoveryCode, SecondFactorCode, now_millis};
use crate::error::{ApiError, LockedOut};
use crate::mail::messages::Change;
use crate::revocation::SecondFactorChange;
use crate::state::AppState;
use crate::store::events::{self, EventKind, NewEvent, Origin};
use crate::store::users::User;
use crate::store::{self, mfa_challenges, recovery_codes, totp_factors};

/// How long an `mfa_token` (or a browser's pending second step) waits for its code.
pub const MFA_TOKEN_TTL_MILLIS: i64 = 5 * 60 * 1000;
/// Wrong codes one `mfa_token` allows; the last of them spends it.
pub const MAX_WRONG_CODES_PER_LOG_IN: i64 = 5;
/// How long a started enrolment waits for its first code.
pub const ENROLMENT_TTL_MILLIS: i64 = 15 * 60 * 1000;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// What the dashboard shows.
pub struct Status {
    /// When the authenticator was confirmed; `None` while two-step verification is off.
    pub enabled_since: Option<i64>,
    pub recovery_codes_left: i64,
}

pub async fn status(state: &AppState, user_id: &str) -> Result<Status, ApiError> {
    let enabled_since = totp_factors::find(&state.db, user_id)
        .await?
        .and_then(|factor| factor.confirmed_at);
    let recovery_codes_left = match enabled_since {
        Some(_) => recovery_codes::count_unused(&state.db, user_id).await?,
        None => 0,
    };
    Ok(Status {
        enabled_since,
        recovery_codes_left,
    })
}

pub async fn is_enabled(state: &AppState, user_id: &str) -> Result<bool, ApiError> {
    Ok(totp_factors::find(&state.db, user_id)
        .await?
        .is_some_and(|factor| factor.confirmed_at.is_some()))
}

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

async fn find_user(state: &AppState, user_id: &str) -> Result<User, ApiError> {
    store::users::find_by_id(&state.db, user_id)
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
    state: &AppState,
    principal: &Principal,
    proof: Proof,
    origin: &Origin,
) -> Result<Enrolment, ApiError> {
    crate::account::require_recent_proof(state, principal, proof, origin).await?;
    let user = find_user(state, &principal.user_id).await?;
    let secret = totp::new_secret();
    let sealed = state.totp_sealing.seal(&user.id, &secret)?;
    if !totp_factors::start_enrolment(&state.db, &user.id, &sealed, now_millis()).await? {
        return Err(already_on());
    }
    Enrolment::of(&secret, &user.email)
}

/// The enrolment waiting for its first code, to show again; `None` when there is none (or it expired).
pub async fn pending_enrolment(state: &AppState, user_id: &str) -> Result<Option<Enrolment>, ApiError> {
    let Some(factor) = totp_factors::find(&state.db, user_id).await? else {
        return Ok(None);
    };
    if factor.confirmed_at.is_some() || now_millis() - factor.created_at > ENROLMENT_TTL_MILLIS {
        return Ok(None);
    }
    let user = find_user(state, user_id).await?;
    let Some(secret) = open_secret(state, user_id, &factor.sealed_secret) else {
        return Ok(None);
    };
    Ok(Some(Enrolment::of(&secret, &user.email)?))
}

/// A right code from the new authenticator turns two-step verification on and makes the ten
/// recovery codes, returned here once (only their hashes are kept). A wrong code is a 422 on
/// `code`: the caller is logged in, so it is a form field that is wrong, not a credential.
pub async fn confirm_enrolment(
    state: &AppState,
    principal: &Principal,
    code: &str,
    origin: &Origin,
) -> Result<Vec<String>, ApiError> {
    let now = now_millis();
    let factor = match totp_factors::find(&state.db, &principal.user_id).await? {
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
    let Some(secret) = open_secret(state, &principal.user_id, &factor.sealed_secret) else {
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
    let mut transaction = state.db.begin().await?;
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
    tell_the_owner(state, &mut transaction, &principal.user_id, Change::TurnedOn, origin).await?;
    state
        .revocation
        .commit_second_factor_change(transaction, &principal.user_id, SecondFactorChange::Enabled)
        .await?;
    state.mailer.wake();
    Ok(codes.iter().map(RecoveryCode::display).collect())
}

/// Turns two-step verification off after a fresh proof: the authenticator and every recovery
/// code go, and the security activity records it. A 404 when it was not on.
///
/// This is the one place it is turned off; the account's address is told (`tell_the_owner`).
pub async fn disable(state: &AppState, principal: &Principal, proof: Proof, origin: &Origin) -> Result<(), ApiError> {
    crate::account::require_recent_proof(state, principal, proof, origin).await?;
    let mut transaction = state.db.begin().await?;
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
    tell_the_owner(state, &mut transaction, &principal.user_id, Change::TurnedOff, origin).await?;
    state
        .revocation
        .commit_second_factor_change(transaction, &principal.user_id, SecondFactorChange::Disabled)
        .await?;
    state.mailer.wake();
    Ok(())
}

/// A new set of recovery codes after a fresh proof, for an account whose two-step verification
/// is on: every earlier code stops working in the same transaction, the security activity
/// records it, and the account's address is told. Returned here once; only hashes are kept.
/// A 404 when two-step verification is not on.
pub async fn replace_recovery_codes(
    state: &AppState,
    principal: &Principal,
    proof: Proof,
    origin: &Origin,
) -> Result<Vec<String>, ApiError> {
    crate::account::require_recent_proof(state, principal, proof, origin).await?;
    if !is_enabled(state, &principal.user_id).await? {
        return Err(ApiError::NotFound);
    }
    let now = now_millis();
    let codes: Vec<RecoveryCode> = (0..RECOVERY_CODE_COUNT).map(|_| RecoveryCode::generate()).collect();
    let hashes: Vec<String> = codes.iter().map(RecoveryCode::hash).collect();
    // Counted before the transaction, whose first statement is then a write: on SQLite a
    // transaction that reads first and writes after another connection's commit (the outbox
    // sending the enrolment's email, say) is refused as a stale snapshot instead of waiting.
    let earlier_unused = recovery_codes::count_unused(&state.db, &principal.user_id).await?;
    let mut transaction = state.db.begin().await?;
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
        state,
        &mut transaction,
        &principal.user_id,
        Change::RecoveryCodesReplaced,
        origin,
    )
    .await?;
    state
        .revocation
        .commit_second_factor_change(
            transaction,
            &principal.user_id,
            SecondFactorChange::RecoveryCodesReplaced,
        )
        .await?;
    state.mailer.wake();
    Ok(codes.iter().map(RecoveryCode::display).collect())
}

/// An email to the account's address that two-step verification was turned on or off, or its
/// recovery codes replaced, queued in
/// the change's own transaction (`mail::enqueue`): whoever holds a stolen session cannot quietly
/// turn it off, nor turn it on to lock the owner out, without the owner hearing of it.
async fn tell_the_owner(
    state: &AppState,
    transaction: &mut store::Transaction<'_>,
    user_id: &str,
    change: Change,
    origin: &Origin,
) -> Result<(), ApiError> {
    let user = store::users::find_by_id(&mut **transaction, user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let when = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now_millis())
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    let device = crate::auth::client::describe_device(&origin.user_agent);
    let reset_link = state.mailer.link("/password/forgot");
    let message = crate::mail::messages::second_factor_changed(
        &user.email,
        &crate::mail::messages::SecondFactorChange {
            change,
            when: &when,
            device: &device,
            ip: &origin.ip,
            reset_link: &reset_link,
        },
    )?;
    crate::mail::enqueue(&mut **transaction, &message).await?;
    Ok(())
}

/// The stored secret, or `None` (logged, without the secret) when it does not open: sealed under
/// another `MFA_ENCRYPTION_KEY`, or damaged. Its owner's TOTP codes are then refused, and a
/// recovery code still logs in, so that they can enrol again.
fn open_secret(state: &AppState, user_id: &str, sealed: &str) -> Option<Vec<u8>> {
    match state.totp_sealing.open(user_id, sealed) {
        Ok(secret) => Some(secret),
        Err(error) => {
            tracing::error!(user_id, error = %error, "a stored TOTP secret does not open");
            None
        }
    }
}

enum Checked {
    Totp,
    Recovery,
    Wrong,
}

/// A TOTP code of a step newer than the last one accepted (spent here by moving the replay
/// guard), or an unused recovery code (spent here). Without a confirmed authenticator every
/// code is wrong.
async fn check_code(state: &AppState, user_id: &str, raw: &str) -> Result<Checked, ApiError> {
    let Some(factor) = totp_factors::find(&state.db, user_id)
        .await?
        .filter(|factor| factor.confirmed_at.is_some())
    else {
        return Ok(Checked::Wrong);
    };
    let now = now_millis();
    match SecondFactorCode::parse(raw) {
        None => Ok(Checked::Wrong),
        Some(SecondFactorCode::Totp(code)) => {
            let Some(secret) = open_secret(state, user_id, &factor.sealed_secret) else {
                return Ok(Checked::Wrong);
            };
            match totp::accepted_step(&secret, &code, (now / 1000) as u64, factor.last_used_step)? {
                Some(step) if totp_factors::accept_step(&state.db, user_id, step as i64).await? => Ok(Checked::Totp),
                _ => Ok(Checked::Wrong),
            }
        }
        Some(SecondFactorCode::Recovery(code)) => {
            if recovery_codes::spend(&state.db, user_id, &code.hash(), now).await? {
                Ok(Checked::Recovery)
            } else {
                Ok(Checked::Wrong)
            }
        }
    }
}

/// The key a log-in's second-factor codes are counted under, apart from its password attempts so
/// that a right password does not wipe out wrong codes: per browser for one the account knows
/// (`auth::known_browser`), so that whoever knows the password cannot lock the owner's own
/// browsers out of the code step, else per account.
fn log_in_key(user_id: &str, known_browser_nonce: Option<&str>) -> String {
    match known_browser_nonce {
        Some(nonce) => format!("second-factor:browser:{nonce}"),
        None => format!("second-factor:{user_id}"),
    }
}

/// How a log-in's code is counted: `None` for a logged-in caller (its session), else the log-in's
/// browser as the account knows it, if it does.
pub enum CodeFrom<'a> {
    Session(&'a str),
    LogIn { known_browser: Option<&'a str> },
}

/// Checks a code under the limit: the attempt is counted first (`auth::throttle`; past the
/// limit, a 429 before any check), a right code takes it back; a wrong one goes into the
/// security activity; a spent recovery code is recorded with how many are left. A log-in's codes
/// (`session_id` `None`) count against the account, a logged-in caller's against its session.
pub async fn code_matches(
    state: &AppState,
    user: &User,
    code: &str,
    from: CodeFrom<'_>,
    origin: &Origin,
) -> Result<bool, ApiError> {
    let session_id = match from {
        CodeFrom::Session(session_id) => Some(session_id),
        CodeFrom::LogIn { .. } => None,
    };
    let (key, counted_as) = match from {
        CodeFrom::Session(session_id) => (throttle::session_key(session_id), LockedOut::ThisSession),
        CodeFrom::LogIn { known_browser } => {
            let nonce = state.known_browsers.recognise(known_browser, user, now_millis());
            (log_in_key(&user.id, nonce.as_deref()), LockedOut::SecondFactor)
        }
    };
    let attempt = throttle::begin(&state.db, state.account_lock(), key, counted_as).await?;
    let checked = check_code(state, &user.id, code).await?;
    if !matches!(checked, Checked::Wrong) {
        attempt.succeeded(&state.db).await?;
    }
    let (kind, detail) = match checked {
        Checked::Totp => return Ok(true),
        Checked::Recovery => {
            let left = recovery_codes::count_unused(&state.db, &user.id).await?;
            (
                EventKind::RecoveryCodeUsed,
                format!("{left} recovery code{} left", if left == 1 { "" } else { "s" }),
            )
        }
        Checked::Wrong => (EventKind::SecondFactorFailed, String::new()),
    };
    events::record(
        &state.db,
        NewEvent {
            user_id: &user.id,
            kind,
            session_id,
            other_session_id: None,
            origin,
            detail,
        },
    )
    .await?;
    Ok(matches!(checked, Checked::Recovery))
}

/// The step between "password verified" and "logged in": for an account with a second factor,
/// a new `mfa_token` (stored hashed, valid `MFA_TOKEN_TTL_MILLIS`) and nothing else; `None` for
/// an account without one, whose log-in goes on.
pub async fn challenge_if_enrolled(state: &AppState, user: &User) -> Result<Option<MfaToken>, ApiError> {
    if !is_enabled(state, &user.id).await? {
        return Ok(None);
    }
    let token = MfaToken::generate();
    let now = now_millis();
    mfa_challenges::insert(&state.db, &token.hash(), &user.id, now, now + MFA_TOKEN_TTL_MILLIS).await?;
    Ok(Some(token))
}

fn challenge_gone() -> ApiError {
    ApiError::InvalidGrant("the mfa_token is not valid, was already used, or has expired: log in again".into())
}

/// The second step of a log-in: the challenge (by its token's hash) must be open and the code
/// right. A right code spends the challenge (single use) and forgets the account's wrong codes; a
/// wrong one is a 401 and counts, and the `MAX_WRONG_CODES_PER_LOG_IN`-th spends the challenge.
/// Returns the user whose login session may now be opened.
pub async fn finish_log_in(
    state: &AppState,
    challenge_hash: &str,
    code: &str,
    known_browser: Option<&str>,
    origin: &Origin,
) -> Result<User, ApiError> {
    let challenge = mfa_challenges::find_open(&state.db, challenge_hash, now_millis())
        .await?
        .ok_or_else(challenge_gone)?;
    let user = store::users::find_by_id(&state.db, &challenge.user_id)
        .await?
        .ok_or_else(challenge_gone)?;
    if !code_matches(state, &user, code, CodeFrom::LogIn { known_browser }, origin).await? {
        let spent =
            mfa_challenges::record_failure(&state.db, challenge_hash, MAX_WRONG_CODES_PER_LOG_IN, now_millis()).await?;
        return Err(ApiError::InvalidGrant(if spent {
            "the code is not correct, and that was the last try for this log-in: log in again".into()
        } else {
            "the code is not correct".into()
        }));
    }
    if !mfa_challenges::spend(&state.db, challenge_hash, now_millis()).await? {
        return Err(challenge_gone());
    }
    if user.locked_at.is_some() {
        // Locked by an operator between the two steps: refused like a password log-in.
        return Err(ApiError::LoginRefused(
            "this account is locked by an administrator; log-ins are refused until it is unlocked".into(),
        ));
    }
    Ok(user)
}

/// Whether the challenge behind a browser's pending second step is still open.
pub async fn challenge_is_open(state: &AppState, challenge_hash: &str) -> Result<bool, ApiError> {
    Ok(mfa_challenges::find_open(&state.db, challenge_hash, now_millis())
        .await?
        .is_some())
}
