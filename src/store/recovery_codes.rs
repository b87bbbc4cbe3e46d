//! The `recovery_codes` table: single-use codes, stored only as SHA-256 hashes.

use sqlx::Executor;

use crate::store::Transaction;

/// Replaces every code of the account with these.
pub async fn replace_all(
    transaction: &mut Transaction<'_>,
    user_id: &str,
    code_hashes: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    remove_all(&mut **transaction, user_id).await?;
    for hash in code_hashes {
        sqlx::query("INSERT INTO recovery_codes (code_hash, user_id, created_at) VALUES ($1, $2, $3)")
            .bind(hash)
            .bind(user_id)
            .bind(now)
            .execute(&mut **transaction)
            .await?;
    }
    Ok(())
}

/// Spends an unused code of this account; `false` when it is not one (unknown, another
/// account's, or already spent). Of two concurrent uses, exactly one wins.
pub async fn spend<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
    code_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result =
        sqlx::query("UPDATE recovery_codes SET used_at = $3 WHERE code_hash = $2 AND user_id = $1 AND used_at IS NULL")
            .bind(user_id)
            .bind(code_hash)
            .bind(now)
            .execute(executor)
            .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn count_unused<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .fetch_one(executor)
        .await
}

pub async fn remove_all<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(executor)
        .await?;
    Ok(())
}
