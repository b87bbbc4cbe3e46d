//! Logging in, either way, and the token pair: checking a password, opening a login session,
//! issuing access + refresh tokens, and rotating a refresh token with reuse detection.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::client;
use crate::auth::jwt::{IssuedToken, JwtKeys};
use crate::auth::sign_in_mail::SignInMail;
use crate::config::Settings;
use crate::domain::{RandomId, RefreshToken};
use crate::error::{ApiError, RejectReason};
use crate::geoip::Places;
use crate::mail::Mailer;
use crate::revocation::{MintedAccess, NewRefresh, Revocation, Rotation};
use crate::store::events::{self, EventKind, NewEvent, Origin};
use crate::store::login_sessions::{self, EndReason, Kind, LoginSession};
use crate::store::users::User;
use crate::store::{self, Db, Transaction};

/// How long access tokens, login sessions and refresh tokens live; from `Settings`.
#[derive(Clone, Copy)]
pub struct Lifetimes {
    pub access_ttl: Duration,
    pub session_ttl: Duration,
    pub session_idle_ttl: Duration,
    pub refresh_ttl: Duration,
    pub refresh_reuse_grace: Duration,
}

impl Lifetimes {
    pub fn of(settings: &Settings) -> Self {
        Self {
            access_ttl: settings.access_ttl,
            session_ttl: settings.session_ttl,
            session_idle_ttl: settings.session_idle_ttl,
            refresh_ttl: settings.refresh_ttl,
            refresh_reuse_grace: settings.refresh_reuse_grace,
        }
    }
}

/// What opening login sessions and issuing tokens works with: the database, the signing keys,
/// the revocation layer (which records every token), the lifetimes, and what the new-sign-in
/// email goes out with. Built once with the app's state, and registered as app data of its own
/// for the handlers that log in or hand out tokens.
pub struct Issuer {
    pub db: Db,
    /// Shared with the app's `JwtKeys`, so a key reload reaches it too.
    pub keys: Arc<JwtKeys>,
    pub revocation: Revocation,
    pub lifetimes: Lifetimes,
    /// `MAX_SESSIONS_PER_USER`; `None`: no limit.
    pub max_sessions_per_user: Option<u32>,
    /// Where the new-sign-in email goes out from.
    pub mailer: Mailer,
    /// The places the new-sign-in email names.
    pub places: Places,
}

impl Issuer {
    fn sign_in_mail(&self) -> SignInMail<'_> {
        SignInMail {
            mailer: &self.mailer,
            geoip: self.places.geoip(),
            clock: self.revocation.clock(),
        }
    }
}

fn millis(duration: std::time::Duration) -> i64 {
    duration.as_millis() as i64
}

/// Opens a login session (a device) and records the log-in.
pub async fn open_login_session(
    issuer: &Issuer,
    user: &User,
    kind: Kind,
    origin: &Origin,
) -> Result<LoginSession, ApiError> {
    let mut connection = issuer.db.acquire().await?;
    let (session, transaction) = open_in(issuer, &mut connection, user, kind, origin).await?;
    transaction.commit().await?;
    drop(connection);
    opened(issuer, &session, origin).await?;
    Ok(session)
}

/// Opens a token login session and issues its first pair, recorded in the same transaction as
/// the session: a session is never left without the tokens it was opened for.
pub async fn open_token_session(issuer: &Issuer, user: &User, origin: &Origin) -> Result<TokenPair, ApiError> {
    let mut connection = issuer.db.acquire().await?;
    let (session, mut transaction) = open_in(issuer, &mut connection, user, Kind::Token, origin).await?;
    let now = issuer.revocation.clock().now_millis();
    let refresh = RefreshToken::generate();
    let refresh_hash = refresh.hash();
    let new_refresh = NewRefresh {
        token_hash: &refresh_hash,
        expires_at: (now + millis(issuer.lifetimes.refresh_ttl)).min(session.expires_at),
    };
    let access = mint_access_token(issuer, &user.id, &session.id, user.token_version)?;
    issuer
        .revocation
        .record_first_pair(&mut transaction, &session.id, new_refresh, &access, now)
        .await?;
    transaction.commit().await?;
    drop(connection);
    opened(issuer, &session, origin).await?;
    Ok(TokenPair {
        access: access.token,
        refresh,
        session_id: session.id,
    })
}

