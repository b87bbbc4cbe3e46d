//! The `login_sessions` table: one row per device, whichever way it logged in.

use sqlx::{Executor, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cookie,
    Token,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cookie => "cookie",
            Self::Token => "token",
        }
    }

    fn parse(value: &str) -> Self {
        if value == "cookie" { Self::Cookie } else { Self::Token }
    }
}

/// Why a login session ended. Stored as text in `revoke_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    LoggedOut,
    SignedOutFromAnotherDevice,
    LoggedOutEverywhere,
    PasswordChanged,
    IdleTimeout,
    AbsoluteTimeout,
    RefreshTokenReused,
    AccountDeleted,
    ReportedNotYou,
    /// A client (another service) revoked its refresh token through `/oauth/revoke`.
    RevokedByClient,
    /// A new log-in went past `MAX_SESSIONS_PER_USER`; this was the least recently active.
    SessionLimit,
    /// An operator ran `revocable users sign-out` or `lock`.
    SignedOutByAdmin,
    /// The password was reset through an emailed link: every login session ends.
    PasswordReset,
    /// The same browser logged in again: its cookie now names the new login session, and
    /// nothing points at this one any more.
    Replaced,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoggedOut => "logged_out",
            Self::SignedOutFromAnotherDevice => "signed_out_from_another_device",
            Self::LoggedOutEverywhere => "logged_out_everywhere",
            Self::PasswordChanged => "password_changed",
            Self::IdleTimeout => "idle_timeout",
            Self::AbsoluteTimeout => "absolute_timeout",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::AccountDeleted => "account_deleted",
            Self::ReportedNotYou => "reported_not_you",
            Self::RevokedByClient => "revoked_by_client",
            Self::SessionLimit => "session_limit",
            Self::SignedOutByAdmin => "signed_out_by_admin",
            Self::PasswordReset => "password_reset",
            Self::Replaced => "replaced",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::LoggedOut,
            Self::SignedOutFromAnotherDevice,
            Self::LoggedOutEverywhere,
            Self::PasswordChanged,
            Self::IdleTimeout,
            Self::AbsoluteTimeout,
            Self::RefreshTokenReused,
            Self::AccountDeleted,
            Self::ReportedNotYou,
            Self::RevokedByClient,
            Self::SessionLimit,
            Self::SignedOutByAdmin,
            Self::PasswordReset,
            Self::Replaced,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == value)
    }

    /// What a person reads in "Recently ended".
    pub fn describe(self) -> &'static str {
        match self {
            Self::LoggedOut => "Logged out",
            Self::SignedOutFromAnotherDevice => "Signed out from another device",
            Self::LoggedOutEverywhere => "Logged out everywhere",
            Self::PasswordChanged => "Password changed",
            Self::IdleTimeout => "Idle timeout",
            Self::AbsoluteTimeout => "Absolute timeout",
            Self::RefreshTokenReused => "Stolen refresh token reused",
            Self::AccountDeleted => "Account deleted",
            Self::ReportedNotYou => "Reported as not you",
            Self::RevokedByClient => "Revoked by a connected service",
            Self::SessionLimit => "Ended by the limit on devices",
            Self::SignedOutByAdmin => "Signed out by an administrator",
            Self::PasswordReset => "Password reset by email",
            Self::Replaced => "Replaced by a new log-in in the same browser",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoginSession {
    pub id: String,
    pub user_id: String,
    pub kind: Kind,
    pub user_agent: String,
    pub ip: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub idle_expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoke_reason: Option<String>,
    pub revoked_by_session_id: Option<String>,
    pub rotation_count: i64,
    pub new_device: bool,
}

impl LoginSession {
    /// Not revoked, and neither its absolute nor its idle limit has passed.
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at && now < self.idle_expires_at
    }

    /// Why it is no longer live at `now`, whether it was revoked or simply ran out of time.
    pub fn end_reason(&self, now: i64) -> Option<EndReason> {
        if self.revoked_at.is_some() {
            return self.revoke_reason.as_deref().and_then(EndReason::parse);
        }
        if now >= self.expires_at {
            Some(EndReason::AbsoluteTimeout)
        } else if now >= self.idle_expires_at {
            Some(EndReason::IdleTimeout)
        } else {
            None
        }
    }

    /// When it stopped being live, as of `now` (revocation, or the limit it ran into).
    pub fn ended_at(&self, now: i64) -> Option<i64> {
        self.revoked_at.or_else(|| {
            let limit = self.expires_at.min(self.idle_expires_at);
            (limit <= now).then_some(limit)
        })
    }
}

