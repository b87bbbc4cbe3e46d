//! How long a revocation on revocable takes to reach a service that embeds `revocable-verifier`:
//! logs in, checks the token in-process (accepted), revokes it on revocable, then checks it in a
//! tight loop until it is refused. Revocations alternate between logging out one device
//! (`/api/logout`) and logging out everywhere (`/api/logout-all`). Prints p50, p99 and max.
//!
//! ```text
//! REVOCABLE_URL=http://127.0.0.1:8080 CLIENT_ID=… CLIENT_SECRET=… REVOCATIONS=300 \
//!     cargo run --release --example feed_propagation
//! ```
//!
//! The time is measured from the moment the revoking request is sent, so it includes revocable's
//! own handling of that request (the commit), then the feed's push and the verifier's update; and
//! from the moment its response arrives, as `examples/propagation` measures between instances.

use std::time::{Duration, Instant};

use revocable_verifier::{Config, Verifier};

fn required(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} must be set"))
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REVOCABLE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let count: usize = std::env::var("REVOCATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let verifier = Verifier::start(Config::new(&url, &required("CLIENT_ID")?, &required("CLIENT_SECRET")?));
    let http = reqwest::Client::new();

    let email = format!("propagation-{}@example.com", std::process::id());
    let password = "propagation benchmark password";
    let credentials = serde_json::json!({ "email": email, "password": password });
    http.post(format!("{url}/api/register"))
        .json(&credentials)
        .send()
        .await?;

    let ready_by = Instant::now() + Duration::from_secs(10);
    while !verifier.feed_is_live() {
        if Instant::now() > ready_by {
            return Err("the revocation feed did not become live within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut delays = Vec::with_capacity(count);
    // From the revoking response, as `examples/propagation` measures between two instances: 0 when
    // the verifier refused before the response arrived.
    let mut after_answer = Vec::with_capacity(count);
    for round in 0..count {
        let login: serde_json::Value = http
            .post(format!("{url}/api/token"))
            .json(&credentials)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = login["access_token"].as_str().ok_or("no access_token")?.to_owned();
        verifier
            .verify(&token)
            .await
            .map_err(|rejection| format!("a fresh token was refused: {rejection}"))?;
        let path = if round % 2 == 0 {
            "/api/logout"
        } else {
            "/api/logout-all"
        };
        let started = Instant::now();
        let revoking = async {
            let response = http.post(format!("{url}{path}")).bearer_auth(&token).send().await;
            (response, Instant::now())
        };
        let ((response, answered_at), refused_at) = tokio::join!(revoking, async {
            loop {
                if verifier.verify(&token).await.is_err() {
                    return Some(Instant::now());
                }
                if started.elapsed() > Duration::from_secs(5) {
                    return None;
                }
                tokio::task::yield_now().await;
            }
        });
        response?.error_for_status()?;
        let refused_at = refused_at.ok_or("a revoked token was still accepted after 5 s")?;
        delays.push(refused_at - started);
        after_answer.push(refused_at.saturating_duration_since(answered_at));
    }
    delays.sort();
    after_answer.sort();
    println!(
        "feed propagation over {count} revocations (revoking request sent -> verifier refuses): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&delays, 0.50).as_secs_f64() * 1000.0,
        percentile(&delays, 0.99).as_secs_f64() * 1000.0,
        delays.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );
    println!(
        "feed propagation over {count} revocations (revoking response received -> verifier refuses): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&after_answer, 0.50).as_secs_f64() * 1000.0,
        percentile(&after_answer, 0.99).as_secs_f64() * 1000.0,
        after_answer.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );
    Ok(())
}
