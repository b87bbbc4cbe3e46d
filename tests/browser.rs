//! The dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver).
//!
//! Chromium and chromedriver come from Debian's `chromium` and `chromium-driver` packages
//! (`.ci/run` installs them). Without them this test prints that it did not run and passes,
//! unless `CI=true` or `BROWSER_TESTS=require`; `BROWSER_TESTS=skip` skips it outright. The
//! accessibility checks inject axe-core, installed from npm by `npm ci --prefix tests/axe`
//! (`tests/axe/package-lock.json`; `.ci/run` does it); without it they say so and pass, with the
//! same two exceptions.

#[allow(dead_code, unused_imports)]
#[path = "api/helpers/mod.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "api/mailbox.rs"]
mod mailbox;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use helpers::{TestApp, TestUser, spawn_app, spawn_app_with};

const CHROMIUM: &str = "/usr/bin/chromium";

struct Driver {
    process: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn find_program(name: &str) -> Option<String> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| format!("{dir}/{name}"))
        .find(|path| std::path::Path::new(path).is_file())
}

/// Says why the browser tests did not run, past the test harness's output capture.
fn not_run(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "browser tests were not run: {why}");
}

/// `None` when the browser tests should not run here (and it is fine that they do not).
fn browser_available() -> Option<String> {
    let mode = std::env::var("BROWSER_TESTS").unwrap_or_default();
    let required = mode == "require" || std::env::var("CI").is_ok_and(|ci| ci == "true");
    if mode == "skip" {
        not_run("BROWSER_TESTS=skip");
        return None;
    }
    match (find_program("chromedriver"), std::path::Path::new(CHROMIUM).exists()) {
        (Some(driver), true) => Some(driver),
        _ if required => {
            panic!("chromium and chromedriver are required (CI=true or BROWSER_TESTS=require) but missing")
        }
        _ => {
            not_run("install Debian's chromium and chromium-driver to run them");
            None
        }
    }
}

async fn start_driver(program: &str) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut process = Command::new(program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if reqwest::get(format!("{url}/status")).await.is_ok() {
            return Driver { process, url };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = process.kill();
    let _ = process.wait();
    panic!("chromedriver did not answer on {url}");
}

/// A browser profile of its own: separate cookies, separate everything.
async fn open_browser(driver: &Driver, profile: &str) -> Client {
    open_browser_as(driver, profile, None).await
}

/// A browser profile of its own that lays pages out as a phone 360 px wide does: a page without
/// a viewport declaration is laid out 980 px wide and shrunk, as on a real phone.
async fn open_phone(driver: &Driver, profile: &str) -> Client {
    let data_dir = std::env::temp_dir().join(format!("revocable-chromium-{profile}-{}", std::process::id()));
    let args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--no-first-run".into(),
        format!("--user-data-dir={}", data_dir.display()),
    ];
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": args,
            "mobileEmulation": { "deviceMetrics": { "width": 360, "height": 800, "pixelRatio": 2.0, "touch": true } },
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// A browser profile that presents itself with another user agent (another device, as far as
/// the server can tell).
async fn open_browser_as(driver: &Driver, profile: &str, user_agent: Option<&str>) -> Client {
    let data_dir = std::env::temp_dir().join(format!("revocable-chromium-{profile}-{}", std::process::id()));
    let mut args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--window-size=1280,1000".into(),
        format!("--user-data-dir={}", data_dir.display()),
    ];
    if let Some(user_agent) = user_agent {
        args.push(format!("--user-agent={user_agent}"));
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args }));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

type Step = Result<(), String>;

fn check(condition: bool, what: impl Into<String>) -> Step {
    if condition { Ok(()) } else { Err(what.into()) }
}

async fn path_of(browser: &Client) -> String {
    browser
        .current_url()
        .await
        .map(|url| url.path().to_owned())
        .unwrap_or_default()
}

