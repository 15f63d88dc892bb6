//! The gate: whether a scan's findings stop the push. A finding at or above
//! the threshold fails it; `unknown` severity only with `fail_on_unknown`;
//! an inventory the catalogers could not finish fails it unless allowed,
//! since a package database skipped for size hides its packages' findings.

use super::matcher::Finding;
use super::severity::Severity;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct GatePolicy {
    /// The lowest severity that fails the gate; `None` only reports.
    pub fail_on: Option<Severity>,
    pub fail_on_unknown: bool,
    pub allow_incomplete: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateResult {
    pub passed: bool,
    /// Why it failed, one sentence each.
    pub reasons: Vec<String>,
    /// Findings per severity.
    pub counts: BTreeMap<Severity, usize>,
}

/// Decides the gate over findings (already filtered by ignores) and the
/// names of the inventories that are incomplete.
pub fn decide<'a>(
    policy: &GatePolicy,
    findings: impl Iterator<Item = &'a Finding>,
    incomplete: &[String],
) -> GateResult {
    let mut counts: BTreeMap<Severity, usize> = BTreeMap::new();
    for finding in findings {
        *counts.entry(finding.severity).or_default() += 1;
    }
    let mut reasons = Vec::new();
    if let Some(threshold) = policy.fail_on {
        let failing: usize = counts
            .iter()
            .filter(|(severity, _)| **severity != Severity::Unknown && **severity >= threshold)
            .map(|(_, count)| count)
            .sum();
        if failing > 0 {
            reasons.push(format!(
                "{failing} finding(s) at or above {}",
                threshold.as_str()
            ));
        }
    }
    let unknown = counts.get(&Severity::Unknown).copied().unwrap_or_default();
    if policy.fail_on_unknown && unknown > 0 {
        reasons.push(format!("{unknown} finding(s) of unknown severity"));
    }
    if !policy.allow_incomplete && !incomplete.is_empty() {
        reasons.push(format!(
            "the package inventory of {} is incomplete (a package database was skipped); allow it with --allow-incomplete",
            incomplete.join(", ")
        ));
    }
    GateResult {
        passed: reasons.is_empty(),
        reasons,
        counts,
    }
}
