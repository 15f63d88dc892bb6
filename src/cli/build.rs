//! `hoist build`: spec → plan → images → every output.

use super::report::Reporter;
use super::{RegistryArguments, RunArguments};
use anyhow::Context;
use hoist::build::attest::{AttachMode, check_referrers_output};
use hoist::build::run::ScanGate;
use hoist::build::run::{BuildRequest, Output, OutputFiles, run_build, verify_build};
use hoist::oci::{Location, Platform};
use hoist::scan::gate::GatePolicy;
use hoist::scan::severity::Severity;
use hoist::spec::PlanOptions;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct BuildArguments {
    /// The spec to build.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "hoist.toml",
        value_name = "SPEC"
    )]
    file: PathBuf,
    /// Where to write: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF],
    /// docker://REFERENCE. Repeatable.
    #[arg(short, long = "output", value_name = "LOCATION")]
    outputs: Vec<String>,
    /// Push each image to its spec `repository`, with its spec tags and every --tag.
    #[arg(long)]
    push: bool,
    /// Build every layer afresh and keep nothing in the layer cache.
    #[arg(long)]
    no_cache: bool,
    #[command(flatten)]
    cache_repositories: Box<CacheRepositoryArguments>,
    /// Build only this platform (os/arch[/variant]). Repeatable.
    #[arg(long = "platform", value_name = "PLATFORM")]
    platforms: Vec<String>,
    /// Build only the image with this name. Repeatable.
    #[arg(long = "image", value_name = "NAME")]
    images: Vec<String>,
    /// An extra tag for every output. Repeatable.
    #[arg(short, long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    #[command(flatten)]
    run: RunArguments,
    /// Attach SPDX and CycloneDX SBOMs of every platform image (spec: `sbom = true`).
    #[arg(long)]
    sbom: bool,
    /// Attach SLSA provenance (spec: `provenance = true`); `--provenance=max` adds build times.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "min", value_name = "min|max")]
    provenance: Option<String>,
    /// Where attestations go: in the index as BuildKit does, or as OCI referrers.
    #[arg(long, value_enum, default_value_t = AttachMode::Index)]
    attach: AttachMode,
    /// Build and push only the images whose inputs changed since the image
    /// under a tag that lasts across commits (the branch tag, `latest`, a
    /// rule of fixed text) was built, as the spec key `skip-unchanged` does
    /// for one image. With --push a skipped image still gets this run's
    /// tags, pointed at the image it matched; `--changed=no-retag` leaves
    /// its tags as they are.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "retag", value_name = "retag|no-retag")]
    changed: Option<Changed>,
    /// Build and compute tags, but push nothing: print what --push would push.
    #[arg(long)]
    dry_run: bool,
    /// Write what was built (images, platforms, digests, sizes, tags,
    /// attestations, timings) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    /// Write, for each pushed tag, the digest it pointed to before and after,
    /// with the command that restores it, as JSON to this file.
    #[arg(long, value_name = "FILE")]
    rollback_file: Option<PathBuf>,
    /// Write a GitLab dotenv report (HOIST_DIGEST, HOIST_IMAGE, HOIST_TAGS)
    /// to this file (on GitLab CI: `hoist.env` by default).
    #[arg(long, value_name = "FILE")]
    dotenv: Option<PathBuf>,
    /// Rebuild and compare with the image published at LOCATION instead of
    /// writing: prints `reproduced: DIGEST` (exit 0) or the differences
    /// (exit 1); exit 2 on trouble.
    #[arg(long, value_name = "LOCATION", conflicts_with_all = [
        "outputs", "push", "changed", "dry_run", "metadata_file", "rollback_file", "dotenv",
    ])]
    verify: Option<String>,
    /// Match every platform image's packages against an offline OSV
    /// database before publishing; a failed gate publishes nothing (exit 1).
    #[arg(long)]
    scan: bool,
    /// With --scan: OSV's export (an all.zip, a directory of zips or
    /// records); overrides the spec's `scan.db`.
    #[arg(long, value_name = "PATH", requires = "scan")]
    db: Option<PathBuf>,
    /// With --scan: fail on a finding of this severity or above.
    #[arg(long, value_name = "SEVERITY", value_parser = super::scan::parse_severity, requires = "scan")]
    fail_on: Option<Severity>,
    /// With --scan: also fail on findings whose severity is unknown.
    #[arg(long, requires = "scan")]
    fail_on_unknown: bool,
    /// With --scan: do not fail when a package database was skipped.
    #[arg(long, requires = "scan")]
    allow_incomplete: bool,
    /// With --scan: attach each platform image's result as an in-toto
    /// vulnerability attestation (an OCI referrer, never in the index).
    #[arg(long, requires = "scan")]
    attest_scan: bool,
    #[command(flatten)]
    registry: RegistryArguments,
}

