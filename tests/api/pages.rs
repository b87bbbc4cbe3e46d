//! Every page as a logged-in person meets it: the header on every page (error pages included),
//! messages that come from the server and not from the address, the log-in page telling a
//! signed-out browser why, plain words on the password page, headings and the skip link, and
//! the approximate location of a device when a GeoIP database is configured.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{Browser, location, spawn_app, spawn_app_with};

const CHROME_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

fn shows_logged_in_header(page: &str, email: &str) -> bool {
    page.contains(&format!("title=\"Logged in as {email}\"")) && !page.contains("<a href=\"/login\">Log in</a>")
}

#[tokio::test]
async fn the_header_knows_who_is_logged_in_on_compare_and_on_error_pages() {
    let app = spawn_app_with(&[("LOGIN_RATE_PER_MINUTE", "3")]).await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;

    let (status, compare) = browser.get_text("/compare").await;
    assert_eq!(status, StatusCode::OK);
    assert!(shows_logged_in_header(&compare, &user.email), "/compare");

    let (status, missing) = browser.get_text("/no-such-page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(shows_logged_in_header(&missing, &user.email), "404: {missing}");

    let wrong_method = browser.send(reqwest::Client::new().delete(app.url("/password"))).await;
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        shows_logged_in_header(&wrong_method.text().await.unwrap(), &user.email),
        "405"
    );

    // A stale tab's form: a 403 that says what to do, with the header still logged in.
    let stale = browser
        .post_form("/sessions/revoke-others", &[("csrf_token", "a-token-from-long-ago")])
        .await;
    assert_eq!(stale.status(), StatusCode::FORBIDDEN);
    let stale = stale.text().await.unwrap();
    assert!(shows_logged_in_header(&stale, &user.email), "403: {stale}");
    assert!(stale.contains("This form has expired. Open it again for a fresh one, then send it."));
    assert!(stale.contains(r#"href="/dashboard">Open the form again"#), "{stale}");

    // An API path keeps its JSON.
    let api = browser.send(reqwest::Client::new().put(app.url("/api/token"))).await;
    assert_eq!(api.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        api.json::<serde_json::Value>().await.unwrap()["error"],
        "method_not_allowed"
    );

    // The rate limiter's refusal is a page too.
    let mut limited = None;
    for _ in 0..8 {
        let response = browser
            .change_password("wrong", "one new password", "one new password")
            .await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the password form is rate limited");
    assert!(limited.headers().contains_key("retry-after"));
    let limited = limited.text().await.unwrap();
    assert!(shows_logged_in_header(&limited, &user.email), "429: {limited}");
    assert!(limited.contains("Too many attempts"));

    // Anonymous visitors still get the log-in links on an error page.
    let (_, anonymous) = app.browser().get_text("/no-such-page").await;
    assert!(anonymous.contains("<a href=\"/login\">Log in</a>"));
}

#[tokio::test]
async fn notices_cannot_be_forged_with_the_query_string() {
    let app = spawn_app().await;
    let (status, page) = app.browser().get_text("/login?ended=everywhere&count=4096").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("4096"), "{page}");
    assert!(!page.contains("Logged out everywhere"));
    let (_, page) = app.browser().get_text("/login?ended=logout").await;
    assert!(!page.contains("You have been logged out"));
    // A browser naming a session that does not exist, or one still live, is told nothing.
    let curious = app.browser();
    curious
        .jar
        .lock()
        .unwrap()
        .insert("revocable_device".into(), "made-up".into());
    let (status, page) = curious.get_text("/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("signed out"));
}

#[tokio::test]
async fn a_signed_out_browser_is_told_why_on_the_log_in_page() {
    let app = spawn_app_with(&[("SESSION_IDLE_TTL", "1s")]).await;
    let user = app.new_user().await;
    let owner = Browser::new(&app.address).with_user_agent(CHROME_WINDOWS);
    owner.login(&user).await;

    // Signed out from another device.
    let other = app.browser();
    other.login(&user).await;
    let other_session: serde_json::Value = other.cookie_me().await.json().await.unwrap();
    let other_session = other_session["session_id"].as_str().unwrap().to_owned();
    owner
        .submit("/dashboard", &format!("/sessions/{other_session}/revoke"), &[])
        .await;
    let response = other.get("/dashboard").await;
    assert_eq!(location(&response), "/login");
    let (_, page) = other.get_text("/login").await;
    assert!(
        page.contains("This browser was signed out from another of your devices."),
        "{page}"
    );
    assert!(!page.contains("Chrome"), "nothing about the other device");

    // The password was changed elsewhere.
    other.login(&user).await;
    owner
        .change_password(&user.password, "one new password", "one new password")
        .await;
    let (_, page) = other.get_text("/login").await;
    assert!(
        page.contains("This browser was signed out because the password was changed."),
        "{page}"
    );

    // Its own log-out.
    let own = app.browser();
    own.login(&crate::helpers::TestUser {
        password: "one new password".into(),
        ..user.clone()
    })
    .await;
    own.submit("/dashboard", "/logout", &[]).await;
    let (_, page) = own.get_text("/login").await;
    assert!(page.contains("You have been logged out."));
    let (_, again) = own.get_text("/login").await;
    assert!(!again.contains("You have been logged out."), "said once");

    // Idle for longer than SESSION_IDLE_TTL.
    let idle = app.browser();
    idle.login(&crate::helpers::TestUser {
        password: "one new password".into(),
        ..user.clone()
    })
    .await;
    app.advance(Duration::from_millis(1300)).await;
    let (_, page) = idle.get_text("/login").await;
    assert!(
        page.contains("This browser was signed out after 1 second without activity."),
        "{page}"
    );
}

#[tokio::test]
async fn the_password_page_speaks_plainly_and_counts_the_devices_it_signs_out() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let (_, alone) = browser.get_text("/password").await;
    assert!(alone.contains("No other device is logged in to your account."));
    assert!(!alone.contains("action=\"/sessions/revoke-others\""));
    app.token_login(&user).await;
    Browser::new(&app.address)
        .with_user_agent(CHROME_WINDOWS)
        .login(&user)
        .await;
    let (_, page) = browser.get_text("/password").await;
    assert!(
        page.contains("signs out your <strong>2 other devices</strong>"),
        "{page}"
    );
    assert!(page.contains("Change password and sign out 2 other devices"));
    for word in ["version", "stateless", "denylist", "allowlist", "strategy"] {
        assert!(!page.contains(word), "no strategy name ({word}) on the password page");
    }
}

#[tokio::test]
async fn every_page_has_a_skip_link_and_its_h1_before_any_h2() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    let mut paths = vec!["/", "/login", "/register", "/compare", "/no-such-page"];
    for path in &paths {
        let (_, page) = browser.get_text(path).await;
        assert_skip_link_and_heading_order(&page, path);
    }
    browser.login(&user).await;
    Browser::new(&app.address)
        .with_user_agent(CHROME_WINDOWS)
        .login(&user)
        .await;
    paths = vec!["/dashboard", "/password", "/logout-all", "/compare"];
    for path in &paths {
        let (_, page) = browser.get_text(path).await;
        assert_skip_link_and_heading_order(&page, path);
    }
}

fn assert_skip_link_and_heading_order(page: &str, path: &str) {
    let skip = page
        .find("<a class=\"skip-link\" href=\"#main\">")
        .unwrap_or_else(|| panic!("{path}: skip link"));
    assert!(
        skip < page.find("<header").unwrap(),
        "{path}: the skip link comes first"
    );
    assert!(page.contains("<main id=\"main\""), "{path}: the skip link's target");
    let h1 = page.find("<h1").unwrap_or_else(|| panic!("{path}: an h1"));
    assert_eq!(page.matches("<h1").count(), 1, "{path}: one h1");
    if let Some(h2) = page.find("<h2") {
        assert!(h1 < h2, "{path}: h1 before the first h2");
    }
    if let Some(h3) = page.find("<h3") {
        assert!(
            page.find("<h2").is_some_and(|h2| h2 < h3),
            "{path}: h2 before the first h3"
        );
    }
}

#[tokio::test]
async fn devices_look_alike_only_to_the_eye_their_buttons_have_distinct_names() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let viewer = Browser::new(&app.address).with_user_agent(CHROME_WINDOWS);
    viewer.login(&user).await;
    // Two more browsers with the same browser, OS and address.
    app.browser().login(&user).await;
    app.browser().login(&user).await;
    let (_, page) = viewer.get_text("/dashboard").await;
    let names: Vec<&str> = page
        .match_indices("aria-label=\"Sign out ")
        .map(|(index, _)| {
            let rest = &page[index + 12..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_ne!(names[0], names[1], "distinct accessible names");
    assert!(names[0].contains("logged in"), "{names:?}");
    assert!(page.contains("<time datetime=\""), "machine-readable times");
    assert!(page.contains("<script src=\"/static/local-time.js\" defer></script>"));
    let script = app.get("/static/local-time.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.text().await.unwrap().contains("toLocaleString"));
}

#[tokio::test]
async fn with_only_this_device_there_is_nothing_else_to_sign_out() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let (_, page) = browser.get_text("/dashboard").await;
    assert!(!page.contains("Sign out all other devices"));
    assert!(page.contains("This is the only device logged in to your account."));
    assert!(
        !page.contains("class=\"button danger\" href=\"/logout-all\""),
        "not the loudest thing"
    );
    app.token_login(&user).await;
    let (_, page) = browser.get_text("/dashboard").await;
    assert!(page.contains("Sign out all other devices"));
    assert!(page.contains("class=\"button danger\" href=\"/logout-all\""));
}

#[tokio::test]
async fn devices_show_an_approximate_place_when_a_geoip_database_is_configured() {
    let database = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/geoip-test.mmdb");
    let app = spawn_app_with(&[("GEOIP_DB", database), ("TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let user = app.new_user().await;
    let home = app.browser();
    home.login(&user).await;
    Browser::new(&app.address)
        .with_user_agent(CHROME_WINDOWS)
        .with_forwarded_for("89.160.20.128")
        .login(&user)
        .await;
    let (_, page) = home.get_text("/dashboard").await;
    assert!(page.contains("Linköping, Sweden"), "{page}");
    assert!(page.contains("this machine (loopback)"));
    assert!(
        page.contains("Linköping, Sweden <span class=\"hint\">(approximate)</span>"),
        "a place found is approximate: {page}"
    );
    assert!(
        page.contains("this machine (loopback)</dd>"),
        "a network's name is not called approximate"
    );

    let plain = spawn_app().await;
    let user = plain.new_user().await;
    let browser = plain.browser();
    browser.login(&user).await;
    let (_, page) = browser.get_text("/dashboard").await;
    assert!(!page.contains("Location"), "without GEOIP_DB nothing changes");
}

#[tokio::test]
async fn a_stale_forms_403_links_back_to_the_page_it_came_from() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    // Sent from a page of this site: the link goes back to that page, which holds a fresh form.
    let from_page = browser
        .send(
            reqwest::Client::new()
                .post(app.url("/password"))
                .header("referer", app.url("/password?from=settings"))
                .form(&[("csrf_token", "a-token-from-long-ago")]),
        )
        .await;
    assert_eq!(from_page.status(), StatusCode::FORBIDDEN);
    let from_page = from_page.text().await.unwrap();
    assert!(
        from_page.contains(r#"href="/password?from=settings">Open the form again"#),
        "{from_page}"
    );
    let (_, fresh) = browser.get_text("/password?from=settings").await;
    assert!(
        revocable::compare::client::extract_csrf(&fresh).is_some(),
        "a fresh form there"
    );
    // Another site's page as the referrer is not linked to.
    let foreign = browser
        .send(
            reqwest::Client::new()
                .post(app.url("/password"))
                .header("referer", "https://evil.example/password")
                .form(&[("csrf_token", "a-token-from-long-ago")]),
        )
        .await;
    let foreign = foreign.text().await.unwrap();
    assert!(!foreign.contains("evil.example"), "{foreign}");
}
