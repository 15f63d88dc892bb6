//! `hoist build --verify`: renders what the library's verification found,
//! the recorded run beside this one, then the platform manifests' verdict
//! and differences, and maps it to an exit status (0 reproduced, 1 not).

use super::diff::render;
use super::report::Reporter;
use hoist::build::run::{RecordedInput, VerifyOutcome};
use hoist::diff::{DiffReport, Difference};

/// Prints the outcome and returns the exit status.
pub fn report(outcome: &VerifyOutcome, reporter: &Reporter) -> i32 {
    match serde_json::to_value(outcome) {
        Ok(value) => reporter.json(value),
        Err(error) => {
            super::print_error(&anyhow::Error::new(error).context("encoding the outcome"));
            return 2;
        }
    }
    for line in lines(outcome) {
        reporter.line(&line);
    }
    if outcome.is_reproduced() {
        reporter.quiet_line(&outcome.published);
        0
    } else {
        1
    }
}

fn input_name(input: RecordedInput) -> &'static str {
    match input {
        RecordedInput::Commit => "commit",
        RecordedInput::SpecPath => "spec path",
        RecordedInput::SpecDigest => "spec digest",
        RecordedInput::Tags => "tags",
        RecordedInput::Event => "event",
        RecordedInput::Ref => "ref",
        RecordedInput::FormatVersion => "format version",
    }
}

fn lines(outcome: &VerifyOutcome) -> Vec<String> {
    let mut lines = Vec::new();
    match &outcome.recorded {
        Some(run) => {
            lines.push(format!(
                "published by hoist {} in run {}",
                run.hoist_version
                    .as_deref()
                    .unwrap_or("(version not recorded)"),
                run.invocation.as_deref().unwrap_or("(not recorded)")
            ));
            for check in &run.checks {
                let name = input_name(check.input);
                if check.matches() {
                    lines.push(format!("  same {name}: {}", check.recorded));
                } else {
                    lines.push(format!(
                        "  {name} differs: recorded {}, here {} (a difference is expected)",
                        check.recorded, check.here
                    ));
                }
            }
        }
        None => lines
            .push("the published image has no hoist provenance: comparing bytes only".to_string()),
    }
    if outcome.dirty {
        lines.push(
            "the checkout has changes git has not committed (a difference is expected)".to_string(),
        );
    }
    if !outcome.expected.is_empty() {
        lines.push(format!(
            "{} expected difference(s), describing the run rather than the inputs:",
            outcome.expected.len()
        ));
        lines.extend(indented(outcome, &outcome.expected));
    }
    if outcome.is_reproduced() {
        lines.push(format!("reproduced: {}", outcome.published));
    } else {
        lines.push("not reproduced: the platform manifests differ".to_string());
        lines.extend(indented(outcome, &outcome.differences));
    }
    lines
}

/// Differences rendered as `hoist diff` renders them, published on the left.
fn indented(outcome: &VerifyOutcome, differences: &[Difference]) -> Vec<String> {
    let report = DiffReport {
        left: outcome.published.clone(),
        right: outcome.rebuilt.clone(),
        differences: differences.to_vec(),
    };
    render(&report, "published", "rebuilt")
        .into_iter()
        .map(|line| format!("  {line}"))
        .collect()
}
