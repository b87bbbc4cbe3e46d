//! The `users` table.

use sqlx::{Executor, Row};

use crate::domain::{Email, RandomId, now_millis};

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub token_version: i64,
    pub created_at: i64,
    pub password_changed_at: i64,
    /// Set by an operator's `revocable users lock`: log-ins are refused while it is.
    pub locked_at: Option<i64>,
    /// When the address was verified through its emailed link, if it was.
    pub email_verified_at: Option<i64>,
    /// Set by "this wasn't me" from an email: password log-ins are refused until a reset.
    pub password_reset_required_at: Option<i64>,
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        token_version: row.try_get("token_version")?,
        created_at: row.try_get("created_at")?,
        password_changed_at: row.try_get("password_changed_at")?,
        locked_at: row.try_get("locked_at")?,
        email_verified_at: row.try_get("email_verified_at")?,
        password_reset_required_at: row.try_get("password_reset_required_at")?,
    })
}

const COLUMNS: &str = "id, email, password_hash, token_version, created_at, password_changed_at, locked_at, \
                       email_verified_at, password_reset_required_at";

pub enum Inserted {
    Created(User),
    EmailTaken,
}

pub async fn insert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    email: &Email,
    password_hash: &str,
) -> Result<Inserted, sqlx::Error> {
    let now = now_millis();
    let id = RandomId::generate();
    let result = sqlx::query(
        "INSERT INTO users (id, email, email_normalized, password_hash, token_version, created_at, password_changed_at)
         VALUES ($1, $2, $3, $4, 0, $5, $5)",
    )
    .bind(&id)
    .bind(email.as_str())
    .bind(email.normalized())
    .bind(password_hash)
    .bind(now)
    .execute(executor)
    .await;
    match result {
        Ok(_) => Ok(Inserted::Created(User {
            id,
            email: email.as_str().to_owned(),
            password_hash: password_hash.to_owned(),
            token_version: 0,
            created_at: now,
            password_changed_at: now,
            locked_at: None,
            email_verified_at: None,
            password_reset_required_at: None,
        })),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(Inserted::EmailTaken),
        Err(error) => Err(error),
    }
}

pub async fn find_by_email<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    email: &Email,
) -> Result<Option<User>, sqlx::Error> {
    // The NFC form first; a row written before addresses were put in NFC is found by its old key.
    let query = format!(
        "SELECT {COLUMNS} FROM users WHERE email_normalized IN ($1, $2)
         ORDER BY CASE WHEN email_normalized = $1 THEN 0 ELSE 1 END LIMIT 1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(query))
        .bind(email.normalized())
        .bind(email.legacy_normalized())
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn find_by_id<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
) -> Result<Option<User>, sqlx::Error> {
    let query = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(query))
        .bind(id)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The user's current `token_version`, or `None` for a deleted user.
pub async fn token_version<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT token_version FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// Invalidates every access token issued so far under the `version` strategy; returns the new value.
pub async fn bump_token_version<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("UPDATE users SET token_version = token_version + 1 WHERE id = $1 RETURNING token_version")
        .bind(id)
        .fetch_one(executor)
        .await
}

/// Stores a new password hash and bumps `token_version` in the same statement.
pub async fn change_password<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
    password_hash: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE users SET password_hash = $2, password_changed_at = $3, token_version = token_version + 1
         WHERE id = $1 RETURNING token_version",
    )
    .bind(id)
    .bind(password_hash)
    .bind(now_millis())
    .fetch_one(executor)
    .await
}

/// Removes the user and, by cascade, everything that belongs to them.
pub async fn delete<'c>(executor: impl Executor<'c, Database = sqlx::Any>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

/// Sets or clears the operator's lock; `false` when no such user.
pub async fn set_locked<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
    locked_at: Option<i64>,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("UPDATE users SET locked_at = $2 WHERE id = $1")
        .bind(id)
        .bind(locked_at)
        .execute(executor)
        .await?
        .rows_affected()
        == 1)
}

/// When the account's address was verified, if it was.
pub async fn email_verified_at<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let found: Option<Option<i64>> = sqlx::query_scalar("SELECT email_verified_at FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await?;
    Ok(found.flatten())
}

/// Marks the address verified (the first time only); `true` when this call did it.
pub async fn mark_email_verified<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("UPDATE users SET email_verified_at = $2 WHERE id = $1 AND email_verified_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// When password log-ins to the account were stopped until a reset through email, if they are.
pub async fn password_reset_required_at<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let found: Option<Option<i64>> = sqlx::query_scalar("SELECT password_reset_required_at FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await?;
    Ok(found.flatten())
}

/// Stops password log-ins until the password is reset through email.
pub async fn require_password_reset<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_reset_required_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(executor)
        .await?;
    Ok(())
}

/// A password reset through email: the new hash, `token_version` bumped, the block lifted and the
/// address verified (the link reached it), in one statement; returns the new `token_version`.
pub async fn reset_password<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
    password_hash: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE users SET password_hash = $2, password_changed_at = $3, token_version = token_version + 1,
             password_reset_required_at = NULL, email_verified_at = COALESCE(email_verified_at, $3)
         WHERE id = $1 RETURNING token_version",
    )
    .bind(id)
    .bind(password_hash)
    .bind(now)
    .fetch_one(executor)
    .await
}
