//! The OpenAPI document is served, lists the routes the server answers, and can be browsed
//! without a network.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_openapi_document_describes_every_json_route_and_the_error_shape() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/register", "post"),
        ("/api/token", "post"),
        ("/api/token/refresh", "post"),
        ("/api/logout", "post"),
        ("/api/logout-all", "post"),
        ("/api/password", "post"),
        ("/api/account", "delete"),
        ("/api/password/forgot", "post"),
        ("/api/password/reset", "post"),
        ("/api/stateless/me", "get"),
        ("/api/version/me", "get"),
        ("/api/denylist/me", "get"),
        ("/api/allowlist/me", "get"),
        ("/api/cookie/me", "get"),
        ("/api/sessions", "get"),
        ("/api/sessions/{id}", "delete"),
        ("/readyz", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} is not documented");
    }
    let schemas = &document["components"]["schemas"];
    let error = &schemas["ErrorResponse"]["properties"];
    assert!(error["error"].is_object() && error["error_description"].is_object());
    let reasons = schemas["RejectReason"].to_string();
    for reason in [
        "malformed",
        "bad_signature",
        "expired",
        "not_yet_valid",
        "wrong_audience",
        "wrong_issuer",
        "revoked_version",
        "revoked_jti",
        "revoked_session",
        "no_credential",
    ] {
        assert!(reasons.contains(reason), "reason {reason} is not documented");
    }
    assert!(schemas["ErrorCode"].to_string().contains("reauthentication_required"));
    let security = document["components"]["securitySchemes"].as_object().unwrap();
    assert!(security.contains_key("bearer") && security.contains_key("cookie"));
}

#[tokio::test]
async fn the_api_reference_page_is_the_document_read_on_the_server() {
    let app = spawn_app().await;
    let page = app.get("/api-docs/").await;
    assert_eq!(page.status(), StatusCode::OK);
    let body = page.text().await.unwrap();
    for shown in [
        "<code>POST /oauth/introspect</code>",
        "id=\"introspect_token\"",
        "href=\"#schema-ErrorResponse\"",
        "id=\"schema-TokenTypeHint\"",
        "href=\"/openapi.json\"",
    ] {
        assert!(body.contains(shown), "{shown} is not on the page");
    }
    for loaded in ["src=\"http", "href=\"http", "<script>"] {
        assert!(
            !body.contains(loaded),
            "nothing is loaded from elsewhere, nothing inline: {loaded}"
        );
    }
    let document: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    assert_eq!(
        body.matches("<article class=\"operation\"").count(),
        document["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum::<usize>(),
        "one article per operation"
    );
    let bare = app.get("/api-docs").await;
    assert_eq!(bare.status(), StatusCode::SEE_OTHER);
    assert_eq!(bare.headers()["location"], "/api-docs/");
}
