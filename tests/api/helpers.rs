//! `spawn_app` and the clients the tests speak through: `TestApp` for JSON, `Browser` for pages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Response, StatusCode};
use revocable::config::Settings;
use revocable::domain::RandomId;
use revocable::startup::Application;
use serde_json::{Value, json};

pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL").ok().filter(|url| !url.is_empty())
}

pub fn redis_url() -> Option<String> {
    std::env::var("TEST_REDIS_URL").ok().filter(|url| !url.is_empty())
}

/// A database of this test's own, dropped when the last app using it is gone.
pub struct TestDatabase {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A PostgreSQL database named for this test that does not exist yet (the application creates
    /// it), dropped at the end like the others; `None` without `TEST_DATABASE_URL`.
    pub fn postgres_not_created() -> Option<Self> {
        let admin_url = postgres_url()?;
        let name = format!(
            "revocable_test_{}",
            RandomId::generate().to_lowercase().replace('-', "_")
        );
        let (base, _) = admin_url.rsplit_once('/').expect("TEST_DATABASE_URL names a database");
        Some(Self {
            url: format!("{base}/{name}"),
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    async fn create() -> Self {
        match postgres_url() {
            None => {
                let path = std::env::temp_dir().join(format!("revocable-test-{}.db", RandomId::generate()));
                Self {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    cleanup: Cleanup::Sqlite(path),
                }
            }
            Some(admin_url) => {
                use sqlx::Connection;
                let name = format!(
                    "revocable_test_{}",
                    RandomId::generate().to_lowercase().replace('-', "_")
                );
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .expect("TEST_DATABASE_URL answers");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
                    .execute(&mut admin)
                    .await
                    .expect("create the test database");
                let (base, _) = admin_url.rsplit_once('/').expect("TEST_DATABASE_URL names a database");
                Self {
                    url: format!("{base}/{name}"),
                    cleanup: Cleanup::Postgres { admin_url, name },
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime: use a thread with a runtime of its own.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    runtime.block_on(async {
                        use sqlx::Connection;
                        let mut admin = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                            r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                        )))
                        .execute(&mut admin)
                        .await
                        .ok()
                    })
                })
                .join();
            }
        }
    }
}

/// This test's Redis keys: a prefix of its own, deleted at the end.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut connection) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut connection)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut connection);
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub database: Arc<TestDatabase>,
    pub redis: Option<Arc<TestRedis>>,
    pub state: actix_web::web::Data<revocable::state::AppState>,
    pub compare: actix_web::web::Data<revocable::compare::cache::CompareCache>,
    overrides: Vec<(String, String)>,
    pub api: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// An app on a fresh database and no Redis at all, whatever `TEST_REDIS_URL` says: the
/// PostgreSQL-alone deployment when `TEST_DATABASE_URL` is set.
pub async fn spawn_app_without_redis(overrides: &[(&str, &str)]) -> TestApp {
    let database = Arc::new(TestDatabase::create().await);
    let overrides = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    start(database, None, overrides).await
}

/// A Redis server of this test's own, on a free port, that the test may stop, restart, fill or
/// kill connections of without touching anyone else's. Stopped when dropped.
pub struct OwnRedis {
    pub port: u16,
    extra: Vec<String>,
    process: Option<std::process::Child>,
}

