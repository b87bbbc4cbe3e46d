//! The revocation matrix, observed: a throw-away user logs in each way, one event happens, and
//! every credential issued before it is presented again to each strategy's `/me` route. It is a
//! plain HTTP client, so the same code observes a spawned test server, a remote one
//! (`revocable demo --url`) and the running server itself (`/compare`).

use std::fmt;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde::{Deserialize, Serialize};

use crate::domain::RandomId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Logout,
    LogoutEverywhere,
    RevokeOtherDevice,
    PasswordChange,
    RefreshTokenReuse,
    AccessTokenExpired,
}

impl Event {
    pub const ALL: [Event; 6] = [
        Event::Logout,
        Event::LogoutEverywhere,
        Event::RevokeOtherDevice,
        Event::PasswordChange,
        Event::RefreshTokenReuse,
        Event::AccessTokenExpired,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::LogoutEverywhere => "log out everywhere",
            Self::RevokeOtherDevice => "device signed out from another device",
            Self::PasswordChange => "password change",
            Self::RefreshTokenReuse => "stolen refresh token reused",
            Self::AccessTokenExpired => "access token expired",
        }
    }
}

pub const STRATEGIES: [&str; 5] = ["stateless", "version", "denylist", "allowlist", "cookie"];

/// One cell: is a credential issued before the event still accepted after it?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    Accepted,
    Rejected,
    /// The event does not concern this kind of credential (a cookie has no refresh token).
    NotApplicable,
    /// Not observed on this server (an access-token lifetime too long to wait for).
    NotObserved,
}

impl Cell {
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::NotApplicable => "n/a",
            Self::NotObserved => "not observed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Row {
    pub event: Event,
    pub cells: [Cell; 5],
}

/// The documented matrix (README, `/compare`): what each strategy still accepts after each event.
pub fn expected() -> Vec<Row> {
    use Cell::{Accepted as A, NotApplicable as Na, Rejected as R};
    vec![
        Row {
            event: Event::Logout,
            cells: [A, A, R, R, R],
        },
        Row {
            event: Event::LogoutEverywhere,
            cells: [A, R, R, R, R],
        },
        Row {
            event: Event::RevokeOtherDevice,
            cells: [A, A, R, R, R],
        },
        Row {
            event: Event::PasswordChange,
            cells: [A, R, R, R, R],
        },
        Row {
            event: Event::RefreshTokenReuse,
            cells: [A, A, R, R, Na],
        },
        Row {
            event: Event::AccessTokenExpired,
            cells: [R, R, R, R, Na],
        },
    ]
}

/// The server's public policy (`GET /api/policy`), which tells the scenario how long to wait.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Policy {
    pub access_ttl_seconds: u64,
    pub refresh_ttl_seconds: u64,
    pub session_idle_ttl_seconds: u64,
    pub session_ttl_seconds: u64,
    pub refresh_reuse_grace_seconds: u64,
    pub jwt_leeway_seconds: u64,
    pub jwt_algorithm: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Observed {
    pub rows: Vec<Row>,
    pub access_ttl_seconds: u64,
}

