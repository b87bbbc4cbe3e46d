//! The `access_tokens` table: the `jti` of every access token issued to a login session, until it
//! expires, so that revoking the session can put each of them on the denylist at once.

use sqlx::{Executor, Row};

pub async fn record<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    jti: &str,
    session_id: &str,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO access_tokens (jti, session_id, expires_at) VALUES ($1, $2, $3)")
        .bind(jti)
        .bind(session_id)
        .bind(expires_at)
        .execute(executor)
        .await?;
    Ok(())
}

/// `(jti, expires_at)` of the session's access tokens that have not expired yet.
pub async fn unexpired_for_session<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    session_id: &str,
    now: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query("SELECT jti, expires_at FROM access_tokens WHERE session_id = $1 AND expires_at > $2")
        .bind(session_id)
        .bind(now)
        .fetch_all(executor)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("jti")?, row.try_get("expires_at")?)))
        .collect()
}

pub async fn purge_expired<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM access_tokens WHERE expires_at < $1")
        .bind(now)
        .execute(executor)
        .await?;
    Ok(result.rows_affected())
}
