//! Logging in, either way, and the token pair: checking a password, opening a login session,
//! issuing access + refresh tokens, and rotating a refresh token with reuse detection.

use crate::auth::jwt::IssuedToken;
use crate::auth::password;
use crate::domain::{Email, RandomId, RefreshToken, now_millis};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::events::{self, EventKind, NewEvent, Origin};
use crate::store::login_sessions::{self, EndReason, Kind, LoginSession};
use crate::store::users::User;
use crate::store::{self};

/// The user, if the email exists and the password matches. Takes the same time either way.
pub async fn check_credentials(state: &AppState, email: &str, password: &str) -> Result<Option<User>, ApiError> {
    let user = match Email::parse(email) {
        Ok(email) => store::users::find_by_email(&state.db, &email).await?,
        Err(_) => None,
    };
    let stored = user.as_ref().map(|user| user.password_hash.clone());
    let matches = password::verify(password.to_owned(), stored).await?;
    Ok(user.filter(|_| matches))
}

fn millis(duration: std::time::Duration) -> i64 {
    duration.as_millis() as i64
}

/// Opens a login session (a device) and records the log-in.
pub async fn open_login_session(
    state: &AppState,
    user: &User,
    kind: Kind,
    origin: &Origin,
) -> Result<LoginSession, ApiError> {
    let now = now_millis();
    let idle = match kind {
        Kind::Cookie => state.settings.session_idle_ttl,
        Kind::Token => state.settings.refresh_ttl,
    };
    let expires_at = now + millis(state.settings.session_ttl);
    let device = crate::auth::client::describe_device(&origin.user_agent);
    let known = login_sessions::known_devices(&state.db, &user.id).await?;
    let reported = store::reported_devices::list(&state.db, &user.id)
        .await?
        .contains(&(device.clone(), origin.ip.clone()));
    let new_device = reported
        || !known
            .iter()
            .any(|(user_agent, ip)| *ip == origin.ip && crate::auth::client::describe_device(user_agent) == device);
    let session = LoginSession {
        id: RandomId::generate(),
        user_id: user.id.clone(),
        kind,
        user_agent: origin.user_agent.clone(),
        ip: origin.ip.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at,
        idle_expires_at: (now + millis(idle)).min(expires_at),
        revoked_at: None,
        revoke_reason: None,
        revoked_by_session_id: None,
        rotation_count: 0,
        // The very first log-in of an account is not news; a pair reported as not the owner's always is.
        new_device: reported || (new_device && !known.is_empty()),
    };
    login_sessions::insert(&state.db, &session).await?;
    events::record(
        &state.db,
        NewEvent {
            user_id: &user.id,
            kind: EventKind::LoggedIn,
            session_id: Some(&session.id),
            other_session_id: None,
            origin,
            detail: format!(
                "{}{}",
                match kind {
                    Kind::Cookie => "browser session",
                    Kind::Token => "API token",
                },
                match (session.new_device, reported) {
                    (_, true) => " · reported before as not you",
                    (true, false) => " · new device",
                    (false, false) => "",
                }
            ),
        },
    )
    .await?;
    Ok(session)
}

pub struct TokenPair {
    pub access: IssuedToken,
    pub refresh: RefreshToken,
    pub session_id: String,
}

/// Issues an access token for the session and records its `jti` until it expires.
pub async fn issue_access_token(
    state: &AppState,
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    user_id: &str,
    session_id: &str,
    token_version: i64,
) -> Result<IssuedToken, ApiError> {
    let access = state.keys.issue(user_id, session_id, token_version)?;
    store::access_tokens::record(executor, &access.claims.jti, session_id, access.claims.exp * 1000).await?;
    Ok(access)
}

