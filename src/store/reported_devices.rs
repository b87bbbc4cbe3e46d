//! The `reported_devices` table: browser/OS and address pairs the owner said were not theirs.

use sqlx::{Executor, Row};

/// Records (or re-records) a pair as reported.
pub async fn report<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
    device: &str,
    ip: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO reported_devices (user_id, device, ip, reported_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, device, ip) DO UPDATE SET reported_at = excluded.reported_at",
    )
    .bind(user_id)
    .bind(device)
    .bind(ip)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

/// The owner said "it was me" after all.
pub async fn forget<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
    device: &str,
    ip: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM reported_devices WHERE user_id = $1 AND device = $2 AND ip = $3")
        .bind(user_id)
        .bind(device)
        .bind(ip)
        .execute(executor)
        .await?;
    Ok(())
}

/// Every reported `(device, ip)` pair of the user.
pub async fn list<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query("SELECT device, ip FROM reported_devices WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(executor)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("device")?, row.try_get("ip")?)))
        .collect()
}
