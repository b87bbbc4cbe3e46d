//! The `refresh_tokens` table: SHA-256 hashes of opaque refresh tokens, one family per login session.

use sqlx::{Executor, Row};

#[derive(Debug, Clone)]
pub struct StoredRefreshToken {
    pub session_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// SHA-256 of the address and user agent of the client that spent it (see `mark_used`).
    pub used_by: Option<String>,
}

pub async fn insert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    token_hash: &str,
    session_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash)
        .bind(session_id)
        .bind(now)
        .bind(expires_at)
        .execute(executor)
        .await?;
    Ok(())
}

pub async fn find<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    token_hash: &str,
) -> Result<Option<StoredRefreshToken>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT session_id, created_at, expires_at, used_at, used_by FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        Ok(StoredRefreshToken {
            session_id: row.try_get("session_id")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            used_at: row.try_get("used_at")?,
            used_by: row.try_get("used_by")?,
        })
    })
    .transpose()
}

/// Marks the token used if, and only if, nobody has used it yet: the single conditional UPDATE
/// that decides a race between concurrent refreshes. `true` for the one winner. `used_by` names
/// the client that spent it, so that a later reuse can tell a racing tab from another client.
pub async fn mark_used<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    token_hash: &str,
    now: i64,
    used_by: &str,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $2, used_by = $3
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .bind(used_by)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Removes every refresh token of a revoked login session.
pub async fn delete_for_session<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    session_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM refresh_tokens WHERE session_id = $1")
        .bind(session_id)
        .execute(executor)
        .await?;
    Ok(())
}

/// Expired tokens are useless; used ones are kept while they can still reveal a reuse.
pub async fn purge_expired<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
        .bind(now)
        .execute(executor)
        .await?;
    Ok(result.rows_affected())
}
