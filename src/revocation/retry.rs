//! Runs a transaction again when the database aborted it to break a lock conflict.
//!
//! Every transaction that changes a login session's credentials takes its locks in one order
//! (the login session row, then refresh tokens, access tokens, the denylist, and last the
//! revocation counter), so a refresh and a revocation of the same session queue up instead of
//! deadlocking. Other pairs of transactions (two "log out everywhere" of one account, say) can
//! still meet in different orders; PostgreSQL then aborts one of them with SQLSTATE 40P01
//! (deadlock) or 40001 (serialization failure), which `Error::Conflict` carries, and the aborted
//! one is simply run again.

use std::future::Future;
use std::time::Duration;

use rand::RngExt;

use super::Error;

/// Runs of a transaction before a conflict is given up on (answered 503, never 500).
const ATTEMPTS: u32 = 5;

/// `attempt` runs the whole transaction, from `begin` to `commit`; it is called again, after a
/// short randomised pause, while it fails with a lock conflict.
pub(super) async fn on_conflict<T, F, Fut>(what: &'static str, mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(Error::Conflict(_)) => {
                if tries >= ATTEMPTS {
                    tracing::warn!(what, tries, "transaction kept losing lock conflicts; giving up");
                    return Err(Error::database_unavailable());
                }
                tracing::debug!(what, tries, "transaction lost a lock conflict; running it again");
                // Pauses grow (2, 4, 8, 16 ms) and are spread so the two sides do not meet again.
                let base = 1u64 << tries;
                let pause = base + rand::rng().random_range(0..=base);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                tries += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[derive(Debug)]
    struct Conflict(&'static str);

    impl std::fmt::Display for Conflict {
        fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(formatter, "SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for Conflict {}

    impl sqlx::error::DatabaseError for Conflict {
        fn message(&self) -> &str {
            "deadlock detected"
        }

        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }

        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }

        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }

        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }

        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn conflict(code: &'static str) -> Error {
        sqlx::Error::Database(Box::new(Conflict(code))).into()
    }

    #[tokio::test]
    async fn a_deadlock_or_serialization_failure_is_run_again_until_it_succeeds() {
        let runs = AtomicU32::new(0);
        let answer = on_conflict("test", || async {
            match runs.fetch_add(1, Ordering::Relaxed) {
                0 => Err(conflict("40P01")),
                1 => Err(conflict("40001")),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(answer.ok(), Some(7));
        assert_eq!(runs.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_conflict_that_persists_is_a_503_after_a_bounded_number_of_runs() {
        let runs = AtomicU32::new(0);
        let answer: Result<(), Error> = on_conflict("test", || async {
            runs.fetch_add(1, Ordering::Relaxed);
            Err(conflict("40P01"))
        })
        .await;
        assert!(matches!(answer, Err(Error::Unavailable(_))));
        assert_eq!(runs.load(Ordering::Relaxed), ATTEMPTS);
    }

    #[tokio::test]
    async fn other_errors_are_not_run_again() {
        let runs = AtomicU32::new(0);
        let answer: Result<(), Error> = on_conflict("test", || async {
            runs.fetch_add(1, Ordering::Relaxed);
            Err(conflict("23505"))
        })
        .await;
        assert!(matches!(answer, Err(Error::Internal(_))));
        assert_eq!(runs.load(Ordering::Relaxed), 1);
    }
}
