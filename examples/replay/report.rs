//! What a replay prints: a row per trace, policy and frame count, as a table, as JSON
//! lines, or as a plot of faults against frames.

use std::path::Path;

use serde::Serialize;

use crate::plot::{self, Series};
use crate::policy::Policy;
use crate::sim::{Outcome, PageString};
use crate::stack::{Curve, lru_curve, opt_curve};

/// How a row was counted.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// A replay through the pager.
    Pager,
    /// Mattson's stack algorithm (faults only).
    Stack,
}

/// One result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The trace's path.
    pub trace: String,
    /// The policy's name.
    pub policy: String,
    /// Frames for the process's pages.
    pub frames: u32,
    /// References replayed.
    pub refs: u64,
    /// Touches of a page not resident.
    pub faults: u64,
    /// Of them, demand-zero faults (pages of zeros); `None` from a stack curve.
    pub demand_zero: Option<u64>,
    /// Of them, pages read back from the store; `None` from a stack curve.
    pub hard: Option<u64>,
    /// Of them, pages taken back from standby or modified; `None` from a stack curve.
    pub soft: Option<u64>,
    /// Pages written to the store; `None` from a stack curve.
    pub writes: Option<u64>,
    /// How the row was counted.
    pub method: Method,
}

impl Row {
    /// The row of a replay.
    pub fn new(trace: &str, policy: Policy, frames: u32, outcome: Outcome, method: Method) -> Self {
        Self {
            trace: trace.to_owned(),
            policy: policy.name().to_owned(),
            frames,
            refs: outcome.refs,
            faults: outcome.faults,
            demand_zero: Some(outcome.demand_zero),
            hard: Some(outcome.hard),
            soft: Some(outcome.soft),
            writes: Some(outcome.writes),
            method,
        }
    }

    /// The row as one JSON object.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// The rows of LRU's or OPT's stack curve at `counts` frames (`next` for OPT).
pub fn stack_rows(
    trace: &str,
    string: &PageString,
    policy: Policy,
    counts: &[u32],
    next: Option<&[u64]>,
) -> Vec<Row> {
    let max = counts.iter().copied().max().unwrap_or(1);
    let curve: Curve = match (policy, next) {
        (Policy::Opt, Some(next)) => opt_curve(string, next, max),
        (Policy::Opt, None) => opt_curve(string, &string.next_uses(), max),
        _ => lru_curve(string, max),
    };
    let row = |frames: u32| Row {
        trace: trace.to_owned(),
        policy: policy.name().to_owned(),
        frames,
        refs: string.len() as u64,
        faults: curve.faults(frames).unwrap_or(0),
        demand_zero: None,
        hard: None,
        soft: None,
        writes: None,
        method: Method::Stack,
    };
    counts.iter().map(|&frames| row(frames)).collect()
}

/// Prints the rows as a table on stdout.
pub fn print_table(rows: &[Row]) {
    println!(
        "{:<24} {:<15} {:>7} {:>12} {:>10} {:>11} {:>8} {:>8} {:>9}",
        "trace", "policy", "frames", "refs", "faults", "demand-zero", "hard", "soft", "writes"
    );
    let cell = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    for row in rows {
        let trace = Path::new(&row.trace)
            .file_name()
            .map_or(row.trace.clone(), |n| n.to_string_lossy().into_owned());
        println!(
            "{:<24} {:<15} {:>7} {:>12} {:>10} {:>11} {:>8} {:>8} {:>9}",
            trace,
            row.policy,
            row.frames,
            row.refs,
            row.faults,
            cell(row.demand_zero),
            cell(row.hard),
            cell(row.soft),
            cell(row.writes)
        );
    }
}

/// Plots faults against frames, a line per trace and policy.
///
/// # Errors
///
/// What the plot refuses (an unknown extension, a file it cannot write).
pub fn plot_rows(file: &Path, rows: &[Row]) -> Result<(), plot::PlotError> {
    let mut series: Vec<Series> = Vec::new();
    let traces: Vec<&str> = {
        let mut t: Vec<&str> = rows.iter().map(|r| r.trace.as_str()).collect();
        t.dedup();
        t
    };
    for row in rows {
        let name = if traces.len() > 1 {
            let trace = Path::new(&row.trace)
                .file_name()
                .map_or(row.trace.clone(), |n| n.to_string_lossy().into_owned());
            format!("{} ({trace})", row.policy)
        } else {
            row.policy.clone()
        };
        match series.iter_mut().find(|s| s.policy == name) {
            Some(s) => s.points.push((u64::from(row.frames), row.faults)),
            None => series
                .push(Series { policy: name, points: vec![(u64::from(row.frames), row.faults)] }),
        }
    }
    let title = match traces.as_slice() {
        [one] => format!(
            "faults against frames: {}",
            Path::new(one)
                .file_name()
                .map_or(one.to_string(), |n| n.to_string_lossy().into_owned())
        ),
        _ => "faults against frames".to_owned(),
    };
    plot::plot(file, &title, &series)
}
