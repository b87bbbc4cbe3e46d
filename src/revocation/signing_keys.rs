//! Publishing a new signing key: stored and announced in the revocation log in one transaction,
//! so every instance hears of it as it hears of a revocation (PostgreSQL `NOTIFY`, Redis, or the
//! poll) and reloads its keys: the JWKS of every running instance has it within moments, not at
//! its next timed reload.

use std::time::Duration;

use crate::store::revocation_log::Change;
use crate::store::signing_keys::StoredKey;
use crate::store::{self};

use super::{Error, Pending, Revocation};

/// When a published key was stored, and when it starts signing (unix milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub created_at: i64,
    pub signs_from: i64,
}

impl Revocation {
    /// Stores `key` and announces it. It signs `notice` after its publication, plus
    /// `REVOCATION_MAX_STALENESS`: the bound within which every current instance has applied the
    /// announcement and publishes the key.
    pub async fn publish_signing_key(&self, key: &StoredKey, notice: Duration) -> Result<Published, Error> {
        let now = self.now_millis();
        let published = Published {
            created_at: now,
            signs_from: now + (notice + self.inner.sync.max_staleness()).as_millis() as i64,
        };
        let stored = StoredKey {
            created_at: published.created_at,
            signs_from: published.signs_from,
            ..key.clone()
        };
        let mut transaction = self.inner.db.begin().await?;
        store::signing_keys::insert(&mut *transaction, &stored).await?;
        let pending = Pending {
            changes: vec![Change::signing_key_added(&stored.kid)],
            ..Pending::default()
        };
        self.commit(transaction, pending, now).await?;
        Ok(published)
    }
}
