//! The `totp_factors` table: one authenticator per account, pending until its first right code.

use sqlx::{Executor, Row};

#[derive(Debug, Clone)]
pub struct TotpFactor {
    /// The secret sealed under the server key; `auth::totp::SealingKey::open` reads it.
    pub sealed_secret: String,
    pub created_at: i64,
    /// `None` while enrolment waits for a first right code.
    pub confirmed_at: Option<i64>,
    /// The newest time step a code was accepted for.
    pub last_used_step: i64,
}

/// Stores a pending enrolment, replacing an earlier pending one; `false` (nothing written) when
/// the account already has a confirmed authenticator.
pub async fn start_enrolment<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
    sealed_secret: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO totp_factors (user_id, sealed_secret, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret,
             created_at = excluded.created_at, last_used_step = 0
         WHERE totp_factors.confirmed_at IS NULL",
    )
    .bind(user_id)
    .bind(sealed_secret)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn find<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
) -> Result<Option<TotpFactor>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT sealed_secret, created_at, confirmed_at, last_used_step FROM totp_factors WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        Ok(TotpFactor {
            sealed_secret: row.try_get("sealed_secret")?,
            created_at: row.try_get("created_at")?,
            confirmed_at: row.try_get("confirmed_at")?,
            last_used_step: row.try_get("last_used_step")?,
        })
    })
    .transpose()
}

/// Activates a pending enrolment with the step of its first right code; `false` when there was
/// no pending one (confirmed meanwhile, or removed).
pub async fn confirm<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
    step: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE totp_factors SET confirmed_at = $2, last_used_step = $3
         WHERE user_id = $1 AND confirmed_at IS NULL",
    )
    .bind(user_id)
    .bind(now)
    .bind(step)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Moves the replay guard to `step`, only forward: of two uses of one code (or of codes of the
/// same or an older step), one conditional UPDATE lets exactly the first through.
pub async fn accept_step<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
    step: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE totp_factors SET last_used_step = $2
         WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_used_step < $2",
    )
    .bind(user_id)
    .bind(step)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Removes the account's authenticator, pending or confirmed; `true` when there was a confirmed one.
pub async fn remove<'c>(executor: impl Executor<'c, Database = sqlx::Any>, user_id: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM totp_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL")
        .bind(user_id)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}
