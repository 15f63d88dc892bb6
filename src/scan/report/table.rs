//! The table people read on a terminal: package, installed, fixed in,
//! advisory, severity, platform; most severe first.

use super::ScanReport;

pub fn table(report: &ScanReport) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "PACKAGE".into(),
        "INSTALLED".into(),
        "FIXED IN".into(),
        "ADVISORY".into(),
        "SEVERITY".into(),
        "PLATFORM".into(),
    ]];
    let mut findings: Vec<_> = report.findings.iter().collect();
    findings.sort_by(|left, right| {
        (
            right.finding.severity,
            &left.finding.package,
            &left.finding.advisory,
        )
            .cmp(&(
                left.finding.severity,
                &right.finding.package,
                &right.finding.advisory,
            ))
    });
    for found in findings {
        let finding = &found.finding;
        rows.push([
            finding.package.clone(),
            finding.version.clone(),
            finding.fixed.clone().unwrap_or_else(|| "-".into()),
            finding.advisory.clone(),
            finding.severity.as_str().into(),
            found.platform.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// `12 findings (1 critical, 3 high, ...); 2 ignored; gate failed: ...`.
pub fn summary_line(report: &ScanReport) -> String {
    let counts: Vec<String> = report
        .gate
        .counts
        .iter()
        .rev()
        .map(|(severity, count)| format!("{count} {}", severity.as_str()))
        .collect();
    let gate = if report.gate.passed {
        "gate passed".to_string()
    } else {
        format!("gate failed: {}", report.gate.reasons.join("; "))
    };
    let age = report
        .database
        .newest_modified
        .as_deref()
        .map(|newest| format!("; newest record {newest}"))
        .unwrap_or_default();
    format!(
        "{} finding(s) ({}); {} ignored; {} records{age}; {gate}",
        report.findings.len(),
        if counts.is_empty() {
            "none".to_string()
        } else {
            counts.join(", ")
        },
        report.ignored,
        report.database.records,
    )
}