/// Writes a new login session, its `logged_in` event and (for a new device) the email with its
/// link in a transaction on `connection`, left open for the caller to add to and commit. One
/// connection for the read and the writes, since each time a pooled connection is taken and given
/// back costs a round trip to it of its own. The devices seen before are read ahead of the
/// transaction: a SQLite transaction that reads and then writes fails at once (`SQLITE_BUSY`)
/// when another writer committed in between.
async fn open_in<'c>(
    issuer: &Issuer,
    connection: &'c mut sqlx::AnyConnection,
    user: &User,
    kind: Kind,
    origin: &Origin,
) -> Result<(LoginSession, Transaction<'c>), ApiError> {
    let now = issuer.revocation.clock().now_millis();
    let idle = match kind {
        Kind::Cookie => issuer.lifetimes.session_idle_ttl,
        Kind::Token => issuer.lifetimes.refresh_ttl,
    };
    let expires_at = now + millis(issuer.lifetimes.session_ttl);
    let device = crate::auth::client::describe_device(&origin.user_agent);
    let seen = login_sessions::devices_seen(&mut *connection, &user.id).await?;
    let reported = seen.reported.contains(&(device.clone(), origin.ip.clone()));
    let new_device = reported
        || !seen
            .logged_in
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
        new_device: reported || (new_device && !seen.logged_in.is_empty()),
    };
    let mut transaction = sqlx::Connection::begin(connection).await?;
    login_sessions::insert(&mut *transaction, &session).await?;
    events::record(
        &mut *transaction,
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
    if session.new_device {
        crate::auth::sign_in_mail::enqueue(&mut transaction, issuer.sign_in_mail(), user, &session).await?;
    }
    Ok((session, transaction))
}

/// What follows a committed log-in: the new-sign-in email goes out, and a session past the limit
/// ends.
async fn opened(issuer: &Issuer, session: &LoginSession, origin: &Origin) -> Result<(), ApiError> {
    if session.new_device {
        issuer.mailer.wake();
    }
    end_sessions_past_the_limit(issuer, session, origin).await
}

/// With `MAX_SESSIONS_PER_USER` set, a log-in that takes the user past it ends the least recently
/// active of the others (reason `session_limit`), recorded in the security activity. Activity is
/// as last written (`LAST_SEEN_INTERVAL`), so two sessions used within that interval of each other
/// may be taken for one another. Two log-ins at once may each end one: never more are left live.
async fn end_sessions_past_the_limit(issuer: &Issuer, opened: &LoginSession, origin: &Origin) -> Result<(), ApiError> {
    let Some(limit) = issuer.max_sessions_per_user else {
        return Ok(());
    };
    let live = login_sessions::list_live(&issuer.db, &opened.user_id, issuer.revocation.clock().now_millis()).await?;
    let excess = live.len().saturating_sub(limit as usize);
    // `list_live` is ordered by last activity, most recent first: the least recent are at the end.
    for session in live.iter().rev().filter(|session| session.id != opened.id).take(excess) {
        let revoked = issuer
            .revocation
            .revoke_session(&session.id, EndReason::SessionLimit, Some(&opened.id))
            .await?;
        if revoked.sessions.is_empty() {
            continue;
        }
        events::record(
            &issuer.db,
            NewEvent {
                user_id: &opened.user_id,
                kind: EventKind::SessionLimitReached,
                session_id: Some(&opened.id),
                other_session_id: Some(&session.id),
                origin,
                detail: format!(
                    "{} signed out: at most {limit} at once",
                    crate::auth::client::describe_device(&session.user_agent)
                ),
            },
        )
        .await?;
    }
    Ok(())
}

pub struct TokenPair {
    pub access: IssuedToken,
    pub refresh: RefreshToken,
    pub session_id: String,
}

/// Signs an access token for the session; the caller has it recorded (through `Revocation`) so
/// that revoking the session denylists it.
fn mint_access_token(
    issuer: &Issuer,
    user_id: &str,
    session_id: &str,
    token_version: i64,
) -> anyhow::Result<MintedAccess<IssuedToken>> {
    let access = issuer.keys.issue(user_id, session_id, token_version)?;
    Ok(MintedAccess {
        jti: access.claims.jti.clone(),
        expires_at: access.claims.exp * 1000,
        token: access,
    })
}

/// Issues one more access token for the session and records its `jti` until it expires.
pub async fn issue_access_token(
    issuer: &Issuer,
    user_id: &str,
    session_id: &str,
    token_version: i64,
) -> Result<IssuedToken, ApiError> {
    let access = mint_access_token(issuer, user_id, session_id, token_version)?;
    issuer.revocation.record_access_token(session_id, &access).await?;
    Ok(access.token)
}

/// A new pair in place of every token the login session holds (after a password change moved
/// `token_version`): the old ones, including any a concurrent refresh has just minted, stop
/// working.
pub async fn reissue_pair(issuer: &Issuer, session_id: &str) -> Result<TokenPair, ApiError> {
    let now = issuer.revocation.clock().now_millis();
    let refresh = RefreshToken::generate();
    let refresh_hash = refresh.hash();
    let new_refresh = NewRefresh {
        token_hash: &refresh_hash,
        expires_at: now + millis(issuer.lifetimes.refresh_ttl),
    };
    let (access, _) = issuer
        .revocation
        .replace_pair(session_id, new_refresh, now, |user, session_id| {
            mint_access_token(issuer, &user.id, session_id, user.token_version)
        })
        .await?
        .ok_or_else(|| ApiError::bearer(RejectReason::RevokedSession))?;
    Ok(TokenPair {
        access: access.token,
        refresh,
        session_id: session_id.to_owned(),
    })
}

