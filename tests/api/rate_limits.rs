//! The per-address limits held across instances: log-in attempts and failed client
//! authentication are counted in Redis when it is configured, so two instances share one limit;
//! without Redis, or while it is down, each instance counts in memory and nothing becomes a 500.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{OwnRedis, TestApp, error_body, spawn_app_with};
use crate::oauth::{TestClient, add_client};

/// Two instances sharing a database and the test's own Redis.
async fn pair_on(redis: &OwnRedis, extra: &[(&str, &str)]) -> (TestApp, TestApp) {
    let url = redis.url();
    let prefix = format!("limits:{}:", revocable::domain::RandomId::generate());
    let mut settings = vec![("REDIS_URL", url.as_str()), ("REDIS_PREFIX", prefix.as_str())];
    settings.extend_from_slice(extra);
    let a = spawn_app_with(&settings).await;
    let b = a.restart().await;
    (a, b)
}

async fn wrong_password(app: &TestApp) -> Response {
    app.post_json(
        "/api/token",
        &json!({ "email": "nobody@example.com", "password": "not the password" }),
    )
    .await
}

/// A 429's `Retry-After`, checked against the seconds its body gives.
async fn retry_after_agreeing_with_body(response: Response) -> u64 {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "Retry-After: {retry_after}");
    let body: Value = error_body(response).await;
    assert_eq!(body["error"], "rate_limited");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains(&format!("retry in {retry_after} s")),
        "{body}"
    );
    retry_after
}

/// At 4 a minute one more attempt is allowed every 15 s: how many the elapsed time can explain.
fn allowed_by(elapsed: Duration, per_minute: u64) -> u64 {
    per_minute + elapsed.as_secs() / (60 / per_minute)
}

#[tokio::test]
async fn log_in_attempts_spread_over_two_instances_sharing_redis_meet_one_limit() {
    let Some(redis) = OwnRedis::start(&[]).await else {
        return;
    };
    let (a, b) = pair_on(&redis, &[("LOGIN_RATE_PER_MINUTE", "4")]).await;
    let started = Instant::now();
    let mut allowed = 0;
    let mut limited = None;
    for attempt in 0..10 {
        let instance = if attempt % 2 == 0 { &a } else { &b };
        let response = wrong_password(instance).await;
        match response.status() {
            StatusCode::UNAUTHORIZED => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS => limited = Some(response),
            other => panic!("attempt {attempt}: {other}"),
        }
    }
    let elapsed = started.elapsed();
    assert!(
        allowed >= 4 && allowed <= allowed_by(elapsed, 4),
        "{allowed} of 10 attempts over both instances were let through in {elapsed:?}; \
         the limit is 4 in all, not 4 per instance"
    );
    retry_after_agreeing_with_body(limited.expect("the later attempts are refused")).await;
}