/// Waits (up to 10 s) for the browser to be on `path`, showing `text` if given: a click only
/// starts a navigation, it does not wait for it.
async fn arrive(browser: &Client, path: &str, text: Option<&str>, what: &str) -> Step {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let here = path_of(browser).await;
        let body = body_text(browser).await;
        if here == path && text.is_none_or(|text| body.contains(text)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{what}: on {here}, expected {path} with {text:?}; the page says: {body}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fill(browser: &Client, fields: &[(&str, &str)]) -> Step {
    for (id, value) in fields {
        let input = browser
            .find(Locator::Id(id))
            .await
            .map_err(|e| format!("field #{id}: {e}"))?;
        input.clear().await.map_err(|e| e.to_string())?;
        input.send_keys(value).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn click(browser: &Client, css: &str) -> Step {
    browser
        .find(Locator::Css(css))
        .await
        .map_err(|e| format!("{css}: {e}"))?
        .click()
        .await
        .map_err(|e| format!("click {css}: {e}"))
}

async fn body_text(browser: &Client) -> String {
    match browser.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn cookie_session_id(browser: &Client, app: &TestApp) -> Result<String, String> {
    browser
        .goto(&app.url("/api/cookie/me"))
        .await
        .map_err(|e| e.to_string())?;
    let text = body_text(browser).await;
    let me: Value = serde_json::from_str(&text).map_err(|e| format!("/api/cookie/me said {text:?}: {e}"))?;
    me["session_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no session_id in {me}"))
}

async fn log_in(browser: &Client, app: &TestApp, user: &TestUser) -> Step {
    browser.goto(&app.url("/login")).await.map_err(|e| e.to_string())?;
    fill(browser, &[("email", &user.email), ("password", &user.password)]).await?;
    click(browser, "form[action='/login'] button[type=submit]").await?;
    arrive(browser, "/dashboard", None, "log-in reaches the dashboard").await
}

async fn save_screenshot(browser: &Client, path: &std::path::Path) {
    if let Ok(png) = browser.screenshot().await {
        let _ = std::fs::write(path, png);
    }
}

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
    let a = open_browser(&driver, "a").await;
    let b = open_browser(&driver, "b").await;
    let outcome = scenario(&app, &a, &b).await;
    if let Err(failure) = &outcome {
        let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-failures");
        let _ = std::fs::create_dir_all(&directory);
        for (name, browser) in [("a", &a), ("b", &b)] {
            save_screenshot(browser, &directory.join(format!("browser-{name}.png"))).await;
            if let Ok(source) = browser.source().await {
                let _ = std::fs::write(directory.join(format!("browser-{name}.html")), source);
            }
        }
        eprintln!(
            "browser test failed: {failure}; screenshots and page sources in {}",
            directory.display()
        );
    }
    let _ = a.close().await;
    let _ = b.close().await;
    outcome.unwrap();
}

const IPHONE_SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// Runs a script in the page and returns what it returns.
async fn evaluate(browser: &Client, script: &str) -> Result<Value, String> {
    browser
        .execute(script, Vec::new())
        .await
        .map_err(|e| format!("script {script:?}: {e}"))
}

async fn number(browser: &Client, script: &str) -> Result<f64, String> {
    evaluate(browser, script)
        .await?
        .as_f64()
        .ok_or_else(|| format!("{script:?} did not return a number"))
}

/// Nothing on the page is wider than the window (no sideways scrolling of the whole page).
async fn fits_the_width(browser: &Client, what: &str) -> Step {
    let overflow = number(
        browser,
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
    )
    .await?;
    check(
        overflow <= 0.0,
        format!("{what}: the page scrolls sideways by {overflow} px"),
    )
}

fn screenshot_directory() -> Option<std::path::PathBuf> {
    let directory = std::path::PathBuf::from(std::env::var("SCREENSHOT_DIR").ok()?);
    std::fs::create_dir_all(&directory).ok()?;
    Some(directory)
}

/// "This wasn't me", the grouped notice with "It was me", the password step, the log-in page
/// telling a signed-out browser why, the small states and the header on an error page, at one
/// window width.
async fn dashboard_flows(app: &TestApp, driver: &Driver, width: u32) -> Step {
    let height = if width < 600 { 800 } else { 1000 };
    let owner = open_browser(driver, &format!("owner-{width}")).await;
    let phone = open_browser_as(driver, &format!("phone-{width}"), Some(IPHONE_SAFARI)).await;
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
        let twin = open_browser(driver, &format!("twin-{width}")).await;
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

/// The text of every shown table cell or chart label that is wider than its box, or that has a
/// word (a number, a name) broken over two lines; a line may end after a word's hyphen.
const CELLS_CUT_OR_OVERFLOWING: &str = r#"
const damaged = [];
for (const cell of document.querySelectorAll('main td, main th, main .bar-label, main .bar-value')) {
  if (cell.getClientRects().length === 0) continue;
  if (cell.scrollWidth > cell.clientWidth + 1) damaged.push('overflows: ' + cell.textContent.trim());
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const word of node.data.matchAll(/[^\s-]+/g)) {
      const range = document.createRange();
      range.setStart(node, word.index);
      range.setEnd(node, word.index + word[0].length);
      const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
      if (lines.size > 1) damaged.push('broken: ' + word[0]);
    }
  }
}
return damaged;
"#;

/// `/compare` at one width: the matrix at once (expected, then observed), one card per strategy
/// on a narrow screen, chart text of at least 12 px and no sideways scrolling.
async fn compare_flows(app: &TestApp, driver: &Driver, width: u32, first_visit: bool) -> Step {
    let browser = open_browser(driver, &format!("compare-{width}")).await;
    let outcome = async {
        browser.set_window_size(width, 900).await.map_err(|e| e.to_string())?;
        browser.goto(&app.url("/compare")).await.map_err(|e| e.to_string())?;
        if first_visit {
            let text = body_text(&browser).await;
            check(
                text.contains("What each one stops") && text.contains("expected"),
                format!("{width}px: the first visit shows the documented matrix at once, marked expected"),
            )?;
        }
        // The page reloads itself until the observed matrix is in: a measurement takes seconds,
        // minutes while the other browser tests load both cores.
        let deadline = Instant::now() + Duration::from_secs(240);
        while browser.find(Locator::Css(".badge.ok")).await.is_err() {
            check(Instant::now() < deadline, "the observed matrix arrived within 240 s")?;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let narrow = width < 600;
        let table_shown = number(&browser, "return document.querySelector('table.matrix').getBoundingClientRect().height;").await?;
        let cards_shown = number(&browser, "return document.querySelector('ul.strategy-cards').getBoundingClientRect().height;").await?;
        check(
            (table_shown > 0.0) != narrow && (cards_shown > 0.0) == narrow,
            format!("{width}px: matrix table {table_shown} px, cards {cards_shown} px"),
        )?;
        let smallest = number(
            &browser,
            "return Math.min(...[...document.querySelectorAll('.bar-chart figcaption, .bar-label, .bar-value, .bar-group')].map(e => parseFloat(getComputedStyle(e).fontSize)));",
        )
        .await?;
        check(smallest >= 12.0, format!("{width}px: the chart's smallest text is {smallest} px"))?;
        fits_the_width(&browser, "/compare").await?;
        if let Some(directory) = screenshot_directory() {
            let full_height = number(&browser, "return document.documentElement.scrollHeight;").await?;
            browser
                .set_window_size(width, full_height.min(9000.0) as u32)
                .await
                .map_err(|e| e.to_string())?;
            let name = if narrow { "compare-360px.png".to_owned() } else { "compare.png".to_owned() };
            save_screenshot(&browser, &directory.join(name)).await;
        }
        if narrow {
            // One card per setup and every long table behind a disclosure: a phone's page is short.
            let closed = number(&browser, "return document.documentElement.scrollHeight;").await?;
            let sections = evaluate(
                &browser,
                "return [...document.querySelectorAll('main > section')].map(s => [s.querySelector('h1, h2, h3')?.textContent.slice(0, 30), Math.round(s.getBoundingClientRect().height), [...s.children].map(c => c.tagName + ':' + Math.round(c.getBoundingClientRect().height)).join(' '), [...s.querySelectorAll('.strategy-card')].map(c => Math.round(c.getBoundingClientRect().height)).join(' ')]);",
            )
            .await?;
            check(
                closed < 5000.0,
                format!("{width}px: /compare is {closed} px tall with its tables closed: {sections}"),
            )?;
        }
        // Every table open: no cell is narrower than what it holds, and no number or name is
        // broken across two lines.
        evaluate(&browser, "document.querySelectorAll('details').forEach(d => d.open = true); return true;").await?;
        let damaged = evaluate(&browser, CELLS_CUT_OR_OVERFLOWING).await?;
        check(
            damaged.as_array().is_some_and(|cells| cells.is_empty()),
            format!("{width}px: table cells cut or overflowing: {damaged}"),
        )?;
        let tables = number(&browser, "return document.querySelectorAll('details table.benchmark').length;").await?;
        check(tables >= 3.0, format!("{width}px: {tables} benchmark tables behind <details>"))?;
        fits_the_width(&browser, "/compare with every table open").await?;
        Ok(())
    }
    .await;
    if outcome.is_err() {
        keep_failure(&[("compare", &browser)], width).await;
    }
    let _ = browser.close().await;
    outcome
}

async fn keep_failure(browsers: &[(&str, &Client)], width: u32) {
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-failures");
    let _ = std::fs::create_dir_all(&directory);
    for (name, browser) in browsers {
        save_screenshot(browser, &directory.join(format!("{name}-{width}px.png"))).await;
        if let Ok(source) = browser.source().await {
            let _ = std::fs::write(directory.join(format!("{name}-{width}px.html")), source);
        }
    }
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

#[tokio::test]
async fn compare_shows_the_matrix_at_once_and_fits_a_phone() {
    let Some(program) = browser_available() else { return };
    let driver = start_driver(&program).await;
    // Default 15-minute tokens: the expiry row is observed in-process, so no step waits for one.
    let app = spawn_app_with(&[("COMPARE_AT_START", "on")]).await;
    for (width, first_visit) in [(360, true), (1280, false)] {
        if let Err(failure) = compare_flows(&app, &driver, width, first_visit).await {
            panic!("browser test failed at {width}px: {failure}; screenshots in target/browser-failures");
        }
    }
}

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
    let browser = open_browser(&driver, "forgot").await;
    browser.set_window_size(360, 800).await.unwrap();
    let outcome = forgotten_password_flow(&app, &browser).await;
    if outcome.is_err() {
        keep_failure(&[("forgot", &browser)], 360).await;
    }
    let _ = browser.close().await;
    if let Err(failure) = outcome {
        panic!("browser test failed: {failure}; screenshots in target/browser-failures");
    }
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
    let owner = open_browser(&driver, "mail-owner").await;
    let intruder = open_browser_as(&driver, "mail-intruder", Some(IPHONE_SAFARI)).await;
    let outcome = not_me_flow(&app, &owner, &intruder).await;
    if outcome.is_err() {
        keep_failure(&[("mail-owner", &owner), ("mail-intruder", &intruder)], 1280).await;
    }
    let _ = owner.close().await;
    let _ = intruder.close().await;
    if let Err(failure) = outcome {
        panic!("browser test failed: {failure}; screenshots in target/browser-failures");
    }
}

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
        let browser = open_browser(&driver, &format!("second-factor-{width}")).await;
        let outcome = second_factor_flow(&app, &browser, width).await;
        if outcome.is_err() {
            keep_failure(&[("second-factor", &browser)], width).await;
        }
        let _ = browser.close().await;
        if let Err(failure) = outcome {
            panic!("browser test failed at {width}px: {failure}; screenshots in target/browser-failures");
        }
    }
}

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
    let phone = open_phone(&driver, "api-docs-phone").await;
    let desktop = open_browser(&driver, "api-docs-desktop").await;
    for (browser, width) in [(&phone, 360), (&desktop, 1280)] {
        if let Err(failure) = api_docs_flow(&app, browser, &axe, width).await {
            keep_failure(&[("api-docs", browser)], width).await;
            panic!("browser test failed at {width}px: {failure}; screenshots in target/browser-failures");
        }
    }
    let _ = phone.close().await;
    let _ = desktop.close().await;
}

#[tokio::test]
async fn the_pages_before_log_in_pass_axe_on_a_phone() {
    let Some(program) = browser_available() else { return };
    let Some(axe) = axe_source() else { return };
    let driver = start_driver(&program).await;
    let app = spawn_app().await;
    let phone = open_phone(&driver, "anonymous-phone").await;
    for path in [
        "/",
        "/login",
        "/register",
        "/password/forgot",
        "/compare",
        "/no-such-page",
    ] {
        let outcome = async {
            phone.goto(&app.url(path)).await.map_err(|e| e.to_string())?;
            fits_the_width(&phone, path).await?;
            let violations = accessibility_violations(&phone, &axe).await?;
            check(violations.is_empty(), format!("{path}:\n{}", violations.join("\n")))
        }
        .await;
        if let Err(failure) = outcome {
            keep_failure(&[("anonymous", &phone)], 360).await;
            panic!("browser test failed at 360px: {failure}; screenshots in target/browser-failures");
        }
    }
    let _ = phone.close().await;
}
