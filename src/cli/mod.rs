//! The command line: clap definitions, one module per command, and the
//! reporter that turns pipeline events into progress bars, lines or JSON.
//! The only module that prints.

mod build;
mod copy;
mod report;

use clap::{Parser, Subcommand};
use std::io::IsTerminal;

#[derive(Debug, Parser)]
#[command(name = "hoist", version, about = "Build OCI images from directories, without a daemon", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log more (repeat for more detail); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the images a spec describes and write them to one or more outputs.
    Build(build::BuildArguments),
    /// Copy an image or index between layouts, archives and registries, digests unchanged.
    Copy(copy::CopyArguments),
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    let result = match cli.command {
        Command::Build(arguments) => build::run(arguments),
        Command::Copy(arguments) => copy::run(arguments),
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            print_error(&error);
            1
        }
    }
}

/// Prints an error and its causes once, outermost first.
fn print_error(error: &anyhow::Error) {
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

/// The number of worker threads: `--jobs`, else `HOIST_JOBS`, else the cores.
fn jobs(flag: Option<usize>) -> anyhow::Result<usize> {
    if let Some(jobs) = flag {
        anyhow::ensure!(jobs > 0, "--jobs must be at least 1");
        return Ok(jobs);
    }
    if let Ok(value) = std::env::var("HOIST_JOBS") {
        let jobs: usize = value.trim().parse().map_err(|_| {
            anyhow::anyhow!(
                "HOIST_JOBS is `{value}`: it must be a whole number of threads, at least 1"
            )
        })?;
        anyhow::ensure!(jobs > 0, "HOIST_JOBS must be at least 1");
        return Ok(jobs);
    }
    Ok(std::thread::available_parallelism().map_or(1, usize::from))
}
