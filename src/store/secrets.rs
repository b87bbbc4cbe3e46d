//! The `secrets` table: keys the embedded default generates once, so a restart logs nobody out.
//! Several instances on one PostgreSQL agree on the same value: the first insert wins.

use crate::domain::now_millis;
use crate::store::Db;

pub async fn get_or_create(db: &Db, name: &str, generate: impl FnOnce() -> String) -> Result<String, sqlx::Error> {
    sqlx::query("INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(generate())
        .bind(now_millis())
        .execute(db)
        .await?;
    sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
        .bind(name)
        .fetch_one(db)
        .await
}