#[tokio::test]
async fn while_redis_is_down_each_instance_limits_log_ins_in_memory_and_none_is_a_500() {
    let Some(mut redis) = OwnRedis::start(&[]).await else {
        return;
    };
    let (a, b) = pair_on(&redis, &[("LOGIN_RATE_PER_MINUTE", "3")]).await;
    let user = a.new_user().await;
    redis.stop();

    // A right password still logs in through either instance while Redis is down.
    for instance in [&a, &b] {
        let response = instance
            .post_json("/api/token", &json!({ "email": user.email, "password": user.password }))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    // Each instance counts on its own now: its own 3 (one already spent on the log-in above).
    for instance in [&a, &b] {
        let started = Instant::now();
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(wrong_password(instance).await.status());
        }
        assert!(statuses.iter().all(|status| !status.is_server_error()), "{statuses:?}");
        let allowed = statuses
            .iter()
            .filter(|status| **status == StatusCode::UNAUTHORIZED)
            .count() as u64;
        assert!(
            allowed >= 2 && allowed < allowed_by(started.elapsed(), 3),
            "{statuses:?}"
        );
        retry_after_agreeing_with_body(wrong_password(instance).await).await;
    }

    // Back up and empty: the shared count starts again, and log-ins work.
    redis.resume().await;
    let response = a
        .post_json("/api/token", &json!({ "email": user.email, "password": user.password }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn client_call(app: &TestApp, path: &str, client: &TestClient, secret: &str) -> Response {
    let request = if path == "/oauth/revocations" {
        app.api.get(app.url(path))
    } else {
        app.api.post(app.url(path)).form(&[("token", "not-a-token")])
    };
    request
        .basic_auth(&client.id, Some(secret))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap()
}

/// Successes from one address are never counted; failures on the three client routes are, on
/// `a` and `b` together; past the limit the address gets a 429 with `Retry-After`.
async fn failed_client_authentication_is_limited(a: &TestApp, b: &TestApp) {
    let client = add_client(a).await;
    let paths = ["/oauth/introspect", "/oauth/revoke", "/oauth/revocations"];
    for round in 0..10 {
        for path in ["/oauth/introspect", "/oauth/revoke"] {
            let instance = if round % 2 == 0 { a } else { b };
            let response = client_call(instance, path, &client, &client.secret).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}: successes are never limited");
        }
    }
    let started = Instant::now();
    let mut failures = 0;
    let mut limited = None;
    for attempt in 0..8 {
        let instance = if attempt % 2 == 0 { a } else { b };
        let response = client_call(instance, paths[attempt % 3], &client, "not-the-secret").await;
        match response.status() {
            StatusCode::UNAUTHORIZED => failures += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited = Some(response);
                break;
            }
            other => panic!("attempt {attempt} on {}: {other}", paths[attempt % 3]),
        }
    }
    assert!(
        failures >= 3 && failures <= allowed_by(started.elapsed(), 3),
        "{failures} failed client authentications answered 401 before a 429"
    );
    retry_after_agreeing_with_body(limited.expect("repeated failures are refused")).await;
    // While limited, every client route refuses this address, before checking any secret.
    for path in paths {
        let response = client_call(b, path, &client, &client.secret).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
    }
}

#[tokio::test]
async fn failed_client_authentication_from_one_address_is_limited_in_memory() {
    let a = spawn_app_with(&[("CLIENT_AUTH_FAILURES_PER_MINUTE", "3")]).await;
    failed_client_authentication_is_limited(&a, &a).await;
}

#[tokio::test]
async fn failed_client_authentication_is_limited_across_instances_sharing_redis() {
    let Some(redis) = OwnRedis::start(&[]).await else {
        return;
    };
    let (a, b) = pair_on(&redis, &[("CLIENT_AUTH_FAILURES_PER_MINUTE", "3")]).await;
    failed_client_authentication_is_limited(&a, &b).await;
}

#[tokio::test]
async fn the_addresses_of_one_ipv6_64_share_one_log_in_limit() {
    let app = spawn_app_with(&[("LOGIN_RATE_PER_MINUTE", "2"), ("TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let from = |address: &str| {
        app.api
            .post(app.url("/api/token"))
            .header("x-forwarded-for", address)
            .json(&json!({ "email": "nobody@example.com", "password": "not the password" }))
    };
    for host in ["1", "2"] {
        let response = from(&format!("2001:db8:5:6::{host}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let same_64 = from("2001:db8:5:6:ffff::3").send().await.unwrap();
    assert_eq!(
        same_64.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "another address of the same /64"
    );
    let next_64 = from("2001:db8:5:7::1").send().await.unwrap();
    assert_eq!(
        next_64.status(),
        StatusCode::UNAUTHORIZED,
        "a neighbouring /64 counts apart"
    );
    for address in ["192.0.2.1", "192.0.2.2"] {
        assert_eq!(from(address).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn one_clients_bad_secrets_do_not_lock_out_another_client_at_the_same_address() {
    let app = spawn_app_with(&[("CLIENT_AUTH_FAILURES_PER_MINUTE", "3")]).await;
    let careless = add_client(&app).await;
    let neighbour = add_client(&app).await;
    let mut limited = false;
    for _ in 0..6 {
        let response = client_call(&app, "/oauth/introspect", &careless, "not-the-secret").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(limited, "the failing client is limited");
    let refused = client_call(&app, "/oauth/introspect", &careless, &careless.secret).await;
    assert_eq!(
        refused.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even with its right secret"
    );
    for path in ["/oauth/introspect", "/oauth/revoke", "/oauth/revocations"] {
        let response = client_call(&app, path, &neighbour, &neighbour.secret).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{path}: the other client behind the same address"
        );
    }
}

#[tokio::test]
async fn a_limited_address_is_let_through_again_once_the_app_clock_passes_its_interval() {
    let in_memory = spawn_app_with(&[("LOGIN_RATE_PER_MINUTE", "2")]).await;
    let redis = OwnRedis::start(&[]).await;
    let in_redis = match &redis {
        Some(redis) => Some(pair_on(redis, &[("LOGIN_RATE_PER_MINUTE", "2")]).await.0),
        None => None,
    };
    for app in std::iter::once(&in_memory).chain(in_redis.as_ref()) {
        for attempt in 0..2 {
            assert_eq!(
                wrong_password(app).await.status(),
                StatusCode::UNAUTHORIZED,
                "attempt {attempt}"
            );
        }
        // At 2 a minute the third waits for one interval, 30 s.
        let retry_after = retry_after_agreeing_with_body(wrong_password(app).await).await;
        assert!(retry_after <= 30, "Retry-After: {retry_after}");
        app.advance(Duration::from_secs(retry_after)).await;
        assert_eq!(wrong_password(app).await.status(), StatusCode::UNAUTHORIZED);
        retry_after_agreeing_with_body(wrong_password(app).await).await;
    }
}
