//! `/compare` in a browser: the matrix at once, then observed, and the page on a phone.

use std::time::{Duration, Instant};

use fantoccini::Locator;

use crate::driver::*;
use crate::helpers::{TestApp, spawn_app_with};

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
    let browser = open_browser(driver, &format!("compare-{width}"), Device::Desktop).await;
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
