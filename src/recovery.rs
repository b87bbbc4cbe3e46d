//! Recovering an account by email: verifying the address, the forgotten password, and "this
//! wasn't me" from a new-sign-in email. The JSON and HTML routes both call these; each records
//! its security event here, where the change happens.
//!
//! Every link is a `LinkToken` stored only as its SHA-256 and spent by a conditional UPDATE: a
//! verification link works once for `VERIFY_TTL`, a reset link once for `RESET_TTL` (and a reset
//! spends every other reset link of the account), a "this wasn't me" link once for
//! `auth::sign_in_mail::NOT_ME_TTL`.
//!
//! Asking for a reset answers the same whether or not the address has an account, and does the
//! same work either way: one token made and hashed, one lookup, one transaction that enqueues one
//! message (the reset link, or — for an address without an account — a note saying so to that
//! address), one wake-up. Only the token row differs, inside the same transaction; no password
//! is hashed on either path.

use std::time::Duration;

use crate::account::Accounts;
use crate::account::related_words;
use crate::auth::client::describe_device;
use crate::auth::rate_limit::Decision;
use crate::auth::{password, throttle};
use crate::domain::{Email, LinkToken, Password};
use crate::error::ApiError;
use crate::mail::{self, messages};
use crate::store::email_tokens::{self, NewToken, Purpose};
use crate::store::events::{self, EventKind, NewEvent, Origin};
use crate::store::login_sessions::{self, LoginSession};
use crate::store::users::User;
use crate::store::{self, Transaction};

/// How long a verification link works.
pub const VERIFY_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a reset link works.
pub const RESET_TTL: Duration = Duration::from_secs(30 * 60);

fn link_used_or_expired(what: &str) -> ApiError {
    ApiError::InvalidLinkToken(format!("this {what} link is unknown, has been used or has expired"))
}

async fn record(
    accounts: &Accounts,
    user_id: &str,
    kind: EventKind,
    origin: &Origin,
    detail: String,
) -> Result<(), ApiError> {
    events::record(
        &accounts.db,
        NewEvent {
            user_id,
            kind,
            session_id: None,
            other_session_id: None,
            origin,
            detail,
        },
    )
    .await?;
    Ok(())
}

/// Stores a new link of `purpose` for the user, inside `transaction`; returns its token.
async fn store_link(
    transaction: &mut Transaction<'_>,
    user_id: &str,
    purpose: Purpose,
    valid_for: Duration,
    now: i64,
) -> Result<LinkToken, ApiError> {
    let token = LinkToken::generate();
    email_tokens::insert(
        &mut **transaction,
        NewToken {
            token_hash: &token.hash(),
            user_id,
            purpose,
            login_session_id: None,
            created_at: now,
            expires_at: now + valid_for.as_millis() as i64,
        },
    )
    .await?;
    Ok(token)
}

/// Sends the verification link to a new account's address.
pub async fn send_verification(accounts: &Accounts, user: &User) -> Result<(), ApiError> {
    let mut transaction = accounts.db.begin().await?;
    let token = store_link(
        &mut transaction,
        &user.id,
        Purpose::VerifyEmail,
        VERIFY_TTL,
        accounts.now(),
    )
    .await?;
    let link = accounts.mailer.link(&format!("/verify-email?token={}", token.expose()));
    let message = messages::verify_email(&user.email, &link, VERIFY_TTL.as_secs() / 3600)?;
    mail::enqueue(&mut *transaction, &message).await?;
    transaction.commit().await?;
    accounts.mailer.wake();
    Ok(())
}

/// What "send the link again" did.
pub enum Resent {
    Sent,
    AlreadyVerified,
}

