//! `hoist scan`: flags to a `ScanRequest`, the report to a table, JSON or
//! SARIF, and the gate to the exit status (0 passed, 1 failed, 2 error).

use super::RegistryArguments;
use super::report::{Mode, Reporter};
use anyhow::Context;
use clap::ValueEnum;
use hoist::operation::scan::{ScanRequest, scan};
use hoist::scan::gate::GatePolicy;
use hoist::scan::report::{ScanReport, sarif, summary_line, table};
use hoist::scan::severity::Severity;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ScanFormat {
    Table,
    Json,
    Sarif,
}

#[derive(Debug, clap::Args)]
pub struct ScanArguments {
    /// A directory, or an image: oci:DIR[:TAG], oci-archive:FILE[:TAG],
    /// docker-archive:FILE[:REF], docker://REF (every platform unless --platform).
    target: String,
    /// OSV's export: an all.zip, a directory of zips or of OSV JSON records.
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// Fail (exit 1) on a finding of this severity or above.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    fail_on: Option<Severity>,
    /// Also fail on findings whose severity is unknown.
    #[arg(long)]
    fail_on_unknown: bool,
    /// Do not fail when a package database was skipped (an incomplete inventory).
    #[arg(long)]
    allow_incomplete: bool,
    /// A .trivyignore file or an OpenVEX document; repeatable.
    #[arg(long, value_name = "FILE")]
    ignore: Vec<PathBuf>,
    /// Leave out findings no version fixes yet.
    #[arg(long)]
    ignore_unfixed: bool,
    /// Report only these severities (comma-separated: low,medium,high,critical,unknown).
    #[arg(long, value_delimiter = ',', value_parser = parse_severity)]
    severity: Vec<Severity>,
    #[arg(long, value_enum, default_value_t = ScanFormat::Table)]
    format: ScanFormat,
    /// The same report as --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Write the report here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Only this platform of a multi-platform image.
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    #[command(flatten)]
    registry: RegistryArguments,
}

pub(super) fn parse_severity(text: &str) -> Result<Severity, String> {
    Severity::parse(text)
        .ok_or_else(|| format!("`{text}` is not low, medium, high, critical or unknown"))
}

pub fn run(arguments: ScanArguments) -> i32 {
    match scan_command(arguments) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            2
        }
    }
}

/// Runs the scan and writes the report; returns whether the gate passed.
fn scan_command(arguments: ScanArguments) -> anyhow::Result<bool> {
    // The report goes to stdout: only warnings (on stderr) are shown meanwhile.
    let reporter = Reporter::new(Mode::Quiet);
    let jobs = super::jobs(None)?;
    let request = ScanRequest {
        subject: super::attest::subject(&arguments.target, arguments.platform.as_deref())?,
        target: arguments.target.clone(),
        database: arguments.db.clone(),
        cache: hoist::operation::cache::cache_directory().ok(),
        policy: GatePolicy {
            fail_on: arguments.fail_on,
            fail_on_unknown: arguments.fail_on_unknown,
            allow_incomplete: arguments.allow_incomplete,
        },
        ignore: arguments.ignore.clone(),
        ignore_unfixed: arguments.ignore_unfixed,
        severities: arguments.severity.iter().copied().collect::<BTreeSet<_>>(),
        registry: arguments.registry.client_options(jobs)?,
    };
    let report = scan(&request, &reporter)?;
    let format = if arguments.json {
        ScanFormat::Json
    } else {
        arguments.format
    };
    write(arguments.output.as_deref(), &render(&report, format)?)?;
    eprintln!("{}", summary_line(&report));
    Ok(report.gate.passed)
}

fn render(report: &ScanReport, format: ScanFormat) -> anyhow::Result<Vec<u8>> {
    Ok(match format {
        ScanFormat::Table => table(report).into_bytes(),
        ScanFormat::Json => {
            let mut bytes = serde_json::to_vec_pretty(report)?;
            bytes.push(b'\n');
            bytes
        }
        ScanFormat::Sarif => {
            let mut bytes = serde_json::to_vec_pretty(&sarif(report, env!("CARGO_PKG_VERSION")))?;
            bytes.push(b'\n');
            bytes
        }
    })
}

fn write(path: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match path {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(bytes).context("writing to stdout")
        }
    }
}
