//! The `login_attempts` table: failed password attempts per key (an account, or a trusted device
//! cookie) within the current window, counted before each password is checked.

use sqlx::Executor;

/// Counts one attempt against `key` unless `limit` (at least 1) attempts already failed in the
/// window that started at most `window` ms before `now` (an older window starts again at `now`).
/// One conditional upsert decides, so concurrent attempts are counted one after the other
/// (PostgreSQL locks the row it conflicts with and re-checks the condition on it; SQLite has one
/// writer) and no more than `limit` pass. `Ok(None)` when counted; `Ok(Some(window_started_at))`
/// when the limit is reached.
pub async fn count_attempt(
    connection: &mut sqlx::AnyConnection,
    key: &str,
    now: i64,
    window: i64,
    limit: i64,
) -> Result<Option<i64>, sqlx::Error> {
    // A right password may delete the row between a refused upsert and the read of its window;
    // then count again.
    loop {
        // The CASEs and the condition read the row as it was before this statement.
        let counted = sqlx::query(
            "INSERT INTO login_attempts (attempt_key, window_started_at, failures) VALUES ($1, $2, 1)
             ON CONFLICT (attempt_key) DO UPDATE SET
                 failures = CASE WHEN login_attempts.window_started_at <= $2 - $3 THEN 1
                                 ELSE login_attempts.failures + 1 END,
                 window_started_at = CASE WHEN login_attempts.window_started_at <= $2 - $3 THEN $2
                                          ELSE login_attempts.window_started_at END
             WHERE login_attempts.window_started_at <= $2 - $3 OR login_attempts.failures < $4",
        )
        .bind(key)
        .bind(now)
        .bind(window)
        .bind(limit)
        .execute(&mut *connection)
        .await?
        .rows_affected();
        if counted == 1 {
            return Ok(None);
        }
        let started: Option<i64> =
            sqlx::query_scalar("SELECT window_started_at FROM login_attempts WHERE attempt_key = $1")
                .bind(key)
                .fetch_optional(&mut *connection)
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
