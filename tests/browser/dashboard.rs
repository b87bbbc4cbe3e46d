//! The dashboard: devices signed out from another browser, "this wasn't me", the password step,
//! and how it reads at desktop and phone widths.

use std::time::Duration;

use fantoccini::{Client, Locator};

use crate::driver::*;
use crate::helpers::{TestApp, TestUser, spawn_app, spawn_app_with};

async fn scenario(app: &TestApp, a: &Client, b: &Client) -> Step {
    // Register in browser A: that logs A in.
    let mut user = TestUser {
        email: format!("ann-{}@example.com", std::process::id()),
        password: "correct horse battery".into(),
        id: String::new(),
    };
    a.goto(&app.url("/register")).await.map_err(|e| e.to_string())?;
    fill(
        a,
        &[
            ("email", &user.email),
            ("password", &user.password),
            ("password_confirmation", &user.password),
        ],
    )
    .await?;
    click(a, "form[action='/register'] button[type=submit]").await?;
    arrive(a, "/dashboard", None, "registration lands on the dashboard").await?;

    log_in(b, app, &user).await?;
    let api = app.token_login(&user).await;
    let a_session = cookie_session_id(a, app).await?;
    let b_session = cookie_session_id(b, app).await?;

    // A's dashboard: three devices, the right kinds, "this device" on A.
    a.goto(&app.url("/dashboard")).await.map_err(|e| e.to_string())?;
    let rows = a.find_all(Locator::Css("li.device")).await.map_err(|e| e.to_string())?;
    check(rows.len() == 3, format!("three devices listed, found {}", rows.len()))?;
    let mut kinds = Vec::new();
    for row in &rows {
        kinds.push(row.attr("data-kind").await.ok().flatten().unwrap_or_default());
    }
    kinds.sort();
    check(
        kinds == ["API token", "browser session", "browser session"],
        format!("kinds: {kinds:?}"),
    )?;
    let current = a
        .find(Locator::Css("li.device.current"))
        .await
        .map_err(|e| e.to_string())?;
    check(
        current.attr("data-session-id").await.ok().flatten().as_deref() == Some(a_session.as_str()),
        "\"this device\" marks A's own session",
    )?;
    check(
        current.text().await.unwrap_or_default().contains("this device"),
        "the marker reads \"this device\"",
    )?;
    if let Ok(directory) = std::env::var("SCREENSHOT_DIR") {
        let directory = std::path::PathBuf::from(directory);
        std::fs::create_dir_all(&directory).map_err(|e| e.to_string())?;
        a.set_window_size(1280, 1500).await.map_err(|e| e.to_string())?;
        save_screenshot(a, &directory.join("dashboard-desktop.png")).await;
        a.set_window_size(360, 1800).await.map_err(|e| e.to_string())?;
        save_screenshot(a, &directory.join("dashboard-360px.png")).await;
        a.set_window_size(1280, 1000).await.map_err(|e| e.to_string())?;
    }

    // A signs out B: B's next page load lands on /login.
    click(a, &format!("li.device[data-session-id='{b_session}'] form button")).await?;
    arrive(a, "/dashboard", Some("Signed out of Chrom"), "A sees the flash message").await?;
    b.goto(&app.url("/dashboard")).await.map_err(|e| e.to_string())?;
    arrive(b, "/login", None, "B is sent to /login").await?;

    // A signs out the API token device: its allowlist check is refused.
    click(
        a,
        &format!("li.device[data-session-id='{}'] form button", api.session_id),
    )
    .await?;
    arrive(
        a,
        "/dashboard",
        Some("Signed out of revocable-tests"),
        "A signs the API token out",
    )
    .await?;
    check(
        app.status_of("allowlist", &api.access).await == 401,
        "the API token is refused under allowlist",
    )?;

    // B and the API log in again; A changes the password: both are refused, A stays in.
    log_in(b, app, &user).await?;
    let api = app.token_login(&user).await;
    a.goto(&app.url("/password")).await.map_err(|e| e.to_string())?;
    let new_password = "a much better passphrase";
    fill(
        a,
        &[
            ("current_password", &user.password),
            ("new_password", new_password),
            ("new_password_confirmation", new_password),
        ],
    )
    .await?;
    click(a, "form[action='/password'] button[type=submit]").await?;
    user.password = new_password.into();
    arrive(
        a,
        "/dashboard",
        Some("Password changed"),
        "A stays logged in after the password change",
    )
    .await?;
    b.goto(&app.url("/dashboard")).await.map_err(|e| e.to_string())?;
    arrive(b, "/login", None, "B is refused after the password change").await?;
    check(
        app.status_of("allowlist", &api.access).await == 401,
        "the API token is refused (allowlist)",
    )?;
    check(
        app.status_of("version", &api.access).await == 401,
        "the API token is refused (version)",
    )?;

    // Log out everywhere from A, through its confirmation step.
    a.goto(&app.url("/dashboard")).await.map_err(|e| e.to_string())?;
    click(a, "a[href='/logout-all']").await?;
    arrive(a, "/logout-all", Some("Log out everywhere?"), "the confirmation page").await?;
    click(a, "form[action='/logout-all'] button[type=submit]").await?;
    arrive(
        a,
        "/login",
        Some("Logged out everywhere: 1 device."),
        "A ends on /login with the message",
    )
    .await?;
    a.goto(&app.url("/dashboard")).await.map_err(|e| e.to_string())?;
    arrive(a, "/login", None, "A's old session is gone").await
}

