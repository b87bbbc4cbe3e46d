//! `Browser`: a client with a cookie jar it manages by hand, for the HTML pages.

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::Value;

use super::TestUser;

/// A browser with a cookie jar it manages by hand, so tests can read, keep and replay cookies.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    pub jar: Mutex<HashMap<String, String>>,
    pub user_agent: String,
    /// Sent as `X-Forwarded-For`, for an app that trusts the loopback proxy.
    pub forwarded_for: Option<String>,
    pub last_set_cookies: Mutex<Vec<String>>,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: Mutex::new(HashMap::new()),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".into(),
            forwarded_for: None,
            last_set_cookies: Mutex::new(Vec::new()),
        }
    }

    pub fn with_user_agent(mut self, user_agent: &str) -> Self {
        self.user_agent = user_agent.to_owned();
        self
    }

    pub fn with_forwarded_for(mut self, address: &str) -> Self {
        self.forwarded_for = Some(address.to_owned());
        self
    }

    /// Points this browser (and its cookies) at another instance.
    pub fn rebase(&mut self, base: &str) {
        self.base = base.to_owned();
    }

    fn cookie_header(&self) -> String {
        self.jar
            .lock()
            .unwrap()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn absorb(&self, headers: &HeaderMap) {
        let mut jar = self.jar.lock().unwrap();
        let mut seen = Vec::new();
        for header in headers.get_all(SET_COOKIE) {
            let text = header.to_str().unwrap().to_owned();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let lower = text.to_ascii_lowercase();
            if value.is_empty() || lower.contains("max-age=0") || lower.contains("expires=thu, 01 jan 1970") {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
            seen.push(text);
        }
        *self.last_set_cookies.lock().unwrap() = seen;
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Response {
        let request = match &self.forwarded_for {
            Some(address) => request.header("x-forwarded-for", address),
            None => request,
        };
        let response = request
            .header("cookie", self.cookie_header())
            .header("user-agent", self.user_agent.clone())
            .send()
            .await
            .expect("request sent");
        self.absorb(response.headers());
        response
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(self.client.get(format!("{}{path}", self.base))).await
    }

    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        (response.status(), response.text().await.unwrap())
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.send(self.client.post(format!("{}{path}", self.base)).form(fields))
            .await
    }

    /// Loads `page` for its CSRF token, then posts the form with it.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Response {
        let (_, body) = self.get_text(page).await;
        let token = revocable::compare::client::extract_csrf(&body)
            .unwrap_or_else(|| panic!("no CSRF token on {page}: {body}"));
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_form(action, &all).await
    }

    pub async fn login(&self, user: &TestUser) -> Response {
        let response = self
            .submit(
                "/login",
                "/login",
                &[("email", &user.email), ("password", &user.password)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "log-in failed");
        assert_eq!(location(&response), "/dashboard");
        response
    }

    /// Submits the `/password` form: current password, new one, and its confirmation.
    pub async fn change_password(&self, current: &str, new: &str, confirmation: &str) -> Response {
        self.submit(
            "/password",
            "/password",
            &[
                ("current_password", current),
                ("new_password", new),
                ("new_password_confirmation", confirmation),
            ],
        )
        .await
    }

    pub async fn cookie_me(&self) -> Response {
        self.send(self.client.get(format!("{}/api/cookie/me", self.base))).await
    }

    pub async fn api_post(&self, path: &str, body: Option<Value>, origin: Option<&str>) -> Response {
        let mut request = self.client.post(format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        self.send(request).await
    }

    pub fn session_cookie(&self) -> Option<String> {
        self.jar.lock().unwrap().get("revocable_session").cloned()
    }

    pub fn set_session_cookie(&self, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .insert("revocable_session".into(), value.to_owned());
    }

    pub fn origin(&self) -> String {
        self.base.clone()
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar.lock().unwrap().insert(name.to_owned(), value.to_owned());
    }
}

pub fn location(response: &Response) -> String {
    response
        .headers()
        .get("location")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default()
}
