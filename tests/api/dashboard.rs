//! The dashboard over HTTP: devices, recently ended sessions with their reasons, security
//! activity, sudo mode, the new-device notice, and the password page.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{Browser, TestApp, location, spawn_app, spawn_app_with};

const CHROME_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

async fn dashboard(browser: &Browser) -> String {
    let (status, page) = browser.get_text("/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    page
}

async fn session_id(browser: &Browser) -> String {
    let me: serde_json::Value = browser.cookie_me().await.json().await.unwrap();
    me["session_id"].as_str().unwrap().to_owned()
}

/// The text of the "Recently ended" section.
fn ended_section(page: &str) -> &str {
    let start = page.find("Recently ended").expect("the section is there");
    let end = page[start..]
        .find("Security activity")
        .map_or(page.len(), |i| start + i);
    &page[start..end]
}

#[tokio::test]
async fn the_dashboard_lists_both_kinds_of_login_with_device_names_and_this_device() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let firefox = app.browser();
    firefox.login(&user).await;
    let chrome = Browser::new(&app.address).with_user_agent(CHROME_WINDOWS);
    chrome.login(&user).await;
    app.token_login(&user).await;
    let page = dashboard(&firefox).await;
    assert_eq!(page.matches("<li class=\"device").count(), 3);
    assert!(page.contains("Firefox 128 on Linux"));
    assert!(page.contains("Chrome 126 on Windows"));
    assert!(page.contains("revocable-tests 1.0"));
    assert!(page.contains("API token") && page.contains("browser session"));
    assert_eq!(page.matches(">this device<").count(), 1);
    let own = session_id(&firefox).await;
    assert!(page.contains(&format!("class=\"device current\" data-session-id=\"{own}\"")));
    assert!(page.contains(CHROME_WINDOWS), "the raw user agent is available");
    assert!(page.contains("Refresh rotations"));
    assert_eq!(
        page.matches("aria-label=\"Sign out ").count(),
        2,
        "a Sign out button on every other row"
    );
}

