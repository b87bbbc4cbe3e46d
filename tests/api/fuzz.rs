//! Property tests of everything a request can carry into the server before it is trusted: the
//! Bearer path (header parsing, base64, the JSON of header and claims, the claims themselves,
//! correctly signed or not) and the form and JSON extractors. Whatever comes in, the answer is a
//! 4xx or a 2xx in time — never a 5xx, a panic or a hang. `FUZZ_CASES` sets the number of cases
//! per property (64 by default; `.ci/run` runs more).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{TestApp, spawn_app_with};

const SECRET: &str = "fuzzing-secret-fuzzing-secret-0123456789";

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(64)
}

/// Runs `property` for `cases()` generated values against one app, on a runtime of its own.
fn check<S: Strategy>(
    strategy: S,
    property: impl Fn(&TestApp, S::Value) -> futures_util::future::BoxFuture<'_, Result<(), TestCaseError>>,
) where
    S::Value: std::fmt::Debug,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The issuer the made-up claims name, so that they get past the `iss` check.
    let app = runtime.block_on(spawn_app_with(&[("JWT_SECRET", SECRET), ("JWT_ISSUER", "revocable")]));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |value| runtime.block_on(property(&app, value)));
    drop(app);
    if let Err(error) = result {
        panic!("{error}");
    }
}

async fn answered_without_a_server_error(request: reqwest::RequestBuilder, what: &str) -> Result<u16, TestCaseError> {
    let response = tokio::time::timeout(Duration::from_secs(10), request.send())
        .await
        .map_err(|_| TestCaseError::fail(format!("no answer within 10 s: {what}")))?
        .map_err(|error| TestCaseError::fail(format!("request failed ({error}): {what}")))?;
    let status = response.status().as_u16();
    prop_assert!(status < 500, "{status} for {what}");
    Ok(status)
}

fn sign(header: &str, claims: &str) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.as_bytes()),
        URL_SAFE_NO_PAD.encode(claims.as_bytes())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// JSON values of every shape, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::hash_map("[a-z_]{1,8}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Claims that are nearly right: each field present or not, of the right type or not.
fn claims() -> impl Strategy<Value = Value> {
    let field = |right: Value| prop_oneof![Just(None), Just(Some(right)), any_json().prop_map(Some)];
    let now = chrono::Utc::now().timestamp();
    (
        field(json!("revocable")),
        field(json!("revocable")),
        field(json!("some-user")),
        field(json!("some-session")),
        field(json!(0)),
        field(json!("some-jti")),
        field(json!(now)),
        field(json!(now - 10)),
        field(json!(now + 600)),
    )
        .prop_map(|(iss, aud, sub, sid, ver, jti, iat, nbf, exp)| {
            let mut claims = serde_json::Map::new();
            for (name, value) in [
                ("iss", iss),
                ("aud", aud),
                ("sub", sub),
                ("sid", sid),
                ("ver", ver),
                ("jti", jti),
                ("iat", iat),
                ("nbf", nbf),
                ("exp", exp),
            ] {
                if let Some(value) = value {
                    claims.insert(name.to_owned(), value);
                }
            }
            Value::Object(claims)
        })
}

fn jose_header() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#"{"alg":"HS256","typ":"at+jwt"}"#.to_owned()),
        Just(r#"{"alg":"none","typ":"at+jwt"}"#.to_owned()),
        Just(r#"{"alg":"HS512","typ":"at+jwt"}"#.to_owned()),
        Just(r#"{"alg":"HS256"}"#.to_owned()),
        any_json().prop_map(|value| value.to_string()),
        ".{0,30}",
    ]
}

#[test]
fn any_authorization_header_is_answered_with_a_4xx_or_2xx() {
    let header_value = prop_oneof![
        "[ -~]{0,200}",
        "(Bearer|bearer|BEARER|Basic) [ -~]{0,200}",
        "Bearer [A-Za-z0-9_=-]{0,60}\\.[A-Za-z0-9_=-]{0,200}\\.[A-Za-z0-9_=-]{0,60}",
    ];
    let strategies = prop::sample::select(vec!["stateless", "version", "denylist", "allowlist"]);
    check((header_value, strategies), |app, (value, strategy)| {
        Box::pin(async move {
            let request = app
                .api
                .get(app.url(&format!("/api/{strategy}/me")))
                .header("authorization", value.as_str());
            let status = answered_without_a_server_error(request, &format!("{strategy}: {value:?}")).await?;
            prop_assert_eq!(status, 401, "a made-up header is refused: {:?}", value);
            Ok(())
        })
    });
}

#[test]
fn any_correctly_signed_token_with_odd_header_or_claims_is_answered_without_a_server_error() {
    let strategies = prop::sample::select(vec!["stateless", "version", "denylist", "allowlist"]);
    check(
        (jose_header(), claims(), strategies),
        |app, (header, claims, strategy)| {
            Box::pin(async move {
                let token = sign(&header, &claims.to_string());
                let request = app.me_request(strategy, &token);
                let status =
                    answered_without_a_server_error(request, &format!("{strategy}: {header} {claims}")).await?;
                // No such user or session exists: nothing made up here may be accepted.
                prop_assert_eq!(status, 401, "{} {}", header, claims);
                Ok(())
            })
        },
    );
}

#[test]
fn any_json_body_on_the_public_json_routes_is_answered_with_a_4xx() {
    let paths = prop::sample::select(vec!["/api/register", "/api/token", "/api/token/refresh"]);
    let bodies = prop_oneof![
        any_json().prop_map(|value| value.to_string()),
        "[ -~]{0,120}",
        (any_json(), any_json()).prop_map(|(email, password)| json!({ "email": email, "password": password,
            "refresh_token": password })
        .to_string()),
    ];
    check((paths, bodies), |app, (path, body)| {
        Box::pin(async move {
            let request = app
                .api
                .post(app.url(path))
                .header("content-type", "application/json")
                .body(body.clone());
            answered_without_a_server_error(request, &format!("{path}: {body}")).await?;
            Ok(())
        })
    });
}

#[test]
fn any_form_body_is_answered_with_a_4xx_or_a_page() {
    let paths = prop::sample::select(vec![
        "/login",
        "/register",
        "/logout",
        "/password",
        "/sessions/revoke-others",
    ]);
    let bodies = prop_oneof![
        "[ -~]{0,200}",
        ("[ -~]{0,40}", "[ -~]{0,40}", "[ -~]{0,40}").prop_map(|(token, email, password)| {
            serde_urlencoded::to_string([("csrf_token", token), ("email", email), ("password", password)]).unwrap()
        }),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ];
    let content_types = prop::sample::select(vec![
        "application/x-www-form-urlencoded",
        "application/json",
        "text/plain",
        "multipart/form-data",
    ]);
    check((paths, bodies, content_types), |app, (path, body, content_type)| {
        Box::pin(async move {
            let request = app
                .api
                .post(app.url(path))
                .header("content-type", content_type)
                .body(body.clone());
            answered_without_a_server_error(request, &format!("{path} ({content_type}): {body:?}")).await?;
            Ok(())
        })
    });
}

impl TestApp {
    fn me_request(&self, strategy: &str, token: &str) -> reqwest::RequestBuilder {
        self.api
            .get(self.url(&format!("/api/{strategy}/me")))
            .header("authorization", format!("Bearer {token}"))
    }
}
