//! The spec's `scan = { fail-on = "critical", db = "osv/" }`, at image level
//! or in `[defaults]`: the vulnerability gate `hoist build` runs on the image
//! before publishing. Checked when the spec is read, so a misspelt severity
//! fails at its line and column rather than after the build.

use super::file::ScanSpec;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The severities a threshold may name, lowest first.
const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// An image's gate as the spec sets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanPlan {
    /// The OSV export, relative paths resolved against the spec's directory.
    pub database: Option<PathBuf>,
    /// `low`, `medium`, `high` or `critical`; `None` only reports.
    pub fail_on: Option<String>,
    pub fail_on_unknown: bool,
    pub allow_incomplete: bool,
}

/// What is wrong with a `scan` table: where, which key, and why.
pub struct ScanKeyError {
    pub span: Range<usize>,
    pub key: &'static str,
    pub message: String,
}

/// Checks `scan` and resolves its database path against `directory`.
pub fn resolve(spec: &ScanSpec, directory: &Path) -> Result<ScanPlan, ScanKeyError> {
    let fail_on = match &spec.fail_on {
        Some(value) => {
            let text = value.get_ref().to_ascii_lowercase();
            if !SEVERITIES.contains(&text.as_str()) {
                return Err(ScanKeyError {
                    span: value.span(),
                    key: "scan.fail-on",
                    message: format!(
                        "`{}` is not a severity: use low, medium, high or critical",
                        value.get_ref()
                    ),
                });
            }
            Some(text)
        }
        None => None,
    };
    let database = match &spec.db {
        Some(value) if value.get_ref().trim().is_empty() => {
            return Err(ScanKeyError {
                span: value.span(),
                key: "scan.db",
                message: "is empty: name OSV's export (an all.zip or a directory)".to_string(),
            });
        }
        Some(value) => Some(directory.join(value.get_ref())),
        None => None,
    };
    Ok(ScanPlan {
        database,
        fail_on,
        fail_on_unknown: spec.fail_on_unknown.unwrap_or(false),
        allow_incomplete: spec.allow_incomplete.unwrap_or(false),
    })
}
