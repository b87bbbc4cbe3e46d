//! `TestApp`: the application on port 0 with a database of its own, one method per endpoint.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Response, StatusCode};
use revocable::config::Settings;
use revocable::domain::{Clock, RandomId};
use revocable::startup::Application;
use serde_json::{Value, json};

use super::{Browser, Cleanup, DatabaseProxy, TestDatabase, TestRedis, redis_url};

pub struct TestApp {
    pub address: String,
    pub database: Arc<TestDatabase>,
    pub redis: Option<Arc<TestRedis>>,
    pub state: actix_web::web::Data<revocable::state::AppState>,
    pub compare: actix_web::web::Data<revocable::compare::cache::CompareCache>,
    overrides: Vec<(String, String)>,
    pub api: reqwest::Client,
    /// The deployment's clock, shared by its instances; `advance` moves it.
    pub clock: Clock,
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
    start(database, None, overrides, Clock::test()).await
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
    start(database, redis, overrides, Clock::test()).await
}

pub(super) async fn start(
    database: Arc<TestDatabase>,
    redis: Option<Arc<TestRedis>>,
    overrides: Vec<(String, String)>,
    clock: Clock,
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
    let application = Application::build_with_clock(settings, clock.clone())
        .await
        .expect("the application builds");
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
        clock,
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
        start(
            self.database.clone(),
            self.redis.clone(),
            self.deployment_overrides(),
            self.clock.clone(),
        )
        .await
    }

    /// Another instance of the same deployment whose PostgreSQL connections pass through `proxy`.
    pub async fn restart_behind(&self, proxy: &DatabaseProxy) -> TestApp {
        let mut overrides = self.deployment_overrides();
        overrides.retain(|(key, _)| key != "DATABASE_URL");
        overrides.push(("DATABASE_URL".into(), proxy.route(&self.database.url)));
        start(self.database.clone(), self.redis.clone(), overrides, self.clock.clone()).await
    }

    /// Moves the deployment's clock forward by `by`, then runs the background work that has come
    /// due: session activity is written, expired state purged. What waits on app time (expiry,
    /// idle limits, rate windows) is then as it would be that much later.
    pub async fn advance(&self, by: Duration) {
        assert!(self.clock.advance(by), "a test app runs on a test clock");
        // What the log listeners would have applied by the time this much time had passed: a
        // purge must not run before the revocation it purges has reached this instance's cache.
        self.state
            .revocation
            .catch_up()
            .await
            .expect("the revocation log is read");
        self.state
            .revocation
            .write_activity()
            .await
            .expect("session activity is written");
        revocable::startup::purge_expired(&self.state).await;
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

/// An app on an SQLite file of its own, whatever `TEST_DATABASE_URL` says (and Redis as usual).
pub async fn spawn_app_on_sqlite(overrides: &[(&str, &str)]) -> TestApp {
    let path = std::env::temp_dir().join(format!("revocable-test-{}.db", RandomId::generate()));
    let database = Arc::new(TestDatabase {
        url: format!("sqlite://{}?mode=rwc", path.display()),
        cleanup: Cleanup::Sqlite(path),
    });
    start_on(database, overrides).await
}
