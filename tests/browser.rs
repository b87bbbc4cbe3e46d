//! The dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver).
//!
//! Chromium and chromedriver come from Debian's `chromium` and `chromium-driver` packages
//! (`.ci/run` installs them). Without them this test prints that it did not run and passes,
//! unless `CI=true` or `BROWSER_TESTS=require`; `BROWSER_TESTS=skip` skips it outright.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use helpers::{TestApp, TestUser, spawn_app};

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
    let data_dir = std::env::temp_dir().join(format!("revocable-chromium-{profile}-{}", std::process::id()));
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                format!("--user-data-dir={}", data_dir.display()),
            ],
        }),
    );
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
    click(a, &format!("li[data-session-id='{b_session}'] form button")).await?;
    arrive(a, "/dashboard", Some("Signed out of Chrom"), "A sees the flash message").await?;
    b.goto(&app.url("/dashboard")).await.map_err(|e| e.to_string())?;
    arrive(b, "/login", None, "B is sent to /login").await?;

    // A signs out the API token device: its allowlist check is refused.
    click(a, &format!("li[data-session-id='{}'] form button", api.session_id)).await?;
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
        Some("Logged out everywhere: 1 device"),
        "A ends on /login with the flash message",
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