impl Observed {
    /// Cells that were observed and differ from the documented matrix.
    pub fn differences(&self) -> Vec<(Event, &'static str, Cell, Cell)> {
        let mut differences = Vec::new();
        for (observed, expected) in self.rows.iter().zip(expected()) {
            for (index, (seen, wanted)) in observed.cells.iter().zip(expected.cells).enumerate() {
                if *seen != Cell::NotObserved && *seen != wanted {
                    differences.push((observed.event, STRATEGIES[index], *seen, wanted));
                }
            }
        }
        differences
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{step}: cannot reach {url}: {source}")]
    Unreachable {
        step: &'static str,
        url: String,
        source: reqwest::Error,
    },
    #[error("{step}: the server answered {status}: {body}")]
    Unexpected {
        step: &'static str,
        status: StatusCode,
        body: String,
    },
    #[error("{step}: {message}")]
    Broken { step: &'static str, message: String },
}

struct Scenario {
    base: String,
    /// Another instance that credentials are checked on, when set.
    observer: Option<String>,
    email: String,
    password: String,
}

#[derive(Deserialize)]
struct TokenPair {
    access_token: String,
    refresh_token: String,
    session_id: String,
}

/// A browser: a client with its own cookie jar.
struct Browser {
    client: Client,
    session_id: String,
}

fn client(cookies: bool) -> Client {
    Client::builder()
        .cookie_store(cookies)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("revocable-demo/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a plain HTTP client always builds")
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

fn cell_of(status: StatusCode, step: &'static str) -> Result<Cell, ScenarioError> {
    match status {
        StatusCode::OK => Ok(Cell::Accepted),
        StatusCode::UNAUTHORIZED => Ok(Cell::Rejected),
        other => Err(ScenarioError::Unexpected {
            step,
            status: other,
            body: String::new(),
        }),
    }
}

pub fn extract_csrf(page: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].to_owned())
}

pub async fn policy(base: &str) -> Result<Policy, ScenarioError> {
    let response = client(false)
        .get(format!("{base}/api/policy"))
        .send()
        .await
        .map_err(|source| ScenarioError::Unreachable {
            step: "read the policy",
            url: base.to_owned(),
            source,
        })?;
    if !response.status().is_success() {
        return Err(ScenarioError::Unexpected {
            step: "read the policy",
            status: response.status(),
            body: response.text().await.unwrap_or_default(),
        });
    }
    response.json().await.map_err(|error| ScenarioError::Broken {
        step: "read the policy",
        message: error.to_string(),
    })
}

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

/// The matrix as a Markdown table, as the README shows it.
pub fn markdown(rows: &[Row]) -> String {
    let mut table =
        String::from("| event | stateless | version | denylist | allowlist | cookie |\n|---|---|---|---|---|---|\n");
    for row in rows {
        table.push_str(&format!("| {} |", row.event.label()));
        for cell in row.cells {
            table.push_str(&format!(" {} |", cell.symbol()));
        }
        table.push('\n');
    }
    table
}

/// The matrix for a terminal, with colours when `colour` is set.
pub fn terminal_table(rows: &[Row], colour: bool) -> String {
    let width = Event::ALL.iter().map(|event| event.label().len()).max().unwrap_or(10);
    let mut out = format!("{:width$}", "after this event", width = width);
    for strategy in STRATEGIES {
        out.push_str(&format!("  {strategy:<12}"));
    }
    out.push('\n');
    for row in rows {
        out.push_str(&format!("{:width$}", row.event.label(), width = width));
        for cell in row.cells {
            let text = format!("{:<12}", cell.symbol());
            let painted = match (colour, cell) {
                (true, Cell::Accepted) => format!("\x1b[31m{text}\x1b[0m"),
                (true, Cell::Rejected) => format!("\x1b[32m{text}\x1b[0m"),
                (true, _) => format!("\x1b[2m{text}\x1b[0m"),
                (false, _) => text,
            };
            out.push_str("  ");
            out.push_str(&painted);
        }
        out.push('\n');
    }
    out
}

impl fmt::Display for Cell {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.symbol())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_shows_the_documented_matrix() {
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&markdown(&expected())),
            "README.md's matrix differs from scenario::expected()"
        );
    }

    #[test]
    fn a_cell_that_differs_is_reported_and_an_unobserved_one_is_not() {
        let mut rows = expected();
        rows[0].cells[2] = Cell::Accepted;
        rows[5].cells[0] = Cell::NotObserved;
        let observed = Observed {
            rows,
            access_ttl_seconds: 900,
        };
        let differences = observed.differences();
        assert_eq!(
            differences,
            vec![(Event::Logout, "denylist", Cell::Accepted, Cell::Rejected)]
        );
    }

    #[test]
    fn csrf_tokens_are_found_in_forms() {
        let page = r#"<input type="hidden" name="csrf_token" value="abc-123">"#;
        assert_eq!(extract_csrf(page).as_deref(), Some("abc-123"));
        assert_eq!(extract_csrf("<p>no form</p>"), None);
    }
}