impl OwnRedis {
    /// `None` (with a note on stderr) when `redis-server` is not installed, unless `CI=true`.
    pub async fn start(extra: &[&str]) -> Option<Self> {
        let found = std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok();
        if !found {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "redis-server is needed by the fault tests and CI=true"
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "redis-server is not installed: this fault test did not run"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port");
        let mut redis = Self {
            port,
            extra: extra.iter().map(|arg| arg.to_string()).collect(),
            process: None,
        };
        redis.resume().await;
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server again, empty.
    pub async fn resume(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(&self.extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.process = Some(child);
        for _ in 0..100 {
            if self.connection().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the test's own redis-server did not answer on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn connection(&self) -> Option<redis::Connection> {
        let mut connection = redis::Client::open(self.url()).ok()?.get_connection().ok()?;
        redis::cmd("PING").query::<String>(&mut connection).ok()?;
        Some(connection)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An app with extra settings (short TTLs, …) on a fresh database.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let database = Arc::new(TestDatabase::create().await);
    start_on(database, overrides).await
}

/// Starts an app on `database`, with the test Redis (under a prefix of its own) when there is one.
pub async fn start_on(database: Arc<TestDatabase>, overrides: &[(&str, &str)]) -> TestApp {
    let redis = redis_url().map(|url| {
        Arc::new(TestRedis {
            url,
            prefix: format!("test:{}:", RandomId::generate()),
        })
    });
    let overrides = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    start(database, redis, overrides).await
}

async fn start(
    database: Arc<TestDatabase>,
    redis: Option<Arc<TestRedis>>,
    overrides: Vec<(String, String)>,
) -> TestApp {
    let mut variables: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), database.url.clone()),
        ("BIND".into(), "127.0.0.1:0".into()),
        ("LOGIN_RATE_PER_MINUTE".into(), "100000".into()),
        ("CLIENT_AUTH_FAILURES_PER_MINUTE".into(), "100000".into()),
        ("JWT_LEEWAY".into(), "0".into()),
        // Several apps run at once against one PostgreSQL server: keep within its 100 connections.
        ("DATABASE_MAX_CONNECTIONS".into(), "6".into()),
        // `/compare`'s measurement starts an instance of its own; only the tests of it ask for one.
        ("COMPARE_AT_START".into(), "off".into()),
    ]);
    if let Some(redis) = &redis {
        variables.insert("REDIS_URL".into(), redis.url.clone());
        variables.insert("REDIS_PREFIX".into(), redis.prefix.clone());
    }
    // Every app of one deployment (its restarts included) writes its mail to the same place, the
    // suite's SMTP server when there is one, else a directory of this test's database.
    match crate::mailbox::shared_smtp() {
        Some((url, _)) => variables.insert("SMTP_URL".into(), url),
        None => variables.insert("MAIL_OUTBOX".into(), outbox_of(&database).display().to_string()),
    };
    variables.insert("MAIL_RETRY_AFTER".into(), "200ms".into());
    variables.insert("MAIL_POLL_INTERVAL".into(), "200ms".into());
    for (key, value) in &overrides {
        variables.insert(key.clone(), value.clone());
    }
    let settings = Settings::from_lookup(|name| variables.get(name).cloned()).expect("test settings are valid");
    let application = Application::build(settings).await.expect("the application builds");
    let address = format!("http://{}", application.address());
    let state = application.state();
    let compare = application.compare_cache();
    let server = tokio::spawn(async move {
        let _ = application.run_until_stopped().await;
    });
    TestApp {
        address,
        database,
        redis,
        state,
        compare,
        overrides,
        api: reqwest::Client::builder()
            .user_agent("revocable-tests/1.0")
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        server,
    }
}

/// The `MAIL_OUTBOX` of the apps on `database`.
fn outbox_of(database: &TestDatabase) -> std::path::PathBuf {
    let name: String = database
        .url
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    std::env::temp_dir().join(format!("revocable-outbox-{}", &name[name.len().saturating_sub(48)..]))
}

#[derive(Clone, Debug)]
pub struct TestUser {
    pub email: String,
    pub password: String,
    pub id: String,
}

#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub session_id: String,
}

impl Tokens {
    fn from_json(body: &Value) -> Self {
        Self {
            access: body["access_token"].as_str().expect("access_token").to_owned(),
            refresh: body["refresh_token"].as_str().expect("refresh_token").to_owned(),
            session_id: body["session_id"].as_str().expect("session_id").to_owned(),
        }
    }
}

impl TestApp {
    /// The settings of another instance of this deployment: the same, and the same public URL
    /// (so the same issuer), which is this instance's address unless the test chose one.
    fn deployment_overrides(&self) -> Vec<(String, String)> {
        let mut overrides = self.overrides.clone();
        if !overrides.iter().any(|(key, _)| key == "PUBLIC_URL") {
            overrides.push(("PUBLIC_URL".into(), self.address.clone()));
        }
        overrides
    }

    /// The same database and Redis prefix, a new process-like instance (new port, new pools).
    pub async fn restart(&self) -> TestApp {
        start(self.database.clone(), self.redis.clone(), self.deployment_overrides()).await
    }

