//! Measures how long a revocation takes to reach another instance: for each strategy, log in on
//! A, revoke on A, then poll B in a tight loop until it refuses the credential. The time from the
//! revoking response on A to the first refusal on B is one sample.
//!
//! `cargo run --release --example propagation -- http://127.0.0.1:18080 http://127.0.0.1:18082 500`
//!
//! Prints one line per strategy: `strategy samples p50_ms p99_ms max_ms unrefused`, where
//! `unrefused` counts revocations B still accepted after 5 s (each is a failure, not a sample).

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "propagation benchmark password";
const GIVE_UP: Duration = Duration::from_secs(5);

type Failure = Box<dyn std::error::Error + Send + Sync>;

struct Instances {
    a: String,
    b: String,
    api: Client,
    /// Revocations A answered 503 (and that were sent again).
    unavailable: std::cell::Cell<usize>,
    email: String,
}

impl Instances {
    /// A log-in on A; a 503 (the database starved on loaded cores) is sent again and counted.
    async fn token(&self) -> Result<Value, Failure> {
        for _ in 0..20 {
            let response = self
                .api
                .post(format!("{}/api/token", self.a))
                .json(&json!({ "email": self.email, "password": PASSWORD }))
                .send()
                .await?;
            match response.status() {
                StatusCode::OK => return Ok(response.json().await?),
                StatusCode::SERVICE_UNAVAILABLE => {
                    self.unavailable.set(self.unavailable.get() + 1);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                status => return Err(format!("log-in on A answered {status}").into()),
            }
        }
        Err("log-in on A answered 503 twenty times".into())
    }

    /// A browser logged in on A: its client (cookie jar) and its login session id.
    async fn browser(&self) -> Result<(Client, String), Failure> {
        let browser = client(Client::builder().cookie_store(true))?;
        let page = browser.get(format!("{}/login", self.a)).send().await?.text().await?;
        let csrf = revocable::compare::client::extract_csrf(&page).ok_or("no CSRF token on /login")?;
        browser
            .post(format!("{}/login", self.a))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", &self.email),
                ("password", PASSWORD),
            ])
            .send()
            .await?;
        let me: Value = browser
            .get(format!("{}/api/cookie/me", self.a))
            .send()
            .await?
            .json()
            .await?;
        let session_id = me["session_id"]
            .as_str()
            .ok_or("the browser is not logged in")?
            .to_owned();
        Ok((browser, session_id))
    }

    /// Sends the revocation until A answers 204. A 503 (the database starved of CPU when the
    /// benchmark loads the same two cores) said it did nothing, so it is sent again and counted;
    /// propagation is timed from the 204.
    async fn expect_no_content(&self, request: reqwest::RequestBuilder, what: &str) -> Result<(), Failure> {
        for _ in 0..20 {
            let response = request.try_clone().ok_or("request")?.send().await?;
            let status = response.status();
            if status == StatusCode::NO_CONTENT {
                return Ok(());
            }
            if status != StatusCode::SERVICE_UNAVAILABLE {
                let body = response.text().await.unwrap_or_default();
                return Err(format!("{what} on A answered {status}: {body}").into());
            }
            self.unavailable.set(self.unavailable.get() + 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("{what} on A answered 503 twenty times").into())
    }

    /// One revocation on A and the wait for B's first refusal; `None` when B never refused.
    async fn sample(&self, strategy: &str) -> Result<Option<Duration>, Failure> {
        let (check, revoked_at) = match strategy {
            "cookie" => {
                let (browser, session_id) = self.browser().await?;
                let token = self.token().await?;
                let access = token["access_token"].as_str().unwrap_or_default().to_owned();
                let check = browser.get(format!("{}/api/cookie/me", self.b));
                self.ensure_accepted(check.try_clone().ok_or("request")?).await?;
                let revoke = self
                    .api
                    .delete(format!("{}/api/sessions/{session_id}", self.a))
                    .bearer_auth(&access);
                self.expect_no_content(revoke, "signing the browser out").await?;
                let revoked_at = Instant::now();
                // The Bearer session that revoked is ended too, to keep the number of live rows flat.
                let logout = self.api.post(format!("{}/api/logout", self.a)).bearer_auth(&access);
                (check, (revoked_at, Some(logout)))
            }
            _ => {
                let token = self.token().await?;
                let access = token["access_token"].as_str().unwrap_or_default().to_owned();
                let check = self
                    .api
                    .get(format!("{}/api/{strategy}/me", self.b))
                    .bearer_auth(&access);
                self.ensure_accepted(check.try_clone().ok_or("request")?).await?;
                // version is revoked by log-out everywhere; the others by log-out.
                let path = if strategy == "version" {
                    "/api/logout-all"
                } else {
                    "/api/logout"
                };
                let revoke = self.api.post(format!("{}{path}", self.a)).bearer_auth(&access);
                self.expect_no_content(revoke, "the revocation").await?;
                (check, (Instant::now(), None))
            }
        };
        let (revoked_at, cleanup) = revoked_at;
        let refused = loop {
            let status = check.try_clone().ok_or("request")?.send().await?.status();
            if status == StatusCode::UNAUTHORIZED {
                break Some(revoked_at.elapsed());
            }
            if revoked_at.elapsed() > GIVE_UP {
                break None;
            }
        };
        if let Some(cleanup) = cleanup {
            cleanup.send().await?;
        }
        Ok(refused)
    }

    async fn ensure_accepted(&self, check: reqwest::RequestBuilder) -> Result<(), Failure> {
        // B may not have seen the log-in yet (a fill from its database answers): wait for it.
        let deadline = Instant::now() + GIVE_UP;
        loop {
            let status = check.try_clone().ok_or("request")?.send().await?.status();
            if status == StatusCode::OK {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("B never accepted a fresh credential ({status})").into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Idle connections are dropped well before the server's keep-alive (5 s) closes them, so a
/// request never goes out on a connection the server is closing.
fn client(builder: reqwest::ClientBuilder) -> Result<Client, Failure> {
    Ok(builder.pool_idle_timeout(Duration::from_secs(1)).build()?)
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [a, b, count, strategies @ ..] = arguments.as_slice() else {
        return Err("usage: propagation URL_A URL_B COUNT [STRATEGY…]".into());
    };
    let count: usize = count.parse()?;
    let strategies: Vec<&str> = if strategies.is_empty() {
        vec!["version", "denylist", "allowlist", "cookie"]
    } else {
        strategies.iter().map(String::as_str).collect()
    };
    let instances = Instances {
        a: a.clone(),
        b: b.clone(),
        api: client(Client::builder())?,
        unavailable: std::cell::Cell::new(0),
        email: format!(
            "propagation-{}@example.com",
            revocable::domain::RandomId::generate().to_lowercase()
        ),
    };
    let registered = instances
        .api
        .post(format!("{a}/api/register"))
        .json(&json!({ "email": instances.email, "password": PASSWORD }))
        .send()
        .await?;
    if registered.status() != StatusCode::CREATED {
        return Err(format!("sign-up on A answered {}", registered.status()).into());
    }
    for strategy in strategies {
        instances.unavailable.set(0);
        let mut samples = Vec::with_capacity(count);
        let mut unrefused = 0;
        for _ in 0..count {
            match instances.sample(strategy).await? {
                Some(delay) => samples.push(delay),
                None => unrefused += 1,
            }
        }
        samples.sort();
        println!(
            "{strategy} {} {:.2} {:.2} {:.2} {unrefused} {}",
            samples.len(),
            percentile(&samples, 0.50),
            percentile(&samples, 0.99),
            samples.last().map_or(f64::NAN, |max| max.as_secs_f64() * 1000.0),
            instances.unavailable.get(),
        );
    }
    Ok(())
}
