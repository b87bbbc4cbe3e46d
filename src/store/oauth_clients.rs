//! The `oauth_clients` table: services allowed to introspect, revoke and read the revocation
//! feed. Only a SHA-256 hash of each secret is kept.

use sqlx::{Executor, Row};

#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret_hash: String,
    pub created_at: i64,
    /// The scopes it may ask for, space-separated (`domain::Scopes` reads them).
    pub scopes: String,
}

pub async fn insert<'c>(executor: impl Executor<'c, Database = sqlx::Any>, client: &Client) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO oauth_clients (id, name, secret_hash, created_at, scopes) VALUES ($1, $2, $3, $4, $5)")
        .bind(&client.id)
        .bind(&client.name)
        .bind(&client.secret_hash)
        .bind(client.created_at)
        .bind(&client.scopes)
        .execute(executor)
        .await?;
    Ok(())
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Client, sqlx::Error> {
    Ok(Client {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        created_at: row.try_get("created_at")?,
        scopes: row.try_get("scopes")?,
    })
}

pub async fn find<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id: &str,
) -> Result<Option<Client>, sqlx::Error> {
    let row = sqlx::query("SELECT id, name, secret_hash, created_at, scopes FROM oauth_clients WHERE id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn all<'c>(executor: impl Executor<'c, Database = sqlx::Any>) -> Result<Vec<Client>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT id, name, secret_hash, created_at, scopes FROM oauth_clients ORDER BY created_at, id")
            .fetch_all(executor)
            .await?;
    rows.iter().map(from_row).collect()
}

/// Removes the client whose id or name is given; how many were removed.
pub async fn remove<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    id_or_name: &str,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM oauth_clients WHERE id = $1 OR name = $1")
        .bind(id_or_name)
        .execute(executor)
        .await?;
    Ok(result.rows_affected())
}
