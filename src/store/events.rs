//! The `security_events` table, written by the code path that causes each event.

use sqlx::{Executor, Row};

use crate::domain::{RandomId, now_millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Registered,
    LoggedIn,
    LoginFailed,
    LoggedOut,
    DeviceSignedOut,
    OtherDevicesSignedOut,
    LoggedOutEverywhere,
    PasswordChanged,
    RefreshTokenReused,
    /// A spent refresh token came back from the client that spent it, within the grace window.
    RefreshTokenRetried,
    ReportedNotYou,
    DeviceRecognised,
    /// A client (another service) revoked one of the account's tokens through `/oauth/revoke`.
    RevokedByClient,
    /// An authenticator app was confirmed as the account's second factor.
    SecondFactorEnabled,
    SecondFactorDisabled,
    /// A wrong second-factor code at log-in or re-authentication.
    SecondFactorFailed,
    /// A recovery code was spent in place of an authenticator code.
    RecoveryCodeUsed,
    /// A new set of recovery codes replaced every earlier one.
    RecoveryCodesReplaced,
    /// A log-in beyond `MAX_SESSIONS_PER_USER` ended the least recently active login session.
    SessionLimitReached,
    /// An operator signed the account out, locked or unlocked it.
    SignedOutByAdmin,
    AccountLocked,
    AccountUnlocked,
    EmailVerified,
    /// A reset link was sent (asked for on the forgot-password page, or after "this wasn't me").
    PasswordResetRequested,
    PasswordReset,
}

impl EventKind {
    const ALL: [Self; 25] = [
        Self::Registered,
        Self::LoggedIn,
        Self::LoginFailed,
        Self::LoggedOut,
        Self::DeviceSignedOut,
        Self::OtherDevicesSignedOut,
        Self::LoggedOutEverywhere,
        Self::PasswordChanged,
        Self::RefreshTokenReused,
        Self::RefreshTokenRetried,
        Self::ReportedNotYou,
        Self::DeviceRecognised,
        Self::RevokedByClient,
        Self::SecondFactorEnabled,
        Self::SecondFactorDisabled,
        Self::SecondFactorFailed,
        Self::RecoveryCodeUsed,
        Self::RecoveryCodesReplaced,
        Self::SessionLimitReached,
        Self::SignedOutByAdmin,
        Self::AccountLocked,
        Self::AccountUnlocked,
        Self::EmailVerified,
        Self::PasswordResetRequested,
        Self::PasswordReset,
    ];

    /// The kind a stored name stands for; `None` for a name this version does not know.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::LoggedIn => "logged_in",
            Self::LoginFailed => "login_failed",
            Self::LoggedOut => "logged_out",
            Self::DeviceSignedOut => "device_signed_out",
            Self::OtherDevicesSignedOut => "other_devices_signed_out",
            Self::LoggedOutEverywhere => "logged_out_everywhere",
            Self::PasswordChanged => "password_changed",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::RefreshTokenRetried => "refresh_token_retried",
            Self::ReportedNotYou => "reported_not_you",
            Self::DeviceRecognised => "device_recognised",
            Self::RevokedByClient => "revoked_by_client",
            Self::SecondFactorEnabled => "second_factor_enabled",
            Self::SecondFactorDisabled => "second_factor_disabled",
            Self::SecondFactorFailed => "second_factor_failed",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::RecoveryCodesReplaced => "recovery_codes_replaced",
            Self::SessionLimitReached => "session_limit_reached",
            Self::SignedOutByAdmin => "signed_out_by_admin",
            Self::AccountLocked => "account_locked",
            Self::AccountUnlocked => "account_unlocked",
            Self::EmailVerified => "email_verified",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordReset => "password_reset",
        }
    }
}

/// Where a request came from, as recorded with an event.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: String,
    pub user_agent: String,
}

#[derive(Debug, Clone)]
pub struct SecurityEvent {
    pub id: String,
    pub kind: String,
    pub session_id: Option<String>,
    pub other_session_id: Option<String>,
    pub ip: String,
    pub user_agent: String,
    pub detail: String,
    pub created_at: i64,
}

impl SecurityEvent {
    /// What happened, when this version knows the kind stored.
    pub fn event_kind(&self) -> Option<EventKind> {
        EventKind::parse(&self.kind)
    }
}

pub struct NewEvent<'a> {
    pub user_id: &'a str,
    pub kind: EventKind,
    pub session_id: Option<&'a str>,
    pub other_session_id: Option<&'a str>,
    pub origin: &'a Origin,
    pub detail: String,
}

pub async fn record<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    event: NewEvent<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO security_events (id, user_id, kind, session_id, other_session_id, ip, user_agent, detail, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(RandomId::generate())
    .bind(event.user_id)
    .bind(event.kind.as_str())
    .bind(event.session_id)
    .bind(event.other_session_id)
    .bind(&event.origin.ip)
    .bind(&event.origin.user_agent)
    .bind(event.detail)
    .bind(now_millis())
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn recent<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
    limit: i64,
) -> Result<Vec<SecurityEvent>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, kind, session_id, other_session_id, ip, user_agent, detail, created_at FROM security_events
         WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(SecurityEvent {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                session_id: row.try_get("session_id")?,
                other_session_id: row.try_get("other_session_id")?,
                ip: row.try_get("ip")?,
                user_agent: row.try_get("user_agent")?,
                detail: row.try_get("detail")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}

/// Failed log-ins to the account since its last visit: since the latest log-in before the one
/// of `current_session_id` (or ever, for a first visit).
pub async fn failed_logins_since_last_visit<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
    current_session_id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM security_events
         WHERE user_id = $1 AND kind = 'login_failed' AND created_at > COALESCE(
             (SELECT MAX(created_at) FROM security_events
              WHERE user_id = $1 AND kind = 'logged_in' AND session_id <> $2),
             0)",
    )
    .bind(user_id)
    .bind(current_session_id)
    .fetch_one(executor)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_stored_name() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("a_kind_from_a_later_version"), None);
    }
}
