//! The `denylist` table: the durable copy of every revoked access token, until it would have
//! expired anyway. Redis or the in-process map only ever hold a copy of these rows.

use futures_util::TryStreamExt;
use sqlx::{Executor, Row};

pub async fn insert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    jti: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO denylist (jti, expires_at, created_at) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING")
        .bind(jti)
        .bind(expires_at)
        .bind(now)
        .execute(executor)
        .await?;
    Ok(())
}

pub async fn contains<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    jti: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar("SELECT expires_at FROM denylist WHERE jti = $1 AND expires_at > $2")
        .bind(jti)
        .bind(now)
        .fetch_optional(executor)
        .await?;
    Ok(found.is_some())
}

/// Every entry that is still in force: what a cache is rebuilt from.
/// Every unexpired entry, handed to `each` as it is read: the whole list is never held as rows.
pub async fn for_each_live<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    now: i64,
    mut each: impl FnMut(String, i64),
) -> Result<usize, sqlx::Error> {
    let mut rows = sqlx::query("SELECT jti, expires_at FROM denylist WHERE expires_at > $1")
        .bind(now)
        .fetch(executor);
    let mut count = 0;
    while let Some(row) = rows.try_next().await? {
        each(row.try_get("jti")?, row.try_get("expires_at")?);
        count += 1;
    }
    Ok(count)
}

pub async fn purge_expired<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM denylist WHERE expires_at <= $1")
        .bind(now)
        .execute(executor)
        .await?;
    Ok(result.rows_affected())
}