const COLUMNS: &str = "id, user_id, kind, user_agent, ip, created_at, last_seen_at, expires_at, idle_expires_at, \
                       revoked_at, revoke_reason, revoked_by_session_id, rotation_count, new_device";

fn from_row(row: &sqlx::any::AnyRow) -> Result<LoginSession, sqlx::Error> {
    Ok(LoginSession {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        kind: Kind::parse(row.try_get::<&str, _>("kind")?),
        user_agent: row.try_get("user_agent")?,
        ip: row.try_get("ip")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        expires_at: row.try_get("expires_at")?,
        idle_expires_at: row.try_get("idle_expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        revoke_reason: row.try_get("revoke_reason")?,
        revoked_by_session_id: row.try_get("revoked_by_session_id")?,
        rotation_count: row.try_get("rotation_count")?,
        new_device: row.try_get::<i64, _>("new_device")? != 0,
    })
}

pub async fn insert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    session: &LoginSession,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO login_sessions (id, user_id, kind, user_agent, ip, created_at, last_seen_at, expires_at, idle_expires_at, rotation_count, new_device)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10)",
    )
    .bind(&session.id)
    .bind(&session.user_id)
    .bind(session.kind.as_str())
    .bind(&session.user_agent)
    .bind(&session.ip)
    .bind(session.created_at)
    .bind(session.last_seen_at)
    .bind(session.expires_at)
    .bind(session.idle_expires_at)
    .bind(i64::from(session.new_device))
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn find<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
) -> Result<Option<LoginSession>, sqlx::Error> {
    let query = format!("SELECT {COLUMNS} FROM login_sessions WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(query))
        .bind(id)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The user's live login sessions, most recently active first.
pub async fn list_live<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
    now: i64,
) -> Result<Vec<LoginSession>, sqlx::Error> {
    let query = format!(
        "SELECT {COLUMNS} FROM login_sessions
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND idle_expires_at > $2
         ORDER BY last_seen_at DESC, created_at DESC"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(query))
        .bind(user_id)
        .bind(now)
        .fetch_all(executor)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Sessions that ended (revoked or timed out) after `since`, newest first.
pub async fn list_ended_since<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
    since: i64,
    now: i64,
) -> Result<Vec<LoginSession>, sqlx::Error> {
    let query = format!(
        "SELECT {COLUMNS} FROM login_sessions
         WHERE user_id = $1 AND (
            (revoked_at IS NOT NULL AND revoked_at > $2)
            OR (revoked_at IS NULL AND ((expires_at <= $3 AND expires_at > $2)
                                        OR (idle_expires_at <= $3 AND idle_expires_at > $2)))
         )
         LIMIT 200"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(query))
        .bind(user_id)
        .bind(since)
        .bind(now)
        .fetch_all(executor)
        .await?;
    let mut sessions: Vec<LoginSession> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    sessions.sort_by_key(|session| std::cmp::Reverse(session.ended_at(now).unwrap_or(0)));
    Ok(sessions)
}

/// Marks one session revoked; returns its user, or `None` when it already was revoked (or never
/// existed).
pub async fn revoke<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
    reason: EndReason,
    by_session_id: Option<&str>,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE login_sessions SET revoked_at = $2, revoke_reason = $3, revoked_by_session_id = $4
         WHERE id = $1 AND revoked_at IS NULL RETURNING user_id",
    )
    .bind(id)
    .bind(now)
    .bind(reason.as_str())
    .bind(by_session_id)
    .fetch_optional(executor)
    .await
}

/// Revokes every unrevoked session of the user except `except`; returns the ids it revoked.
pub async fn revoke_all_for_user<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
    except: Option<&str>,
    reason: EndReason,
    by_session_id: Option<&str>,
    now: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE login_sessions SET revoked_at = $3, revoke_reason = $4, revoked_by_session_id = $5
         WHERE user_id = $1 AND revoked_at IS NULL AND id <> $2 RETURNING id",
    )
    .bind(user_id)
    .bind(except.unwrap_or(""))
    .bind(now)
    .bind(reason.as_str())
    .bind(by_session_id)
    .fetch_all(executor)
    .await
}

