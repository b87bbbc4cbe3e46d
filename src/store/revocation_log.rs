//! The `revocation_log` table: every change to whether a credential is valid, numbered in commit
//! order. Entries are appended inside the transaction that makes the change, after every other
//! write of that transaction, so the counter row is always the last lock taken.

use sqlx::{Executor, Row};

/// What an entry says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A login session ended (revoked, for the reason given).
    SessionRevoked,
    /// A user's `token_version` moved to the value given.
    VersionChanged,
    /// A user and everything they owned is gone.
    UserDeleted,
    /// An access token's `jti` is denylisted until `expires_at`.
    JtiDenylisted,
    /// Cookie-session state (named by the SHA-256 of its key) was written or deleted.
    WebStateChanged,
    /// A signing key (named by its `kid`) was added: every instance reloads its keys, so the
    /// JWKS publishes it at once everywhere.
    SigningKeyAdded,
    /// A user's second factor changed (the reason says how). No token's validity changes; the
    /// entry is there so that Shared Signals streams hear of it in order with the revocations.
    CredentialChanged,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionRevoked => "session_revoked",
            Self::VersionChanged => "version_changed",
            Self::UserDeleted => "user_deleted",
            Self::JtiDenylisted => "jti_denylisted",
            Self::WebStateChanged => "web_state_changed",
            Self::SigningKeyAdded => "signing_key_added",
            Self::CredentialChanged => "credential_changed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::SessionRevoked,
            Self::VersionChanged,
            Self::UserDeleted,
            Self::JtiDenylisted,
            Self::WebStateChanged,
            Self::SigningKeyAdded,
            Self::CredentialChanged,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == value)
    }
}

/// One change, before it has a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: EntryKind,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub subject: Option<String>,
    pub token_version: Option<i64>,
    pub expires_at: Option<i64>,
    pub reason: Option<String>,
}

impl Change {
    fn new(kind: EntryKind) -> Self {
        Self {
            kind,
            user_id: None,
            session_id: None,
            subject: None,
            token_version: None,
            expires_at: None,
            reason: None,
        }
    }

    pub fn session_revoked(user_id: &str, session_id: &str, reason: &str) -> Self {
        Self {
            user_id: Some(user_id.to_owned()),
            session_id: Some(session_id.to_owned()),
            reason: Some(reason.to_owned()),
            ..Self::new(EntryKind::SessionRevoked)
        }
    }

    /// `cause`: the reason of the revocation that moved it (an `EndReason`), which tells a
    /// password change from a log-out everywhere.
    pub fn version_changed(user_id: &str, token_version: i64, cause: &str) -> Self {
        Self {
            user_id: Some(user_id.to_owned()),
            token_version: Some(token_version),
            reason: Some(cause.to_owned()),
            ..Self::new(EntryKind::VersionChanged)
        }
    }

    pub fn user_deleted(user_id: &str) -> Self {
        Self {
            user_id: Some(user_id.to_owned()),
            ..Self::new(EntryKind::UserDeleted)
        }
    }

    /// `cause`: `session_ended` when the token goes with its ended session, `token_revoked` when
    /// it was revoked on its own.
    pub fn jti_denylisted(jti: &str, session_id: &str, user_id: &str, expires_at: i64, cause: &str) -> Self {
        Self {
            user_id: Some(user_id.to_owned()),
            session_id: Some(session_id.to_owned()),
            reason: Some(cause.to_owned()),
            subject: Some(jti.to_owned()),
            expires_at: Some(expires_at),
            ..Self::new(EntryKind::JtiDenylisted)
        }
    }

    pub fn web_state_changed(key_hash: &str) -> Self {
        Self {
            subject: Some(key_hash.to_owned()),
            ..Self::new(EntryKind::WebStateChanged)
        }
    }

    /// `reason`: `second_factor_enabled`, `second_factor_disabled` or `recovery_codes_replaced`.
    pub fn credential_changed(user_id: &str, reason: &str) -> Self {
        Self {
            user_id: Some(user_id.to_owned()),
            reason: Some(reason.to_owned()),
            ..Self::new(EntryKind::CredentialChanged)
        }
    }

    pub fn signing_key_added(kid: &str) -> Self {
        Self {
            subject: Some(kid.to_owned()),
            ..Self::new(EntryKind::SigningKeyAdded)
        }
    }
}

/// A numbered change, as committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub change: Change,
    pub created_at: i64,
}

/// Takes the next number: the row lock it takes is held until the transaction ends, so entries
/// commit in `seq` order and a reader never sees `seq` N + 1 without N.
async fn next_seq<'c>(executor: impl Executor<'c, Database = sqlx::Any>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("UPDATE revocation_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq")
        .fetch_one(executor)
        .await
}

/// Appends the changes in the order given; returns their entries. Call it last in a transaction.
pub async fn append(
    transaction: &mut super::Transaction<'_>,
    changes: Vec<Change>,
    now: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    let mut entries = Vec::with_capacity(changes.len());
    for change in changes {
        let seq = next_seq(&mut **transaction).await?;
        sqlx::query(
            "INSERT INTO revocation_log (seq, kind, user_id, session_id, subject, token_version, expires_at, reason, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(seq)
        .bind(change.kind.as_str())
        .bind(change.user_id.as_deref())
        .bind(change.session_id.as_deref())
        .bind(change.subject.as_deref())
        .bind(change.token_version)
        .bind(change.expires_at)
        .bind(change.reason.as_deref())
        .bind(now)
        .execute(&mut **transaction)
        .await?;
        entries.push(Entry {
            seq,
            change,
            created_at: now,
        });
    }
    Ok(entries)
}

/// The number of the last committed entry (0 before the first).
pub async fn latest_seq<'c>(executor: impl Executor<'c, Database = sqlx::Any>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT seq FROM revocation_counter WHERE id = 1")
        .fetch_one(executor)
        .await
}

/// The oldest entry still kept, if any: a reader behind it has missed entries and must reload.
pub async fn oldest_seq<'c>(executor: impl Executor<'c, Database = sqlx::Any>) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT MIN(seq) FROM revocation_log")
        .fetch_one(executor)
        .await
}

/// Up to `limit` entries after `after`, in order.
pub async fn since<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    after: i64,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, kind, user_id, session_id, subject, token_version, expires_at, reason, created_at
         FROM revocation_log WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            Ok(Entry {
                seq: row.try_get("seq")?,
                change: Change {
                    kind: EntryKind::parse(&kind)
                        .ok_or_else(|| sqlx::Error::Decode(format!("unknown revocation kind {kind:?}").into()))?,
                    user_id: row.try_get("user_id")?,
                    session_id: row.try_get("session_id")?,
                    subject: row.try_get("subject")?,
                    token_version: row.try_get("token_version")?,
                    expires_at: row.try_get("expires_at")?,
                    reason: row.try_get("reason")?,
                },
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}

/// Deletes entries older than `before`; the counter keeps counting.
pub async fn purge_before<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    before: i64,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM revocation_log WHERE created_at < $1")
        .bind(before)
        .execute(executor)
        .await?;
    Ok(result.rows_affected())
}

/// The number of the last entry written before `created_at` (0 when none is kept): where a reader
/// that needs only what happened since then starts.
pub async fn last_seq_before<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    created_at: i64,
) -> Result<i64, sqlx::Error> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM revocation_log WHERE created_at < $1")
        .bind(created_at)
        .fetch_one(executor)
        .await?;
    Ok(seq.unwrap_or(0))
}
