//! Password hashing: argon2id with OWASP's parameters (m = 19456 KiB, t = 2, p = 1), PHC strings.
//!
//! Each hash costs about 14 ms of one core, so it never runs on an async worker: it goes to the
//! blocking pool, and at most one job per core at a time, so a burst of sign-ups queues here
//! instead of stalling every other request.

use std::sync::{Arc, LazyLock};

use argon2::{Algorithm, Argon2, Params, Version};
use argon2::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

use crate::domain::Password;

fn hasher() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("OWASP parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

static PERMITS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    Arc::new(Semaphore::new(cores))
});

/// A hash of a password nobody knows, verified against when the email is unknown so that a
/// failed log-in takes as long whether or not the account exists.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hasher()
        .hash_password(crate::domain::RandomId::secret().as_bytes())
        .expect("hashing a fixed-length input cannot fail")
        .to_string()
});

async fn off_the_workers<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let _permit = PERMITS.clone().acquire_owned().await?;
    Ok(tokio::task::spawn_blocking(job).await?)
}

pub async fn hash(password: Password) -> anyhow::Result<String> {
    off_the_workers(move || {
        hasher()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| anyhow::anyhow!("argon2 hashing failed: {error}"))
    })
    .await?
}

/// Checks a password against a stored PHC string; `stored = None` means an unknown account and
/// costs the same as a real check.
pub async fn verify(password: String, stored: Option<String>) -> anyhow::Result<bool> {
    off_the_workers(move || {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let matches = hasher().verify_password(password.as_bytes(), phc.as_str()).is_ok();
        Ok::<_, anyhow::Error>(known && matches)
    })
    .await?
}

/// Warms the dummy hash so the first unknown-email log-in is not faster than the rest.
pub fn prepare() {
    LazyLock::force(&DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters() {
        let hash = hash(Password::parse("correct horse battery".into()).unwrap())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(
            verify("correct horse battery".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse battery".into(), Some(hash)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        assert!(!verify("anything at all".into(), None).await.unwrap());
    }
}
