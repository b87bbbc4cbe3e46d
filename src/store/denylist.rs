//! The `denylist` table: the durable copy of every revoked access token, until it would have
//! expired anyway. Redis or the in-process map only ever hold a copy of these rows.

use futures_util::TryStreamExt;
use sqlx::{Executor, Row};

use super::{Backend, Db};

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

/// How many rows there are, expired ones included: what a full load reads at most.
pub async fn count_rows<'c>(executor: impl Executor<'c, Database = sqlx::Any>) -> Result<usize, sqlx::Error> {
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM denylist")
        .fetch_one(executor)
        .await?;
    Ok(usize::try_from(rows).unwrap_or(0))
}

/// Every entry that is still in force, handed to `each` as it is read: the list is never held as
/// rows, nor its `jti`s as strings.
pub async fn for_each_live(db: &Db, now: i64, mut each: impl FnMut(&str, i64)) -> Result<usize, sqlx::Error> {
    match super::backend_of(db) {
        Backend::Sqlite => for_each_live_in_chunks(db, now, &mut each).await,
        Backend::Postgres => for_each_live_row(db, now, &mut each).await,
    }
}

/// One row at a time. The whole table is read and expired rows skipped here (the purge keeps them
/// few), in storage order rather than through the `expires_at` index.
async fn for_each_live_row(db: &Db, now: i64, each: &mut impl FnMut(&str, i64)) -> Result<usize, sqlx::Error> {
    let mut rows = sqlx::query("SELECT jti, expires_at FROM denylist").fetch(db);
    let mut count = 0;
    while let Some(row) = rows.try_next().await? {
        let expires_at: i64 = row.try_get(1)?;
        if expires_at > now {
            each(row.try_get::<&str, _>(0)?, expires_at);
            count += 1;
        }
    }
    Ok(count)
}

/// Rows per query of `for_each_live_in_chunks`.
const CHUNK_ROWS: i64 = 4096;

/// SQLite: the table in ranges of `CHUNK_ROWS` rowids, each range one row of text
/// (`hex(jti):expires_at,…`) that is taken apart here. A row handed over by the driver costs
/// several times what SQLite spends reading it, so a million rows one by one take about two
/// seconds, in chunks a fraction of that. The `jti` travels in hexadecimal, so no character it may
/// hold can be taken for a separator.
async fn for_each_live_in_chunks(db: &Db, now: i64, each: &mut impl FnMut(&str, i64)) -> Result<usize, sqlx::Error> {
    let (first, last): (Option<i64>, Option<i64>) = sqlx::query_as("SELECT MIN(rowid), MAX(rowid) FROM denylist")
        .fetch_one(db)
        .await?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(0);
    };
    let mut count = 0;
    let mut jti = Vec::with_capacity(64);
    let mut start = first;
    while start <= last {
        let end = start.saturating_add(CHUNK_ROWS - 1);
        let chunk: Option<String> = sqlx::query_scalar(
            "SELECT group_concat(hex(jti) || ':' || expires_at, ',') FROM denylist \
             WHERE rowid BETWEEN $1 AND $2 AND expires_at > $3",
        )
        .bind(start)
        .bind(end)
        .bind(now)
        .fetch_one(db)
        .await?;
        for item in chunk
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter(|item| !item.is_empty())
        {
            let expires_at = parse_chunk_item(item, &mut jti).ok_or_else(|| malformed(item))?;
            each(std::str::from_utf8(&jti).map_err(|_| malformed(item))?, expires_at);
            count += 1;
        }
        let Some(next) = end.checked_add(1) else { break };
        start = next;
    }
    Ok(count)
}

/// `HEX:EXPIRES` into the `jti`'s bytes (in `jti`) and the expiry.
fn parse_chunk_item(item: &str, jti: &mut Vec<u8>) -> Option<i64> {
    let (hex, expires_at) = item.split_once(':')?;
    let expires_at = expires_at.parse::<i64>().ok()?;
    if hex.len() % 2 != 0 {
        return None;
    }
    jti.clear();
    for pair in hex.as_bytes().chunks_exact(2) {
        let digit = |byte: u8| match byte {
            b'0'..=b'9' => Some(byte - b'0'),
            b'A'..=b'F' => Some(byte - b'A' + 10),
            _ => None,
        };
        jti.push(digit(pair[0])? << 4 | digit(pair[1])?);
    }
    Some(expires_at)
}

fn malformed(item: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("a denylist chunk held {item:?}, not hex(jti):expires_at").into())
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn database() -> Db {
        let db = super::super::connect_lazy_reader("sqlite::memory:").expect("a lazy pool");
        super::super::migrate(&db).await.expect("the schema");
        db
    }

    // Every live row read once, whatever its `jti` holds, across chunks and rowid gaps: on both
    // backends, in `tests/api/revocation.rs` (`the_denylist_loads_every_live_row_once_…`).

    #[tokio::test]
    async fn an_empty_table_reads_nothing() {
        let db = database().await;
        assert_eq!(for_each_live(&db, 0, |_, _| panic!("no row")).await.unwrap(), 0);
        assert_eq!(count_rows(&db).await.unwrap(), 0);
    }

    #[test]
    fn a_chunk_item_is_hex_then_the_expiry() {
        let mut jti = Vec::new();
        assert_eq!(parse_chunk_item("612C62:42", &mut jti), Some(42));
        assert_eq!(jti, b"a,b");
        for bad in ["612C6", "61:x", "6G:1", "61", "6a:1"] {
            assert_eq!(parse_chunk_item(bad, &mut jti), None, "{bad}");
        }
    }
}
