//! One report: the matrix observed over HTTP and the checks' costs, measured on one instance.

use std::time::Instant;

use actix_web::web;

use super::costs::{self, CheckCost};
use super::matrix::{Cell, Event, Row};
use super::scenario;
use crate::domain::now_millis;
use crate::state::AppState;

#[derive(Clone, Debug)]
pub struct Report {
    pub measured_at: i64,
    pub took_millis: u128,
    pub matrix: Result<Vec<Row>, String>,
    /// The expiry row was observed by validating with the clock moved forward, not by waiting.
    pub expiry_observed_in_process: bool,
    pub costs: Result<Vec<CheckCost>, String>,
    pub access_ttl_seconds: u64,
}

impl Report {
    /// A measurement that could not run at all: both halves say why.
    pub fn failed(error: String, took_millis: u128) -> Self {
        Self {
            measured_at: now_millis(),
            took_millis,
            matrix: Err(error.clone()),
            expiry_observed_in_process: false,
            costs: Err(error),
            access_ttl_seconds: 0,
        }
    }
}

/// Measures the instance whose state is `state` and which serves at `base`.
pub async fn measure(state: &web::Data<AppState>, base: &str) -> Report {
    let started = Instant::now();
    let (matrix, expiry_observed_in_process) = match scenario::run(base).await {
        Ok(observed) => {
            let mut rows = observed.rows;
            let in_process = observe_expiry_in_process(state, &mut rows);
            (Ok(rows), in_process)
        }
        Err(error) => (Err(error.to_string()), false),
    };
    let costs = costs::measure(state).await.map_err(|error| error.to_string());
    Report {
        measured_at: now_millis(),
        took_millis: started.elapsed().as_millis(),
        matrix,
        expiry_observed_in_process,
        costs,
        access_ttl_seconds: state.settings.access_ttl.as_secs(),
    }
}

/// An access-token lifetime too long to wait for is observed by validating a freshly issued
/// token as if the clock had moved past its `exp` (every Bearer strategy starts with this check).
fn observe_expiry_in_process(state: &AppState, rows: &mut [Row]) -> bool {
    let Some(row) = rows.iter_mut().find(|row| row.event == Event::AccessTokenExpired) else {
        return false;
    };
    if row.cells[0] != Cell::NotObserved {
        return false;
    }
    let Ok(issued) = state.keys.issue("expiry-probe", "expiry-probe", 0) else {
        return false;
    };
    let later = state.settings.access_ttl.as_secs() + state.settings.jwt_leeway.as_secs() + 1;
    let cell = match state.keys.validate_later(&issued.token, later) {
        Ok(_) => Cell::Accepted,
        Err(_) => Cell::Rejected,
    };
    for slot in &mut row.cells[..4] {
        *slot = cell;
    }
    true
}