    /// Another instance of the same deployment whose PostgreSQL connections pass through `proxy`.
    pub async fn restart_behind(&self, proxy: &DatabaseProxy) -> TestApp {
        let mut overrides = self.deployment_overrides();
        overrides.retain(|(key, _)| key != "DATABASE_URL");
        overrides.push(("DATABASE_URL".into(), proxy.route(&self.database.url)));
        start(self.database.clone(), self.redis.clone(), overrides).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Where this app's messages can be read: the SMTP server's maildir, or the app's outbox.
    pub fn mail_directory(&self) -> std::path::PathBuf {
        let overridden = |name: &str| {
            self.overrides
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        if let Some(directory) = overridden("TEST_MAIL_DIRECTORY") {
            return directory.into();
        }
        if let Some(directory) = overridden("MAIL_OUTBOX") {
            return directory.into();
        }
        match crate::mailbox::shared_smtp() {
            Some((_, maildir)) => maildir,
            None => {
                // Under CI the messages must have gone through a real SMTP server: never fall
                // back to the file outbox there.
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI=true and TEST_SMTP_URL is unset: start an SMTP server (scripts/test-smtp.sh) for the email tests"
                );
                outbox_of(&self.database)
            }
        }
    }

    /// Every message sent to `address` so far, oldest first.
    pub fn messages_to(&self, address: &str) -> Vec<crate::mailbox::Mail> {
        crate::mailbox::messages_to(&self.mail_directory(), address)
    }

    /// The last message to `address`, waiting (up to 15 s) until there is one.
    pub async fn last_message_to(&self, address: &str) -> crate::mailbox::Mail {
        let mails = crate::mailbox::wait_for(&self.mail_directory(), address, 1).await;
        mails.last().expect("at least one message").clone()
    }

    /// The last message to `address` whose subject starts with `subject`, waiting (up to 15 s).
    pub async fn message_to(&self, address: &str, subject: &str) -> crate::mailbox::Mail {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(mail) = self
                .messages_to(address)
                .into_iter()
                .rev()
                .find(|mail| mail.subject.starts_with(subject))
            {
                return mail;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no message {subject:?} to {address} after 15 s; got {:?}",
                self.messages_to(address)
                    .iter()
                    .map(|mail| &mail.subject)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `count`-th message to `address`, waiting (up to 15 s) until there are that many.
    pub async fn nth_message_to(&self, address: &str, count: usize) -> crate::mailbox::Mail {
        let mails = crate::mailbox::wait_for(&self.mail_directory(), address, count).await;
        mails[count - 1].clone()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.api
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.api.get(self.url(path)).send().await.expect("request sent")
    }

    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.post_json("/api/register", &json!({ "email": email, "password": password }))
            .await
    }

    pub async fn new_user(&self) -> TestUser {
        let email = format!("user-{}@example.com", RandomId::generate().to_lowercase());
        let password = format!("pw-{}", RandomId::generate());
        let response = self.register(&email, &password).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        TestUser {
            email,
            password,
            id: body["id"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn token_login(&self, user: &TestUser) -> Tokens {
        let response = self
            .post_json("/api/token", &json!({ "email": user.email, "password": user.password }))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        Tokens::from_json(&response.json().await.unwrap())
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json("/api/token/refresh", &json!({ "refresh_token": refresh_token }))
            .await
    }

    pub async fn refreshed(response: Response) -> Tokens {
        assert_eq!(response.status(), StatusCode::OK);
        Tokens::from_json(&response.json().await.unwrap())
    }

    pub async fn me(&self, strategy: &str, access_token: &str) -> Response {
        self.api
            .get(self.url(&format!("/api/{strategy}/me")))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn status_of(&self, strategy: &str, access_token: &str) -> StatusCode {
        self.me(strategy, access_token).await.status()
    }

    pub async fn bearer_post(&self, path: &str, access_token: &str, body: Option<Value>) -> Response {
        let mut request = self.api.post(self.url(path)).bearer_auth(access_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    pub async fn bearer_delete(&self, path: &str, access_token: &str) -> Response {
        self.api
            .delete(self.url(path))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request sent")
    }

    /// `GET /api/sessions` with a Bearer token.
    pub async fn sessions(&self, access_token: &str) -> Vec<Value> {
        let response = self
            .api
            .get(self.url("/api/sessions"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.address)
    }

    /// The user's `token_version` as stored.
    pub async fn token_version(&self, user_id: &str) -> i64 {
        sqlx::query_scalar("SELECT token_version FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(&self.db().await)
            .await
            .unwrap()
    }

    /// A pool on this test's database, for looking at what was stored.
    pub async fn db(&self) -> revocable::store::Db {
        revocable::store::connect(&self.database.url).await.unwrap()
    }
}

/// Reads a JSON error body and checks API.md's shape.
pub async fn error_body(response: Response) -> Value {
    let body: Value = response.json().await.expect("errors are JSON");
    assert!(body["error"].is_string(), "no `error` in {body}");
    assert!(
        body["error_description"].is_string(),
        "no `error_description` in {body}"
    );
    body
}

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

/// What a cut database proxy does with a connection opened while it is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutMode {
    /// Closed at once, as a server that refuses connections.
    Refuse,
    /// Held open and never answered, as a network that drops every packet, until restored.
    Blackhole,
}

/// A TCP proxy in front of PostgreSQL that a test can cut: every open connection is reset, and
/// new ones are refused or held unanswered, until it is restored.
pub struct DatabaseProxy {
    pub port: u16,
    /// `None` while forwarding, `Some(mode)` while cut.
    cut: tokio::sync::watch::Sender<Option<CutMode>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl DatabaseProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().unwrap().port();
        let (cut, _) = tokio::sync::watch::channel(None);
        let switch = cut.clone();
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let mut state = switch.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let mode = *state.borrow_and_update();
                    match mode {
                        Some(CutMode::Refuse) => reset(client),
                        Some(CutMode::Blackhole) => {
                            let _ = state.wait_for(Option::is_none).await;
                            reset(client);
                        }
                        None => {
                            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                                return reset(client);
                            };
                            let (mut client, mut server) = (client, server);
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = state.wait_for(Option::is_some) => {}
                            }
                            reset(client);
                            reset(server);
                        }
                    }
                });
            }
        });
        Self { port, cut, accepting }
    }

    /// Resets every open connection; new ones are refused or held as `mode` says.
    pub fn cut(&self, mode: CutMode) {
        self.cut.send_replace(Some(mode));
    }

    /// Forwards again: held connections are reset, so their clients retry.
    pub fn restore(&self) {
        self.cut.send_replace(None);
    }

    /// `url` (a PostgreSQL URL) with its host and port replaced by this proxy's.
    pub fn route(&self, url: &str) -> String {
        let mut url = reqwest::Url::parse(url).expect("a PostgreSQL URL");
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }
}

impl Drop for DatabaseProxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut.send_replace(Some(CutMode::Refuse));
    }
}