/// The layer cache in a registry.
#[derive(Debug, clap::Args)]
struct CacheRepositoryArguments {
    /// Read layers from the layer cache in this registry repository, and
    /// write none there unless --cache-to says so (spec: `cache-repo`).
    #[arg(long, value_name = "REPOSITORY")]
    cache_from: Option<String>,
    /// Record the layers this build makes in the layer cache in this
    /// registry repository, once the images are pushed.
    #[arg(long, value_name = "REPOSITORY")]
    cache_to: Option<String>,
    /// Read and write the layer cache in this registry repository
    /// (--cache-from and --cache-to in one; spec: `cache-repo`).
    #[arg(long, value_name = "REPOSITORY", env = "HOIST_CACHE_REPO")]
    cache_repo: Option<String>,
}

impl BuildArguments {
    /// `--verify` was given: the command compares rather than writes.
    pub fn verifies(&self) -> bool {
        self.verify.is_some()
    }
}

/// `hoist build --verify LOCATION`: the exit status says whether the
/// platform manifests were reproduced (0), differ (1), or trouble (2).
pub fn verify(arguments: BuildArguments) -> i32 {
    let reporter = Reporter::new(arguments.run.mode());
    let outcome = request(&arguments).and_then(|request| {
        let text = arguments.verify.as_deref().unwrap_or_default();
        let location: Location = text.parse().with_context(|| format!("--verify {text}"))?;
        Ok(verify_build(&request, &location, &reporter)?)
    });
    reporter.finish();
    match outcome {
        Ok(outcome) => super::verify::report(&outcome, &reporter),
        Err(error) => {
            super::print_error(&error);
            2
        }
    }
}

/// What `--changed` does with an image it skips.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Changed {
    /// Point this run's tags at the image found unchanged.
    Retag,
    /// Leave its tags as they are.
    NoRetag,
}

pub fn run(arguments: BuildArguments) -> anyhow::Result<()> {
    let reporter = Reporter::new(arguments.run.mode());
    let request = request(&arguments)?;
    let outcome = run_build(&request, &reporter);
    reporter.finish();
    let outcome = outcome?;
    if let Some(path) = &arguments.run.digest_file {
        std::fs::write(path, format!("{}\n", outcome.digest))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    reporter.digest(&outcome.digest);
    Ok(())
}

/// The library's request for these flags.
fn request(arguments: &BuildArguments) -> anyhow::Result<BuildRequest> {
    let jobs = arguments.run.jobs()?;
    let platforms = arguments
        .platforms
        .iter()
        .map(|text| {
            text.parse::<Platform>()
                .with_context(|| format!("--platform {text}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut outputs: Vec<Output> = arguments
        .outputs
        .iter()
        .map(|text| {
            text.parse::<Location>()
                .map(Output::Location)
                .with_context(|| format!("--output {text}"))
        })
        .collect::<anyhow::Result<_>>()?;
    if arguments.push || arguments.dry_run {
        outputs.push(Output::Push);
    }
    if arguments.attach == AttachMode::Referrers || arguments.attest_scan {
        for location in outputs.iter().filter_map(Output::location) {
            check_referrers_output(location)?;
        }
    }
    Ok(BuildRequest {
        spec: arguments.file.clone(),
        plan: PlanOptions {
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok(),
            images: arguments.images.clone(),
            platforms,
        },
        outputs,
        dry_run: arguments.dry_run,
        changed: arguments.changed.is_some(),
        retag: arguments.changed != Some(Changed::NoRetag),
        extra_tags: arguments.tags.clone(),
        jobs,
        cache: if arguments.no_cache {
            None
        } else {
            Some(hoist::operation::cache::cache_directory()?)
        },
        registry_cache: hoist::build::run::CacheRepositories {
            from: arguments.cache_repositories.cache_from.clone(),
            to: arguments.cache_repositories.cache_to.clone(),
            both: arguments
                .cache_repositories
                .cache_repo
                .clone()
                .filter(|text| !text.is_empty()),
        },
        sbom: arguments.sbom,
        provenance: super::attest::provenance_level(arguments.provenance.as_deref())?,
        attach: arguments.attach,
        registry: arguments.registry.client_options(jobs)?,
        files: OutputFiles {
            metadata: arguments.metadata_file.clone(),
            rollback: arguments.rollback_file.clone(),
            dotenv: arguments.dotenv.clone(),
        },
        scan: scan_gate(arguments),
    })
}

/// `--scan` and its flags as the library's gate.
fn scan_gate(arguments: &BuildArguments) -> ScanGate {
    ScanGate {
        requested: arguments.scan,
        database: arguments.db.clone(),
        cache: hoist::operation::cache::cache_directory().ok(),
        policy: GatePolicy {
            fail_on: arguments.fail_on,
            fail_on_unknown: arguments.fail_on_unknown,
            allow_incomplete: arguments.allow_incomplete,
        },
        attest: arguments.attest_scan,
    }
}
