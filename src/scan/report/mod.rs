//! A scan's result as one document (`--json` serializes it) and its other
//! renderings: a table for people and SARIF 2.1.0 for code scanning.

mod sarif;
mod table;

pub use sarif::sarif;
pub use table::{summary_line, table};

use super::gate::GateResult;
use super::matcher::Finding;
use serde::Serialize;

/// A finding in one platform image (`None` for a directory).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlatformFinding {
    pub platform: Option<String>,
    #[serde(flatten)]
    pub finding: Finding,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScanReport {
    /// What was scanned, as the user named it.
    pub target: String,
    pub findings: Vec<PlatformFinding>,
    /// Findings left out by `--ignore`, `--ignore-unfixed` or `--severity`.
    pub ignored: usize,
    pub database: DatabaseSummary,
    /// Platforms (or the directory) whose inventory is incomplete.
    pub incomplete: Vec<String>,
    pub gate: GateResult,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DatabaseSummary {
    pub records: usize,
    pub withdrawn: usize,
    /// The newest record's `modified` time: how current the export is.
    pub newest_modified: Option<String>,
    pub cached: bool,
}
