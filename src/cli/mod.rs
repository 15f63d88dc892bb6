//! The command line: clap definitions, one module per command, and the
//! reporter that turns pipeline events into progress bars, lines or JSON.
//! The only module that prints.

mod attest;
mod build;
mod cache;
mod changes;
mod copy;
mod login;
mod outputs;
mod report;
mod sign;
mod tags;

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
    /// Check credentials for a registry and store them the way `docker login` does.
    Login(login::LoginArguments),
    /// Remove stored credentials for a registry.
    Logout(login::LogoutArguments),
    /// Write an SBOM (SPDX or CycloneDX JSON) for a directory or an image.
    Sbom(attest::SbomArguments),
    /// List the SBOMs and provenance attached to an image.
    Attestations(attest::AttestationsArguments),
    /// Make a cosign key pair: an encrypted private key and its public key.
    GenerateKeyPair(sign::GenerateKeyPairArguments),
    /// Sign an image's digest with a cosign key, stored where cosign looks.
    Sign(sign::SignArguments),
    /// Check an image's cosign signatures against a public key.
    Verify(sign::VerifyArguments),
    /// Print the tags `hoist build --push` would push, per image.
    Tags(tags::TagsArguments),
    /// Show or prune the layer cache.
    Cache(cache::CacheArguments),
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
        Command::Login(arguments) => login::login(arguments),
        Command::Logout(arguments) => login::logout(arguments),
        Command::Sbom(arguments) => attest::sbom(arguments),
        Command::Attestations(arguments) => attest::attestations(arguments),
        Command::GenerateKeyPair(arguments) => sign::generate_key_pair_command(arguments),
        Command::Sign(arguments) => sign::sign(arguments),
        Command::Verify(arguments) => sign::verify_command(arguments),
        Command::Tags(arguments) => tags::run(arguments),
        Command::Cache(arguments) => cache::run(arguments),
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

/// Threads and reporting, shared by the commands that end in a digest
/// (`build`, `copy`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArguments {
    /// Worker threads (default: HOIST_JOBS, else the number of cores).
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Also write the final digest to this file.
    #[arg(long, value_name = "FILE")]
    digest_file: Option<std::path::PathBuf>,
    /// Print only the final digest.
    #[arg(short, long)]
    quiet: bool,
    /// Print one JSON object per event on stdout.
    #[arg(long, conflicts_with = "quiet")]
    json: bool,
}

impl RunArguments {
    fn mode(&self) -> report::Mode {
        report::Mode::from_flags(self.json, self.quiet)
    }

    fn jobs(&self) -> anyhow::Result<usize> {
        jobs(self.jobs)
    }
}

/// How to reach registries; shared by every command that may talk to one.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryArguments {
    /// USER:PASSWORD for the registries this command talks to. Prefer `hoist
    /// login` or a credential helper: command lines are visible to other users.
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "HOIST_CREDS",
        hide_env_values = true
    )]
    creds: Option<String>,
    /// A registry (HOST[:PORT]) that may be reached over plain HTTP. Loopback
    /// addresses always may. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registries: Vec<String>,
    /// A PEM file of CA certificates to trust besides the system's. Repeatable.
    #[arg(long = "ca-cert", value_name = "FILE")]
    ca_certificates: Vec<std::path::PathBuf>,
}

impl RegistryArguments {
    pub fn client_options(&self, jobs: usize) -> anyhow::Result<crate::registry::ClientOptions> {
        let credentials = match &self.creds {
            None => None,
            Some(text) => {
                let (user, password) = text.split_once(':').ok_or_else(|| {
                    anyhow::anyhow!("--creds must be USER:PASSWORD (the value is not shown)")
                })?;
                Some((user.to_string(), password.to_string()))
            }
        };
        Ok(crate::registry::ClientOptions {
            insecure_registries: self.insecure_registries.clone(),
            ca_certificates: self.ca_certificates.clone(),
            credentials,
            jobs: jobs.max(4),
            user_agent: format!("hoist/{}", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        })
    }
}

/// The layer cache: `HOIST_CACHE`, else `$XDG_CACHE_HOME/hoist`, else `~/.cache/hoist`.
fn cache_directory() -> anyhow::Result<std::path::PathBuf> {
    if let Some(directory) = std::env::var_os("HOIST_CACHE").filter(|value| !value.is_empty()) {
        return Ok(directory.into());
    }
    if let Some(directory) = std::env::var_os("XDG_CACHE_HOME").filter(|value| !value.is_empty()) {
        return Ok(std::path::PathBuf::from(directory).join("hoist"));
    }
    let home = std::env::var_os("HOME")
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!("no cache directory: set HOIST_CACHE (or HOME), or pass --no-cache")
        })?;
    Ok(std::path::PathBuf::from(home).join(".cache").join("hoist"))
}
