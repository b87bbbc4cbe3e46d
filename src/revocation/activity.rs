//! Activity that extends a login session: recorded in memory at once, written to the database
//! at most once per `activity_interval` by a background writer, never on the request's path.

use std::time::Duration;

use super::{Error, Revocation, SessionView};
use crate::store;

impl Revocation {
    /// Records that a login session was used: in memory at once, in the database at most once
    /// per `activity_interval`, by the background writer (never on the request's path). A cookie
    /// session's idle limit moves to `idle_expires_at`.
    pub fn record_activity(&self, session_id: &str, view: &SessionView, now: i64, idle_expires_at: Option<i64>) {
        if now - view.last_seen_at < self.inner.activity_interval.as_millis() as i64 {
            return;
        }
        self.inner.cache.record_activity(session_id, now, idle_expires_at);
        self.inner
            .activity
            .insert(session_id.to_owned(), (now, idle_expires_at));
    }

    pub(super) async fn write_activity_forever(&self) {
        let period = self
            .inner
            .activity_interval
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            tokio::time::sleep(period).await;
            if let Err(error) = self.write_activity().await {
                tracing::warn!(error = %error, "could not record session activity; will retry");
            }
        }
    }

    /// Writes the activity seen since the last call (also called at shutdown and by tests).
    pub async fn write_activity(&self) -> Result<(), Error> {
        let pending: Vec<(String, (i64, Option<i64>))> = {
            let keys: Vec<String> = self.inner.activity.iter().map(|entry| entry.key().clone()).collect();
            keys.into_iter()
                .filter_map(|key| self.inner.activity.remove(&key))
                .collect()
        };
        for (index, (session_id, (seen, idle))) in pending.iter().enumerate() {
            let written = match idle {
                Some(idle) => store::login_sessions::touch(&self.inner.db, session_id, *seen, *idle).await,
                None => store::login_sessions::record_activity(&self.inner.db, session_id, *seen).await,
            };
            if let Err(error) = written {
                // Put back what was not written, unless newer activity arrived meanwhile.
                for (session_id, value) in &pending[index..] {
                    self.inner.activity.entry(session_id.clone()).or_insert(*value);
                }
                return Err(error.into());
            }
        }
        Ok(())
    }
}