/// Records activity: `last_seen_at` and the idle limit move forward, never back. Two instances
/// flush what they saw in either order, so each keeps the later of the stored and its own value
/// (`CASE` rather than `GREATEST` / `MAX(a, b)`: one statement for PostgreSQL and SQLite alike).
pub async fn touch<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
    now: i64,
    idle_expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE login_sessions
         SET last_seen_at = CASE WHEN last_seen_at > $2 THEN last_seen_at ELSE $2 END,
             idle_expires_at = CASE WHEN idle_expires_at > $3 THEN idle_expires_at ELSE $3 END
         WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .bind(idle_expires_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// Records activity of a token login session seen by a check (its idle limit is its refresh
/// token's); like `touch`, `last_seen_at` never moves back.
pub async fn record_activity<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE login_sessions SET last_seen_at = CASE WHEN last_seen_at > $2 THEN last_seen_at ELSE $2 END
         WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

/// A new refresh token for the session: locks the row first (the order every revocation takes
/// it in), moves `last_seen_at` and the idle limit (capped by the absolute one) and, for a
/// rotation, counts it; a family replaced after a password change is not counted. Returns the
/// user and the new idle limit; `None` when the session has ended.
pub async fn record_new_refresh<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
    now: i64,
    idle_expires_at: i64,
    counts_as_rotation: bool,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE login_sessions
         SET last_seen_at = $2, rotation_count = rotation_count + $4,
             idle_expires_at = CASE WHEN $3 < expires_at THEN $3 ELSE expires_at END
         WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2 AND idle_expires_at > $2
         RETURNING user_id, idle_expires_at",
    )
    .bind(id)
    .bind(now)
    .bind(idle_expires_at)
    .bind(i64::from(counts_as_rotation))
    .fetch_optional(executor)
    .await?;
    row.map(|row| Ok((row.try_get("user_id")?, row.try_get("idle_expires_at")?)))
        .transpose()
}

/// Deletes sessions that ended more than `older_than` ago, keeping the recent ones for the dashboard.
pub async fn purge_ended_before<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    older_than: i64,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "DELETE FROM login_sessions WHERE (revoked_at IS NOT NULL AND revoked_at < $1)
            OR expires_at < $1 OR idle_expires_at < $1",
    )
    .bind(older_than)
    .execute(executor)
    .await?;
    Ok(result.rows_affected())
}

/// What a new log-in of a user is compared with, read in one query.
pub struct DevicesSeen {
    /// `(user_agent, ip)` of every login session the user has had (live or ended, until purged).
    pub logged_in: Vec<(String, String)>,
    /// `(device, ip)` pairs the owner reported as not theirs (`store::reported_devices`).
    pub reported: Vec<(String, String)>,
}

pub async fn devices_seen<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
) -> Result<DevicesSeen, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT DISTINCT CAST(0 AS BIGINT) AS reported, user_agent AS device, ip FROM login_sessions WHERE user_id = $1
         UNION ALL
         SELECT CAST(1 AS BIGINT) AS reported, device, ip FROM reported_devices WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_all(executor)
    .await?;
    let mut seen = DevicesSeen {
        logged_in: Vec::new(),
        reported: Vec::new(),
    };
    for row in &rows {
        let pair = (row.try_get("device")?, row.try_get("ip")?);
        if row.try_get::<i64, _>("reported")? == 1 {
            seen.reported.push(pair);
        } else {
            seen.logged_in.push(pair);
        }
    }
    Ok(seen)
}

/// The owner recognised the device ("it was me"): it is no longer flagged as new.
pub async fn mark_known<'c>(executor: impl Executor<'c, Database = sqlx::Any>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE login_sessions SET new_device = 0 WHERE id = $1")
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

/// `(user_agent, ip)` of the user's login sessions opened before `before`, other than `except`:
/// what was already known when a session was opened.
pub async fn devices_before<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
    before: i64,
    except: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT DISTINCT user_agent, ip FROM login_sessions WHERE user_id = $1 AND created_at <= $2 AND id <> $3",
    )
    .bind(user_id)
    .bind(before)
    .bind(except)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("user_agent")?, row.try_get("ip")?)))
        .collect()
}

/// How many login sessions `by_session_id` ended for `reason` (its own included).
pub async fn count_ended_by<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    by_session_id: &str,
    reason: EndReason,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM login_sessions WHERE revoked_by_session_id = $1 AND revoke_reason = $2")
        .bind(by_session_id)
        .bind(reason.as_str())
        .fetch_one(executor)
        .await
}