fn invalid_grant(message: &str) -> ApiError {
    ApiError::InvalidGrant(message.to_owned())
}

fn session_ended() -> ApiError {
    invalid_grant("the login session of this refresh token has ended")
}

/// Exchanges a refresh token for a new pair. The presented token is spent by a single conditional
/// UPDATE, so of concurrent presentations exactly one wins; a token that was already spent is a
/// reuse (see `reused`). The rotation locks the login session first, as a revocation does, so a
/// revocation racing it either ends the session before it (and the refresh is refused) or after
/// it (and revokes what it minted).
pub async fn rotate(issuer: &Issuer, presented: &str, origin: &Origin) -> Result<TokenPair, ApiError> {
    let token = RefreshToken::parse(presented).ok_or_else(|| invalid_grant("the refresh token is not valid"))?;
    let now = issuer.revocation.clock().now_millis();
    let refresh = RefreshToken::generate();
    let refresh_hash = refresh.hash();
    let replacement = NewRefresh {
        token_hash: &refresh_hash,
        expires_at: now + millis(issuer.lifetimes.refresh_ttl),
    };
    let client = client::fingerprint(origin);
    let rotation = issuer
        .revocation
        .rotate_refresh_token(&token.hash(), replacement, &client, now, |user, session_id| {
            mint_access_token(issuer, &user.id, session_id, user.token_version)
        })
        .await?;
    match rotation {
        Rotation::Rotated { session_id, access, .. } => Ok(TokenPair {
            access: access.token,
            refresh,
            session_id,
        }),
        Rotation::Unknown => Err(invalid_grant("the refresh token is not valid")),
        Rotation::Expired => Err(invalid_grant("the refresh token has expired")),
        Rotation::SessionEnded => Err(session_ended()),
        Rotation::AccountGone => Err(invalid_grant("the account no longer exists")),
        Rotation::Spent {
            session_id,
            used_at,
            used_by,
        } => {
            let session = store::login_sessions::find(&issuer.db, &session_id)
                .await?
                .filter(|session| session.is_live(now))
                .ok_or_else(session_ended)?;
            let spent_by_this_client = used_by.as_deref() == Some(client.as_str());
            Err(reused(issuer, &session, used_at, spent_by_this_client, now, origin).await?)
        }
    }
}

/// A spent refresh token came back. The same client, within the grace window, is most likely a
/// second tab racing the first: it is only refused. Anything else — later, or from another
/// address or user agent than the one that spent it — means someone holds a copy of a token that
/// was rotated away, so the whole login session goes. Every reuse is recorded either way.
async fn reused(
    issuer: &Issuer,
    session: &LoginSession,
    used_at: i64,
    spent_by_this_client: bool,
    now: i64,
    origin: &Origin,
) -> Result<ApiError, ApiError> {
    let grace = millis(issuer.lifetimes.refresh_reuse_grace);
    let within_grace = grace > 0 && now - used_at <= grace;
    if within_grace && spent_by_this_client {
        record_reuse(
            issuer,
            session,
            EventKind::RefreshTokenRetried,
            origin,
            format!(
                "a spent refresh token was presented again {} ms after it was rotated, by the client that \
                 rotated it; nothing was revoked",
                now - used_at
            ),
        )
        .await?;
        return Ok(invalid_grant("the refresh token was just rotated; use the newest one"));
    }
    let revoked = issuer
        .revocation
        .revoke_session(&session.id, EndReason::RefreshTokenReused, None)
        .await?;
    let why = if within_grace {
        "by a client other than the one that rotated it"
    } else {
        "after the grace window"
    };
    let outcome = if revoked.sessions.is_empty() {
        "the device had already been signed out"
    } else {
        "that device was signed out"
    };
    record_reuse(
        issuer,
        session,
        EventKind::RefreshTokenReused,
        origin,
        format!("a stolen refresh token may have been used (presented again {why}); {outcome}"),
    )
    .await?;
    Ok(invalid_grant(
        "the refresh token was already used; the login session has been revoked",
    ))
}

async fn record_reuse(
    issuer: &Issuer,
    session: &LoginSession,
    kind: EventKind,
    origin: &Origin,
    detail: String,
) -> Result<(), ApiError> {
    events::record(
        &issuer.db,
        NewEvent {
            user_id: &session.user_id,
            kind,
            session_id: Some(&session.id),
            other_session_id: None,
            origin,
            detail,
        },
    )
    .await?;
    Ok(())
}
