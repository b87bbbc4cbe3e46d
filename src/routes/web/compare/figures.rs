//! What `/compare` draws from a report and the compiled-in benchmark: the matrix's cells and
//! its one card per strategy, the bars, the sentence that sums the costs up, and one card per
//! benchmark setup.

use crate::compare::benchmark::{Benchmark, BenchmarkTable, Throughput};
use crate::compare::costs::CheckCost;
use crate::compare::matrix::{self, Cell, Event, STRATEGIES};
use crate::compare::report::Report;

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
    /// The approach in plain words, which a narrow screen shows in the card.
    pub approach: &'static str,
    pub outcomes: Vec<(&'static str, MatrixCell)>,
}

pub struct Bar {
    pub label: String,
    pub value: String,
    /// Share of the longest bar, in percent.
    pub percent: String,
}

/// One setup of the throughput benchmark: its bars, and its rows as a table.
pub struct BarGroup {
    pub name: String,
    /// Its slowest and its fastest row, in words.
    pub range: String,
    pub bars: Vec<Bar>,
    pub table: BenchmarkTable,
}

/// The five strategies in the words people search for, and the approach of the background posts
/// each one is.
pub struct PlainWords {
    pub strategy: &'static str,
    pub known_as: &'static str,
    pub approach: &'static str,
}

pub const PLAIN_WORDS: [PlainWords; 5] = [
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

pub fn matrix_rows(rows: &[matrix::Row]) -> Vec<MatrixRow> {
    rows.iter()
        .map(|row| MatrixRow {
            event: row.event.label(),
            cells: row
                .cells
                .iter()
                .enumerate()
                .map(|(i, c)| cell(*c, i, row.event == Event::AccessTokenExpired))
                .collect(),
        })
        .collect()
}

pub fn strategy_cards(rows: &[MatrixRow]) -> Vec<StrategyCard> {
    STRATEGIES
        .iter()
        .enumerate()
        .map(|(column, strategy)| StrategyCard {
            strategy,
            plain: PLAIN_WORDS[column].known_as,
            approach: PLAIN_WORDS[column].approach,
            outcomes: rows
                .iter()
                .filter_map(|row| Some((row.event, row.cells.get(column)?.clone())))
                .collect(),
        })
        .collect()
}

pub fn differences(report: &Report) -> Vec<String> {
    let Ok(rows) = &report.matrix else { return Vec::new() };
    let observed = matrix::Observed {
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

/// Bars of the first table with a requests-per-second column, one group (card) per setup, one
/// bar per remaining label.
pub fn throughput_groups(benchmark: &Benchmark) -> Vec<BarGroup> {
    let Some(throughput) = Throughput::of(benchmark) else {
        return Vec::new();
    };
    let max = throughput.max();
    throughput
        .setups()
        .into_iter()
        .map(|setup| BarGroup {
            range: range(&throughput, &setup.rows),
            bars: setup
                .rows
                .iter()
                .filter_map(|row| {
                    let value = throughput.value(row)?;
                    Some(Bar {
                        label: throughput.label(row),
                        value: format!("{value:.0}/s"),
                        percent: format!("{:.1}", value / max * 100.0),
                    })
                })
                .collect(),
            table: BenchmarkTable {
                heading: setup.name.clone(),
                header: throughput.header_within_setup(),
                rows: setup.rows.iter().map(|row| throughput.without_setup(row)).collect(),
            },
            name: setup.name,
        })
        .collect()
}

/// "From 7324/s (`/api/cookie/me`, cache off) to 55422/s (`/healthz`)": a setup at a glance.
fn range(throughput: &Throughput<'_>, rows: &[&[String]]) -> String {
    let valued = || rows.iter().filter_map(|row| Some((throughput.value(row)?, *row)));
    let slowest = valued().min_by(|a, b| a.0.total_cmp(&b.0));
    let fastest = valued().max_by(|a, b| a.0.total_cmp(&b.0));
    match (slowest, fastest) {
        (Some((low, slow)), Some((high, fast))) if rows.len() > 1 => format!(
            "From {low:.0}/s ({}) to {high:.0}/s ({}).",
            throughput.label(slow),
            throughput.label(fast)
        ),
        _ => String::new(),
    }
}

/// Every table of the benchmark but the throughput one, which the setup cards show; a table
/// under the same heading as the one before it is named after that one.
pub fn other_tables(benchmark: &Benchmark) -> Vec<BenchmarkTable> {
    let throughput = Throughput::of(benchmark).map(|throughput| throughput.index);
    let mut tables: Vec<BenchmarkTable> = Vec::new();
    let mut previous = String::new();
    for (index, table) in benchmark.tables.iter().enumerate() {
        let mut table = table.clone();
        if table.heading.is_empty() {
            table.heading = if previous.is_empty() {
                format!("Table {}", index + 1)
            } else {
                format!("{previous}, continued")
            };
        } else {
            previous = table.heading.clone();
        }
        if Some(index) != throughput {
            tables.push(table);
        }
    }
    tables
}

/// One bar per measured check: its median cost, against the slowest median.
pub fn cost_bars(costs: &[CheckCost]) -> Vec<Bar> {
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
pub fn state_bars(costs: &[CheckCost]) -> Vec<Bar> {
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
pub fn cost_conclusion(costs: &[CheckCost]) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::{other_tables, throughput_groups};
    use crate::compare::benchmark::{BENCHMARKS, parse_benchmark};

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
    fn each_setup_gets_its_own_table_and_the_other_tables_are_named() {
        let markdown = "## Throughput\n\n| stores | route | requests/s |\n|---|---|---|\n| SQLite | a | 10 |\n| PostgreSQL | a | 20 |\n| SQLite | b | 5 |\n\n## Instructions\n\n| target | met |\n|---|---|\n| x | yes |\n\n| route | k |\n|---|---|\n| a | 1 |\n";
        let benchmark = parse_benchmark(markdown);
        let groups = throughput_groups(&benchmark);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].table.header, ["route", "requests/s"]);
        assert_eq!(groups[0].table.rows, [["a", "10"], ["b", "5"]]);
        assert_eq!(groups[1].table.rows, [["a", "20"]]);
        assert_eq!(groups[0].range, "From 5/s (b) to 10/s (a).");
        assert_eq!(groups[1].range, "", "one row has no range");
        let others = other_tables(&benchmark);
        let headings: Vec<&str> = others.iter().map(|table| table.heading.as_str()).collect();
        assert_eq!(headings, ["Instructions", "Instructions, continued"]);
    }

    #[test]
    fn the_compiled_in_benchmark_has_a_throughput_chart() {
        assert!(!throughput_groups(&parse_benchmark(BENCHMARKS)).is_empty());
    }
}
