//! An account whose password someone else knows: the emailed reset link and "this wasn't me".

use fantoccini::Client;

use crate::driver::*;
use crate::helpers::{TestApp, TestUser, spawn_app};

/// Log-in page → "Forgot password?" → email → the emailed link → a new password → log in with it.
async fn forgotten_password_flow(app: &TestApp, browser: &Client) -> Step {
    let user = app.new_user().await;
    browser.goto(&app.url("/login")).await.map_err(|e| e.to_string())?;
    click(browser, "a[href='/password/forgot']").await?;
    arrive(
        browser,
        "/password/forgot",
        Some("Forgot your password?"),
        "the log-in page links to it",
    )
    .await?;
    fits_the_width(browser, "the forgot-password page").await?;
    fill(browser, &[("email", &user.email)]).await?;
    click(browser, "form[action='/password/forgot'] button[type=submit]").await?;
    arrive(
        browser,
        "/password/forgot",
        Some("Check your email"),
        "the request is acknowledged",
    )
    .await?;
    let mail = app.message_to(&user.email, "Reset your password").await;
    browser
        .goto(&mail.link("/password/reset"))
        .await
        .map_err(|e| e.to_string())?;
    arrive(
        browser,
        "/password/reset",
        Some("Set a new password"),
        "the emailed link opens the form",
    )
    .await?;
    fits_the_width(browser, "the reset page").await?;
    let new_password = "a brand new passphrase";
    fill(
        browser,
        &[
            ("new_password", new_password),
            ("new_password_confirmation", new_password),
        ],
    )
    .await?;
    click(browser, "form button[type=submit]").await?;
    arrive(
        browser,
        "/password/reset",
        Some("Your password has been changed"),
        "the new password is set",
    )
    .await?;
    click(browser, "a.button[href='/login']").await?;
    arrive(browser, "/login", None, "on to log in").await?;
    log_in(
        browser,
        app,
        &TestUser {
            password: new_password.into(),
            ..user
        },
    )
    .await
}

#[tokio::test]
async fn a_forgotten_password_is_reset_from_the_emailed_link_in_a_real_browser() {
    let Some(program) = browser_available() else { return };
    let driver = start_driver(&program).await;
    let app = spawn_app().await;
    let browser = open_browser(&driver, "forgot", Device::Desktop).await;
    browser.set_window_size(360, 800).await.unwrap();
    let outcome = forgotten_password_flow(&app, &browser).await;
    conclude(outcome, &[("forgot", &browser)], 360).await;
}

/// A log-in from a new device → the email → its "this wasn't me" link → confirm: the other browser
/// is signed out, the password refused, and the reset link that arrives works.
async fn not_me_flow(app: &TestApp, owner: &Client, intruder: &Client) -> Step {
    let user = app.new_user().await;
    log_in(owner, app, &user).await?;
    log_in(intruder, app, &user).await?;
    let mail = app.message_to(&user.email, "New sign-in").await;
    check(
        mail.text.contains("iOS") || mail.text.contains("iPhone"),
        format!("the device is named: {}", mail.text),
    )?;

    owner.goto(&mail.link("/not-me")).await.map_err(|e| e.to_string())?;
    arrive(
        owner,
        "/not-me",
        Some("This wasn't me"),
        "the link opens a confirmation",
    )
    .await?;
    fits_the_width(owner, "the confirmation page").await?;
    click(owner, "form[action='/not-me'] button.danger").await?;
    arrive(owner, "/not-me", Some("Your account is secured"), "the report is done").await?;

    intruder.goto(&app.url("/dashboard")).await.map_err(|e| e.to_string())?;
    arrive(intruder, "/login", None, "the other browser is signed out").await?;
    fill(intruder, &[("email", &user.email), ("password", &user.password)]).await?;
    click(intruder, "form[action='/login'] button[type=submit]").await?;
    arrive(
        intruder,
        "/login",
        Some("cannot be used to log in until it is reset"),
        "the password is refused, saying why",
    )
    .await?;

    let reset = app.message_to(&user.email, "Your account was secured").await;
    owner
        .goto(&reset.link("/password/reset"))
        .await
        .map_err(|e| e.to_string())?;
    arrive(
        owner,
        "/password/reset",
        Some("Set a new password"),
        "the reset link arrived",
    )
    .await?;
    let new_password = "only the owner knows this";
    fill(
        owner,
        &[
            ("new_password", new_password),
            ("new_password_confirmation", new_password),
        ],
    )
    .await?;
    click(owner, "form button[type=submit]").await?;
    arrive(
        owner,
        "/password/reset",
        Some("Your password has been changed"),
        "reset",
    )
    .await?;
    log_in(
        owner,
        app,
        &TestUser {
            password: new_password.into(),
            ..user
        },
    )
    .await
}

#[tokio::test]
async fn this_wasnt_me_from_the_email_secures_the_account_in_a_real_browser() {
    let Some(program) = browser_available() else { return };
    let driver = start_driver(&program).await;
    let app = spawn_app().await;
    let owner = open_browser(&driver, "mail-owner", Device::Desktop).await;
    let intruder = open_browser(&driver, "mail-intruder", Device::DesktopAs(IPHONE_SAFARI)).await;
    let outcome = not_me_flow(&app, &owner, &intruder).await;
    conclude(outcome, &[("mail-owner", &owner), ("mail-intruder", &intruder)], 1280).await;
}
