//! SARIF 2.1.0 as GitHub code scanning takes it: one rule per advisory
//! (with its severity as `security-severity`), one result per finding,
//! located at the image (or directory) and platform it was found in.

use super::ScanReport;
use crate::scan::severity::Severity;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The score code scanning ranks a rule by, the middle of each CVSS band.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Unknown => "0.0",
    }
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Unknown => "note",
    }
}

pub fn sarif(report: &ScanReport, tool_version: &str) -> Value {
    let mut rules: BTreeMap<&str, Value> = BTreeMap::new();
    for found in &report.findings {
        let finding = &found.finding;
        rules.entry(finding.advisory.as_str()).or_insert_with(|| {
            let text = finding.summary.clone().unwrap_or_else(|| finding.advisory.clone());
            json!({
                "id": finding.advisory,
                "name": "OsvAdvisory",
                "shortDescription": {"text": text},
                "helpUri": format!("https://osv.dev/vulnerability/{}", finding.records.iter().next().unwrap_or(&finding.advisory)),
                "properties": {
                    "security-severity": security_severity(finding.severity),
                    "tags": ["security", "vulnerability", finding.severity.as_str()]
                }
            })
        });
    }
    let rule_index: BTreeMap<&str, usize> = rules
        .keys()
        .enumerate()
        .map(|(index, id)| (*id, index))
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|found| {
            let finding = &found.finding;
            let platform = found.platform.clone().unwrap_or_else(|| "rootfs".into());
            let fixed = finding.fixed.as_deref().map(|fixed| format!(", fixed in {fixed}")).unwrap_or_default();
            json!({
                "ruleId": finding.advisory,
                "ruleIndex": rule_index[finding.advisory.as_str()],
                "level": level(finding.severity),
                "message": {"text": format!(
                    "{} {} ({}) is affected by {} [{}]{fixed}",
                    finding.package, finding.version, finding.purl, finding.advisory, finding.severity.as_str()
                )},
                "locations": [{
                    "physicalLocation": {"artifactLocation": {"uri": report.target}},
                    "logicalLocations": [{"name": platform, "kind": "platform"}]
                }],
                "partialFingerprints": {
                    "hoist/v1": format!("{}|{}|{}|{platform}", finding.advisory, finding.package, finding.version)
                }
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "hoist",
                "version": tool_version,
                "rules": rules.into_values().collect::<Vec<_>>()
            }},
            "results": results
        }]
    })
}
