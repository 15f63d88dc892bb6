//! `hoist copy SOURCE DESTINATION`: any transport to any transport, every
//! platform and attestation of an index, digests unchanged.

use super::report::Reporter;
use super::{RegistryArguments, RunArguments};
use anyhow::Context;
use hoist::oci::{Location, Platform};
use hoist::operation::copy::{CopyRequest, copy};

#[derive(Debug, clap::Args)]
pub struct CopyArguments {
    /// Where to read: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, docker://REF.
    source: String,
    /// Where to write, in the same syntax.
    destination: String,
    /// Copy only this platform's manifest instead of the whole index.
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    #[command(flatten)]
    run: RunArguments,
    #[command(flatten)]
    registry: RegistryArguments,
}

pub fn run(arguments: CopyArguments) -> anyhow::Result<()> {
    let reporter = Reporter::new(arguments.run.mode());
    let request = request(&arguments)?;
    let outcome = copy(&request, &reporter);
    reporter.finish();
    let digest = outcome?.digest.to_string();
    if let Some(path) = &arguments.run.digest_file {
        std::fs::write(path, format!("{digest}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    reporter.digest(&digest);
    Ok(())
}

/// The library's request for these flags.
fn request(arguments: &CopyArguments) -> anyhow::Result<CopyRequest> {
    let jobs = arguments.run.jobs()?;
    let source: Location = arguments
        .source
        .parse()
        .with_context(|| format!("source {}", arguments.source))?;
    let destination: Location = arguments
        .destination
        .parse()
        .with_context(|| format!("destination {}", arguments.destination))?;
    let platform = match &arguments.platform {
        Some(text) => Some(
            text.parse::<Platform>()
                .with_context(|| format!("--platform {text}"))?,
        ),
        None => None,
    };
    Ok(CopyRequest {
        source,
        destination,
        platform,
        jobs,
        registry: arguments.registry.client_options(jobs)?,
    })
}