/// "Send the link again" from the dashboard: limited per account like every message asked for.
pub async fn resend_verification(accounts: &Accounts, user_id: &str) -> Result<Resent, ApiError> {
    let user = store::users::find_by_id(&accounts.db, user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if store::users::email_verified_at(&accounts.db, user_id).await?.is_some() {
        return Ok(Resent::AlreadyVerified);
    }
    if let Decision::Limited { retry_after_seconds } = accounts.mail_limit.attempt(&format!("verify:{user_id}")).await {
        return Err(ApiError::RateLimited { retry_after_seconds });
    }
    send_verification(accounts, &user).await?;
    Ok(Resent::Sent)
}

/// `GET /verify-email?token=…`: spends the link and marks the address verified; returns it.
pub async fn verify_email(accounts: &Accounts, raw_token: &str, origin: &Origin) -> Result<String, ApiError> {
    let token = LinkToken::parse(raw_token).ok_or_else(|| link_used_or_expired("verification"))?;
    let now = accounts.now();
    let mut transaction = accounts.db.begin().await?;
    let Some(user_id) = email_tokens::spend(&mut *transaction, &token.hash(), Purpose::VerifyEmail, now).await? else {
        transaction.rollback().await?;
        return Err(link_used_or_expired("verification"));
    };
    let newly = store::users::mark_email_verified(&mut *transaction, &user_id, now).await?;
    let user = store::users::find_by_id(&mut *transaction, &user_id)
        .await?
        .ok_or_else(|| link_used_or_expired("verification"))?;
    transaction.commit().await?;
    if newly {
        record(accounts, &user_id, EventKind::EmailVerified, origin, user.email.clone()).await?;
    }
    Ok(user.email)
}

/// `POST /api/password/forgot` and its page: emails a reset link when the address has an
/// account, and a note saying there is none when it has not; the caller answers the same either
/// way. Past the per-recipient limit nothing is sent, silently, in both cases alike.
pub async fn request_password_reset(accounts: &Accounts, raw_email: &str, origin: &Origin) -> Result<(), ApiError> {
    let email = Email::parse(raw_email).map_err(|message| ApiError::invalid_field("email", message))?;
    let token = LinkToken::generate();
    let token_hash = token.hash();
    let allowed = accounts
        .mail_limit
        .attempt(&format!("reset:{}", email.normalized()))
        .await
        == Decision::Allowed;
    let user = store::users::find_by_email(&accounts.db, &email).await?;
    if !allowed {
        tracing::info!("a password reset was asked for an address over its message limit; nothing was sent");
        return Ok(());
    }
    let now = accounts.now();
    let mut transaction = accounts.db.begin().await?;
    let message = match &user {
        Some(user) => {
            email_tokens::insert(
                &mut *transaction,
                NewToken {
                    token_hash: &token_hash,
                    user_id: &user.id,
                    purpose: Purpose::PasswordReset,
                    login_session_id: None,
                    created_at: now,
                    expires_at: now + RESET_TTL.as_millis() as i64,
                },
            )
            .await?;
            let link = accounts
                .mailer
                .link(&format!("/password/reset?token={}", token.expose()));
            messages::password_reset(&user.email, &link, RESET_TTL.as_secs() / 60, false)?
        }
        None => messages::no_account(email.as_str(), &accounts.mailer.link("/register"))?,
    };
    mail::enqueue(&mut *transaction, &message).await?;
    transaction.commit().await?;
    accounts.mailer.wake();
    if let Some(user) = &user {
        record(
            accounts,
            &user.id,
            EventKind::PasswordResetRequested,
            origin,
            "from the forgot-password page".into(),
        )
        .await?;
    }
    Ok(())
}

/// The account a reset link belongs to, if the link still works (for the page's form).
pub async fn reset_link_owner(accounts: &Accounts, raw_token: &str) -> Result<User, ApiError> {
    let token = LinkToken::parse(raw_token).ok_or_else(|| link_used_or_expired("reset"))?;
    let found = email_tokens::find(&accounts.db, &token.hash(), Purpose::PasswordReset)
        .await?
        .filter(|found| found.is_usable(accounts.now()))
        .ok_or_else(|| link_used_or_expired("reset"))?;
    store::users::find_by_id(&accounts.db, &found.user_id)
        .await?
        .ok_or_else(|| link_used_or_expired("reset"))
}

/// `POST /api/password/reset` and its page: the same password rules as sign-up; every login
/// session of the account ends, `token_version` moves, every other reset link stops working, and
/// a block left by "this wasn't me" is lifted. Returns how many devices were signed out.
pub async fn reset_password(
    accounts: &Accounts,
    raw_token: &str,
    new_password: String,
    origin: &Origin,
) -> Result<usize, ApiError> {
    let user = reset_link_owner(accounts, raw_token).await?;
    let token = LinkToken::parse(raw_token).ok_or_else(|| link_used_or_expired("reset"))?;
    let new_password = Password::parse_new(new_password, &related_words(&user.email))
        .map_err(|message| ApiError::invalid_field("new_password", message))?;
    let hash = password::hash(new_password).await?;
    let revoked = accounts
        .revocation
        .reset_password(&token.hash(), &user.id, &hash)
        .await?
        .ok_or_else(|| link_used_or_expired("reset"))?;
    // The owner proved the address: failed guesses by someone else no longer lock them out.
    throttle::clear_account(&accounts.db, &user.email).await?;
    let count = revoked.sessions.len();
    record(
        accounts,
        &user.id,
        EventKind::PasswordReset,
        origin,
        format!("{} signed out", crate::account::count_devices(count, false)),
    )
    .await?;
    Ok(count)
}

/// What a "this wasn't me" link reports, for its confirmation page.
pub struct ReportedSignIn {
    pub email: String,
    pub session: Option<LoginSession>,
}

/// The log-in a "this wasn't me" link reports, if the link still works. Reads only: a GET of the
/// link (a mail scanner's prefetch included) changes nothing.
pub async fn reported_sign_in(accounts: &Accounts, raw_token: &str) -> Result<ReportedSignIn, ApiError> {
    let token = LinkToken::parse(raw_token).ok_or_else(|| link_used_or_expired("\"this wasn't me\""))?;
    let found = email_tokens::find(&accounts.db, &token.hash(), Purpose::NotMe)
        .await?
        .filter(|found| found.is_usable(accounts.now()))
        .ok_or_else(|| link_used_or_expired("\"this wasn't me\""))?;
    let user = store::users::find_by_id(&accounts.db, &found.user_id)
        .await?
        .ok_or_else(|| link_used_or_expired("\"this wasn't me\""))?;
    let session = match &found.login_session_id {
        Some(id) => login_sessions::find(&accounts.db, id).await?,
        None => None,
    };
    Ok(ReportedSignIn {
        email: user.email,
        session,
    })
}

/// The POST behind a "this wasn't me" link: every login session of the account ends, password
/// log-ins are refused until the password is reset through email, the reported browser/OS and
/// address pair is flagged on later log-ins, and a reset link is sent at once. Returns how many
/// devices were signed out.
pub async fn report_sign_in(accounts: &Accounts, raw_token: &str, origin: &Origin) -> Result<usize, ApiError> {
    let reported = reported_sign_in(accounts, raw_token).await?;
    let token = LinkToken::parse(raw_token).ok_or_else(|| link_used_or_expired("\"this wasn't me\""))?;
    let (user_id, revoked) = accounts
        .revocation
        .lock_out_after_report(&token.hash())
        .await?
        .ok_or_else(|| link_used_or_expired("\"this wasn't me\""))?;
    let count = revoked.sessions.len();
    let now = accounts.now();
    let reported_what = match &reported.session {
        Some(session) => {
            let device = describe_device(&session.user_agent);
            store::reported_devices::report(&accounts.db, &user_id, &device, &session.ip, now).await?;
            format!("{device} from {}", session.ip)
        }
        None => "a log-in".to_owned(),
    };
    events::record(
        &accounts.db,
        NewEvent {
            user_id: &user_id,
            kind: EventKind::ReportedNotYou,
            session_id: None,
            other_session_id: reported.session.as_ref().map(|session| session.id.as_str()),
            origin,
            detail: format!(
                "{reported_what}, from the new-sign-in email; {} signed out and a password reset required",
                crate::account::count_devices(count, false)
            ),
        },
    )
    .await?;

    let mut transaction = accounts.db.begin().await?;
    let reset = store_link(&mut transaction, &user_id, Purpose::PasswordReset, RESET_TTL, now).await?;
    let link = accounts
        .mailer
        .link(&format!("/password/reset?token={}", reset.expose()));
    let message = messages::password_reset(&reported.email, &link, RESET_TTL.as_secs() / 60, true)?;
    mail::enqueue(&mut *transaction, &message).await?;
    transaction.commit().await?;
    accounts.mailer.wake();
    record(
        accounts,
        &user_id,
        EventKind::PasswordResetRequested,
        origin,
        "sent after \"this wasn't me\"".into(),
    )
    .await?;
    Ok(count)
}

/// Whether password log-ins to the account wait for a reset through email.
pub async fn reset_required(accounts: &Accounts, user_id: &str) -> Result<bool, ApiError> {
    Ok(store::users::password_reset_required_at(&accounts.db, user_id)
        .await?
        .is_some())
}
