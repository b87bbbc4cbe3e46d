//! `GET /compare`: the side-by-side comparison, rendered from the last measurement.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::compare::{CheckCost, Report};
use crate::domain::now_millis;
use crate::error::PageError;
use crate::routes::web::{Layout, exact_time, relative_time, render};
use crate::scenario::{self, Cell, STRATEGIES};
use crate::state::AppState;

pub struct MatrixCell {
    pub text: String,
    pub class: &'static str,
}

pub struct MatrixRow {
    pub event: &'static str,
    pub cells: Vec<MatrixCell>,
}

pub struct Bar {
    pub label: String,
    pub value: String,
    pub y: u32,
    pub width: u32,
    pub text_x: u32,
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    layout: Layout,
    measuring: bool,
    measured: bool,
    measured_relative: String,
    measured_exact: String,
    took_seconds: String,
    matrix: Vec<MatrixRow>,
    matrix_error: Option<String>,
    differences: Vec<String>,
    expiry_in_process: bool,
    costs: Vec<CheckCost>,
    costs_error: Option<String>,
    checks_per_strategy: usize,
    redis: bool,
    database: &'static str,
    bars: Vec<Bar>,
    chart_height: u32,
    benchmark_note: String,
    strategies: [&'static str; 5],
}

fn cell(cell: Cell, column: usize, access_ttl_minutes: u64, expiry_row: bool) -> MatrixCell {
    match cell {
        Cell::Rejected if expiry_row => MatrixCell {
            text: "refused".into(),
            class: "cell-no",
        },
        Cell::Accepted if column < 4 => MatrixCell {
            text: format!("still accepted, until it expires (up to {access_ttl_minutes} min)"),
            class: "cell-yes",
        },
        Cell::Accepted => MatrixCell {
            text: "still accepted".into(),
            class: "cell-yes",
        },
        Cell::Rejected => MatrixCell {
            text: "refused at once".into(),
            class: "cell-no",
        },
        Cell::NotApplicable => MatrixCell {
            text: "— (no such credential)".into(),
            class: "",
        },
        Cell::NotObserved => MatrixCell {
            text: "not observed".into(),
            class: "",
        },
    }
}

fn matrix_rows(report: &Report) -> Vec<MatrixRow> {
    let minutes = report.access_ttl_seconds.div_ceil(60).max(1);
    report
        .matrix
        .as_ref()
        .map(|rows| {
            rows.iter()
                .map(|row| MatrixRow {
                    event: row.event.label(),
                    cells: row
                        .cells
                        .iter()
                        .enumerate()
                        .map(|(i, c)| cell(*c, i, minutes, row.event == scenario::Event::AccessTokenExpired))
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default()
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

/// The throughput table of `docs/benchmarks.md`: `(label, requests per second)`.
pub fn benchmark_rows(markdown: &str) -> Vec<(String, f64)> {
    let mut rows = Vec::new();
    let mut column = None;
    for line in markdown.lines().map(str::trim) {
        if !line.starts_with('|') {
            if column.is_some() && !rows.is_empty() {
                break;
            }
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        match column {
            None => column = cells.iter().position(|cell| cell.contains("requests/s")),
            Some(index) => {
                let value = cells
                    .get(index)
                    .map(|v| v.replace([',', ' '], ""))
                    .and_then(|v| v.parse::<f64>().ok());
                if let Some(value) = value {
                    rows.push((cells[..index.min(2)].join(" · "), value));
                }
            }
        }
    }
    rows
}

fn bars(rows: &[(String, f64)]) -> Vec<Bar> {
    let max = rows.iter().map(|(_, value)| *value).fold(0.0, f64::max).max(1.0);
    rows.iter()
        .enumerate()
        .map(|(index, (label, value))| {
            let width = ((value / max) * 360.0).round().max(1.0) as u32;
            Bar {
                label: label.clone(),
                value: format!("{:.0}/s", value),
                y: index as u32 * 34,
                width,
                text_x: 230 + width + 6,
            }
        })
        .collect()
}

pub async fn show(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, PageError> {
    state.compare.refresh_if_stale(state.clone()).await;
    let (report, measuring) = state.compare.current().await;
    let now = now_millis();
    let benchmarks = std::fs::read_to_string("docs/benchmarks.md").unwrap_or_default();
    let rows = benchmark_rows(&benchmarks);
    let bars = bars(&rows);
    let page = ComparePage {
        layout: Layout::new(&session, None)?,
        measuring,
        measured: report.is_some(),
        measured_relative: report
            .as_ref()
            .map(|r| relative_time(r.measured_at, now))
            .unwrap_or_default(),
        measured_exact: report.as_ref().map(|r| exact_time(r.measured_at)).unwrap_or_default(),
        took_seconds: report
            .as_ref()
            .map(|r| format!("{:.1}", r.took_millis as f64 / 1000.0))
            .unwrap_or_default(),
        matrix: report.as_deref().map(matrix_rows).unwrap_or_default(),
        matrix_error: report.as_ref().and_then(|r| r.matrix.as_ref().err().cloned()),
        differences: report.as_deref().map(differences).unwrap_or_default(),
        expiry_in_process: report.as_ref().is_some_and(|r| r.expiry_observed_in_process),
        costs: report
            .as_ref()
            .and_then(|r| r.costs.as_ref().ok().cloned())
            .unwrap_or_default(),
        costs_error: report.as_ref().and_then(|r| r.costs.as_ref().err().cloned()),
        checks_per_strategy: crate::compare::CHECKS_PER_STRATEGY,
        redis: state.redis.is_some(),
        database: state.backend.name(),
        chart_height: bars.len() as u32 * 34 + 10,
        bars,
        benchmark_note: if rows.is_empty() {
            "No benchmark has been recorded yet: run scripts/bench.sh to write docs/benchmarks.md.".into()
        } else {
            String::new()
        },
        strategies: STRATEGIES,
    };
    render(&page)
}

#[cfg(test)]
mod tests {
    use super::benchmark_rows;

    #[test]
    fn the_throughput_table_is_read_from_the_benchmark_markdown() {
        let markdown = "# Benchmarks\n\nSome words.\n\n| strategy | store | requests/s | ratio |\n|---|---|---|---|\n| stateless | none | 138,000 | 1.00 |\n| version | SQLite | 34000 | 0.25 |\n\nMore words.\n\n| other | requests/s |\n|---|---|\n| x | 1 |\n";
        let rows = benchmark_rows(markdown);
        assert_eq!(
            rows,
            vec![
                ("stateless · none".to_owned(), 138_000.0),
                ("version · SQLite".to_owned(), 34_000.0)
            ]
        );
        assert!(benchmark_rows("no table here").is_empty());
    }
}
