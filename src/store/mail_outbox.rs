//! The `mail_outbox` table: messages a request has committed to send, until they are sent.
//!
//! The bodies hold link tokens (secrets), so a row lives only until its message is sent; one given
//! up on keeps its recipient, subject and last error for the log and the operator, not its bodies.
//! Several instances deliver from one table: a row is claimed by a conditional UPDATE that moves
//! its due time past a lease, so of two instances that saw it due exactly one wins.

use sqlx::{Executor, Row};

use crate::domain::{RandomId, now_millis};

/// A message as a request enqueues it.
pub struct NewMail<'a> {
    pub recipient: &'a str,
    pub subject: &'a str,
    pub text_body: &'a str,
    pub html_body: &'a str,
}

/// A message claimed for one delivery attempt.
#[derive(Debug, Clone)]
pub struct QueuedMail {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

pub async fn insert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    mail: NewMail<'_>,
) -> Result<String, sqlx::Error> {
    let id = RandomId::generate();
    let now = now_millis();
    sqlx::query(
        "INSERT INTO mail_outbox (id, recipient, subject, text_body, html_body, created_at, next_attempt_at, attempts)
         VALUES ($1, $2, $3, $4, $5, $6, $6, 0)",
    )
    .bind(&id)
    .bind(mail.recipient)
    .bind(mail.subject)
    .bind(mail.text_body)
    .bind(mail.html_body)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(id)
}

/// Rows due now (ids and the due time each was seen with), oldest first.
pub async fn due<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    now: i64,
    limit: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, next_attempt_at FROM mail_outbox
         WHERE given_up_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("next_attempt_at")?)))
        .collect()
}

/// Claims one row for an attempt until `lease_until`, if it is still due at the time it was seen
/// with: of concurrent claimers exactly one gets `Some`.
pub async fn claim<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
    seen_due_at: i64,
    lease_until: i64,
) -> Result<Option<QueuedMail>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE mail_outbox SET next_attempt_at = $3, attempts = attempts + 1
         WHERE id = $1 AND next_attempt_at = $2 AND given_up_at IS NULL
         RETURNING id, recipient, subject, text_body, html_body, attempts",
    )
    .bind(id)
    .bind(seen_due_at)
    .bind(lease_until)
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        Ok(QueuedMail {
            id: row.try_get("id")?,
            recipient: row.try_get("recipient")?,
            subject: row.try_get("subject")?,
            text_body: row.try_get("text_body")?,
            html_body: row.try_get("html_body")?,
            attempts: row.try_get("attempts")?,
        })
    })
    .transpose()
}

/// Sent: the row, and the secrets in it, go.
pub async fn delete_sent<'c>(executor: impl Executor<'c, Database = sqlx::Any>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM mail_outbox WHERE id = $1")
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

/// A failed attempt: try again at `retry_at`, keeping why this one failed.
pub async fn retry_later<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
    retry_at: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE mail_outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1")
        .bind(id)
        .bind(retry_at)
        .bind(error)
        .execute(executor)
        .await?;
    Ok(())
}

/// No more attempts: the bodies (and the links in them) are dropped, the rest kept.
pub async fn give_up<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE mail_outbox SET given_up_at = $2, last_error = $3, text_body = '', html_body = '' WHERE id = $1",
    )
    .bind(id)
    .bind(now_millis())
    .bind(error)
    .execute(executor)
    .await?;
    Ok(())
}

/// What is waiting to be sent, for tests and the operator: (recipient, subject, attempts, last error).
pub async fn pending<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
) -> Result<Vec<(String, String, i64, Option<String>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT recipient, subject, attempts, last_error FROM mail_outbox WHERE given_up_at IS NULL ORDER BY created_at",
    )
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("recipient")?,
                row.try_get("subject")?,
                row.try_get("attempts")?,
                row.try_get("last_error")?,
            ))
        })
        .collect()
}

/// When the next message is due, if any is waiting.
pub async fn next_due<'c>(executor: impl Executor<'c, Database = sqlx::Any>) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM mail_outbox WHERE given_up_at IS NULL")
        .fetch_one(executor)
        .await
}