#[tokio::test]
async fn signing_out_one_device_says_which_and_lists_it_as_ended_with_the_reason() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let firefox = app.browser();
    firefox.login(&user).await;
    let chrome = Browser::new(&app.address).with_user_agent(CHROME_WINDOWS);
    chrome.login(&user).await;
    let chrome_session = session_id(&chrome).await;
    let response = firefox
        .submit("/dashboard", &format!("/sessions/{chrome_session}/revoke"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = dashboard(&firefox).await;
    assert!(
        page.contains("Signed out of Chrome 126 on Windows"),
        "the flash message"
    );
    let ended = ended_section(&page);
    assert!(ended.contains("Chrome 126 on Windows"));
    assert!(
        ended.contains("Signed out from another device (Firefox 128 on Linux)"),
        "{ended}"
    );
    assert!(
        page.contains("Signed out Chrome 126 on Windows"),
        "the security activity records it"
    );
    assert_eq!(chrome.get("/dashboard").await.status(), StatusCode::SEE_OTHER);
    // The flash is shown once.
    assert!(
        !dashboard(&firefox)
            .await
            .contains("Signed out of Chrome 126 on Windows")
    );
}

#[tokio::test]
async fn another_users_session_cannot_be_signed_out_from_the_dashboard() {
    let app = spawn_app().await;
    let ann = app.new_user().await;
    let bob = app.new_user().await;
    let ann_browser = app.browser();
    ann_browser.login(&ann).await;
    let bob_tokens = app.token_login(&bob).await;
    let response = ann_browser
        .submit(
            "/dashboard",
            &format!("/sessions/{}/revoke", bob_tokens.session_id),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.status_of("allowlist", &bob_tokens.access).await, StatusCode::OK);
}

#[tokio::test]
async fn every_way_a_session_ends_is_shown_with_its_reason() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "0")]).await;
    let user = app.new_user().await;
    let watcher = app.browser();
    watcher.login(&user).await;
    // logged out
    let tokens = app.token_login(&user).await;
    app.bearer_post("/api/logout", &tokens.access, None).await;
    // stolen refresh token reused
    let stolen = app.token_login(&user).await;
    TestApp::refreshed(app.refresh(&stolen.refresh).await).await;
    app.refresh(&stolen.refresh).await;
    let page = dashboard(&watcher).await;
    let ended = ended_section(&page);
    assert!(ended.contains("Logged out"), "{ended}");
    assert!(ended.contains("Stolen refresh token reused"), "{ended}");
    assert!(page.contains("a stolen refresh token may have been used; that device was signed out"));
    // password changed
    let other = app.token_login(&user).await;
    let response = watcher
        .change_password(&user.password, "a new password entirely", "a new password entirely")
        .await;
    assert_eq!(location(&response), "/dashboard");
    let page = dashboard(&watcher).await;
    assert!(
        page.contains("Password changed. Signed out of 1 other device."),
        "the flash"
    );
    assert!(ended_section(&page).contains("Password changed"));
    assert_eq!(
        app.status_of("allowlist", &other.access).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn idle_and_absolute_timeouts_show_as_such() {
    let app = spawn_app_with(&[("SESSION_IDLE_TTL", "1s"), ("SESSION_TTL", "3s"), ("ACCESS_TTL", "1s")]).await;
    let user = app.new_user().await;
    let idle = app.browser();
    idle.login(&user).await;
    app.advance(Duration::from_millis(1500)).await;
    let viewer = app.browser();
    viewer.login(&user).await;
    let page = dashboard(&viewer).await;
    assert!(
        ended_section(&page).contains("Idle timeout"),
        "{}",
        ended_section(&page)
    );
    let tokens = app.token_login(&user).await;
    app.advance(Duration::from_millis(3200)).await;
    assert_eq!(app.refresh(&tokens.refresh).await.status(), StatusCode::UNAUTHORIZED);
    let late = app.browser();
    late.login(&user).await;
    let page = dashboard(&late).await;
    assert!(
        ended_section(&page).contains("Absolute timeout"),
        "{}",
        ended_section(&page)
    );
}

#[tokio::test]
async fn sensitive_actions_ask_for_the_password_again_after_the_sudo_window() {
    let app = spawn_app_with(&[("SUDO_TTL", "0")]).await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let other = app.token_login(&user).await;
    app.advance(Duration::from_millis(20)).await;
    let page = dashboard(&browser).await;
    assert!(
        !page.contains("type=\"password\""),
        "no bare password field on the device list"
    );

    // The action opens a short step that says why the password is asked for.
    let step = browser.submit("/dashboard", "/sessions/revoke-others", &[]).await;
    assert_eq!(step.status(), StatusCode::OK);
    let step = step.text().await.unwrap();
    assert!(
        step.contains("<h1>Confirm it&#39;s you</h1>") || step.contains("<h1>Confirm it's you</h1>"),
        "{step}"
    );
    assert!(step.contains("to sign out all your other devices"), "{step}");
    assert!(step.contains("you last entered your password"), "{step}");
    assert!(step.contains("action=\"/sessions/revoke-others\""));
    assert_eq!(app.status_of("allowlist", &other.access).await, StatusCode::OK);

    // A wrong password is reported at the field, as wrong.
    let wrong = browser
        .post_form(
            "/sessions/revoke-others",
            &[("csrf_token", &csrf_of(&step)), ("password", "not my password")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let wrong = wrong.text().await.unwrap();
    assert!(
        wrong.contains("aria-invalid=\"true\" aria-describedby=\"password-error\""),
        "{wrong}"
    );
    assert!(wrong.contains("id=\"password-error\""));
    assert!(wrong.contains("That password is not correct."));
    assert_eq!(
        app.status_of("allowlist", &other.access).await,
        StatusCode::OK,
        "nothing was signed out"
    );

    let done = browser
        .post_form(
            "/sessions/revoke-others",
            &[("csrf_token", &csrf_of(&wrong)), ("password", &user.password)],
        )
        .await;
    assert_eq!(location(&done), "/dashboard");
    assert!(dashboard(&browser).await.contains("Signed out of 1 other device"));
    assert_eq!(
        app.status_of("allowlist", &other.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(browser.cookie_me().await.status(), StatusCode::OK, "this device stays");
}

#[tokio::test]
async fn log_out_everywhere_asks_for_the_password_in_the_same_step_when_it_is_old() {
    let app = spawn_app_with(&[("SUDO_TTL", "0")]).await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    app.advance(Duration::from_millis(20)).await;
    let step = browser
        .submit("/logout-all", "/logout-all", &[("confirm", "yes")])
        .await;
    assert_eq!(step.status(), StatusCode::OK);
    let step = step.text().await.unwrap();
    assert!(step.contains("to log out everywhere"));
    assert!(
        step.contains("name=\"confirm\" value=\"yes\""),
        "the confirmation is carried"
    );
    let done = browser
        .post_form(
            "/logout-all",
            &[
                ("csrf_token", &csrf_of(&step)),
                ("confirm", "yes"),
                ("password", &user.password),
            ],
        )
        .await;
    assert_eq!(location(&done), "/login");
    assert_eq!(browser.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
}

fn csrf_of(page: &str) -> String {
    revocable::compare::client::extract_csrf(page).expect("the page has a CSRF token")
}

#[tokio::test]
async fn a_fresh_log_in_needs_no_password_for_sensitive_actions() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let other = app.token_login(&user).await;
    browser.submit("/dashboard", "/sessions/revoke-others", &[]).await;
    assert_eq!(
        app.status_of("allowlist", &other.access).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn log_out_everywhere_goes_through_a_confirmation_and_ends_this_browser_too() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let tokens = app.token_login(&user).await;
    let other = Browser::new(&app.address).with_user_agent(CHROME_WINDOWS);
    other.login(&user).await;
    let (status, confirmation) = browser.get_text("/logout-all").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        confirmation.contains("signs out all 3 of your\n  devices"),
        "{confirmation}"
    );
    // Without the confirmation field, nothing happens.
    let unconfirmed = browser.submit("/dashboard", "/logout-all", &[]).await;
    assert_eq!(location(&unconfirmed), "/logout-all");
    assert_eq!(app.status_of("version", &tokens.access).await, StatusCode::OK);

    let response = browser
        .submit("/logout-all", "/logout-all", &[("confirm", "yes")])
        .await;
    let target = location(&response);
    assert_eq!(target, "/login", "no message in the address");
    let (_, login_page) = browser.get_text(&target).await;
    assert!(login_page.contains("Logged out everywhere: 3 devices."), "{login_page}");
    assert_eq!(app.status_of("version", &tokens.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(other.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(browser.get("/dashboard").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_log_in_from_a_new_device_is_flagged_and_can_be_signed_out_in_one_click() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let usual = app.browser();
    usual.login(&user).await;
    let again = app.browser();
    again.login(&user).await;
    assert!(
        !dashboard(&usual).await.contains("new-devices-heading"),
        "the same browser and address is not new"
    );

    let stranger = Browser::new(&app.address).with_user_agent(CHROME_WINDOWS);
    stranger.login(&user).await;
    let stranger_session = session_id(&stranger).await;
    let page = dashboard(&usual).await;
    assert!(page.contains("A new log-in to check"), "{page}");
    assert!(page.contains("<strong>Chrome 126 on Windows 10</strong> (browser session) from 127.0.0.1"));
    assert!(
        page.contains("A new browser, from an address this account had used."),
        "the wording says what was new: {page}"
    );
    assert!(
        page.contains("Logged in (browser session · new device)"),
        "it is in the security activity"
    );
    usual
        .submit("/dashboard", &format!("/sessions/{stranger_session}/revoke"), &[])
        .await;
    assert!(!dashboard(&usual).await.contains("new-devices-heading"));
    assert_eq!(stranger.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn new_devices_are_listed_in_one_notice_and_it_was_me_marks_one_known() {
    let app = spawn_app_with(&[("TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let user = app.new_user().await;
    let usual = app.browser();
    usual.login(&user).await;
    let chrome = Browser::new(&app.address).with_user_agent(CHROME_WINDOWS);
    chrome.login(&user).await;
    let travelling = app.browser().with_forwarded_for("198.51.100.7");
    travelling.login(&user).await;
    let api = app.token_login(&user).await;
    let page = dashboard(&usual).await;
    assert_eq!(page.matches("id=\"new-devices-heading\"").count(), 1, "one notice");
    assert!(page.contains("3 new log-ins to check"), "{page}");
    assert!(page.contains("A browser this account had used, from a new address."));
    assert!(page.contains("A new API client, from an address this account had used."));
    assert!(
        page.find("<h1>") < page.find("new-devices-heading"),
        "the page's h1 comes first"
    );
    // Red in the activity list for the unrecognised log-ins only, not for this browser's own.
    assert_eq!(page.matches("<li class=\"event warning\">").count(), 3);

    let chrome_session = session_id(&chrome).await;
    let response = usual
        .submit("/dashboard", &format!("/sessions/{chrome_session}/recognise"), &[])
        .await;
    assert_eq!(location(&response), "/dashboard");
    let page = dashboard(&usual).await;
    assert!(page.contains("Marked Chrome 126 on Windows 10 as yours."));
    assert!(page.contains("2 new log-ins to check"));
    assert!(!page.contains(&format!("/sessions/{chrome_session}/recognise")));
    assert!(page.contains("Confirmed as yours: Chrome 126 on Windows 10 from 127.0.0.1"));
    assert_eq!(page.matches("<li class=\"event warning\">").count(), 2);
    assert_eq!(chrome.cookie_me().await.status(), StatusCode::OK, "it stays logged in");
    assert_eq!(app.status_of("allowlist", &api.access).await, StatusCode::OK);
    // Its own session cannot be "recognised" or reported, nor can another account's.
    let own = session_id(&usual).await;
    let refused = usual
        .submit("/dashboard", &format!("/sessions/{own}/recognise"), &[])
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let refused = usual
        .submit("/dashboard", &format!("/sessions/{own}/not-me"), &[])
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let stranger = app.new_user().await;
    let theirs = app.token_login(&stranger).await;
    let refused = usual
        .submit("/dashboard", &format!("/sessions/{}/not-me", theirs.session_id), &[])
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.status_of("allowlist", &theirs.access).await, StatusCode::OK);
}

#[tokio::test]
async fn this_wasnt_me_secures_the_account_and_the_device_is_flagged_again_more_loudly() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let owner = app.browser();
    owner.login(&user).await;
    let intruder = Browser::new(&app.address).with_user_agent(CHROME_WINDOWS);
    intruder.login(&user).await;
    let intruder_session = session_id(&intruder).await;
    app.token_login(&user).await;
    let response = owner
        .submit("/dashboard", &format!("/sessions/{intruder_session}/not-me"), &[])
        .await;
    assert_eq!(location(&response), "/password", "taken to change the password");
    assert_eq!(intruder.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
    let (_, password_page) = owner.get_text("/password").await;
    assert!(password_page.contains("may know your"), "{password_page}");
    assert!(password_page.contains("change it now"));
    assert!(
        password_page.contains("action=\"/sessions/revoke-others\""),
        "signing out every other device is offered at the same time"
    );

    let page = dashboard(&owner).await;
    let ended = ended_section(&page);
    assert!(ended.contains("Reported as not you (Firefox 128 on Linux)"), "{ended}");
    assert!(page.contains("Reported as not you and signed out: Chrome 126 on Windows 10 from 127.0.0.1"));

    // The same browser and address logs straight back in: flagged again, more loudly.
    let back = Browser::new(&app.address).with_user_agent(CHROME_WINDOWS);
    back.login(&user).await;
    let page = dashboard(&owner).await;
    assert!(page.contains("notice notice-alarm"), "{page}");
    assert!(page.contains("reported as not you before"));
    assert!(page.contains("This browser and address were reported as not you before."));
    assert!(page.contains("Logged in (browser session · reported before as not you)"));
    // The intruder's browser is told it was signed out, not that it was reported.
    let (_, login_page) = intruder.get_text("/login").await;
    assert!(login_page.contains("This browser was signed out from another of your devices."));
    assert!(!login_page.to_lowercase().contains("report"));
}

#[tokio::test]
async fn the_security_activity_lists_what_happened_with_device_and_address() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser
        .submit(
            "/login",
            "/login",
            &[("email", &user.email), ("password", "wrong password")],
        )
        .await;
    browser.login(&user).await;
    let tokens = app.token_login(&user).await;
    app.bearer_post("/api/logout", &tokens.access, None).await;
    let page = dashboard(&browser).await;
    for line in [
        "Account created",
        "Failed log-in attempt",
        "Logged in (browser session)",
        "Logged in (API token",
        "Logged out",
    ] {
        assert!(page.contains(line), "missing {line:?}");
    }
    assert!(page.contains("Firefox 128 on Linux · 127.0.0.1"));
}

#[tokio::test]
async fn the_password_page_explains_its_errors() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let mismatch = browser
        .change_password(&user.password, "one new password", "another one")
        .await;
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        mismatch
            .text()
            .await
            .unwrap()
            .contains("The two new passwords do not match: type the same new password twice.")
    );
    let wrong = browser
        .change_password("not the password", "one new password", "one new password")
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("That is not your current password, so nothing was changed.")
    );
    let short = browser.change_password(&user.password, "short", "short").await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let short = short.text().await.unwrap();
    assert!(
        short.contains("The new password is too short: use at least 8 characters."),
        "{short}"
    );
    assert!(short.contains("id=\"new_password-error\""), "the error is at its field");
    assert_eq!(browser.cookie_me().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_password_change_renews_this_browsers_session_key() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let before = browser.session_cookie().unwrap();
    browser
        .change_password(&user.password, "one new password", "one new password")
        .await;
    let after = browser.session_cookie().unwrap();
    assert_ne!(before, after);
    let stale = app.browser();
    stale.set_session_cookie(&before);
    assert_eq!(stale.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(browser.cookie_me().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn pages_are_labelled_and_carry_a_csrf_token_in_every_form() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    for path in ["/login", "/register"] {
        let (_, page) = browser.get_text(path).await;
        assert_forms_are_sound(&page, path);
    }
    browser.login(&user).await;
    app.token_login(&user).await;
    for path in ["/dashboard", "/password", "/logout-all"] {
        let (_, page) = browser.get_text(path).await;
        assert_forms_are_sound(&page, path);
    }
}

fn assert_forms_are_sound(page: &str, path: &str) {
    assert!(page.starts_with("<!DOCTYPE html>"), "{path}");
    assert!(page.contains("<html lang=\"en\">"), "{path}");
    let forms = page.matches("<form ").count();
    assert!(forms > 0, "{path} has forms");
    assert_eq!(
        page.matches("name=\"csrf_token\"").count(),
        forms,
        "{path}: every form has a token"
    );
    for (index, _) in page.match_indices("<input id=\"") {
        let id = &page[index + 11..];
        let id = &id[..id.find('"').unwrap()];
        assert!(
            page.contains(&format!("<label for=\"{id}\"")),
            "{path}: #{id} has a label"
        );
    }
}

#[tokio::test]
async fn only_an_earlier_device_can_report_or_vouch_for_a_later_one() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let owner = app.browser();
    owner.login(&user).await;
    let owner_session = session_id(&owner).await;
    // Whoever knows the password logs in later, from a browser the account has not used.
    let intruder = Browser::new(&app.address).with_user_agent(CHROME_WINDOWS);
    intruder.login(&user).await;
    let intruder_session = session_id(&intruder).await;

    let seen_by_intruder = dashboard(&intruder).await;
    assert!(
        !seen_by_intruder.contains("new-devices-heading"),
        "the later device is offered nothing to judge: {seen_by_intruder}"
    );
    for action in ["not-me", "recognise"] {
        let refused = intruder
            .submit("/dashboard", &format!("/sessions/{owner_session}/{action}"), &[])
            .await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{action} of an earlier device");
    }
    assert_eq!(
        owner.cookie_me().await.status(),
        StatusCode::OK,
        "the owner stays logged in"
    );
    assert!(!dashboard(&owner).await.contains("Reported as not you"));

    // The earlier device judges the later one.
    let seen_by_owner = dashboard(&owner).await;
    assert!(seen_by_owner.contains("A new log-in to check"), "{seen_by_owner}");
    assert!(seen_by_owner.contains(&format!("/sessions/{intruder_session}/not-me")));
    let response = owner
        .submit("/dashboard", &format!("/sessions/{intruder_session}/not-me"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(intruder.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn two_logins_from_the_same_browser_and_address_read_differently() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let first = app.browser();
    first.login(&user).await;
    let second = app.browser();
    second.login(&user).await;
    let (first_id, second_id) = (session_id(&first).await, session_id(&second).await);
    let page = dashboard(&first).await;
    for id in [&first_id, &second_id] {
        assert!(
            page.contains(&format!(">ID {}</span>", &id[..8])),
            "the row of {id} shows the start of its id: {page}"
        );
    }
    assert_eq!(
        page.matches("<span class=\"look-alike\">logged in <time").count(),
        2,
        "both look-alike rows show their exact log-in time"
    );

    let chrome = Browser::new(&app.address).with_user_agent(CHROME_WINDOWS);
    chrome.login(&user).await;
    assert_eq!(
        dashboard(&chrome).await.matches("class=\"look-alike\"").count(),
        2,
        "a row with no look-alike does not repeat its log-in time"
    );
}

#[tokio::test]
async fn the_viewing_device_is_never_badged_new_and_sign_outs_are_not_shown_as_success() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let usual = app.browser();
    usual.login(&user).await;
    let chrome = Browser::new(&app.address).with_user_agent(CHROME_WINDOWS);
    chrome.login(&user).await;
    assert!(
        dashboard(&usual)
            .await
            .contains("<span class=\"badge warn\">new device</span>"),
        "another browser's new log-in is badged"
    );
    let page = dashboard(&chrome).await;
    assert!(
        !page.contains("<span class=\"badge warn\">new device</span>"),
        "the browser reading the page is not badged new: {page}"
    );

    let usual_session = session_id(&usual).await;
    chrome
        .submit("/dashboard", &format!("/sessions/{usual_session}/revoke"), &[])
        .await;
    let page = dashboard(&chrome).await;
    assert!(page.contains("<p class=\"flash flash-info\" role=\"status\">Signed out of Firefox 128 on Linux"));
    assert!(!page.contains("flash-success"), "{page}");
    assert!(
        page.contains("This is the only device logged in to your account."),
        "one device left"
    );
}

#[tokio::test]
async fn an_api_client_is_an_api_client_in_the_new_log_in_notice() {
    let app = spawn_app_with(&[("TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let user = app.new_user().await;
    let usual = app.browser();
    usual.login(&user).await;
    app.token_login(&user).await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/token", app.address))
        .header("user-agent", "revocable-tests/1.0")
        .header("x-forwarded-for", "198.51.100.7")
        .json(&serde_json::json!({ "email": user.email, "password": user.password }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = dashboard(&usual).await;
    assert!(
        page.contains("An API client this account had used, from a new address."),
        "{page}"
    );
    assert!(!page.contains("A API client"));
}
