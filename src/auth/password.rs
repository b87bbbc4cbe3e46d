//! Password hashing: argon2id with OWASP's parameters (m = 19456 KiB, t = 2, p = 1), PHC strings.
//!
//! Each hash costs about 16 ms of one core, so it never runs on an async worker: it goes to the
//! hashing threads, one per core, fed from one queue in arrival order, so a burst of log-ins
//! queues here instead of stalling every other request, and a core that finishes a hash starts
//! the next one waiting at once.
//!
//! A verification (every log-in) hashes into working memory kept from the previous one (see
//! `MEMORY`) instead of 19 MiB allocated, zeroed and handed back to the kernel each time.

use std::cell::RefCell;
use std::sync::LazyLock;

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, Version};
use subtle::ConstantTimeEq;

use crate::domain::Password;

fn hasher() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("OWASP parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The hashing threads. With `spawn_blocking` behind a semaphore of one permit per core, the
/// next hash began only once the async worker of the one that ended had run to give its permit
/// back, and the worker of the next had run to hand its hash over: on busy cores, milliseconds
/// per hash in which a core did not hash.
static HASHERS: LazyLock<Result<rayon::ThreadPool, rayon::ThreadPoolBuildError>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    rayon::ThreadPoolBuilder::new()
        .num_threads(cores)
        .thread_name(|index| format!("argon2-{index}"))
        // A panicking job drops its answer's sender: its caller gets an error, the thread lives on.
        .panic_handler(|_| tracing::error!("a password hashing job panicked"))
        .build()
});

/// A hash of a password nobody knows, verified against when the email is unknown so that a
/// failed log-in takes as long whether or not the account exists.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hasher()
        .hash_password(crate::domain::RandomId::secret().as_bytes())
        .expect("hashing a fixed-length input cannot fail")
        .to_string()
});

thread_local! {
    /// argon2's working memory (m blocks of 1 KiB: 19 MiB), kept by each thread that verifies
    /// (the hashing threads: one per core) for its next verification. Allocating it zeroed for
    /// each one cost a seventh of a verification's instructions, and giving it back to the
    /// kernel hundreds of page faults for the next. What it held before cannot reach the next
    /// hash: argon2's first pass writes every block before any block is read (RFC 9106, 3.2).
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs `job` with at least `blocks` blocks of this thread's working memory.
fn with_memory<T>(blocks: usize, job: impl FnOnce(&mut [Block]) -> T) -> T {
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            *memory = vec![Block::default(); blocks];
        }
        job(memory)
    })
}

/// Whether `password` hashes to the stored PHC string `phc`, with the algorithm, version and
/// parameters the string names, compared in constant time; a string that does not parse never
/// matches. Blocks its thread for the length of a hash: callers off the async workers only
/// (`verify`, and `examples/argon2_cost`, which measures exactly this).
pub fn verify_blocking(password: &[u8], phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let algorithm = Algorithm::try_from(hash.algorithm.as_str());
    let version = hash.version.map(Version::try_from).transpose();
    let params = Params::try_from(&hash);
    let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, params) else {
        return false;
    };
    let hasher = Argon2::new(algorithm, version.unwrap_or_default(), params);
    let mut computed = vec![0; expected.len()];
    let blocks = hasher.params().block_count();
    let hashed = with_memory(blocks, |memory| {
        hasher.hash_password_into_with_memory(password, salt, &mut computed, memory)
    });
    hashed.is_ok() && bool::from(computed.ct_eq(expected.as_bytes()))
}

/// Runs `job` on a hashing thread once the jobs queued before it have started. A job whose
/// caller has gone (the client hung up while it waited) is skipped, not hashed for nobody.
async fn off_the_workers<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let hashers = HASHERS
        .as_ref()
        .map_err(|error| anyhow::anyhow!("cannot start the password hashing threads: {error}"))?;
    let (answer, answered) = tokio::sync::oneshot::channel();
    hashers.spawn_fifo(move || {
        if !answer.is_closed() {
            // Sending fails only if the caller went away meanwhile: nobody to tell.
            answer.send(job()).ok();
        }
    });
    answered
        .await
        .map_err(|_| anyhow::anyhow!("a password hashing job ended without an answer"))
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
        let matches = verify_blocking(password.as_bytes(), &phc);
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

    /// Working memory left dirty by earlier hashes, of other passwords and parameters, changes
    /// nothing: the answers are those of argon2's own verification of the same strings.
    #[test]
    fn reused_memory_verifies_exactly_as_argon2_does() {
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 3, 1, None).unwrap(),
        );
        let owasp = hasher().hash_password(b"first password").unwrap().to_string();
        let other = small.hash_password(b"second password").unwrap().to_string();
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(256, 2, 1, None).unwrap(),
        )
        .hash_password(b"third password")
        .unwrap()
        .to_string();
        for _ in 0..2 {
            for (phc, right) in [
                (&owasp, "first password"),
                (&other, "second password"),
                (&argon2i, "third password"),
            ] {
                assert!(verify_blocking(right.as_bytes(), phc), "{phc}");
                assert!(!verify_blocking(b"wrong password", phc), "{phc}");
                let mut flipped = right.as_bytes().to_vec();
                flipped[0] ^= 1;
                assert!(!verify_blocking(&flipped, phc), "{phc}");
            }
        }
    }

    #[test]
    fn a_stored_string_that_does_not_parse_never_verifies() {
        let phc = hasher().hash_password(b"first password").unwrap().to_string();
        let (head, _) = phc.rsplit_once('$').unwrap();
        for broken in [
            String::new(),
            "not a hash".into(),
            head.to_owned(),
            format!("{phc}x"),
            phc.replace("argon2id", "argon2q"),
        ] {
            assert!(!verify_blocking(b"first password", &broken), "{broken}");
        }
    }

    #[tokio::test]
    async fn hashing_runs_on_the_hashing_threads_not_the_callers() {
        let caller = std::thread::current().id();
        let (thread, name) = off_the_workers(|| {
            let current = std::thread::current();
            (current.id(), current.name().map(str::to_owned))
        })
        .await
        .unwrap();
        assert_ne!(thread, caller);
        assert!(
            name.as_deref().is_some_and(|name| name.starts_with("argon2-")),
            "{name:?}"
        );
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_threads_go_on() {
        let failed = off_the_workers(|| -> u8 { panic!("a job that fails") }).await;
        assert!(failed.is_err());
        assert_eq!(off_the_workers(|| 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        assert!(!verify("anything at all".into(), None).await.unwrap());
    }
}
