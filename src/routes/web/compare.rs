//! `GET /compare`: the side-by-side comparison. The matrix is the documented one until this
//! server has observed its own; the costs are what this server measured; the throughput table is
//! the benchmark compiled into the binary, whatever directory the server runs in.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::compare::{CheckCost, CompareCache, Report, Started};
use crate::domain::now_millis;
use crate::routes::web::csrf_form::CsrfForm;
use crate::routes::web::error_pages::logged_in_email;
use crate::routes::web::format::{exact_time, iso_time, relative_time};
use crate::routes::web::layout::{Layout, flash, redirect, render};
use crate::routes::web::login::NoFields;
use crate::routes::web::page::{PageError, WebUser};
use crate::scenario::{self, Cell, STRATEGIES};
use crate::state::AppState;

/// The benchmark the binary was built with (`scripts/bench.sh` writes it).
const BENCHMARKS: &str = include_str!("../../../docs/benchmarks.md");

#[derive(Clone)]
pub struct MatrixCell {
    pub text: &'static str,
    pub class: &'static str,
}

pub struct MatrixRow {
    pub event: &'static str,
    pub cells: Vec<MatrixCell>,
}

/// One strategy's column of the matrix, for the narrow screen's one card per strategy.
pub struct StrategyCard {
    pub strategy: &'static str,
    pub plain: &'static str,
    pub outcomes: Vec<(&'static str, MatrixCell)>,
}

pub struct Bar {
    pub label: String,
    pub value: String,
    /// Share of the longest bar, in percent.
    pub percent: String,
}

pub struct BarGroup {
    pub name: String,
    pub bars: Vec<Bar>,
}

/// A markdown table of the benchmark, as text cells.
pub struct BenchmarkTable {
    pub heading: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// `docs/benchmarks.md` read tolerantly: its prose (date, machine, command) and every table.
pub struct Benchmark {
    pub notes: Vec<String>,
    pub tables: Vec<BenchmarkTable>,
}

/// The five strategies in the words people search for, and the approach of the background posts
/// each one is.
pub struct PlainWords {
    pub strategy: &'static str,
    pub known_as: &'static str,
    pub approach: &'static str,
}

const PLAIN_WORDS: [PlainWords; 5] = [
    PlainWords {
        strategy: "stateless",
        known_as: "plain JWT, client-side deletion",
        approach: "Log-out only deletes the token on the client. The server keeps nothing, so a copied token works until it expires: keep access tokens short.",
    },
    PlainWords {
        strategy: "version",
        known_as: "token version, per-user counter",
        approach: "Each user has a number that every token carries. \"Log out everywhere\" and a password change raise it, which refuses every older token at once, but one device cannot be signed out alone.",
    },
    PlainWords {
        strategy: "denylist",
        known_as: "blacklist, access-token denylist, Redis TTL",
        approach: "Revoked tokens are listed until they would have expired anyway (a Redis key whose TTL is the token's remaining lifetime, or an in-process map). Each request asks \"is this one listed?\".",
    },
    PlainWords {
        strategy: "allowlist",
        known_as: "whitelist, refresh revocation, hybrid (access + refresh)",
        approach: "A short access token plus a refresh token the server keeps: each request checks that the token's login session is still live, so revoking the refresh side (the session) ends the access side too.",
    },
    PlainWords {
        strategy: "cookie",
        known_as: "server-side session",
        approach: "No JWT: an opaque cookie names state the server keeps. Signing out deletes that state, which is what the revocable JWTs above end up doing too.",
    },
];

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    layout: Layout,
    measuring: bool,
    measured: bool,
    /// The matrix shown is the documented one, not yet observed here.
    expected: bool,
    measured_relative: String,
    measured_exact: String,
    measured_iso: String,
    took_seconds: String,
    matrix: Vec<MatrixRow>,
    cards: Vec<StrategyCard>,
    matrix_error: Option<String>,
    differences: Vec<String>,
    expiry_in_process: bool,
    access_ttl: String,
    costs: Vec<CheckCost>,
    cost_bars: Vec<Bar>,
    state_bars: Vec<Bar>,
    cost_conclusion: Option<String>,
    costs_error: Option<String>,
    checks_per_strategy: usize,
    redis: bool,
    database: &'static str,
    benchmark: Benchmark,
    throughput: Vec<BarGroup>,
    plain_words: &'static [PlainWords],
    strategies: [&'static str; 5],
}

fn cell(cell: Cell, column: usize, expiry_row: bool) -> MatrixCell {
    match cell {
        Cell::Rejected if expiry_row => MatrixCell {
            text: "refused",
            class: "cell-no",
        },
        Cell::Accepted if column < 4 => MatrixCell {
            text: "until expiry",
            class: "cell-yes",
        },
        Cell::Accepted => MatrixCell {
            text: "accepted",
            class: "cell-yes",
        },
        Cell::Rejected => MatrixCell {
            text: "refused at once",
            class: "cell-no",
        },
        Cell::NotApplicable => MatrixCell { text: "—", class: "" },
        Cell::NotObserved => MatrixCell {
            text: "not observed",
            class: "",
        },
    }
}

fn matrix_rows(rows: &[scenario::Row]) -> Vec<MatrixRow> {
    rows.iter()
        .map(|row| MatrixRow {
            event: row.event.label(),
            cells: row
                .cells
                .iter()
                .enumerate()
                .map(|(i, c)| cell(*c, i, row.event == scenario::Event::AccessTokenExpired))
                .collect(),
        })
        .collect()
}

fn strategy_cards(rows: &[MatrixRow]) -> Vec<StrategyCard> {
    STRATEGIES
        .iter()
        .enumerate()
        .map(|(column, strategy)| StrategyCard {
            strategy,
            plain: PLAIN_WORDS[column].known_as,
            outcomes: rows
                .iter()
                .filter_map(|row| Some((row.event, row.cells.get(column)?.clone())))
                .collect(),
        })
        .collect()
}

fn differences(report: &Report) -> Vec<String> {
    let Ok(rows) = &report.matrix else { return Vec::new() };
    let observed = scenario::Observed {
        rows: rows.clone(),
        access_ttl_seconds: report.access_ttl_seconds,
    };
    observed
        .differences()
        .into_iter()
        .map(|(event, strategy, seen, wanted)| {
            format!("after {}, {strategy} {seen} (documented: {wanted})", event.label())
        })
        .collect()
}

fn cells_of(line: &str) -> Vec<String> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(|cell| cell.trim().replace('`', ""))
        .collect()
}

fn is_separator(line: &str) -> bool {
    let line = line.trim();
    line.starts_with('|') && line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// Reads any markdown: paragraphs before the first table become notes, `## ` lines name the
/// tables that follow them, and every `|` table is kept whatever its columns.
pub fn parse_benchmark(markdown: &str) -> Benchmark {
    let mut notes = Vec::new();
    let mut tables: Vec<BenchmarkTable> = Vec::new();
    let mut heading = String::new();
    let mut paragraph = String::new();
    let mut in_table = false;
    for line in markdown.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('|') {
            if !in_table {
                tables.push(BenchmarkTable {
                    heading: std::mem::take(&mut heading),
                    header: cells_of(trimmed),
                    rows: Vec::new(),
                });
                in_table = true;
            } else if !is_separator(trimmed)
                && let Some(table) = tables.last_mut()
            {
                table.rows.push(cells_of(trimmed));
            }
            continue;
        }
        in_table = false;
        if let Some(title) = trimmed.strip_prefix("## ") {
            heading = title.trim().to_owned();
        } else if trimmed.starts_with('#') {
            continue;
        } else if trimmed.is_empty() {
            if !paragraph.is_empty() && tables.is_empty() {
                notes.push(std::mem::take(&mut paragraph));
            }
            paragraph.clear();
        } else if tables.is_empty() {
            if !paragraph.is_empty() {
                paragraph.push(' ');
            }
            paragraph.push_str(&trimmed.replace('`', ""));
        }
    }
    if !paragraph.is_empty() && tables.is_empty() {
        notes.push(paragraph);
    }
    Benchmark { notes, tables }
}

fn number(cell: &str) -> Option<f64> {
    cell.replace([',', ' ', '\u{202f}'], "").parse::<f64>().ok()
}

/// Bars of the first table with a requests-per-second column, grouped by its setup column (the
/// one naming stores or setup), one bar per remaining label.
pub fn throughput_groups(benchmark: &Benchmark) -> Vec<BarGroup> {
    let Some((table, value_column)) = benchmark.tables.iter().find_map(|table| {
        let column = table
            .header
            .iter()
            .position(|name| name.to_lowercase().contains("requests/s"))?;
        Some((table, column))
    }) else {
        return Vec::new();
    };
    let setup_column = table.header.iter().position(|name| {
        let name = name.to_lowercase();
        name.contains("store") || name.contains("setup")
    });
    let max = table
        .rows
        .iter()
        .filter_map(|row| number(row.get(value_column)?))
        .fold(0.0, f64::max)
        .max(1.0);
    let mut groups: Vec<BarGroup> = Vec::new();
    for row in &table.rows {
        let Some(value) = row.get(value_column).and_then(|cell| number(cell)) else {
            continue;
        };
        let group = setup_column
            .and_then(|column| row.get(column).cloned())
            .unwrap_or_default();
        let label = row
            .iter()
            .enumerate()
            .take(value_column)
            .filter(|(index, cell)| Some(*index) != setup_column && number(cell).is_none())
            .map(|(_, cell)| cell.as_str())
            .collect::<Vec<_>>()
            .join(" · ");
        let bar = Bar {
            label,
            value: format!("{value:.0}/s"),
            percent: format!("{:.1}", value / max * 100.0),
        };
        match groups.iter_mut().find(|existing| existing.name == group) {
            Some(existing) => existing.bars.push(bar),
            None => groups.push(BarGroup {
                name: group,
                bars: vec![bar],
            }),
        }
    }
    groups
}

/// One bar per measured check: its median cost, against the slowest median.
fn cost_bars(costs: &[CheckCost]) -> Vec<Bar> {
    // Each strategy as served (from the cache), then as it would be with a lookup per request.
    let points: Vec<(String, f64)> = costs
        .iter()
        .map(|cost| (cost.strategy.to_owned(), cost.median_micros))
        .chain(costs.iter().filter_map(|cost| {
            let uncached = cost.uncached.as_ref()?;
            Some((format!("{} (no cache)", cost.strategy), uncached.median_micros))
        }))
        .collect();
    let max = points.iter().map(|(_, micros)| *micros).fold(0.0, f64::max);
    points
        .into_iter()
        .map(|(label, median_micros)| Bar {
            label,
            value: format!("{median_micros:.1} µs"),
            percent: format!(
                "{:.1}",
                if max > 0.0 {
                    (median_micros / max * 100.0).max(0.5)
                } else {
                    0.0
                }
            ),
        })
        .collect()
}

/// The bytes of server state each strategy keeps, as this server measured them in its stores.
fn state_bars(costs: &[CheckCost]) -> Vec<Bar> {
    let max = costs
        .iter()
        .filter_map(|cost| cost.state_bytes.map(|(bytes, _)| bytes))
        .fold(0, i64::max);
    costs
        .iter()
        .filter_map(|cost| {
            let (bytes, _) = cost.state_bytes?;
            Some(Bar {
                label: cost.strategy.to_owned(),
                value: format!("{bytes} B"),
                percent: format!(
                    "{:.1}",
                    if max > 0 {
                        (bytes as f64 / max as f64 * 100.0).max(0.5)
                    } else {
                        0.0
                    }
                ),
            })
        })
        .collect()
}

/// What checking revocable state costs now, in one sentence with the measured figures: the
/// slowest revocable check against the stateless one, with the cache and with a lookup per request.
fn cost_conclusion(costs: &[CheckCost]) -> Option<String> {
    let stateless = costs.iter().find(|cost| cost.strategy == "stateless")?.median_micros;
    let revocable: Vec<&CheckCost> = costs.iter().filter(|cost| cost.uncached.is_some()).collect();
    let cached = revocable.iter().map(|cost| cost.median_micros).fold(0.0, f64::max);
    let uncached = revocable
        .iter()
        .filter_map(|cost| cost.uncached.as_ref().map(|uncached| uncached.median_micros))
        .fold(0.0, f64::max);
    if revocable.is_empty() || stateless <= 0.0 {
        return None;
    }
    Some(format!(
        "A stateless check takes {stateless:.1} µs here. With the in-process cache, the slowest check that can \
         refuse a revoked credential takes {cached:.1} µs ({:.1}× stateless); looking the state up on every \
         request instead takes up to {uncached:.1} µs ({:.1}×). Revocable state is still server state, but kept \
         in memory and invalidated by push, it costs about what the signature check does.",
        cached / stateless,
        uncached / stateless
    ))
}

pub async fn show(
    state: web::Data<AppState>,
    cache: web::Data<CompareCache>,
    session: Session,
    user: Option<WebUser>,
) -> Result<HttpResponse, PageError> {
    let (report, measuring) = cache.current().await;
    let now = now_millis();
    let observed = report.as_ref().and_then(|report| report.matrix.as_ref().ok());
    let matrix = matrix_rows(observed.map_or(&scenario::expected()[..], |rows| &rows[..]));
    let benchmark = parse_benchmark(BENCHMARKS);
    let costs = report
        .as_ref()
        .and_then(|r| r.costs.as_ref().ok().cloned())
        .unwrap_or_default();
    let access_ttl_minutes = state.settings.access_ttl.as_secs().div_ceil(60).max(1);
    let page = ComparePage {
        layout: Layout::new(&session, logged_in_email(&state.db, user.as_ref()).await)?,
        measuring,
        measured: report.is_some(),
        expected: observed.is_none(),
        measured_relative: report
            .as_ref()
            .map(|r| relative_time(r.measured_at, now))
            .unwrap_or_default(),
        measured_exact: report.as_ref().map(|r| exact_time(r.measured_at)).unwrap_or_default(),
        measured_iso: report.as_ref().map(|r| iso_time(r.measured_at)).unwrap_or_default(),
        took_seconds: report
            .as_ref()
            .map(|r| format!("{:.1}", r.took_millis as f64 / 1000.0))
            .unwrap_or_default(),
        cards: strategy_cards(&matrix),
        matrix,
        matrix_error: report.as_ref().and_then(|r| r.matrix.as_ref().err().cloned()),
        differences: report.as_deref().map(differences).unwrap_or_default(),
        expiry_in_process: report.as_ref().is_some_and(|r| r.expiry_observed_in_process),
        access_ttl: format!("{access_ttl_minutes} min"),
        cost_bars: cost_bars(&costs),
        state_bars: state_bars(&costs),
        cost_conclusion: cost_conclusion(&costs),
        costs,
        costs_error: report.as_ref().and_then(|r| r.costs.as_ref().err().cloned()),
        checks_per_strategy: crate::compare::CHECKS_PER_STRATEGY,
        redis: state.redis.is_some(),
        database: state.backend.name(),
        throughput: throughput_groups(&benchmark),
        benchmark,
        plain_words: &PLAIN_WORDS,
        strategies: STRATEGIES,
    };
    render(&page)
}

/// "Measure again", for a logged-in user: a new report on a throw-away instance, at most once a
/// minute per server, however many ask.
pub async fn measure_again(
    state: web::Data<AppState>,
    cache: web::Data<CompareCache>,
    user: WebUser,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    match cache.into_inner().measure_again(&state.settings).await {
        Started::Now | Started::AlreadyRunning => flash(
            user.session(),
            "info",
            "Measuring now; this page shows the new report when it is done.",
        ),
        Started::TooSoon(seconds) => flash(
            user.session(),
            "info",
            format!("The report is under a minute old; it can be measured again in {seconds} s."),
        ),
    }
    Ok(redirect("/compare"))
}

#[cfg(test)]
mod tests {
    use super::{BENCHMARKS, parse_benchmark, throughput_groups};

