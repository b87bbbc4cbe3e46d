//! The product in a real browser: headless Chromium driven over WebDriver (chromedriver).
//!
//! Chromium and chromedriver come from Debian's `chromium` and `chromium-driver` packages
//! (`.ci/run` installs them). Without them these tests print that they did not run and pass,
//! unless `CI=true` or `BROWSER_TESTS=require`; `BROWSER_TESTS=skip` skips them outright. The
//! accessibility checks inject axe-core, installed from npm by `npm ci --prefix tests/axe`
//! (`tests/axe/package-lock.json`; `.ci/run` does it); without it they say so and pass, with the
//! same two exceptions.
//!
//! `driver` starts chromedriver and holds the steps every test is written in; each other module
//! is one part of the product seen through the browser.

#[allow(dead_code, unused_imports)]
#[path = "../api/helpers/mod.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../api/mailbox.rs"]
mod mailbox;

mod accessibility;
mod compare;
mod dashboard;
mod driver;
mod recovery;
mod second_factor;
