//! The `web_sessions` table: actix-session's server-side state when no Redis is configured.

use sqlx::{Executor, Row};

pub async fn load<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    session_key: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT state FROM web_sessions WHERE session_key = $1 AND expires_at > $2")
        .bind(session_key)
        .bind(now)
        .fetch_optional(executor)
        .await?;
    row.map(|row| row.try_get("state")).transpose()
}

pub async fn upsert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    session_key: &str,
    state: &str,
    login_session_id: Option<&str>,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO web_sessions (session_key, state, login_session_id, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (session_key) DO UPDATE SET state = $2, login_session_id = $3, expires_at = $4",
    )
    .bind(session_key)
    .bind(state)
    .bind(login_session_id)
    .bind(expires_at)
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn extend<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    session_key: &str,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE web_sessions SET expires_at = $2 WHERE session_key = $1")
        .bind(session_key)
        .bind(expires_at)
        .execute(executor)
        .await?;
    Ok(())
}

/// `true` when there was state to delete.
pub async fn delete<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    session_key: &str,
) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM web_sessions WHERE session_key = $1")
        .bind(session_key)
        .execute(executor)
        .await?;
    Ok(deleted.rows_affected() > 0)
}

/// Deletes the server-side state of a revoked login session.
pub async fn delete_for_login_session<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    login_session_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM web_sessions WHERE login_session_id = $1")
        .bind(login_session_id)
        .execute(executor)
        .await?;
    Ok(())
}

pub async fn purge_expired<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(executor)
        .await?;
    Ok(result.rows_affected())
}