/// A fresh pair for a login session that has just been opened.
pub async fn issue_pair(state: &AppState, user: &User, session: &LoginSession) -> Result<TokenPair, ApiError> {
    let now = now_millis();
    let refresh = RefreshToken::generate();
    let refresh_expires = (now + millis(state.settings.refresh_ttl)).min(session.expires_at);
    let mut transaction = state.db.begin().await?;
    store::refresh_tokens::insert(&mut *transaction, &refresh.hash(), &session.id, now, refresh_expires).await?;
    let access = issue_access_token(state, &mut *transaction, &user.id, &session.id, user.token_version).await?;
    transaction.commit().await?;
    Ok(TokenPair {
        access,
        refresh,
        session_id: session.id.clone(),
    })
}

fn invalid_grant(message: &str) -> ApiError {
    ApiError::InvalidGrant(message.to_owned())
}

/// Exchanges a refresh token for a new pair. The presented token is marked used by a single
/// conditional UPDATE, so of concurrent presentations exactly one wins. A token that was already
/// used is answered 401; past the grace window it also revokes the whole login session.
pub async fn rotate(state: &AppState, presented: &str, origin: &Origin) -> Result<TokenPair, ApiError> {
    let token = RefreshToken::parse(presented).ok_or_else(|| invalid_grant("the refresh token is not valid"))?;
    let hash = token.hash();
    let now = now_millis();
    let stored = store::refresh_tokens::find(&state.db, &hash)
        .await?
        .ok_or_else(|| invalid_grant("the refresh token is not valid"))?;
    let session = store::login_sessions::find(&state.db, &stored.session_id)
        .await?
        .filter(|session| session.is_live(now))
        .ok_or_else(|| invalid_grant("the login session of this refresh token has ended"))?;
    if let Some(used_at) = stored.used_at {
        return Err(reused(state, &session, used_at, now, origin).await?);
    }
    if stored.expires_at <= now {
        return Err(invalid_grant("the refresh token has expired"));
    }

    let mut transaction = state.db.begin().await?;
    if !store::refresh_tokens::mark_used(&mut *transaction, &hash, now).await? {
        transaction.rollback().await?;
        // Someone presented it a moment ago: the same rules as any reuse.
        let used_at = store::refresh_tokens::find(&state.db, &hash)
            .await?
            .and_then(|stored| stored.used_at)
            .unwrap_or(now);
        return Err(reused(state, &session, used_at, now, origin).await?);
    }
    let user = store::users::find_by_id(&mut *transaction, &session.user_id)
        .await?
        .ok_or_else(|| invalid_grant("the account no longer exists"))?;
    let refresh = RefreshToken::generate();
    let refresh_expires = (now + millis(state.settings.refresh_ttl)).min(session.expires_at);
    store::refresh_tokens::insert(&mut *transaction, &refresh.hash(), &session.id, now, refresh_expires).await?;
    store::login_sessions::record_rotation(&mut *transaction, &session.id, now, refresh_expires).await?;
    let access = issue_access_token(state, &mut *transaction, &user.id, &session.id, user.token_version).await?;
    transaction.commit().await?;
    Ok(TokenPair {
        access,
        refresh,
        session_id: session.id,
    })
}

/// A used refresh token came back. Within the grace window it is most likely a second tab racing
/// the first, and is only refused; later, someone holds a copy of a token that was rotated away,
/// so the whole family goes.
async fn reused(
    state: &AppState,
    session: &LoginSession,
    used_at: i64,
    now: i64,
    origin: &Origin,
) -> Result<ApiError, ApiError> {
    let grace = millis(state.settings.refresh_reuse_grace);
    if grace > 0 && now - used_at <= grace {
        return Ok(invalid_grant("the refresh token was just rotated; use the newest one"));
    }
    let revoked = state
        .revocation
        .revoke_session(&session.id, EndReason::RefreshTokenReused, None)
        .await?;
    if !revoked.sessions.is_empty() {
        events::record(
            &state.db,
            NewEvent {
                user_id: &session.user_id,
                kind: EventKind::RefreshTokenReused,
                session_id: Some(&session.id),
                other_session_id: None,
                origin,
                detail: "a stolen refresh token may have been used; that device was signed out".into(),
            },
        )
        .await?;
    }
    Ok(invalid_grant(
        "the refresh token was already used; the login session has been revoked",
    ))
}
