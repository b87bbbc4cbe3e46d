//! Chromium over WebDriver: starting chromedriver, opening browser profiles, and the steps the
//! browser tests are written in.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};

pub const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Driver {
    process: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

pub fn find_program(name: &str) -> Option<String> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| format!("{dir}/{name}"))
        .find(|path| std::path::Path::new(path).is_file())
}

/// Says why the browser tests did not run, past the test harness's output capture.
pub fn not_run(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "browser tests were not run: {why}");
}

/// `None` when the browser tests should not run here (and it is fine that they do not).
pub fn browser_available() -> Option<String> {
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

pub async fn start_driver(program: &str) -> Driver {
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

/// What a browser profile presents itself as.
#[derive(Clone, Copy)]
pub enum Device<'a> {
    /// Chromium's own user agent, a window 1280 px wide.
    Desktop,
    /// Another user agent (another device, as far as the server can tell), 1280 px wide.
    DesktopAs(&'a str),
    /// Laid out as a phone 360 px wide lays pages out: a page without a viewport declaration
    /// is laid out 980 px wide and shrunk, as on a real phone.
    Phone,
}

/// A browser profile of its own: separate cookies, separate everything.
pub async fn open_browser(driver: &Driver, profile: &str, device: Device<'_>) -> Client {
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
        format!("--user-data-dir={}", data_dir.display()),
    ];
    let mut options = json!({ "binary": CHROMIUM });
    match device {
        Device::Desktop => args.push("--window-size=1280,1000".into()),
        Device::DesktopAs(user_agent) => {
            args.push("--window-size=1280,1000".into());
            args.push(format!("--user-agent={user_agent}"));
        }
        Device::Phone => {
            options["mobileEmulation"] =
                json!({ "deviceMetrics": { "width": 360, "height": 800, "pixelRatio": 2.0, "touch": true } });
        }
    }
    options["args"] = json!(args);
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

pub type Step = Result<(), String>;

pub fn check(condition: bool, what: impl Into<String>) -> Step {
    if condition { Ok(()) } else { Err(what.into()) }
}

pub async fn path_of(browser: &Client) -> String {
    browser
        .current_url()
        .await
        .map(|url| url.path().to_owned())
        .unwrap_or_default()
}

/// Waits (up to 10 s) for the browser to be on `path`, showing `text` if given: a click only
/// starts a navigation, it does not wait for it.
pub async fn arrive(browser: &Client, path: &str, text: Option<&str>, what: &str) -> Step {
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

pub async fn fill(browser: &Client, fields: &[(&str, &str)]) -> Step {
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

pub async fn click(browser: &Client, css: &str) -> Step {
    browser
        .find(Locator::Css(css))
        .await
        .map_err(|e| format!("{css}: {e}"))?
        .click()
        .await
        .map_err(|e| format!("click {css}: {e}"))
}

pub async fn body_text(browser: &Client) -> String {
    match browser.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

pub async fn cookie_session_id(browser: &Client, app: &TestApp) -> Result<String, String> {
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

pub async fn log_in(browser: &Client, app: &TestApp, user: &TestUser) -> Step {
    browser.goto(&app.url("/login")).await.map_err(|e| e.to_string())?;
    fill(browser, &[("email", &user.email), ("password", &user.password)]).await?;
    click(browser, "form[action='/login'] button[type=submit]").await?;
    arrive(browser, "/dashboard", None, "log-in reaches the dashboard").await
}

pub async fn save_screenshot(browser: &Client, path: &std::path::Path) {
    if let Ok(png) = browser.screenshot().await {
        let _ = std::fs::write(path, png);
    }
}

pub const IPHONE_SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// Runs a script in the page and returns what it returns.
pub async fn evaluate(browser: &Client, script: &str) -> Result<Value, String> {
    browser
        .execute(script, Vec::new())
        .await
        .map_err(|e| format!("script {script:?}: {e}"))
}

pub async fn number(browser: &Client, script: &str) -> Result<f64, String> {
    evaluate(browser, script)
        .await?
        .as_f64()
        .ok_or_else(|| format!("{script:?} did not return a number"))
}

/// Nothing on the page is wider than the window (no sideways scrolling of the whole page).
pub async fn fits_the_width(browser: &Client, what: &str) -> Step {
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

pub fn screenshot_directory() -> Option<std::path::PathBuf> {
    let directory = std::path::PathBuf::from(std::env::var("SCREENSHOT_DIR").ok()?);
    std::fs::create_dir_all(&directory).ok()?;
    Some(directory)
}

/// Keeps each browser's screenshot and page source in `target/browser-failures`.
pub async fn keep_failure(browsers: &[(&str, &Client)], width: u32) {
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-failures");
    let _ = std::fs::create_dir_all(&directory);
    for (name, browser) in browsers {
        save_screenshot(browser, &directory.join(format!("{name}-{width}px.png"))).await;
        if let Ok(source) = browser.source().await {
            let _ = std::fs::write(directory.join(format!("{name}-{width}px.html")), source);
        }
    }
}

/// Ends a browser test: the browsers closed, and on a failure their screenshots and page
/// sources kept before the test fails.
pub async fn conclude(outcome: Step, browsers: &[(&str, &Client)], width: u32) {
    if outcome.is_err() {
        keep_failure(browsers, width).await;
    }
    for (_, browser) in browsers {
        let _ = Client::clone(browser).close().await;
    }
    if let Err(failure) = outcome {
        panic!("browser test failed at {width}px: {failure}; screenshots and page sources in target/browser-failures");
    }
}
