//! The `email_tokens` table: the single-use links messages carry (verify the address, reset the
//! password, "this wasn't me"). Only the SHA-256 of a token is stored; a link is spent by a
//! conditional UPDATE, so of two clicks at once exactly one wins.

use sqlx::{Executor, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    PasswordReset,
    NotMe,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::PasswordReset => "password_reset",
            Self::NotMe => "not_me",
        }
    }
}

/// A stored link, as found by its hash.
#[derive(Debug, Clone)]
pub struct EmailToken {
    pub user_id: String,
    pub login_session_id: Option<String>,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

impl EmailToken {
    pub fn is_usable(&self, now: i64) -> bool {
        self.used_at.is_none() && self.expires_at > now
    }
}

pub struct NewToken<'a> {
    pub token_hash: &'a str,
    pub user_id: &'a str,
    pub purpose: Purpose,
    pub login_session_id: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    token: NewToken<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO email_tokens (token_hash, user_id, purpose, login_session_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token.token_hash)
    .bind(token.user_id)
    .bind(token.purpose.as_str())
    .bind(token.login_session_id)
    .bind(token.created_at)
    .bind(token.expires_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// The link with this hash and purpose, used or not.
pub async fn find<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    token_hash: &str,
    purpose: Purpose,
) -> Result<Option<EmailToken>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT user_id, login_session_id, expires_at, used_at FROM email_tokens WHERE token_hash = $1 AND purpose = $2",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        Ok(EmailToken {
            user_id: row.try_get("user_id")?,
            login_session_id: row.try_get("login_session_id")?,
            expires_at: row.try_get("expires_at")?,
            used_at: row.try_get("used_at")?,
        })
    })
    .transpose()
}

/// Spends the link if it is still unused and unexpired; returns whose it was.
pub async fn spend<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    token_hash: &str,
    purpose: Purpose,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE email_tokens SET used_at = $3
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
         RETURNING user_id",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(executor)
    .await
}

/// Spends every outstanding link of the account with this purpose (another reset link, once the
/// password has been reset); returns how many.
pub async fn spend_all_for_user<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
    purpose: Purpose,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let result =
        sqlx::query("UPDATE email_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL")
            .bind(user_id)
            .bind(purpose.as_str())
            .bind(now)
            .execute(executor)
            .await?;
    Ok(result.rows_affected())
}

/// Links expired before `before` are forgotten.
pub async fn purge_expired<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    before: i64,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM email_tokens WHERE expires_at < $1")
        .bind(before)
        .execute(executor)
        .await?;
    Ok(result.rows_affected())
}
