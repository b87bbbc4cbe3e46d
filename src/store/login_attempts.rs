//! The `login_attempts` table: failed password attempts per key (an account, or a trusted device
//! cookie) within the current window, counted before each password is checked.

use sqlx::Executor;

/// Counts one attempt against `key` unless `limit` attempts already failed in the window that
/// started at most `window` ms before `now` (an older window starts again at `now`). One
/// conditional UPDATE decides, so concurrent attempts are counted one after the other (PostgreSQL
/// re-checks the condition on the row a concurrent update left; SQLite has one writer) and no more
/// than `limit` pass. `Ok(None)` when counted; `Ok(Some(window_started_at))` when the limit is reached.
pub async fn count_attempt(
    db: &super::Db,
    key: &str,
    now: i64,
    window: i64,
    limit: i64,
) -> Result<Option<i64>, sqlx::Error> {
    // A right password may delete the row between the insert and the update; then count again.
    loop {
        sqlx::query(
            "INSERT INTO login_attempts (attempt_key, window_started_at, failures) VALUES ($1, $2, 0)
             ON CONFLICT (attempt_key) DO NOTHING",
        )
        .bind(key)
        .bind(now)
        .execute(db)
        .await?;
        // Both CASEs read the row as it was before this statement.
        let counted = sqlx::query(
            "UPDATE login_attempts SET
                 failures = CASE WHEN window_started_at <= $2 - $3 THEN 1 ELSE failures + 1 END,
                 window_started_at = CASE WHEN window_started_at <= $2 - $3 THEN $2 ELSE window_started_at END
             WHERE attempt_key = $1 AND (window_started_at <= $2 - $3 OR failures < $4)",
        )
        .bind(key)
        .bind(now)
        .bind(window)
        .bind(limit)
        .execute(db)
        .await?
        .rows_affected();
        if counted == 1 {
            return Ok(None);
        }
        let started: Option<i64> =
            sqlx::query_scalar("SELECT window_started_at FROM login_attempts WHERE attempt_key = $1")
                .bind(key)
                .fetch_optional(db)
                .await?;
        if let Some(started) = started {
            return Ok(Some(started));
        }
    }
}

/// Forgets the key's failures (a right password, or a password reset).
pub async fn clear<'c>(executor: impl Executor<'c, Database = sqlx::Any>, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_attempts WHERE attempt_key = $1")
        .bind(key)
        .execute(executor)
        .await?;
    Ok(())
}

/// Forgets windows that started before `before`: they no longer limit anything.
pub async fn purge_before<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    before: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM login_attempts WHERE window_started_at < $1")
        .bind(before)
        .execute(executor)
        .await?
        .rows_affected())
}
