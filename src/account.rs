//! What a person does to their own account, whichever way they are logged in: sign up, prove
//! the password, change it, end one login session, the others, or all of them. The JSON and the
//! HTML routes both call these, so the two ways through the product cannot drift apart; each
//! records its security event here, where the change happens.

pub mod second_factor;

use crate::auth::client::describe_device;
use crate::auth::strategy::{AUTHENTICATED_AT_KEY, Credential, Principal};
use crate::auth::{password, throttle};
use crate::domain::{Email, Password, SessionId, now_millis};
use crate::error::{ApiError, LockedOut};
use crate::state::AppState;
use crate::store::events::{self, EventKind, NewEvent, Origin};
use crate::store::login_sessions::{self, EndReason};
use crate::store::users::{Inserted, User};
use crate::store::{self};

/// Records what the caller (`principal`) did.
async fn record(
    state: &AppState,
    principal: &Principal,
    kind: EventKind,
    other_session_id: Option<&str>,
    origin: &Origin,
    detail: String,
) -> Result<(), ApiError> {
    events::record(
        &state.db,
        NewEvent {
            user_id: &principal.user_id,
            kind,
            session_id: Some(&principal.session_id),
            other_session_id,
            origin,
            detail,
        },
    )
    .await?;
    Ok(())
}

/// "1 device", "3 other devices": how the activity list and the flash messages count devices.
pub fn count_devices(count: usize, other: bool) -> String {
    let other = if other { "other " } else { "" };
    format!("{count} {other}{}", if count == 1 { "device" } else { "devices" })
}

/// Creates an account: the email and password rules are the same for the API and the form.
pub async fn create(state: &AppState, email: &str, password: String, origin: &Origin) -> Result<User, ApiError> {
    let email = Email::parse(email).map_err(|message| ApiError::invalid_field("email", message))?;
    let password = Password::parse_new(password, &related_words(email.as_str()))
        .map_err(|message| ApiError::invalid_field("password", message))?;
    let taken = || ApiError::Conflict("an account with this email already exists".into());
    if store::users::find_by_email(&state.db, &email).await?.is_some() {
        return Err(taken());
    }
    let hash = password::hash(password).await?;
    let Inserted::Created(user) = store::users::insert(&state.db, &email, &hash).await? else {
        return Err(taken());
    };
    events::record(
        &state.db,
        NewEvent {
            user_id: &user.id,
            kind: EventKind::Registered,
            session_id: None,
            other_session_id: None,
            origin,
            detail: String::new(),
        },
    )
    .await?;
    Ok(user)
}

/// Words a guesser tries first for an account: its email and the email's local part.
pub fn related_words(email: &str) -> Vec<&str> {
    let local = email.split('@').next().unwrap_or(email);
    vec![email, local]
}

/// A password log-in, either way (form or `/api/token`). The attempt is counted first (against
/// this browser when its device cookie, `known_browser`, is genuine for the account, else against
/// the account) and only then is the password checked; a right one takes the count back. A failure
/// for an existing account is recorded in its security activity. One generic refusal for an
/// unknown email and a wrong password alike; an account an operator locked is refused only once
/// the password proved right, so the refusal tells a guesser nothing.
pub async fn authenticate(
    state: &AppState,
    email: &str,
    password: &str,
    origin: &Origin,
    known_browser: Option<&str>,
) -> Result<User, ApiError> {
    let account = match Email::parse(email) {
        Ok(email) => store::users::find_by_email(&state.db, &email).await?,
        Err(_) => None,
    };
    let recognised = account
        .as_ref()
        .and_then(|user| state.known_browsers.recognise(known_browser, user, now_millis()));
    let (key, counted_as) = match &recognised {
        Some(nonce) => (Some(throttle::known_browser_key(nonce)), LockedOut::ThisBrowser),
        None => (throttle::account_key(email), LockedOut::UnknownClients),
    };
    let attempt = match key {
        Some(key) => Some(throttle::begin(&state.db, state.account_lock(), key, counted_as).await?),
        None => None,
    };
    let stored = account.as_ref().map(|user| user.password_hash.clone());
    let matches = password::verify(password.to_owned(), stored).await?;
    match account.filter(|_| matches) {
        Some(user) => {
            if let Some(attempt) = attempt {
                attempt.succeeded(&state.db).await?;
            }
            if user.locked_at.is_some() {
                return Err(ApiError::LoginRefused(
                    "this account is locked by an administrator; log-ins are refused until it is unlocked".into(),
                ));
            }
            // Asked only once the password is known to be right, so it tells a guesser nothing.
            if user.password_reset_required_at.is_some() {
                return Err(ApiError::PasswordResetRequired(
                    "a password reset is required: this account's sign-ins were reported as not its owner's; \
                     set a new password with the link sent by email, or ask for one at /password/forgot"
                        .into(),
                ));
            }
            Ok(user)
        }
        None => {
            record_failed_login(state, email, origin).await?;
            Err(ApiError::InvalidGrant("the email or password is not correct".into()))
        }
    }
}

