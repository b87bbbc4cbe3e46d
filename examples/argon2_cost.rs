//! What one log-in's argon2id costs on this machine, with the parameters revocable uses (OWASP's
//! m=19456 KiB, t=2, p=1): the bound on log-ins per second.
//!
//! `cargo run --release --example argon2_cost [THREADS] [SECONDS]` verifies a password against
//! its PHC string with the server's own `auth::password::verify_blocking`, as `POST /api/token`
//! does (working memory reused), on THREADS threads at once (default: one per core)
//! for SECONDS (default 3), and prints `median_ms verifications_per_second threads verifications`:
//! the median time of one verification while all threads ran, how many all threads completed per
//! second, and in all (what `scripts/bench.sh` divides the process's CPU time by).
//! Run beside nothing else, that is the most log-ins per second the cores can answer.

use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use revocable::auth::password::verify_blocking;

fn hasher() -> Result<Argon2<'static>, String> {
    let params = Params::new(19_456, 2, 1, None).map_err(|error| error.to_string())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut arguments = std::env::args().skip(1);
    let threads = match arguments.next() {
        Some(threads) => threads.parse::<usize>()?,
        None => std::thread::available_parallelism()?.get(),
    };
    let seconds = match arguments.next() {
        Some(seconds) => seconds.parse::<f64>()?,
        None => 3.0,
    };
    let phc = hasher()?
        .hash_password(b"benchmark password")
        .map_err(|error| error.to_string())?
        .to_string();
    let run_for = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let phc = phc.clone();
            std::thread::spawn(move || -> Result<Vec<f64>, String> {
                let mut timings = Vec::new();
                while started.elapsed() < run_for {
                    let one = Instant::now();
                    if !verify_blocking(b"benchmark password", &phc) {
                        return Err("the benchmark password did not verify".into());
                    }
                    timings.push(one.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(timings)
            })
        })
        .collect();
    let mut timings = Vec::new();
    for worker in workers {
        timings.extend(worker.join().map_err(|_| "a hashing thread panicked")??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    if timings.is_empty() {
        return Err("no verification completed".into());
    }
    timings.sort_by(f64::total_cmp);
    let median = timings[timings.len() / 2];
    let count = timings.len();
    println!("{median:.2} {:.1} {threads} {count}", count as f64 / elapsed);
    Ok(())
}
