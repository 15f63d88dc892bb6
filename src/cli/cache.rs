//! `hoist cache dir` and `hoist cache prune --max-size SIZE`: where the
//! layer cache lives, and keeping it within a size.

use super::report::{Mode, Reporter};
use bytesize::ByteSize;
use hoist::operation::cache::{CachePruneRequest, cache_directory, prune_cache};

#[derive(Debug, clap::Args)]
pub struct CacheArguments {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CacheCommand {
    /// Print the cache directory (HOIST_CACHE, else the XDG cache directory).
    Dir,
    /// Remove the least recently used layers until the cache holds at most SIZE.
    Prune(PruneArguments),
}

#[derive(Debug, clap::Args)]
struct PruneArguments {
    /// The most the cache may hold afterwards: bytes, or with a unit
    /// (`500M`, `2G`, `1.5 GiB`; K, M, G are powers of 1000, KiB, MiB, GiB of 1024).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_size: u64,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
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
            };
            let outcome = prune_cache(&request, &reporter);
            reporter.finish();
            outcome?;
        }
    }
    Ok(())
}