/// A wrong password for an existing account goes into that account's security activity.
async fn record_failed_login(state: &AppState, email: &str, origin: &Origin) -> Result<(), ApiError> {
    let Ok(email) = Email::parse(email) else {
        return Ok(());
    };
    if let Some(user) = store::users::find_by_email(&state.db, &email).await? {
        events::record(
            &state.db,
            NewEvent {
                user_id: &user.id,
                kind: EventKind::LoginFailed,
                session_id: None,
                other_session_id: None,
                origin,
                detail: String::new(),
            },
        )
        .await?;
    }
    Ok(())
}

/// Verifies `password` against the account's own, for a logged-in caller. Wrong answers are
/// counted against the caller's login session, with the same limit as log-ins, so a stolen token
/// is no way around it and a guesser elsewhere cannot stop the owner.
pub async fn password_matches(state: &AppState, principal: &Principal, password: String) -> Result<bool, ApiError> {
    let user = store::users::find_by_id(&state.db, &principal.user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let key = throttle::session_key(&principal.session_id);
    let attempt = throttle::begin(&state.db, state.account_lock(), key, LockedOut::ThisSession).await?;
    let matches = password::verify(password, Some(user.password_hash)).await?;
    if matches {
        attempt.succeeded(&state.db).await?;
    }
    Ok(matches)
}

/// When the caller last proved the password: for a browser, at log-in or its last
/// re-authentication; for a Bearer token, when its login session was opened by a password log-in.
pub async fn password_proved_at(state: &AppState, principal: &Principal) -> Result<i64, ApiError> {
    match &principal.credential {
        Credential::Cookie(session) => Ok(session.get::<i64>(AUTHENTICATED_AT_KEY).ok().flatten().unwrap_or(0)),
        Credential::Bearer(_) => Ok(login_sessions::find(&state.db, &principal.session_id)
            .await?
            .map_or(0, |session| session.created_at)),
    }
}

/// What a caller may offer to re-authenticate: the password, or, for an account with two-step
/// verification, a code from its authenticator (or an unused recovery code).
#[derive(Default)]
pub struct Proof {
    pub password: Option<String>,
    pub code: Option<String>,
}

impl Proof {
    pub fn password(password: Option<String>) -> Self {
        Self { password, code: None }
    }
}

/// The re-authentication rule, one for every route: signing out all other devices and logging
/// out everywhere need the password again once its last proof is older than `SUDO_TTL` (a
/// password change and account deletion always ask for it; signing out one device or this one
/// never does). Without the password, or with a wrong one: 403 `reauthentication_required`. A
/// right one renews a browser's proof. A second-factor code may stand in for the password (as in
/// GitHub's sudo mode: either one proves the person is there). When both are sent, the password
/// decides. A code counts towards the same per-account limit as a password.
pub async fn require_recent_proof(
    state: &AppState,
    principal: &Principal,
    proof: Proof,
    origin: &Origin,
) -> Result<(), ApiError> {
    let proved_at = password_proved_at(state, principal).await?;
    if state.revocation.clock().now_millis() - proved_at <= state.settings.sudo_ttl.as_millis() as i64 {
        return Ok(());
    }
    let password = proof.password.filter(|given| !given.is_empty());
    let code = proof.code.filter(|given| !given.trim().is_empty());
    match (password, code) {
        (Some(given), _) => {
            if !password_matches(state, principal, given).await? {
                return Err(ApiError::ReauthenticationRequired("the password is not correct".into()));
            }
        }
        (None, Some(code)) => {
            let user = store::users::find_by_id(&state.db, &principal.user_id)
                .await?
                .ok_or(ApiError::NotFound)?;
            if !second_factor::code_matches(
                state,
                &user,
                &code,
                second_factor::CodeFrom::Session(&principal.session_id),
                origin,
            )
            .await?
            {
                return Err(ApiError::ReauthenticationRequired("the code is not correct".into()));
            }
        }
        (None, None) => {
            return Err(ApiError::ReauthenticationRequired(
                "this action needs your password again: send it as `password` (or, with two-step verification on, \
                 a code as `code`)"
                    .into(),
            ));
        }
    }
    if let Credential::Cookie(session) = &principal.credential {
        session
            .insert(AUTHENTICATED_AT_KEY, state.revocation.clock().now_millis())
            .map_err(|error| ApiError::Internal(anyhow::anyhow!("{error}")))?;
    }
    Ok(())
}

/// Verifies the current password, stores the new one, bumps `token_version` and revokes every
/// other login session; the caller's own survives. Returns how many were signed out.
pub async fn change_password(
    state: &AppState,
    principal: &Principal,
    current: String,
    new: String,
    origin: &Origin,
) -> Result<usize, ApiError> {
    let user = store::users::find_by_id(&state.db, &principal.user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let new = Password::parse_new(new, &related_words(&user.email))
        .map_err(|message| ApiError::invalid_field("new_password", message))?;
    if new.same_as(&current) {
        return Err(ApiError::invalid_field(
            "new_password",
            "the new password must differ from the current one",
        ));
    }
    if !password_matches(state, principal, current).await? {
        return Err(ApiError::invalid_field(
            "current_password",
            "the current password is not correct",
        ));
    }
    let hash = password::hash(new).await?;
    let revoked = state
        .revocation
        .change_password(&principal.user_id, &hash, &principal.session_id)
        .await?;
    let count = revoked.sessions.len();
    let detail = format!("{} signed out", count_devices(count, true));
    record(state, principal, EventKind::PasswordChanged, None, origin, detail).await?;
    Ok(count)
}

/// Ends the caller's own login session (log out); `how` says which kind, for the activity list.
pub async fn log_out(state: &AppState, principal: &Principal, origin: &Origin, how: &str) -> Result<(), ApiError> {
    state
        .revocation
        .revoke_session(&principal.session_id, EndReason::LoggedOut, Some(&principal.session_id))
        .await?;
    record(state, principal, EventKind::LoggedOut, None, origin, how.to_owned()).await
}

/// Revokes one of the caller's own login sessions; any other id, another user's included, is a
/// 404. Returns the device description of what was signed out.
pub async fn revoke_own_session(
    state: &AppState,
    principal: &Principal,
    session_id: &str,
    origin: &Origin,
) -> Result<String, ApiError> {
    let session_id = SessionId::parse(session_id).ok_or(ApiError::NotFound)?;
    let target = login_sessions::find(&state.db, session_id.as_str())
        .await?
        .filter(|session| session.user_id == principal.user_id && session.is_live(now_millis()))
        .ok_or(ApiError::NotFound)?;
    let own = target.id == principal.session_id;
    let (reason, kind) = if own {
        (EndReason::LoggedOut, EventKind::LoggedOut)
    } else {
        (EndReason::SignedOutFromAnotherDevice, EventKind::DeviceSignedOut)
    };
    state
        .revocation
        .revoke_session(&target.id, reason, Some(&principal.session_id))
        .await?;
    let device = describe_device(&target.user_agent);
    record(state, principal, kind, Some(&target.id), origin, device.clone()).await?;
    Ok(device)
}

/// One of the caller's other live login sessions that logged in *after* the caller's own: only an
/// earlier device judges a later one, so a device that logged in later (perhaps with a stolen
/// password) can never report or vouch for the owner's earlier ones. Its own, an earlier one,
/// another user's or an ended one is a 404.
async fn later_live_session(
    state: &AppState,
    principal: &Principal,
    session_id: &str,
) -> Result<login_sessions::LoginSession, ApiError> {
    let own_created_at = login_sessions::find(&state.db, &principal.session_id)
        .await?
        .map(|own| own.created_at)
        .ok_or(ApiError::NotFound)?;
    login_sessions::find(&state.db, session_id)
        .await?
        .filter(|session| {
            session.user_id == principal.user_id
                && session.id != principal.session_id
                && session.is_live(now_millis())
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
    state: &AppState,
    principal: &Principal,
    session_id: &str,
    origin: &Origin,
) -> Result<String, ApiError> {
    let target = later_live_session(state, principal, session_id).await?;
    state
        .revocation
        .revoke_session(&target.id, EndReason::ReportedNotYou, Some(&principal.session_id))
        .await?;
    let device = describe_device(&target.user_agent);
    store::reported_devices::report(&state.db, &principal.user_id, &device, &target.ip, now_millis()).await?;
    let detail = format!("{device} from {}", target.ip);
    record(
        state,
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
    state: &AppState,
    principal: &Principal,
    session_id: &str,
    origin: &Origin,
) -> Result<String, ApiError> {
    let target = later_live_session(state, principal, session_id).await?;
    let device = describe_device(&target.user_agent);
    login_sessions::mark_known(&state.db, &target.id).await?;
    store::reported_devices::forget(&state.db, &principal.user_id, &device, &target.ip).await?;
    let detail = format!("{device} from {}", target.ip);
    record(
        state,
        principal,
        EventKind::DeviceRecognised,
        Some(&target.id),
        origin,
        detail,
    )
    .await?;
    Ok(device)
}

/// Every login session but the caller's; returns how many.
pub async fn sign_out_other_devices(
    state: &AppState,
    principal: &Principal,
    origin: &Origin,
) -> Result<usize, ApiError> {
    let revoked = state
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
        state,
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
pub async fn log_out_everywhere(state: &AppState, principal: &Principal, origin: &Origin) -> Result<usize, ApiError> {
    let revoked = state
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
        state,
        principal,
        EventKind::LoggedOutEverywhere,
        None,
        origin,
        count_devices(count, false),
    )
    .await?;
    Ok(count)
}

/// After checking the password: every login session is revoked first (tokens denylisted, cookie
/// state deleted), then the user row and, by cascade, everything that belonged to it.
pub async fn delete(state: &AppState, principal: &Principal, password: String) -> Result<(), ApiError> {
    if !password_matches(state, principal, password).await? {
        return Err(ApiError::invalid_field("password", "the password is not correct"));
    }
    state
        .revocation
        .delete_user(&principal.user_id, Some(&principal.session_id))
        .await?;
    Ok(())
}

/// What an operator does to an account from the command line (`revocable users …`); each is
/// recorded in the account's security activity, where its owner reads it.
pub mod operator {
    use super::{ApiError, AppState, EventKind, NewEvent, Origin, User, count_devices, events, store};
    use crate::domain::Email;
    use crate::store::login_sessions::{self, EndReason, LoginSession};

    /// Where an operator's actions are recorded as coming from.
    fn operator_origin() -> Origin {
        Origin {
            ip: "-".to_owned(),
            user_agent: "revocable users (operator)".to_owned(),
        }
    }

    async fn record(state: &AppState, user: &User, kind: EventKind, detail: String) -> Result<(), ApiError> {
        events::record(
            &state.db,
            NewEvent {
                user_id: &user.id,
                kind,
                session_id: None,
                other_session_id: None,
                origin: &operator_origin(),
                detail,
            },
        )
        .await?;
        Ok(())
    }

    /// The account with this email; a clear error when there is none.
    pub async fn find(state: &AppState, email: &str) -> Result<User, ApiError> {
        let parsed = Email::parse(email).map_err(|message| ApiError::invalid_field("email", message))?;
        store::users::find_by_email(&state.db, &parsed)
            .await?
            .ok_or_else(|| ApiError::BadRequest(format!("no account with the email {email:?}")))
    }

    /// What `users show` prints.
    pub struct Overview {
        pub user: User,
        pub email_verified_at: Option<i64>,
        /// Password log-ins refused until a reset through email ("this wasn't me").
        pub password_reset_required_at: Option<i64>,
        pub second_factor: bool,
        pub live: Vec<LoginSession>,
        pub recent: Vec<events::SecurityEvent>,
    }

    pub async fn show(state: &AppState, email: &str) -> Result<Overview, ApiError> {
        let user = find(state, email).await?;
        let live = login_sessions::list_live(&state.db, &user.id, crate::domain::now_millis()).await?;
        let recent = events::recent(&state.db, &user.id, 10).await?;
        Ok(Overview {
            email_verified_at: user.email_verified_at,
            password_reset_required_at: user.password_reset_required_at,
            second_factor: super::second_factor::is_enabled(state, &user.id).await?,
            user,
            live,
            recent,
        })
    }

    /// Ends every login session and bumps `token_version`; returns how many were signed out.
    pub async fn sign_out(state: &AppState, email: &str) -> Result<usize, ApiError> {
        let user = find(state, email).await?;
        let revoked = state
            .revocation
            .revoke_all_sessions(&user.id, None, EndReason::SignedOutByAdmin, None, true)
            .await?;
        let count = revoked.sessions.len();
        record(state, &user, EventKind::SignedOutByAdmin, count_devices(count, false)).await?;
        Ok(count)
    }

    /// Refuses log-ins and signs every device out; returns how many were signed out.
    pub async fn lock(state: &AppState, email: &str) -> Result<usize, ApiError> {
        let user = find(state, email).await?;
        let revoked = state.revocation.lock_account(&user.id).await?.unwrap_or_default();
        let count = revoked.sessions.len();
        record(state, &user, EventKind::AccountLocked, count_devices(count, false)).await?;
        Ok(count)
    }

    /// Allows log-ins again. Nothing that was signed out comes back: each device logs in anew.
    pub async fn unlock(state: &AppState, email: &str) -> Result<bool, ApiError> {
        let user = find(state, email).await?;
        let was_locked = user.locked_at.is_some();
        store::users::set_locked(&state.db, &user.id, None).await?;
        if was_locked {
            record(state, &user, EventKind::AccountUnlocked, String::new()).await?;
        }
        Ok(was_locked)
    }
}
