//! The `ssf_streams`, `ssf_stream_subjects` and `ssf_events` tables: Shared Signals streams, the
//! subjects each one includes or leaves out, and the signed events each holds until delivered.
//!
//! Every query that reads or changes a stream names its owner (`client_id`): a stream of another
//! client is, to the caller, a stream that does not exist.

use sqlx::{Executor, Row};

/// A stream as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStream {
    pub id: String,
    pub client_id: String,
    /// The receiver-supplied configuration, JSON.
    pub configuration: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub position: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, client_id, configuration, status, status_reason, position, created_at, updated_at";

fn stream_of(row: &sqlx::any::AnyRow) -> Result<StoredStream, sqlx::Error> {
    Ok(StoredStream {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        configuration: row.try_get("configuration")?,
        status: row.try_get("status")?,
        status_reason: row.try_get("status_reason")?,
        position: row.try_get("position")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn insert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    stream: &StoredStream,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ssf_streams (id, client_id, configuration, status, status_reason, position, next_event, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8)",
    )
    .bind(&stream.id)
    .bind(&stream.client_id)
    .bind(&stream.configuration)
    .bind(&stream.status)
    .bind(stream.status_reason.as_deref())
    .bind(stream.position)
    .bind(stream.created_at)
    .bind(stream.updated_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// The client's stream `id`, if it has one of that id.
pub async fn find<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    client_id: &str,
    id: &str,
) -> Result<Option<StoredStream>, sqlx::Error> {
    let query = format!("SELECT {COLUMNS} FROM ssf_streams WHERE id = $1 AND client_id = $2");
    sqlx::query(sqlx::AssertSqlSafe(query))
        .bind(id)
        .bind(client_id)
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(stream_of)
        .transpose()
}

/// The client's streams, oldest first.
pub async fn for_client<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    client_id: &str,
) -> Result<Vec<StoredStream>, sqlx::Error> {
    let query = format!("SELECT {COLUMNS} FROM ssf_streams WHERE client_id = $1 ORDER BY created_at, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(query))
        .bind(client_id)
        .fetch_all(executor)
        .await?;
    rows.iter().map(stream_of).collect()
}

/// Every stream whose position is behind `seq`: the ones with log entries still to take.
pub async fn behind<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    seq: i64,
) -> Result<Vec<StoredStream>, sqlx::Error> {
    let query = format!("SELECT {COLUMNS} FROM ssf_streams WHERE position < $1 ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(query))
        .bind(seq)
        .fetch_all(executor)
        .await?;
    rows.iter().map(stream_of).collect()
}

/// Replaces the receiver-supplied configuration; `false` when the client has no such stream.
pub async fn set_configuration<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    client_id: &str,
    id: &str,
    configuration: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result =
        sqlx::query("UPDATE ssf_streams SET configuration = $3, updated_at = $4 WHERE id = $1 AND client_id = $2")
            .bind(id)
            .bind(client_id)
            .bind(configuration)
            .bind(now)
            .execute(executor)
            .await?;
    Ok(result.rows_affected() == 1)
}

/// What became of a verification request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationClaim {
    Recorded,
    /// The stream had one at `requested_at` (unix milliseconds), too recently.
    TooSoon {
        requested_at: i64,
    },
    /// The stream is gone.
    Gone,
}

/// Records a verification request at `now` unless the stream had one after `not_after`. The
/// conditional UPDATE lets one of two concurrent requests through, on one instance or several.
pub async fn claim_verification(
    transaction: &mut super::Transaction<'_>,
    stream_id: &str,
    now: i64,
    not_after: i64,
) -> Result<VerificationClaim, sqlx::Error> {
    let claimed = sqlx::query(
        "UPDATE ssf_streams SET verification_requested_at = $2
         WHERE id = $1 AND (verification_requested_at IS NULL OR verification_requested_at <= $3)",
    )
    .bind(stream_id)
    .bind(now)
    .bind(not_after)
    .execute(&mut **transaction)
    .await?;
    if claimed.rows_affected() == 1 {
        return Ok(VerificationClaim::Recorded);
    }
    let earlier: Option<i64> = sqlx::query_scalar("SELECT verification_requested_at FROM ssf_streams WHERE id = $1")
        .bind(stream_id)
        .fetch_optional(&mut **transaction)
        .await?
        .flatten();
    Ok(match earlier {
        Some(requested_at) => VerificationClaim::TooSoon { requested_at },
        None => VerificationClaim::Gone,
    })
}

pub async fn set_status<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    client_id: &str,
    id: &str,
    status: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE ssf_streams SET status = $3, status_reason = $4, updated_at = $5 WHERE id = $1 AND client_id = $2",
    )
    .bind(id)
    .bind(client_id)
    .bind(status)
    .bind(reason)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Deletes the stream, its subjects and its undelivered events; `false` when there was none.
pub async fn delete(transaction: &mut super::Transaction<'_>, client_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM ssf_streams WHERE id = $1 AND client_id = $2")
        .bind(id)
        .bind(client_id)
        .execute(&mut **transaction)
        .await?;
    if result.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM ssf_stream_subjects WHERE stream_id = $1")
        .bind(id)
        .execute(&mut **transaction)
        .await?;
    sqlx::query("DELETE FROM ssf_events WHERE stream_id = $1")
        .bind(id)
        .execute(&mut **transaction)
        .await?;
    Ok(true)
}

