//! The session store's Redis goes away mid-test: routes that do not read the cookie session keep
//! answering, and a revocation by Bearer token still commits and stays in force. Each test starts
//! and stops a `redis-server` of its own on a free port; the shared one is never touched.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{TestApp, Tokens, spawn_app_with};

/// A `redis-server` owned by one test: no persistence, stopped on drop.
struct OwnRedis {
    port: u16,
    process: Option<Child>,
}

impl OwnRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Self { port, process: None };
        redis.resume();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port, empty, as a restarted Redis without persistence would be.
    fn resume(&mut self) {
        let process = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (Debian package redis-server)");
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "redis-server on {} did not stop", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

async fn app_on(redis: &OwnRedis) -> TestApp {
    let prefix = format!("outage:{}:", revocable::domain::RandomId::generate());
    spawn_app_with(&[("REDIS_URL", &redis.url()), ("REDIS_PREFIX", &prefix)]).await
}

/// GET `path` with a Bearer token and a session cookie both attached.
async fn get_with_cookie(app: &TestApp, path: &str, access: &str, cookie: &str) -> StatusCode {
    app.api
        .get(app.url(path))
        .bearer_auth(access)
        .header("cookie", format!("revocable_session={cookie}"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn health_and_the_stateless_check_answer_while_the_session_stores_redis_is_down() {
    let mut redis = OwnRedis::start();
    let app = app_on(&redis).await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let browser = app.browser();
    browser.login(&user).await;
    let cookie = browser.session_cookie().expect("a session cookie");
    assert_eq!(browser.cookie_me().await.status(), StatusCode::OK);

    redis.stop();

    for path in ["/healthz", "/api/stateless/me"] {
        assert_eq!(
            get_with_cookie(&app, path, &tokens.access, &cookie).await,
            StatusCode::OK,
            "{path} reads no session state, so a cookie sent along does not make it depend on Redis"
        );
    }
    assert_eq!(app.status_of("stateless", &tokens.access).await, StatusCode::OK);
    // The cookie strategy reads the session state: from this instance's memory while it is
    // current (on PostgreSQL, whose feed does not need Redis), else from the store that is down.
    let cookie_status = browser.cookie_me().await.status();
    if app.state.revocation.feed_status().current {
        assert_eq!(cookie_status, StatusCode::OK, "served from what is safely known");
    } else {
        assert_eq!(
            cookie_status,
            StatusCode::SERVICE_UNAVAILABLE,
            "the cookie strategy reads the store, and says it is unavailable"
        );
    }

    redis.resume();
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

/// Every strategy that can refuse a revoked token refuses `tokens`.
async fn assert_refused(app: &TestApp, tokens: &Tokens, when: &str) {
    for strategy in ["denylist", "allowlist"] {
        assert_eq!(
            app.status_of(strategy, &tokens.access).await,
            StatusCode::UNAUTHORIZED,
            "{strategy} refuses the revoked token {when}"
        );
    }
    assert_eq!(
        app.refresh(&tokens.refresh).await.status(),
        StatusCode::UNAUTHORIZED,
        "the refresh token is gone {when}"
    );
}

#[tokio::test]
async fn bearer_revocations_commit_while_redis_is_down_and_stay_in_force_when_it_returns() {
    let mut redis = OwnRedis::start();
    let app = app_on(&redis).await;
    let user = app.new_user().await;
    let logged_out = app.token_login(&user).await;
    let signed_out = app.token_login(&user).await;
    let everywhere = app.token_login(&user).await;
    // Copies the denylist into this Redis before it goes away.
    assert_eq!(app.status_of("denylist", &logged_out.access).await, StatusCode::OK);

    redis.stop();

    let logout = app.bearer_post("/api/logout", &logged_out.access, None).await;
    assert_eq!(
        logout.status(),
        StatusCode::NO_CONTENT,
        "log-out commits to the database"
    );
    let revoke = app
        .bearer_delete(&format!("/api/sessions/{}", signed_out.session_id), &everywhere.access)
        .await;
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT, "signing a device out commits");
    assert_refused(&app, &logged_out, "while Redis is down").await;
    assert_refused(&app, &signed_out, "while Redis is down").await;

    let logout_all = app.bearer_post("/api/logout-all", &everywhere.access, None).await;
    assert_eq!(
        logout_all.status(),
        StatusCode::NO_CONTENT,
        "log-out everywhere commits"
    );
    assert_refused(&app, &everywhere, "while Redis is down").await;
    assert_eq!(
        app.status_of("version", &everywhere.access).await,
        StatusCode::UNAUTHORIZED
    );

    let db = app.db().await;
    let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_sessions WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(&user.id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(live, 0, "every revocation is in the database");

    redis.resume();
    for tokens in [&logged_out, &signed_out, &everywhere] {
        assert_refused(&app, tokens, "once Redis is back, empty").await;
    }
    assert_eq!(
        app.status_of("version", &everywhere.access).await,
        StatusCode::UNAUTHORIZED
    );
}

/// The id of the login session `browser` is logged in as, from `/api/sessions`.
async fn current_login_session(browser: &crate::helpers::Browser) -> String {
    let sessions: serde_json::Value = browser.get("/api/sessions").await.json().await.unwrap();
    sessions
        .as_array()
        .and_then(|all| all.iter().find(|session| session["current"] == true))
        .and_then(|session| session["id"].as_str())
        .expect("the browser's own login session is listed")
        .to_owned()
}

/// Posts the log-out form with `token`, as the browser does from this site's page (`Origin`).
async fn log_out_from_page(browser: &crate::helpers::Browser, token: &str, origin: Option<&str>) -> reqwest::Response {
    let request = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/logout", browser.origin()))
        .form(&[("csrf_token", token)]);
    let request = match origin {
        Some(origin) => request.header("origin", origin),
        None => request,
    };
    browser.send(request).await
}

async fn revoked_in_the_database(app: &TestApp, login_session_id: &str) -> bool {
    revocable::store::login_sessions::find(&app.db().await, login_session_id)
        .await
        .unwrap()
        .expect("the login session row is kept")
        .revoked_at
        .is_some()
}

#[tokio::test]
async fn a_log_out_ends_its_login_session_even_where_redis_lost_the_state_and_no_instance_keeps_it_alive() {
    let mut redis = OwnRedis::start();
    let a = app_on(&redis).await;
    let b = a.restart().await;
    let user = a.new_user().await;
    let mut browser = a.browser();
    browser.login(&user).await;
    assert_eq!(
        browser.cookie_me().await.status(),
        StatusCode::OK,
        "A holds the state in memory"
    );
    let login_session_id = current_login_session(&browser).await;
    let (_, dashboard) = browser.get_text("/dashboard").await;
    let token = revocable::compare::client::extract_csrf(&dashboard).expect("the dashboard's CSRF token");

    redis.stop();
    redis.resume();

    // B never saw this cookie: it finds no state in the emptied Redis.
    browser.rebase(&b.address);
    let refused = log_out_from_page(&browser, &token, None).await;
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "without its token, a log-out must prove it comes from this site's page"
    );
    assert!(!revoked_in_the_database(&a, &login_session_id).await);
    let foreign = log_out_from_page(&browser, &token, Some("https://attacker.example")).await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert!(!revoked_in_the_database(&a, &login_session_id).await);

    let origin = browser.origin();
    let logged_out = log_out_from_page(&browser, &token, Some(&origin)).await;
    assert_eq!(logged_out.status(), StatusCode::SEE_OTHER);
    assert_eq!(crate::helpers::location(&logged_out), "/login");
    assert!(
        revoked_in_the_database(&a, &login_session_id).await,
        "the log-out ended the login session the cookie names, though Redis had lost its state"
    );

    // A still holds the state in memory: it learns of the end and refuses the cookie.
    browser.rebase(&a.address);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let status = browser.cookie_me().await.status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A still accepts the logged-out cookie: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_form_log_out_is_answered_as_what_it_did_while_redis_is_down() {
    let mut redis = OwnRedis::start();
    let app = app_on(&redis).await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    assert_eq!(browser.cookie_me().await.status(), StatusCode::OK);
    let login_session_id = current_login_session(&browser).await;
    let (_, dashboard) = browser.get_text("/dashboard").await;
    let token = revocable::compare::client::extract_csrf(&dashboard).expect("the dashboard's CSRF token");

    redis.stop();
    let origin = browser.origin();
    let response = log_out_from_page(&browser, &token, Some(&origin)).await;
    let revoked = revoked_in_the_database(&app, &login_session_id).await;
    let status = response.status();
    match status {
        // The state was in this instance's memory (its feed runs on PostgreSQL): the log-out
        // committed, and deleting the state from the Redis that is down does not undo the answer.
        StatusCode::SEE_OTHER => assert!(revoked, "a 303 means the login session ended"),
        // The state lives only in the Redis that is down: nothing could be done, and it says so.
        StatusCode::SERVICE_UNAVAILABLE => assert!(!revoked, "a 503 means nothing was revoked"),
        other => panic!("a log-out while Redis is down answered {other}"),
    }
    // On PostgreSQL the feed does not need Redis, so the state is served from memory.
    if crate::helpers::postgres_url().is_some() {
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
}
