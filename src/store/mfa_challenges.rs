//! The `mfa_challenges` table: log-ins whose password was right, waiting for the second factor,
//! keyed by the SHA-256 hash of their `mfa_token`.

use sqlx::{Executor, Row};

#[derive(Debug, Clone)]
pub struct MfaChallenge {
    pub user_id: String,
    pub failures: i64,
}

/// Stores a new challenge, and forgets the account's expired and spent ones.
pub async fn insert(
    db: &super::Db,
    token_hash: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM mfa_challenges WHERE user_id = $1 AND (expires_at <= $2 OR spent_at IS NOT NULL)")
        .bind(user_id)
        .bind(now)
        .execute(db)
        .await?;
    sqlx::query("INSERT INTO mfa_challenges (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(db)
        .await?;
    Ok(())
}

/// The challenge, while it is neither spent nor expired.
pub async fn find_open<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    token_hash: &str,
    now: i64,
) -> Result<Option<MfaChallenge>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT user_id, failures FROM mfa_challenges
         WHERE token_hash = $1 AND spent_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        Ok(MfaChallenge {
            user_id: row.try_get("user_id")?,
            failures: row.try_get("failures")?,
        })
    })
    .transpose()
}

/// Spends an open challenge; `false` when it was spent or expired meanwhile.
pub async fn spend<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    token_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE mfa_challenges SET spent_at = $2 WHERE token_hash = $1 AND spent_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Counts a wrong code; the `max_failures`-th spends the challenge. Returns whether it is spent.
pub async fn record_failure<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    token_hash: &str,
    max_failures: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let spent: Option<Option<i64>> = sqlx::query_scalar(
        "UPDATE mfa_challenges SET failures = failures + 1,
             spent_at = CASE WHEN failures + 1 >= $2 THEN $3 ELSE spent_at END
         WHERE token_hash = $1 AND spent_at IS NULL
         RETURNING spent_at",
    )
    .bind(token_hash)
    .bind(max_failures)
    .bind(now)
    .fetch_optional(executor)
    .await?;
    Ok(spent.is_none_or(|spent_at| spent_at.is_some()))
}

/// Forgets every challenge that expired or was spent before `before`, whoever's: the periodic
/// purge's part, for accounts that do not log in again.
pub async fn purge_ended<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    before: i64,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM mfa_challenges WHERE expires_at <= $1 OR spent_at <= $1")
            .bind(before)
            .execute(executor)
            .await?
            .rows_affected(),
    )
}