/// Moves the stream from `from` to `to`, only if it still stands at `from`: of two instances
/// taking the same entries, one moves it and the other rolls back.
pub async fn advance<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
    from: i64,
    to: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("UPDATE ssf_streams SET position = $3 WHERE id = $1 AND position = $2")
        .bind(id)
        .bind(from)
        .bind(to)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Includes (`true`) or leaves out (`false`) the user's events.
pub async fn set_subject<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    stream_id: &str,
    user_id: &str,
    included: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ssf_stream_subjects (stream_id, user_id, included) VALUES ($1, $2, $3)
         ON CONFLICT (stream_id, user_id) DO UPDATE SET included = excluded.included",
    )
    .bind(stream_id)
    .bind(user_id)
    .bind(i64::from(included))
    .execute(executor)
    .await?;
    Ok(())
}

/// The users the stream leaves out.
pub async fn left_out<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    stream_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM ssf_stream_subjects WHERE stream_id = $1 AND included = 0")
        .bind(stream_id)
        .fetch_all(executor)
        .await
}

/// A signed event waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub stream_id: String,
    pub number: i64,
    pub jti: String,
    pub token: String,
    pub attempts: i64,
}

/// Appends an event to the stream, numbered after every earlier one.
pub async fn push_event(
    transaction: &mut super::Transaction<'_>,
    stream_id: &str,
    jti: &str,
    token: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let number: i64 =
        sqlx::query_scalar("UPDATE ssf_streams SET next_event = next_event + 1 WHERE id = $1 RETURNING next_event - 1")
            .bind(stream_id)
            .fetch_one(&mut **transaction)
            .await?;
    sqlx::query(
        "INSERT INTO ssf_events (stream_id, number, jti, token, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(stream_id)
    .bind(number)
    .bind(jti)
    .bind(token)
    .bind(now)
    .execute(&mut **transaction)
    .await?;
    Ok(number)
}

fn event_of(row: &sqlx::any::AnyRow) -> Result<PendingEvent, sqlx::Error> {
    Ok(PendingEvent {
        stream_id: row.try_get("stream_id")?,
        number: row.try_get("number")?,
        jti: row.try_get("jti")?,
        token: row.try_get("token")?,
        attempts: row.try_get("attempts")?,
    })
}

/// The stream's oldest `limit` undelivered events, in order.
pub async fn oldest_events<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    stream_id: &str,
    limit: i64,
) -> Result<Vec<PendingEvent>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT stream_id, number, jti, token, attempts FROM ssf_events WHERE stream_id = $1 ORDER BY number LIMIT $2",
    )
    .bind(stream_id)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    rows.iter().map(event_of).collect()
}

/// Removes the stream's events named by `jti` (acknowledged, or refused by the receiver).
pub async fn remove_event<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    stream_id: &str,
    jti: &str,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM ssf_events WHERE stream_id = $1 AND jti = $2")
        .bind(stream_id)
        .bind(jti)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Drops every undelivered event of the stream (it was disabled).
pub async fn drop_events<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    stream_id: &str,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM ssf_events WHERE stream_id = $1")
        .bind(stream_id)
        .execute(executor)
        .await?;
    Ok(result.rows_affected())
}

/// Claims the stream's first undelivered event for one push attempt, if it is due at `now`:
/// it becomes due again at `retry_at`. Only one of several instances claiming the same row gets
/// it, and only the head of a stream is ever claimed, so events reach the receiver in order.
pub async fn claim_head(
    db: &super::Db,
    stream_id: &str,
    now: i64,
    retry_at: i64,
) -> Result<Option<PendingEvent>, sqlx::Error> {
    let Some(head) = oldest_events(db, stream_id, 1).await?.into_iter().next() else {
        return Ok(None);
    };
    let claimed = sqlx::query(
        "UPDATE ssf_events SET next_attempt_at = $4, attempts = attempts + 1
         WHERE stream_id = $1 AND number = $2 AND next_attempt_at <= $3 AND attempts = $5",
    )
    .bind(stream_id)
    .bind(head.number)
    .bind(now)
    .bind(retry_at)
    .bind(head.attempts)
    .execute(db)
    .await?;
    Ok((claimed.rows_affected() == 1).then_some(PendingEvent {
        attempts: head.attempts + 1,
        ..head
    }))
}

/// A failed push: tried again at `retry_at`.
pub async fn push_failed(
    db: &super::Db,
    stream_id: &str,
    number: i64,
    retry_at: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE ssf_events SET next_attempt_at = $3, last_error = $4 WHERE stream_id = $1 AND number = $2")
        .bind(stream_id)
        .bind(number)
        .bind(retry_at)
        .bind(error)
        .execute(db)
        .await?;
    Ok(())
}

/// A stream by id alone, for the delivery task.
pub async fn by_id<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
) -> Result<Option<StoredStream>, sqlx::Error> {
    let query = format!("SELECT {COLUMNS} FROM ssf_streams WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(query))
        .bind(id)
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(stream_of)
        .transpose()
}

/// The streams with an event due for delivery at `now`.
pub async fn with_due_events<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    now: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT DISTINCT stream_id FROM ssf_events WHERE next_attempt_at <= $1 ORDER BY stream_id")
        .bind(now)
        .fetch_all(executor)
        .await
}