/// Closes with a reset rather than an orderly shutdown, as a cut cable or a killed peer does.
fn reset(stream: tokio::net::TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// The `host:port` a PostgreSQL URL points at.
pub fn postgres_address(url: &str) -> String {
    let url = reqwest::Url::parse(url).expect("a PostgreSQL URL");
    format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(5432)
    )
}

/// An app whose PostgreSQL connections all pass through a proxy the test can cut, with Redis
/// (`TEST_REDIS_URL`, when set) or without. The test's own database is created directly (and
/// dropped at the end); only the app goes through the proxy. `None` without `TEST_DATABASE_URL`.
pub async fn spawn_app_behind_database_proxy(
    with_redis: bool,
    overrides: &[(&str, &str)],
) -> Option<(TestApp, DatabaseProxy)> {
    let admin_url = postgres_url()?;
    let proxy = DatabaseProxy::start(postgres_address(&admin_url)).await;
    let database = Arc::new(TestDatabase::create().await);
    let redis = redis_url().filter(|_| with_redis).map(|url| {
        Arc::new(TestRedis {
            url,
            prefix: format!("test:{}:", RandomId::generate()),
        })
    });
    let mut overrides: Vec<(String, String)> = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    overrides.push(("DATABASE_URL".into(), proxy.route(&database.url)));
    Some((start(database, redis, overrides).await, proxy))
}

/// An app on an SQLite file of its own, whatever `TEST_DATABASE_URL` says (and Redis as usual).
pub async fn spawn_app_on_sqlite(overrides: &[(&str, &str)]) -> TestApp {
    let path = std::env::temp_dir().join(format!("revocable-test-{}.db", RandomId::generate()));
    let database = Arc::new(TestDatabase {
        url: format!("sqlite://{}?mode=rwc", path.display()),
        cleanup: Cleanup::Sqlite(path),
    });
    start_on(database, overrides).await
}
