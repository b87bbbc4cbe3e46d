//! The `login_failures` table: one row per failed password log-in, by account key, kept for the
//! per-account limit's window.

use sqlx::{Executor, Row};

/// Records one failure and forgets this account's failures older than `window_start`.
pub async fn record(db: &super::Db, account_key: &str, now: i64, window_start: i64) -> Result<(), sqlx::Error> {
    let mut transaction = db.begin().await?;
    sqlx::query("DELETE FROM login_failures WHERE account_key = $1 AND failed_at < $2")
        .bind(account_key)
        .bind(window_start)
        .execute(&mut *transaction)
        .await?;
    sqlx::query("INSERT INTO login_failures (account_key, failed_at) VALUES ($1, $2)")
        .bind(account_key)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await
}

/// How many failures this account has had since `window_start`, and when the oldest of them was.
pub async fn count_since<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    account_key: &str,
    window_start: i64,
) -> Result<(i64, Option<i64>), sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS failures, MIN(failed_at) AS oldest FROM login_failures
         WHERE account_key = $1 AND failed_at >= $2",
    )
    .bind(account_key)
    .bind(window_start)
    .fetch_one(executor)
    .await?;
    Ok((row.try_get("failures")?, row.try_get("oldest")?))
}

/// Forgets this account's failures (after a successful log-in).
pub async fn clear<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    account_key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_failures WHERE account_key = $1")
        .bind(account_key)
        .execute(executor)
        .await?;
    Ok(())
}
