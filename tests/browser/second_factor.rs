//! A second factor enrolled from the dashboard and asked for at the next log-in.

use fantoccini::{Client, Locator};
use serde_json::Value;

use crate::driver::*;
use crate::helpers::{TestApp, spawn_app};

/// The code an authenticator app shows `steps` 30-second steps from now, from the secret the
/// enrolment page shows as text.
fn authenticator_code(secret: &str, steps: i64) -> Result<String, String> {
    let secret = totp_rs::Secret::try_from_base32(secret).map_err(|e| format!("the secret {secret:?}: {e}"))?;
    let totp = totp_rs::Builder::new()
        .with_secret(secret)
        .build()
        .map_err(|e| e.to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs() as i64;
    Ok(totp.generate((now + steps * 30) as u64).to_string())
}

/// Enrols an authenticator from the dashboard (reading the secret shown as text), logs out, and
/// logs in again with the password and then a code, at one window width.
async fn second_factor_flow(app: &TestApp, browser: &Client, width: u32) -> Step {
    browser.set_window_size(width, 900).await.map_err(|e| e.to_string())?;
    let user = app.new_user().await;
    log_in(browser, app, &user).await?;
    arrive(
        browser,
        "/dashboard",
        Some("Two-step verification"),
        "the dashboard has the section",
    )
    .await?;
    click(browser, "form[action='/mfa/totp'] button[type=submit]").await?;
    arrive(
        browser,
        "/mfa/totp",
        Some("Set up two-step verification"),
        "the enrolment page",
    )
    .await?;
    let has_qr = evaluate(browser, "return document.querySelector('.qr-code svg') !== null;").await?;
    check(has_qr == Value::Bool(true), "the QR code is an inline SVG")?;
    fits_the_width(browser, "the enrolment page").await?;
    let secret = browser
        .find(Locator::Id("totp-secret"))
        .await
        .map_err(|e| format!("the secret as text: {e}"))?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    fill(browser, &[("code", &authenticator_code(secret.trim(), 0)?)]).await?;
    click(browser, "form[action='/mfa/totp/confirm'] button[type=submit]").await?;
    arrive(
        browser,
        "/mfa/totp/confirm",
        Some("shown only this once"),
        "the recovery codes",
    )
    .await?;
    let codes = number(
        browser,
        "return document.querySelectorAll('.recovery-codes li').length;",
    )
    .await?;
    check(codes == 10.0, format!("ten recovery codes, not {codes}"))?;
    fits_the_width(browser, "the recovery codes").await?;
    browser.goto(&app.url("/dashboard")).await.map_err(|e| e.to_string())?;
    arrive(
        browser,
        "/dashboard",
        Some("10 recovery codes left"),
        "the section says it is on",
    )
    .await?;

    click(browser, "form[action='/logout'] button[type=submit]").await?;
    arrive(browser, "/login", None, "logged out").await?;
    fill(browser, &[("email", &user.email), ("password", &user.password)]).await?;
    click(browser, "form[action='/login'] button[type=submit]").await?;
    arrive(
        browser,
        "/login/mfa",
        Some("Two-step verification"),
        "the password asks for a code",
    )
    .await?;
    fits_the_width(browser, "the code step").await?;
    browser.goto(&app.url("/dashboard")).await.map_err(|e| e.to_string())?;
    arrive(browser, "/login", None, "not logged in before the code").await?;
    browser.goto(&app.url("/login/mfa")).await.map_err(|e| e.to_string())?;
    fill(browser, &[("code", &authenticator_code(secret.trim(), 1)?)]).await?;
    click(browser, "form[action='/login/mfa'] button[type=submit]").await?;
    arrive(browser, "/dashboard", Some("Your devices"), "the code logs in").await
}

#[tokio::test]
async fn an_authenticator_enrolled_from_the_dashboard_is_asked_for_at_the_next_log_in() {
    let Some(program) = browser_available() else { return };
    let driver = start_driver(&program).await;
    let app = spawn_app().await;
    for width in [1280, 360] {
        let browser = open_browser(&driver, &format!("second-factor-{width}"), Device::Desktop).await;
        let outcome = second_factor_flow(&app, &browser, width).await;
        conclude(outcome, &[("second-factor", &browser)], width).await;
    }
}
