//! The scenario's HTTP side: its client, what can go wrong, and reading a server's forms and
//! policy. Nothing here knows the events; `scenario` does.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde::Deserialize;

use super::matrix::Cell;

/// What the scenario reads of the server's public policy (`GET /api/policy`): how long to wait.
#[derive(Debug, Clone, Deserialize)]
pub struct Policy {
    pub access_ttl_seconds: u64,
    pub refresh_reuse_grace_seconds: u64,
    pub jwt_leeway_seconds: u64,
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

#[derive(Deserialize)]
pub(super) struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub session_id: String,
}

/// A browser: a client with its own cookie jar.
pub(super) struct Browser {
    pub client: Client,
    pub session_id: String,
}

pub(super) fn client(cookies: bool) -> Client {
    Client::builder()
        .cookie_store(cookies)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("revocable-demo/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a plain HTTP client always builds")
}

pub(super) fn cell_of(status: StatusCode, step: &'static str) -> Result<Cell, ScenarioError> {
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

/// The CSRF token of the first form on a page.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_are_found_in_forms() {
        let page = r#"<input type="hidden" name="csrf_token" value="abc-123">"#;
        assert_eq!(extract_csrf(page).as_deref(), Some("abc-123"));
        assert_eq!(extract_csrf("<p>no form</p>"), None);
    }
}
