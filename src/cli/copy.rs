//! `hoist copy SOURCE DESTINATION`: any transport to any transport, every
//! platform and attestation of an index, digests unchanged.

use super::report::Reporter;
use super::{RegistryArguments, RunArguments};
use anyhow::Context;
use hoist::build::transport::{Transports, destination_tag};
use hoist::image::{Manifest, publish};
use hoist::oci::{Location, Platform};
use hoist::progress::{Event, Observer};
use hoist::source::select_platform;

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
    let jobs = arguments.run.jobs()?;
    let source: Location = arguments
        .source
        .parse()
        .with_context(|| format!("source {}", arguments.source))?;
    let destination: Location = arguments
        .destination
        .parse()
        .with_context(|| format!("destination {}", arguments.destination))?;
    let tags: Vec<String> = destination_tag(&destination)
        .with_context(|| format!("destination {destination}"))?
        .into_iter()
        .collect();
    let own = super::own_registries([&destination], [&source]);
    let transports = Transports::new(arguments.registry.client_options_for(jobs, &own)?);
    let mut manifest = transports.source(&source)?.resolve()?;
    if let Some(platform) = &arguments.platform {
        let platform: Platform = platform
            .parse()
            .with_context(|| format!("--platform {platform}"))?;
        manifest = Manifest::Image(select_platform(&manifest, &platform)?);
    }
    let sink = transports.sink(&destination)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("starting worker threads")?;
    let report = pool
        .install(|| publish(&manifest, sink.as_ref(), &tags, &reporter))
        .with_context(|| format!("copying {source} to {destination}"))?;
    reporter.finish();
    let digest = manifest.digest().to_string();
    reporter.event(Event::ImageCopied {
        source: source.to_string(),
        destination: destination.to_string(),
        uploaded: report.uploaded.len(),
        bytes: report.bytes_sent,
        mounted: report.mounted.len(),
        existed: report.existed.len(),
    });
    if let Some(path) = &arguments.run.digest_file {
        std::fs::write(path, format!("{digest}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    reporter.digest(&digest);
    Ok(())
}
