//! Health, readiness, metrics, unknown routes.

use reqwest::StatusCode;

use crate::helpers::{error_body, spawn_app};

#[tokio::test]
async fn healthz_and_readyz_answer_200_when_everything_is_up() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    // The push feed connects in the background just after start-up: until then the instance is
    // ready (the database answers) but not yet current.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let body = loop {
        let ready = app.get("/readyz").await;
        assert_eq!(ready.status(), StatusCode::OK);
        let body: serde_json::Value = ready.json().await.unwrap();
        if body["revocations"]["current"] == true || std::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(body["ready"], true);
    assert_eq!(body["database"], "up");
    let redis = if crate::helpers::redis_url().is_some() {
        "up"
    } else {
        "not configured"
    };
    assert_eq!(body["redis"], redis);
    assert_eq!(body["revocations"]["current"], true);
    assert!(body["revocations"]["applied_seq"].as_i64().unwrap() >= 0);
    assert!(body["revocations"]["head_seq"].as_i64().unwrap() >= body["revocations"]["applied_seq"].as_i64().unwrap());
    assert!(body["revocations"]["confirmed_ms_ago"].as_u64().unwrap() < 1000);
}

#[tokio::test]
async fn readyz_turns_503_within_the_staleness_bound_once_the_database_is_gone_and_answers_at_once() {
    let app = spawn_app().await;
    app.state.db.close().await;
    app.state.revocation.close().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let response = loop {
        let asked = std::time::Instant::now();
        let response = app.get("/readyz").await;
        assert!(
            asked.elapsed() < std::time::Duration::from_secs(1),
            "readyz answers within 1 s"
        );
        if response.status() != StatusCode::OK || std::time::Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body = error_body(response).await;
    assert_eq!(body["ready"], false);
    assert_eq!(body["database"], "down");
    assert_eq!(body["revocations"]["current"], false);
    assert_eq!(body["error"], "service_unavailable");
}

#[tokio::test]
async fn a_database_that_is_down_is_a_503_not_a_500() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    app.state.db.close().await;
    let register = app.register("someone@example.com", "correct horse").await;
    assert_eq!(register.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_body(register).await["error"], "service_unavailable");
    assert_eq!(
        app.status_of("version", &tokens.access).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        app.status_of("allowlist", &tokens.access).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // The stateless check needs no storage at all.
    assert_eq!(app.status_of("stateless", &tokens.access).await, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_text_format() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    assert!(body.contains("revocable_http_requests_total"), "{body}");
}

#[tokio::test]
async fn an_unknown_api_path_is_a_json_404() {
    let app = spawn_app().await;
    let response = app.get("/api/nothing-here").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_body(response).await["error"], "not_found");
}

#[tokio::test]
async fn the_policy_tells_clients_the_lifetimes() {
    let app = crate::helpers::spawn_app_with(&[("ACCESS_TTL", "2m")]).await;
    let body: serde_json::Value = app.get("/api/policy").await.json().await.unwrap();
    assert_eq!(body["access_ttl_seconds"], 120);
    assert_eq!(body["refresh_ttl_seconds"], 14 * 86_400);
    assert_eq!(body["jwt_algorithm"], "HS256");
}

#[tokio::test]
async fn jwks_publishes_the_ed25519_key_when_eddsa_is_configured() {
    let app = crate::helpers::spawn_app_with(&[("JWT_ALG", "EdDSA")]).await;
    let body: serde_json::Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(body["keys"][0]["kty"], "OKP");
    assert_eq!(body["keys"][0]["crv"], "Ed25519");
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    assert_eq!(app.status_of("version", &tokens.access).await, StatusCode::OK);
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let app = spawn_app().await;
    let response = app.get("/login").await;
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}

#[tokio::test]
async fn a_redis_that_is_down_is_a_503_naming_it_and_loses_nothing() {
    // Nothing listens on port 1: every Redis call fails fast.
    let app = crate::helpers::spawn_app_with(&[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    let ready = app.get("/readyz").await;
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "Redis alone down: the database still answers every check, so the instance stays in rotation"
    );
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["redis"], "down");
    assert_eq!(body["database"], "up");
    assert_eq!(body["ready"], true);

    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    assert_eq!(
        app.status_of("denylist", &tokens.access).await,
        StatusCode::OK,
        "the denylist is answered by the database while its Redis copy cannot be read"
    );
    assert_eq!(
        app.status_of("allowlist", &tokens.access).await,
        StatusCode::OK,
        "checks that need no Redis go on"
    );
    let browser = app.browser();
    assert_eq!(
        browser.get("/login").await.status(),
        StatusCode::OK,
        "the form itself stores nothing"
    );
    let log_in = browser
        .submit(
            "/login",
            "/login",
            &[("email", &user.email), ("password", &user.password)],
        )
        .await;
    assert_eq!(
        log_in.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the session store is Redis"
    );

    // A revocation needs only the database: it commits and says so; the copies catch up later.
    let logout = app.bearer_post("/api/logout", &tokens.access, None).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let db = app.db().await;
    let revoked: Option<i64> = sqlx::query_scalar("SELECT revoked_at FROM login_sessions WHERE id = $1")
        .bind(&tokens.session_id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(revoked.is_some(), "the revocation is in the database");
    for strategy in ["denylist", "allowlist"] {
        assert_eq!(
            app.status_of(strategy, &tokens.access).await,
            StatusCode::UNAUTHORIZED,
            "{strategy} refuses the revoked token while Redis is down"
        );
    }
    assert_eq!(app.refresh(&tokens.refresh).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_wrong_method_gets_the_error_shape_too() {
    let app = spawn_app().await;
    let wrong_method = app.api.put(app.url("/api/token")).send().await.unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_body(wrong_method).await["error"], "method_not_allowed");
    let page = app.api.delete(app.url("/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(page.text().await.unwrap().contains("<!DOCTYPE html>"));
}

#[tokio::test]
async fn metrics_count_checks_cache_lookups_and_invalidations() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    for strategy in ["version", "denylist", "allowlist"] {
        assert_eq!(app.status_of(strategy, &tokens.access).await, StatusCode::OK);
    }
    app.bearer_post("/api/logout", &tokens.access, None).await;
    assert_eq!(
        app.status_of("denylist", &tokens.access).await,
        StatusCode::UNAUTHORIZED
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for expected in [
        "revocable_checks_total{strategy=\"denylist\",outcome=\"refused\",reason=\"revoked_jti\"}",
        "revocable_checks_total{strategy=\"version\",outcome=\"accepted\",reason=\"none\"}",
        "revocable_revocation_cache_lookups_total",
        "revocable_invalidations_sent_total",
        "revocable_invalidations_received_total",
        "revocable_invalidation_lag_seconds",
    ] {
        assert!(metrics.contains(expected), "{expected} in:\n{metrics}");
    }
}

#[tokio::test]
async fn readyz_asks_redis_at_most_a_few_times_a_second_however_often_it_is_called() {
    let Some(redis) = crate::helpers::OwnRedis::start(&[]).await else {
        return;
    };
    let app = crate::helpers::spawn_app_with(&[("REDIS_URL", &redis.url()), ("REDIS_PREFIX", "probe:")]).await;
    let pings = || -> i64 {
        let mut connection = redis.connection().expect("the test's Redis answers");
        let stats: String = redis::cmd("INFO").arg("commandstats").query(&mut connection).unwrap();
        stats
            .lines()
            .find_map(|line| line.strip_prefix("cmdstat_ping:calls="))
            .and_then(|rest| rest.split(',').next())
            .and_then(|calls| calls.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    let before = pings();
    let started = std::time::Instant::now();
    let mut answered = 0;
    while started.elapsed() < std::time::Duration::from_secs(1) {
        let response = app.get("/readyz").await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["redis"], "up");
        answered += 1;
    }
    let asked = pings() - before;
    assert!(answered >= 20, "readyz answered {answered} times in a second");
    // Uncached, each call would PING at least once (and once more to check out a connection).
    assert!(
        asked <= 10,
        "{answered} readiness calls asked Redis {asked} times (the test's own two included)"
    );
}
