//! The revocation matrix, observed: a throw-away user logs in each way, one event happens, and
//! every credential issued before it is presented again to each strategy's `/me` route. It is a
//! plain HTTP client, so the same code observes a spawned test server, a remote one
//! (`revocable demo --url`) and the running server itself (`/compare`).

use std::time::Duration;

use reqwest::{Client, StatusCode};

use super::client::{Browser, Policy, ScenarioError, TokenPair, cell_of, client, extract_csrf, policy};
use super::matrix::{Cell, Event, Observed, Row, STRATEGIES};
use crate::domain::RandomId;

struct Scenario {
    base: String,
    /// Another instance that credentials are checked on, when set.
    observer: Option<String>,
    email: String,
    password: String,
}

impl Scenario {
    fn client(&self, cookies: bool) -> Client {
        client(cookies)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(
        &self,
        step: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ScenarioError> {
        request.send().await.map_err(|source| ScenarioError::Unreachable {
            step,
            url: self.base.clone(),
            source,
        })
    }

    async fn expect(
        &self,
        step: &'static str,
        request: reqwest::RequestBuilder,
        status: StatusCode,
    ) -> Result<reqwest::Response, ScenarioError> {
        let response = self.send(step, request).await?;
        if response.status() != status {
            let actual = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(ScenarioError::Unexpected {
                step,
                status: actual,
                body,
            });
        }
        Ok(response)
    }

    async fn token_login(&self) -> Result<TokenPair, ScenarioError> {
        let response = self
            .expect(
                "token log-in",
                self.client(false)
                    .post(self.url("/api/token"))
                    .json(&serde_json::json!({ "email": self.email, "password": self.password })),
                StatusCode::OK,
            )
            .await?;
        response.json().await.map_err(|error| ScenarioError::Broken {
            step: "token log-in",
            message: error.to_string(),
        })
    }

    async fn csrf_token(&self, browser: &Client, path: &str) -> Result<String, ScenarioError> {
        let page = self
            .expect("load a form", browser.get(self.url(path)), StatusCode::OK)
            .await?
            .text()
            .await
            .unwrap_or_default();
        extract_csrf(&page).ok_or(ScenarioError::Broken {
            step: "load a form",
            message: format!("no CSRF token on {path}"),
        })
    }

    async fn browser_login(&self) -> Result<Browser, ScenarioError> {
        let browser = self.client(true);
        let csrf = self.csrf_token(&browser, "/login").await?;
        self.expect(
            "browser log-in",
            browser.post(self.url("/login")).form(&[
                ("csrf_token", csrf.as_str()),
                ("email", &self.email),
                ("password", &self.password),
            ]),
            StatusCode::SEE_OTHER,
        )
        .await?;
        let me: serde_json::Value = self
            .expect(
                "browser identity",
                browser.get(self.url("/api/cookie/me")),
                StatusCode::OK,
            )
            .await?
            .json()
            .await
            .map_err(|error| ScenarioError::Broken {
                step: "browser identity",
                message: error.to_string(),
            })?;
        let session_id = me["session_id"].as_str().unwrap_or_default().to_owned();
        Ok(Browser {
            client: browser,
            session_id,
        })
    }

    async fn accepted_bearer(&self, strategy: &str, token: &str) -> Result<Cell, ScenarioError> {
        let response = self
            .send(
                "check",
                self.client(false)
                    .get(self.observer_url(&format!("/api/{strategy}/me")))
                    .bearer_auth(token),
            )
            .await?;
        cell_of(response.status(), "check a token")
    }

    async fn accepted_cookie(&self, browser: &Browser) -> Result<Cell, ScenarioError> {
        let response = self
            .send("check", browser.client.get(self.observer_url("/api/cookie/me")))
            .await?;
        cell_of(response.status(), "check a cookie")
    }

    /// Where credentials are checked: this server, or another instance of the same deployment.
    fn observer_url(&self, path: &str) -> String {
        format!("{}{path}", self.observer.as_deref().unwrap_or(&self.base))
    }

    /// With a separate observer: waits until it has applied every revocation the acting instance
    /// has committed (both say how far they have read the log in `/readyz`), at most 5 s.
    async fn settle(&self) -> Result<(), ScenarioError> {
        let Some(observer) = &self.observer else {
            return Ok(());
        };
        let position = |base: String, field: &'static str| async move {
            let body: serde_json::Value = client(false)
                .get(format!("{base}/readyz"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            body["revocations"][field].as_i64()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let target = position(self.base.clone(), "known_seq").await;
            let seen = position(observer.clone(), "applied_seq").await;
            if let (Some(target), Some(seen)) = (target, seen)
                && seen >= target
            {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(ScenarioError::Broken {
                    step: "wait for the other instance",
                    message: format!("{observer} had not applied the revocation log after 5 s"),
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn observe(&self, token: &str, browser: Option<&Browser>) -> Result<[Cell; 5], ScenarioError> {
        self.settle().await?;
        let mut cells = [Cell::NotApplicable; 5];
        for (index, strategy) in STRATEGIES[..4].iter().enumerate() {
            cells[index] = self.accepted_bearer(strategy, token).await?;
        }
        if let Some(browser) = browser {
            cells[4] = self.accepted_cookie(browser).await?;
        }
        Ok(cells)
    }

    async fn run_event(&mut self, event: Event, policy: &Policy) -> Result<[Cell; 5], ScenarioError> {
        let device = self.token_login().await?;
        let browser = self.browser_login().await?;
        let other = self.token_login().await?;
        let api = self.client(false);
        if self.observer.is_some() {
            // The other instance must hold these credentials before the event, so that it is the
            // invalidation, not a first read, that makes it refuse them.
            let before = self.observe(&device.access_token, Some(&browser)).await?;
            if before.contains(&Cell::Rejected) {
                return Err(ScenarioError::Broken {
                    step: "check before the event",
                    message: format!(
                        "fresh credentials were refused by the other instance before {event:?}: {before:?}"
                    ),
                });
            }
        }
        match event {
            Event::Logout => {
                self.expect(
                    "logout",
                    api.post(self.url("/api/logout")).bearer_auth(&device.access_token),
                    StatusCode::NO_CONTENT,
                )
                .await?;
                let csrf = self.csrf_token(&browser.client, "/dashboard").await?;
                self.expect(
                    "browser logout",
                    browser.client.post(self.url("/logout")).form(&[("csrf_token", csrf)]),
                    StatusCode::SEE_OTHER,
                )
                .await?;
            }
            Event::LogoutEverywhere => {
                self.expect(
                    "logout everywhere",
                    api.post(self.url("/api/logout-all")).bearer_auth(&other.access_token),
                    StatusCode::NO_CONTENT,
                )
                .await?;
            }
            Event::RevokeOtherDevice => {
                for session_id in [&device.session_id, &browser.session_id] {
                    self.expect(
                        "revoke a device",
                        api.delete(self.url(&format!("/api/sessions/{session_id}")))
                            .bearer_auth(&other.access_token),
                        StatusCode::NO_CONTENT,
                    )
                    .await?;
                }
            }
            Event::PasswordChange => {
                let new_password = format!("pw-{}", RandomId::generate());
                self.expect(
                    "password change",
                    api.post(self.url("/api/password"))
                        .bearer_auth(&other.access_token)
                        .json(&serde_json::json!({ "current_password": self.password, "new_password": new_password })),
                    StatusCode::OK,
                )
                .await?;
                self.password = new_password;
            }
            Event::RefreshTokenReuse => {
                let body = serde_json::json!({ "refresh_token": device.refresh_token });
                self.expect(
                    "refresh",
                    api.post(self.url("/api/token/refresh")).json(&body),
                    StatusCode::OK,
                )
                .await?;
                if policy.refresh_reuse_grace_seconds > 0 {
                    tokio::time::sleep(Duration::from_millis(policy.refresh_reuse_grace_seconds * 1000 + 1100)).await;
                }
                self.expect(
                    "reuse a refresh token",
                    api.post(self.url("/api/token/refresh")).json(&body),
                    StatusCode::UNAUTHORIZED,
                )
                .await?;
                let mut cells = self.observe(&device.access_token, None).await?;
                cells[4] = Cell::NotApplicable;
                return Ok(cells);
            }
            Event::AccessTokenExpired => {
                let wait = policy.access_ttl_seconds + policy.jwt_leeway_seconds;
                if wait > MAX_EXPIRY_WAIT_SECONDS {
                    return Ok([
                        Cell::NotObserved,
                        Cell::NotObserved,
                        Cell::NotObserved,
                        Cell::NotObserved,
                        Cell::NotApplicable,
                    ]);
                }
                tokio::time::sleep(Duration::from_millis(wait * 1000 + 1200)).await;
                let mut cells = self.observe(&device.access_token, None).await?;
                cells[4] = Cell::NotApplicable;
                return Ok(cells);
            }
        }
        self.observe(&device.access_token, Some(&browser)).await
    }
}

/// Longest the scenario waits for an access token to expire; beyond it the row is not observed.
pub const MAX_EXPIRY_WAIT_SECONDS: u64 = 20;

/// Runs every event against the server at `base` with a throw-away account, deleted at the end.
pub async fn run(base: &str) -> Result<Observed, ScenarioError> {
    run_scenario(base, None).await
}

/// Acts on `actor` and checks every credential on `observer`, another instance of the same
/// deployment: what a revocation on one instance does to the others.
pub async fn run_between(actor: &str, observer: &str) -> Result<Observed, ScenarioError> {
    run_scenario(actor, Some(observer.trim_end_matches('/').to_owned())).await
}

async fn run_scenario(base: &str, observer: Option<String>) -> Result<Observed, ScenarioError> {
    let base = base.trim_end_matches('/').to_owned();
    let policy = policy(&base).await?;
    let mut scenario = Scenario {
        email: format!("demo-{}@revocable.invalid", RandomId::generate().to_lowercase()),
        password: format!("pw-{}", RandomId::generate()),
        base,
        observer,
    };
    scenario
        .expect(
            "register",
            scenario
                .client(false)
                .post(scenario.url("/api/register"))
                .json(&serde_json::json!({ "email": scenario.email, "password": scenario.password })),
            StatusCode::CREATED,
        )
        .await?;
    let mut rows = Vec::new();
    let mut outcome = Ok(());
    for event in Event::ALL {
        match scenario.run_event(event, &policy).await {
            Ok(cells) => rows.push(Row { event, cells }),
            Err(error) => {
                outcome = Err(error);
                break;
            }
        }
    }
    // The throw-away account goes whatever happened.
    if let Ok(session) = scenario.token_login().await {
        let _ = scenario
            .client(false)
            .delete(scenario.url("/api/account"))
            .bearer_auth(&session.access_token)
            .json(&serde_json::json!({ "password": scenario.password }))
            .send()
            .await;
    }
    outcome?;
    Ok(Observed {
        rows,
        access_ttl_seconds: policy.access_ttl_seconds,
    })
}
