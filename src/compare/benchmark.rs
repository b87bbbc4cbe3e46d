//! `docs/benchmarks.md` as the binary was built with it (`scripts/bench.sh` writes it), read
//! tolerantly: its prose, every table whatever its columns, and the throughput table's rows by
//! setup (the stores a row was measured on).

/// The benchmark compiled into the binary, whatever directory the server runs in.
pub const BENCHMARKS: &str = include_str!("../../docs/benchmarks.md");

/// A markdown table of the benchmark, as text cells.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchmarkTable {
    pub heading: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Its prose before the first table (date, machine, command) and every table.
pub struct Benchmark {
    pub notes: Vec<String>,
    pub tables: Vec<BenchmarkTable>,
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

/// A cell read as a number, thousands separators allowed.
pub fn number(cell: &str) -> Option<f64> {
    cell.replace([',', ' ', '\u{202f}'], "").parse::<f64>().ok()
}

/// The first table with a requests-per-second column, and where its columns are.
pub struct Throughput<'a> {
    pub table: &'a BenchmarkTable,
    pub index: usize,
    pub value_column: usize,
    /// The column naming the stores or setup a row was measured on, if there is one.
    pub setup_column: Option<usize>,
}

/// The rows of one setup, in the table's order.
pub struct Setup<'a> {
    pub name: String,
    pub rows: Vec<&'a [String]>,
}

impl<'a> Throughput<'a> {
    pub fn of(benchmark: &'a Benchmark) -> Option<Self> {
        benchmark.tables.iter().enumerate().find_map(|(index, table)| {
            let value_column = table
                .header
                .iter()
                .position(|name| name.to_lowercase().contains("requests/s"))?;
            let setup_column = table.header.iter().position(|name| {
                let name = name.to_lowercase();
                name.contains("store") || name.contains("setup")
            });
            Some(Self {
                table,
                index,
                value_column,
                setup_column,
            })
        })
    }

    pub fn value(&self, row: &[String]) -> Option<f64> {
        number(row.get(self.value_column)?)
    }

    /// What a row measured: its text cells before the value, the setup left out.
    pub fn label(&self, row: &[String]) -> String {
        row.iter()
            .enumerate()
            .take(self.value_column)
            .filter(|(index, cell)| Some(*index) != self.setup_column && number(cell).is_none())
            .map(|(_, cell)| cell.as_str())
            .collect::<Vec<_>>()
            .join(" · ")
    }

    /// The largest value of the table, at least 1.
    pub fn max(&self) -> f64 {
        self.table
            .rows
            .iter()
            .filter_map(|row| self.value(row))
            .fold(0.0, f64::max)
            .max(1.0)
    }

    /// The rows with a value, grouped by setup in the order each setup first appears.
    pub fn setups(&self) -> Vec<Setup<'a>> {
        let mut setups: Vec<Setup<'a>> = Vec::new();
        for row in &self.table.rows {
            if self.value(row).is_none() {
                continue;
            }
            let name = self
                .setup_column
                .and_then(|column| row.get(column).cloned())
                .unwrap_or_default();
            match setups.iter_mut().find(|setup| setup.name == name) {
                Some(setup) => setup.rows.push(row),
                None => setups.push(Setup { name, rows: vec![row] }),
            }
        }
        setups
    }

    /// The table's header without the setup column, for a setup's own table.
    pub fn header_within_setup(&self) -> Vec<String> {
        self.without_setup(&self.table.header)
    }

    /// A row without the setup column.
    pub fn without_setup(&self, row: &[String]) -> Vec<String> {
        row.iter()
            .enumerate()
            .filter(|(index, _)| Some(*index) != self.setup_column)
            .map(|(_, cell)| cell.clone())
            .collect()
    }
}