    #[test]
    fn any_benchmark_markdown_is_read_into_notes_and_tables() {
        let markdown = "# Benchmarks\n\nWritten on 2026-11-22, 2 cores.\nThe command is `wrk`.\n\n## Throughput\n\n| strategy | stores | requests/s | ratio |\n|---|---|---|---|\n| stateless | none | 138,000 | 1.00 |\n| version | SQLite | 34000 | 0.25 |\n| version | none | 5000 | 0.04 |\n\nMore words.\n\n## Pages\n\n| page | median |\n|---|---|\n| `/login` | 1 ms |\n";
        let benchmark = parse_benchmark(markdown);
        assert_eq!(benchmark.notes, ["Written on 2026-11-22, 2 cores. The command is wrk."]);
        assert_eq!(benchmark.tables.len(), 2);
        assert_eq!(benchmark.tables[0].heading, "Throughput");
        assert_eq!(benchmark.tables[0].rows.len(), 3);
        assert_eq!(benchmark.tables[1].rows, [["/login", "1 ms"]]);
        let groups = throughput_groups(&benchmark);
        let names: Vec<&str> = groups.iter().map(|group| group.name.as_str()).collect();
        assert_eq!(names, ["none", "SQLite"]);
        assert_eq!(groups[0].bars.len(), 2);
        assert_eq!(groups[0].bars[0].label, "stateless");
        assert_eq!(groups[0].bars[0].percent, "100.0");
        assert_eq!(groups[1].bars[0].value, "34000/s");
        assert!(throughput_groups(&parse_benchmark("no table here")).is_empty());
    }

    #[test]
    fn the_compiled_in_benchmark_has_a_throughput_chart() {
        assert!(!throughput_groups(&parse_benchmark(BENCHMARKS)).is_empty());
    }
}
