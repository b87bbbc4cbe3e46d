//! One argon2id hash with the parameters revocable uses (OWASP's m=19456 KiB, t=2, p=1), timed on
//! this machine: the bound on log-ins per second per core.
//!
//! `cargo run --release --example argon2_cost` prints `median_ms hashes_per_second_per_core`.

use std::time::Instant;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let params = Params::new(19_456, 2, 1, None).map_err(|error| error.to_string())?;
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut timings: Vec<f64> = (0..15)
        .map(|_| {
            let started = Instant::now();
            let _ = hasher.hash_password(b"benchmark password");
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    timings.sort_by(f64::total_cmp);
    let median = timings[timings.len() / 2];
    println!("{median:.2} {:.0}", 1000.0 / median);
    Ok(())
}
