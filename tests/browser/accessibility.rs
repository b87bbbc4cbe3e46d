//! Accessibility: axe-core on `/api-docs/` and on the pages seen before logging in, at a phone's
//! width, and the API reference laid out for the window it is in.

use std::time::Duration;

use fantoccini::Client;

use crate::driver::*;
use crate::helpers::{TestApp, spawn_app};

const AXE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/axe/node_modules/axe-core/axe.min.js"
);

/// axe-core's source (`npm ci --prefix tests/axe`, which `.ci/run` does); `None` when it is not
/// installed and need not be.
fn axe_source() -> Option<String> {
    match std::fs::read_to_string(AXE) {
        Ok(source) => Some(source),
        Err(_)
            if std::env::var("BROWSER_TESTS").is_ok_and(|mode| mode == "require")
                || std::env::var("CI").is_ok_and(|ci| ci == "true") =>
        {
            panic!("axe-core is required (CI=true or BROWSER_TESTS=require) but missing: npm ci --prefix tests/axe")
        }
        Err(_) => {
            not_run("axe-core is not installed (npm ci --prefix tests/axe) for the accessibility checks");
            None
        }
    }
}

/// What axe-core finds wrong with the page as it stands, a line per rule broken.
async fn accessibility_violations(browser: &Client, axe: &str) -> Result<Vec<String>, String> {
    // axe-core takes seconds on a long page, many more while the other browser tests load the
    // machine: far past chromedriver's default of 30 s for a script.
    browser
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(300)),
            None,
            None,
        ))
        .await
        .map_err(|e| format!("the script timeout: {e}"))?;
    browser
        .execute(axe, Vec::new())
        .await
        .map_err(|e| format!("axe-core: {e}"))?;
    let found = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
               .then(result => done(result.violations.map(v =>
                 `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)))
               .catch(error => done([`axe-core failed: ${error}`]));",
            Vec::new(),
        )
        .await
        .map_err(|e| format!("axe-core: {e}"))?;
    serde_json::from_value(found).map_err(|e| format!("axe-core's answer: {e}"))
}

/// `/api-docs/` in a browser `width` px wide: laid out for that width, every operation and
/// schema listed, and nothing axe-core reports.
async fn api_docs_flow(app: &TestApp, browser: &Client, axe: &str, width: u32) -> Step {
    browser.goto(&app.url("/api-docs/")).await.map_err(|e| e.to_string())?;
    let layout_width = number(browser, "return window.innerWidth;").await?;
    check(
        layout_width <= f64::from(width),
        format!("/api-docs/ is laid out {layout_width} px wide in a {width} px window"),
    )?;
    fits_the_width(browser, "/api-docs/").await?;
    let operations = number(browser, "return document.querySelectorAll('article.operation').length;").await?;
    check(operations >= 30.0, format!("/api-docs/ lists {operations} operations"))?;
    click(browser, "a[href='#schema-ErrorResponse']").await?;
    let violations = accessibility_violations(browser, axe).await?;
    check(
        violations.is_empty(),
        format!("/api-docs/ at {width} px:\n{}", violations.join("\n")),
    )
}

#[tokio::test]
async fn the_api_reference_reads_on_a_phone_and_passes_axe() {
    let Some(program) = browser_available() else { return };
    let Some(axe) = axe_source() else { return };
    let driver = start_driver(&program).await;
    let app = spawn_app().await;
    for (device, width) in [(Device::Phone, 360), (Device::Desktop, 1280)] {
        let browser = open_browser(&driver, &format!("api-docs-{width}"), device).await;
        let outcome = api_docs_flow(&app, &browser, &axe, width).await;
        conclude(outcome, &[("api-docs", &browser)], width).await;
    }
}

#[tokio::test]
async fn the_pages_before_log_in_pass_axe_on_a_phone() {
    let Some(program) = browser_available() else { return };
    let Some(axe) = axe_source() else { return };
    let driver = start_driver(&program).await;
    let app = spawn_app().await;
    let phone = open_browser(&driver, "anonymous-phone", Device::Phone).await;
    let outcome = async {
        for path in [
            "/",
            "/login",
            "/register",
            "/password/forgot",
            "/compare",
            "/no-such-page",
        ] {
            phone.goto(&app.url(path)).await.map_err(|e| e.to_string())?;
            fits_the_width(&phone, path).await?;
            let violations = accessibility_violations(&phone, &axe).await?;
            check(violations.is_empty(), format!("{path}:\n{}", violations.join("\n")))?;
        }
        Ok(())
    }
    .await;
    conclude(outcome, &[("anonymous", &phone)], 360).await;
}
