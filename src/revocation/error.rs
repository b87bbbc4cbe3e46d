//! What the revocation layer answers when it cannot answer the question asked: the database or
//! Redis out of reach, a transaction that lost a lock conflict, or a bug. It knows nothing of
//! HTTP; `crate::error` turns it into the client's answer (503, or 500 for a bug).

/// Why a check or a change of validity did not complete.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A backing service did not answer (in time): nothing can vouch for the answer.
    #[error("{0} is unavailable")]
    Unavailable(&'static str),
    /// The database aborted the transaction to break a lock conflict (SQLSTATE 40001 or
    /// 40P01); running it again is the remedy (`retry`).
    #[error("the transaction lost a lock conflict: {0}")]
    Conflict(#[source] sqlx::Error),
    /// Anything else: a bug, whose cause chain goes to the log.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl Error {
    pub fn database_unavailable() -> Self {
        Self::Unavailable("the database")
    }
}

/// A lock conflict, the database out of reach, or a bug in a query.
impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        if crate::store::is_lock_conflict(&error) {
            return Self::Conflict(error);
        }
        if crate::store::is_unavailable(&error) {
            tracing::warn!(error = %error, "database unavailable");
            return Self::database_unavailable();
        }
        Self::Internal(anyhow::Error::new(error))
    }
}

impl From<deadpool_redis::PoolError> for Error {
    fn from(error: deadpool_redis::PoolError) -> Self {
        tracing::warn!(error = %error, "redis unavailable");
        Self::Unavailable("redis")
    }
}

impl From<redis::RedisError> for Error {
    fn from(error: redis::RedisError) -> Self {
        tracing::warn!(error = %error, "redis unavailable");
        Self::Unavailable("redis")
    }
}

/// Errors gathered as `anyhow::Error` are classified by what they wrap, not the road they took.
impl From<anyhow::Error> for Error {
    fn from(error: anyhow::Error) -> Self {
        let error = match error.downcast::<Error>() {
            Ok(error) => return error,
            Err(error) => error,
        };
        let error = match error.downcast::<sqlx::Error>() {
            Ok(error) => return error.into(),
            Err(error) => error,
        };
        if error.chain().any(is_unavailable_cause) {
            tracing::warn!(error = %error, "backing service unavailable");
            return Self::database_unavailable();
        }
        Self::Internal(error)
    }
}

/// An error met further down a chain of sources that means a backing service is out of reach.
pub fn is_unavailable_cause(cause: &(dyn std::error::Error + 'static)) -> bool {
    cause
        .downcast_ref::<sqlx::Error>()
        .is_some_and(crate::store::is_unavailable)
        || cause.downcast_ref::<redis::RedisError>().is_some()
        || cause.downcast_ref::<deadpool_redis::PoolError>().is_some()
        || matches!(cause.downcast_ref::<Error>(), Some(Error::Unavailable(_)))
}