#[tokio::test]
async fn the_dashboard_signs_devices_out_in_a_real_browser() {
    let Some(program) = browser_available() else { return };
    let driver = start_driver(&program).await;
    let app = spawn_app().await;
    let a = open_browser(&driver, "a", Device::Desktop).await;
    let b = open_browser(&driver, "b", Device::Desktop).await;
    let outcome = scenario(&app, &a, &b).await;
    conclude(outcome, &[("a", &a), ("b", &b)], 1280).await;
}

/// "This wasn't me", the grouped notice with "It was me", the password step, the log-in page
/// telling a signed-out browser why, the small states and the header on an error page, at one
/// window width.
async fn dashboard_flows(app: &TestApp, driver: &Driver, width: u32) -> Step {
    let height = if width < 600 { 800 } else { 1000 };
    let owner = open_browser(driver, &format!("owner-{width}"), Device::Desktop).await;
    let phone = open_browser(driver, &format!("phone-{width}"), Device::DesktopAs(IPHONE_SAFARI)).await;
    let outcome = async {
        owner.set_window_size(width, height).await.map_err(|e| e.to_string())?;
        phone.set_window_size(width, height).await.map_err(|e| e.to_string())?;
        let user = app.new_user().await;
        log_in(&owner, app, &user).await?;

        // Small states: only this device, so nothing else to sign out and no loud button.
        let page = body_text(&owner).await;
        check(
            !page.contains("Sign out all other devices"),
            format!("{width}px: nothing else to sign out is not offered"),
        )?;
        check(
            owner.find(Locator::Css(".bulk-actions a.danger")).await.is_err(),
            format!("{width}px: log out everywhere is not the loudest thing"),
        )?;

        // Two new devices: one notice listing both, each with "It was me" and "This wasn't me".
        log_in(&phone, app, &user).await?;
        let api = app.token_login(&user).await;
        owner.goto(&app.url("/dashboard")).await.map_err(|e| e.to_string())?;
        let notices = owner.find_all(Locator::Css("section.notice")).await.map_err(|e| e.to_string())?;
        check(notices.len() == 1, format!("{width}px: one notice, found {}", notices.len()))?;
        let listed = owner.find_all(Locator::Css("li.new-device")).await.map_err(|e| e.to_string())?;
        check(listed.len() == 2, format!("{width}px: two new devices listed, found {}", listed.len()))?;
        let heading_order = evaluate(
            &owner,
            "return [...document.querySelectorAll('h1, h2')].map(h => h.tagName).join(',');",
        )
        .await?;
        check(
            heading_order.as_str().is_some_and(|order| order.starts_with("H1,")),
            format!("{width}px: the h1 comes first: {heading_order}"),
        )?;
        let list_top = number(&owner, "return document.querySelector('ul.devices').getBoundingClientRect().top;").await?;
        check(
            list_top < f64::from(height),
            format!("{width}px: the device list starts on the first screen ({list_top} px down)"),
        )?;
        fits_the_width(&owner, "the dashboard").await?;
        if let Some(directory) = screenshot_directory() {
            save_screenshot(&owner, &directory.join(format!("dashboard-notices-{width}px.png"))).await;
        }

        // "It was me" on the API token: it leaves the notice, stays logged in.
        click(&owner, &format!("form[action='/sessions/{}/recognise'] button", api.session_id)).await?;
        arrive(&owner, "/dashboard", Some("as yours."), "\"It was me\" is confirmed").await?;
        check(
            owner.find_all(Locator::Css("li.new-device")).await.map_err(|e| e.to_string())?.len() == 1,
            format!("{width}px: one new device left in the notice"),
        )?;
        check(app.status_of("allowlist", &api.access).await == 200, "the API token still works")?;

        // "This wasn't me" on the phone: signed out, told to change the password.
        let phone_session = cookie_session_id(&phone, app).await?;
        owner.goto(&app.url("/dashboard")).await.map_err(|e| e.to_string())?;
        click(&owner, &format!("form[action='/sessions/{phone_session}/not-me'] button")).await?;
        arrive(&owner, "/password", Some("may know your password"), "taken to change the password").await?;
        check(
            owner
                .find(Locator::Css("form[action='/sessions/revoke-others'] button"))
                .await
                .is_ok(),
            format!("{width}px: signing out every other device is offered at the same time"),
        )?;
        fits_the_width(&owner, "the password page").await?;
        if let Some(directory) = screenshot_directory().filter(|_| width > 600) {
            save_screenshot(&owner, &directory.join("not-me-password.png")).await;
        }

        // The phone is told why, and nothing more.
        phone.goto(&app.url("/dashboard")).await.map_err(|e| e.to_string())?;
        arrive(
            &phone,
            "/login",
            Some("This browser was signed out from another of your devices."),
            "the signed-out phone is told why",
        )
        .await?;
        // It logs straight back in: flagged again, loudly.
        log_in(&phone, app, &user).await?;
        owner.goto(&app.url("/dashboard")).await.map_err(|e| e.to_string())?;
        let alarm = owner
            .find(Locator::Css("section.notice.notice-alarm"))
            .await
            .map_err(|e| format!("{width}px: the loud notice: {e}"))?;
        check(
            alarm.text().await.unwrap_or_default().contains("reported as not you before"),
            format!("{width}px: the notice says it was reported before"),
        )?;
        let ended = body_text(&owner).await;
        check(ended.contains("Reported as not you"), "\"Recently ended\" records the report")?;
        let label = evaluate(
            &owner,
            "return getComputedStyle(document.querySelector('table.ended td[data-label]'), '::before').content;",
        )
        .await?;
        let table_header_shown = number(
            &owner,
            "return document.querySelector('table.ended thead').getBoundingClientRect().height;",
        )
        .await?;
        check(
            table_header_shown > 0.0 || label.as_str().is_some_and(|content| content.contains("Device")),
            format!("{width}px: \"Recently ended\" keeps its labels (header {table_header_shown} px, label {label})"),
        )?;
        if let Some(directory) = screenshot_directory().filter(|_| width > 600) {
            save_screenshot(&owner, &directory.join("not-me-flagged-again.png")).await;
        }

        // Re-authentication: the action opens a short step; a wrong password is reported there.
        app.advance(Duration::from_millis(1100)).await;
        owner.goto(&app.url("/dashboard")).await.map_err(|e| e.to_string())?;
        click(&owner, "form[action='/sessions/revoke-others'] button").await?;
        arrive(&owner, "/sessions/revoke-others", Some("Confirm it's you"), "the password step").await?;
        check(
            body_text(&owner).await.contains("you last entered your password"),
            "the step says when the password was last entered",
        )?;
        fill(&owner, &[("password", "not the password")]).await?;
        click(&owner, "form[action='/sessions/revoke-others'] button[type=submit]").await?;
        arrive(
            &owner,
            "/sessions/revoke-others",
            Some("That password is not correct."),
            "a wrong password is reported",
        )
        .await?;
        let gap = number(
            &owner,
            "return document.getElementById('password-error').getBoundingClientRect().top - document.getElementById('password').getBoundingClientRect().bottom;",
        )
        .await?;
        check(
            (0.0..40.0).contains(&gap),
            format!("{width}px: the error sits at the field ({gap} px below it)"),
        )?;
        fill(&owner, &[("password", &user.password)]).await?;
        click(&owner, "form[action='/sessions/revoke-others'] button[type=submit]").await?;
        arrive(&owner, "/dashboard", Some("Signed out of 2 other devices"), "the action ran").await?;

        // Two look-alike devices get distinct accessible names.
        let twin = open_browser(driver, &format!("twin-{width}"), Device::Desktop).await;
        let twin_outcome = async {
            log_in(&twin, app, &user).await?;
            log_in(&phone, app, &user).await?;
            log_in(&twin, app, &user).await
        }
        .await;
        let _ = twin.close().await;
        twin_outcome?;
        owner.goto(&app.url("/dashboard")).await.map_err(|e| e.to_string())?;
        let names = evaluate(
            &owner,
            "return [...document.querySelectorAll('li.device form button')].map(b => b.getAttribute('aria-label'));",
        )
        .await?;
        let names: Vec<String> = serde_json::from_value(names).map_err(|e| e.to_string())?;
        let mut distinct = names.clone();
        distinct.sort();
        distinct.dedup();
        check(
            names.len() >= 2 && distinct.len() == names.len(),
            format!("{width}px: distinct button names: {names:?}"),
        )?;

        // The header knows who is logged in on an error page.
        owner.goto(&app.url("/no-such-page")).await.map_err(|e| e.to_string())?;
        let header = owner
            .find(Locator::Css("header .who"))
            .await
            .map_err(|e| format!("{width}px: the 404 page's header: {e}"))?;
        check(
            header.text().await.unwrap_or_default() == user.email,
            format!("{width}px: the 404 page shows who is logged in"),
        )
    }
    .await;
    if outcome.is_err() {
        keep_failure(&[("owner", &owner), ("phone", &phone)], width).await;
    }
    let _ = owner.close().await;
    let _ = phone.close().await;
    outcome
}

#[tokio::test]
async fn the_dashboard_secures_the_account_and_reads_well_at_desktop_and_phone_widths() {
    let Some(program) = browser_available() else { return };
    let driver = start_driver(&program).await;
    let app = spawn_app_with(&[("SUDO_TTL", "1s")]).await;
    for width in [1280, 360] {
        if let Err(failure) = dashboard_flows(&app, &driver, width).await {
            panic!("browser test failed at {width}px: {failure}; screenshots in target/browser-failures");
        }
    }
}
