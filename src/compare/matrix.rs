//! The revocation matrix: the events, what a credential can come to after one, the documented
//! outcome of each strategy, and what an observation differs in. No I/O: the scenario fills it
//! over HTTP, `/compare` and `revocable demo` show it.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Logout,
    LogoutEverywhere,
    RevokeOtherDevice,
    PasswordChange,
    RefreshTokenReuse,
    AccessTokenExpired,
}

impl Event {
    pub const ALL: [Event; 6] = [
        Event::Logout,
        Event::LogoutEverywhere,
        Event::RevokeOtherDevice,
        Event::PasswordChange,
        Event::RefreshTokenReuse,
        Event::AccessTokenExpired,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::LogoutEverywhere => "log out everywhere",
            Self::RevokeOtherDevice => "device signed out from another device",
            Self::PasswordChange => "password change",
            Self::RefreshTokenReuse => "stolen refresh token reused",
            Self::AccessTokenExpired => "access token expired",
        }
    }
}

pub const STRATEGIES: [&str; 5] = ["stateless", "version", "denylist", "allowlist", "cookie"];

/// One cell: is a credential issued before the event still accepted after it?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    Accepted,
    Rejected,
    /// The event does not concern this kind of credential (a cookie has no refresh token).
    NotApplicable,
    /// Not observed on this server (an access-token lifetime too long to wait for).
    NotObserved,
}

impl Cell {
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::NotApplicable => "n/a",
            Self::NotObserved => "not observed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Row {
    pub event: Event,
    pub cells: [Cell; 5],
}

/// The documented matrix (README, `/compare`): what each strategy still accepts after each event.
pub fn expected() -> Vec<Row> {
    use Cell::{Accepted as A, NotApplicable as Na, Rejected as R};
    vec![
        Row {
            event: Event::Logout,
            cells: [A, A, R, R, R],
        },
        Row {
            event: Event::LogoutEverywhere,
            cells: [A, R, R, R, R],
        },
        Row {
            event: Event::RevokeOtherDevice,
            cells: [A, A, R, R, R],
        },
        Row {
            event: Event::PasswordChange,
            cells: [A, R, R, R, R],
        },
        Row {
            event: Event::RefreshTokenReuse,
            cells: [A, A, R, R, Na],
        },
        Row {
            event: Event::AccessTokenExpired,
            cells: [R, R, R, R, Na],
        },
    ]
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Observed {
    pub rows: Vec<Row>,
    pub access_ttl_seconds: u64,
}

impl Observed {
    /// Cells that were observed and differ from the documented matrix.
    pub fn differences(&self) -> Vec<(Event, &'static str, Cell, Cell)> {
        let mut differences = Vec::new();
        for (observed, expected) in self.rows.iter().zip(expected()) {
            for (index, (seen, wanted)) in observed.cells.iter().zip(expected.cells).enumerate() {
                if *seen != Cell::NotObserved && *seen != wanted {
                    differences.push((observed.event, STRATEGIES[index], *seen, wanted));
                }
            }
        }
        differences
    }
}

/// The matrix as a Markdown table, as the README shows it.
pub fn markdown(rows: &[Row]) -> String {
    let mut table =
        String::from("| event | stateless | version | denylist | allowlist | cookie |\n|---|---|---|---|---|---|\n");
    for row in rows {
        table.push_str(&format!("| {} |", row.event.label()));
        for cell in row.cells {
            table.push_str(&format!(" {} |", cell.symbol()));
        }
        table.push('\n');
    }
    table
}

/// The matrix for a terminal, with colours when `colour` is set.
pub fn terminal_table(rows: &[Row], colour: bool) -> String {
    let width = Event::ALL.iter().map(|event| event.label().len()).max().unwrap_or(10);
    let mut out = format!("{:width$}", "after this event", width = width);
    for strategy in STRATEGIES {
        out.push_str(&format!("  {strategy:<12}"));
    }
    out.push('\n');
    for row in rows {
        out.push_str(&format!("{:width$}", row.event.label(), width = width));
        for cell in row.cells {
            let text = format!("{:<12}", cell.symbol());
            let painted = match (colour, cell) {
                (true, Cell::Accepted) => format!("\x1b[31m{text}\x1b[0m"),
                (true, Cell::Rejected) => format!("\x1b[32m{text}\x1b[0m"),
                (true, _) => format!("\x1b[2m{text}\x1b[0m"),
                (false, _) => text,
            };
            out.push_str("  ");
            out.push_str(&painted);
        }
        out.push('\n');
    }
    out
}

impl fmt::Display for Cell {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.symbol())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_shows_the_documented_matrix() {
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&markdown(&expected())),
            "README.md's matrix differs from matrix::expected()"
        );
    }

    #[test]
    fn a_cell_that_differs_is_reported_and_an_unobserved_one_is_not() {
        let mut rows = expected();
        rows[0].cells[2] = Cell::Accepted;
        rows[5].cells[0] = Cell::NotObserved;
        let observed = Observed {
            rows,
            access_ttl_seconds: 900,
        };
        let differences = observed.differences();
        assert_eq!(
            differences,
            vec![(Event::Logout, "denylist", Cell::Accepted, Cell::Rejected)]
        );
    }
}
