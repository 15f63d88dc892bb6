//! `hoist cache dir` and `hoist cache prune --max-size SIZE
//! [--scan-unused-for AGE]`: where the cache lives, keeping its layers
//! within a size and its scan indexes to the ones scans still use.

use super::report::{Mode, Reporter};
use super::repository::parse_age;
use bytesize::ByteSize;
use hoist::operation::cache::{CachePruneRequest, cache_directory, prune_cache};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct CacheArguments {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CacheCommand {
    /// Print the cache directory (HOIST_CACHE, else the XDG cache directory).
    Dir,
    /// Remove the least recently used layers until the cache holds at most SIZE,
    /// and the scan indexes no scan used within AGE.
    Prune(PruneArguments),
}

#[derive(Debug, clap::Args)]
struct PruneArguments {
    /// The most the cache may hold afterwards: bytes, or with a unit
    /// (`500M`, `2G`, `1.5 GiB`; K, M, G are powers of 1000, KiB, MiB, GiB of 1024).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_size: u64,
    /// Keep the scan indexes (`scan/` in the cache) a scan used within AGE
    /// (`12h`, `7d`, `2w`); the others, and those of older formats, go.
    #[arg(long, value_name = "AGE", default_value = "7d", value_parser = parse_scan_age)]
    scan_unused_for: Duration,
    /// Print one JSON object per part of the cache on stdout (layers, then scan indexes).
    #[arg(long)]
    json: bool,
}

fn parse_scan_age(text: &str) -> Result<Duration, String> {
    parse_age("--scan-unused-for", text)
        .map(|seconds| Duration::from_secs(seconds.unsigned_abs()))
        .map_err(|error| format!("{error:#}"))
}

fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|error| format!("`{text}` is not a size such as 500M or 2G: {error}"))
}

pub fn run(arguments: CacheArguments) -> anyhow::Result<()> {
    let directory = cache_directory()?;
    match arguments.command {
        CacheCommand::Dir => {
            let reporter = Reporter::new(Mode::from_flags(false, false));
            reporter.line(&directory.display().to_string());
            reporter.finish();
        }
        CacheCommand::Prune(prune) => {
            let reporter = Reporter::new(Mode::from_flags(prune.json, false));
            let request = CachePruneRequest {
                directory,
                max_size: prune.max_size,
                scan_unused_for: prune.scan_unused_for,
            };
            let outcome = prune_cache(&request, &reporter);
            reporter.finish();
            outcome?;
        }
    }
    Ok(())
}
