//! The `signing_keys` table: every Ed25519 key the database holds, oldest first. Several instances
//! on one database agree on the keys because they all read them from here.

use sqlx::{Executor, Row};

#[derive(Debug, Clone)]
pub struct StoredKey {
    pub kid: String,
    pub private_key: String,
    pub public_key: String,
    pub created_at: i64,
    pub signs_from: i64,
}

/// Adds a key; a key whose `kid` is already stored is left as it is (the first insert wins).
pub async fn insert<'c>(executor: impl Executor<'c, Database = sqlx::Any>, key: &StoredKey) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at, signs_from)
         VALUES ($1, 'EdDSA', $2, $3, $4, $5) ON CONFLICT (kid) DO NOTHING",
    )
    .bind(&key.kid)
    .bind(&key.private_key)
    .bind(&key.public_key)
    .bind(key.created_at)
    .bind(key.signs_from)
    .execute(executor)
    .await?;
    Ok(())
}

/// Every key, in the order they start signing.
pub async fn all<'c>(executor: impl Executor<'c, Database = sqlx::Any>) -> Result<Vec<StoredKey>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT kid, private_key, public_key, created_at, signs_from FROM signing_keys ORDER BY signs_from, created_at, kid",
    )
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(StoredKey {
                kid: row.try_get("kid")?,
                private_key: row.try_get("private_key")?,
                public_key: row.try_get("public_key")?,
                created_at: row.try_get("created_at")?,
                signs_from: row.try_get("signs_from")?,
            })
        })
        .collect()
}
