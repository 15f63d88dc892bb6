//! `hoist build`: spec → plan → images → every output.

mod publish;

use super::report::Reporter;
use super::{RegistryArguments, RunArguments};
use crate::build::attest::{AttachMode, attest_image, check_referrers_output};
use crate::build::stream::RegistryStream;
use crate::build::transport::{Transports, destination_tag};
use crate::build::{BuildOptions, BuiltImage, build_image};
use crate::image::{Blob, Manifest};
use crate::layer::BlobStream;
use crate::layer::{LayerCache, TrackedFiles};
use crate::oci::{Location, Platform};
use crate::spec::{Plan, PlanOptions};
use anyhow::{Context, bail};
use publish::{Publishing, ToPublish};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// at their target tag was built (as the spec key `skip-unchanged` does
    /// for one image).
    #[arg(long)]
    changed: bool,
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
    #[command(flatten)]
    registry: RegistryArguments,
}

/// An output with the images it receives: a fixed location, or the image's
/// own repository (`--push`).
enum Output {
    Location(Location),
    Push,
}

pub fn run(arguments: BuildArguments) -> anyhow::Result<()> {
    let started_on = std::time::SystemTime::now();
    let started = std::time::Instant::now();
    let reporter = Reporter::new(arguments.run.mode());
    let jobs = arguments.run.jobs()?;
    let platforms = arguments
        .platforms
        .iter()
        .map(|text| {
            text.parse::<Platform>()
                .with_context(|| format!("--platform {text}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let options = PlanOptions {
        source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok(),
        images: arguments.images.clone(),
        platforms,
    };
    let plan = Plan::load(&arguments.file, &options)?;

    let mut outputs: Vec<Output> = arguments
        .outputs
        .iter()
        .map(|text| {
            text.parse::<Location>()
                .map(Output::Location)
                .with_context(|| format!("--output {text}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let pushing = arguments.push || arguments.dry_run;
    if pushing {
        outputs.push(Output::Push);
    } else if outputs.is_empty() {
        let default = Location::Layout {
            path: PathBuf::from("hoist-out"),
            tag: None,
        };
        outputs.push(Output::Location(plan.output.clone().unwrap_or(default)));
    }
    check_outputs(&plan, &outputs)?;
    let provenance_flag = super::attest::provenance_level(arguments.provenance.as_deref())?;
    if arguments.attach == AttachMode::Referrers {
        for output in &outputs {
            if let Output::Location(location) = output {
                check_referrers_output(location)?;
            }
        }
    }

    let transports = Transports::new(
        arguments
            .registry
            .client_options_for(jobs, &own_registries(&plan, &outputs))?,
    );
    // A registry client starts a runtime and loads the system's CA
    // certificates, and git takes a few starts of its own: when the client
    // will be needed, both are made side by side.
    let needs_registry = outputs.iter().any(|output| {
        matches!(
            output,
            Output::Push | Output::Location(Location::Registry { .. })
        )
    }) || plan.images.iter().any(|image| {
        matches!(
            image.base,
            crate::spec::BaseImage::Location(Location::Registry { .. })
        )
    });
    let revision = std::thread::scope(|scope| {
        if needs_registry {
            // A failure here is reported by the first real use.
            scope.spawn(|| transports.registry().is_ok());
        }
        crate::build::changes::revision(&plan)
    })?;
    let first_output = outputs.iter().find_map(|output| match output {
        Output::Location(location) => Some(location),
        Output::Push => None,
    });
    // git is asked what it tracks once per repository, for the inputs
    // digests and the layers alike.
    let tracked = Arc::new(TrackedFiles::new());
    let prepared = crate::build::changes::prepare(
        &plan,
        &revision,
        &crate::build::changes::PrepareOptions {
            pushing,
            changed: arguments.changed,
            extra_tags: &arguments.tags,
            first_output,
            tracked: &tracked,
        },
        &transports,
        &reporter,
    )?;
    let push_tags = prepared.tags;
    let blob_parent = blob_parent(first_output);
    let blob_directory = tempfile::Builder::new()
        .prefix(".hoist-blobs-")
        .tempdir_in(&blob_parent)
        .with_context(|| {
            format!(
                "creating a temporary directory for layer blobs in {}",
                blob_parent.display()
            )
        })?;
    let cache = if arguments.no_cache {
        None
    } else {
        let directory = super::cache_directory()?;
        let cache = LayerCache::open(&directory)
            .with_context(|| format!("opening the layer cache {}", directory.display()))?;
        Some(std::sync::Arc::new(cache))
    };
    let build_options = BuildOptions {
        jobs,
        blob_directory: blob_directory.path().to_path_buf(),
        cache,
        stream: None,
        tracked,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("starting worker threads")?;

    // Build everything before writing anything, so a failing image leaves no
    // output half-written. Images build side by side, sharing the layer cache.
    // With a registry as the only output, layers are pushed while they
    // compress: blobs without a manifest are not an image.
    let build_started = std::time::Instant::now();
    let built_and_streams: Vec<(BuiltImage, Option<Arc<RegistryStream>>)> = pool.install(|| {
        use rayon::prelude::*;
        prepared
            .images
            .par_iter()
            .map(|image| {
                let target = if arguments.dry_run {
                    None
                } else {
                    only_registry_output(&plan, &outputs, &image.name)
                };
                let stream = match target {
                    Some(location) => {
                        RegistryStream::for_location(&transports, &location)?.map(Arc::new)
                    }
                    None => None,
                };
                let options = BuildOptions {
                    stream: stream.clone().map(|stream| stream as Arc<dyn BlobStream>),
                    ..build_options.clone()
                };
                Ok((
                    build_image(image, &options, &transports, &reporter)?,
                    stream,
                ))
            })
            .collect::<anyhow::Result<_>>()
    })?;
    let (mut built, streams): (Vec<BuiltImage>, Vec<_>) = built_and_streams.into_iter().unzip();
    // Attestations scan each image's files: CPU work, image by image on the
    // pool like the layers.
    let referrers: Vec<_> = pool.install(|| {
        use rayon::prelude::*;
        built
            .par_iter_mut()
            .zip(&prepared.images)
            .map(|(image, image_plan)| {
                let mut tags = push_tags_of(&push_tags, &image.name).to_vec();
                tags.extend(arguments.tags.iter().cloned());
                let request = super::attest::request(
                    &plan,
                    image_plan,
                    arguments.sbom,
                    provenance_flag,
                    arguments.attach,
                    tags,
                    started_on,
                )?;
                Ok(attest_image(image, &plan, image_plan, &request, &reporter)?)
            })
            .collect::<anyhow::Result<_>>()
    })?;
    let build_time = build_started.elapsed();
    let publish_started = std::time::Instant::now();

    let mut final_digest = None;
    let mut image_metadata = Vec::new();
    for skipped in &prepared.skipped {
        image_metadata.push(crate::ci::ImageMetadata::from_manifest(
            &skipped.name,
            skipped.repository.as_deref(),
            &skipped.manifest,
            std::slice::from_ref(&skipped.tag),
        )?);
        final_digest.get_or_insert_with(|| skipped.manifest.digest().to_string());
    }
    for image in &built {
        for platform in &image.platforms {
            reporter.line(&format!(
                "{} {} {} {} {} layers",
                image.name,
                platform.platform,
                platform.image.manifest.digest(),
                platform.size,
                platform.image.layers.len()
            ));
            reporter.json(json!({
                "event": "image",
                "image": image.name,
                "platform": platform.platform.to_string(),
                "digest": platform.image.manifest.digest().to_string(),
                "size": platform.size,
                "layers": platform.image.layers.len(),
            }));
        }
    }
    let to_publish: Vec<ToPublish<'_>> = built
        .iter()
        .zip(&referrers)
        .zip(&streams)
        .map(|((image, referrers), stream)| ToPublish {
            image,
            referrers,
            stream: stream.as_ref(),
        })
        .collect();
    let publishing = Publishing {
        plan: &plan,
        outputs: &outputs,
        extra_tags: &arguments.tags,
        push_tags: &push_tags,
        dry_run: arguments.dry_run,
        record_rollback: arguments.rollback_file.is_some(),
        transports: &transports,
        pool: &pool,
        reporter: &reporter,
    };
    let mut rollback = Vec::new();
    for published in publishing.all(&to_publish)? {
        if final_digest.is_none() {
            final_digest = published.first_digest;
        }
        image_metadata.extend(published.metadata);
        rollback.extend(published.rollback);
    }
    reporter.finish();
    let metadata = crate::ci::BuildMetadata {
        images: image_metadata,
        timings_ms: [
            ("build", build_time),
            ("publish", publish_started.elapsed()),
            ("total", started.elapsed()),
        ]
        .into_iter()
        .map(|(phase, time)| (phase.to_string(), time.as_millis() as u64))
        .collect(),
    };
    super::outputs::write(
        &metadata,
        &rollback,
        &super::outputs::OutputFiles {
            metadata: arguments.metadata_file.as_deref(),
            rollback: arguments.rollback_file.as_deref(),
            dotenv: arguments.dotenv.as_deref(),
        },
    )?;
    let digest = final_digest.context("nothing was built")?;
    if let Some(path) = &arguments.run.digest_file {
        std::fs::write(path, format!("{digest}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    reporter.digest(&digest);
    Ok(())
}

/// The registries the build pushes to, or, when it pushes nowhere, those its
/// bases come from: where `--creds` without a registry goes.
fn own_registries(plan: &Plan, outputs: &[Output]) -> Vec<String> {
    let mut written = Vec::new();
    for output in outputs {
        match output {
            Output::Location(location) => written.push(location.clone()),
            Output::Push => written.extend(plan.images.iter().filter_map(|image| {
                image
                    .repository
                    .clone()
                    .map(|reference| Location::Registry { reference })
            })),
        }
    }
    let bases = plan.images.iter().filter_map(|image| match &image.base {
        crate::spec::BaseImage::Location(location) => Some(location),
        crate::spec::BaseImage::Scratch => None,
    });
    super::own_registries(&written, bases)
}

/// The registry location an image goes to when that is its only output.
fn only_registry_output(plan: &Plan, outputs: &[Output], image: &str) -> Option<Location> {
    match outputs {
        [Output::Location(location @ Location::Registry { .. })] => Some(location.clone()),
        [Output::Push] => plan
            .images
            .iter()
            .find(|candidate| candidate.name == image)
            .and_then(|candidate| candidate.repository.clone())
            .map(|reference| Location::Registry { reference }),
        _ => None,
    }
}

/// Rejects output combinations that cannot work, before anything is built.
fn check_outputs(plan: &Plan, outputs: &[Output]) -> anyhow::Result<()> {
    let names = || {
        plan.images
            .iter()
            .map(|image| image.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for output in outputs {
        let location = match output {
            Output::Location(location) => location,
            Output::Push => {
                if let Some(image) = plan.images.iter().find(|image| image.repository.is_none()) {
                    bail!(
                        "--push needs a repository for image `{}`: set `repository = \"REGISTRY/NAME\"` in its [[image]] of {}",
                        image.name,
                        plan.spec_path.display()
                    );
                }
                continue;
            }
        };
        // A malformed reference fails now, not after the build.
        if let Location::Registry { .. } = location {
            destination_tag(location).with_context(|| format!("--output {location}"))?;
        }
        let holds_one = matches!(
            location,
            Location::OciArchive { .. }
                | Location::DockerArchive { .. }
                | Location::Registry { .. }
        ) || location.tag().is_some();
        if plan.images.len() > 1 && holds_one {
            bail!(
                "{location} can hold one image, but the spec builds {} ({}): pick one with --image NAME",
                plan.images.len(),
                names()
            );
        }
        if let Location::DockerArchive { .. } = location {
            for image in &plan.images {
                if image.platforms.len() > 1 {
                    bail!(
                        "{location} holds a single-platform image, but `{}` builds {}: choose one with --platform",
                        image.name,
                        image
                            .platforms
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
        }
    }
    Ok(())
}

/// What goes to an output, and under which tags: layouts and OCI archives
/// get the index tagged with the output's tag (else the image's name);
/// docker archives get the single manifest as `REF` (else `NAME:latest`);
/// registries get the index under the reference's tag (else `latest`).
fn top_and_tags(
    image: &BuiltImage,
    location: &Location,
    extra: &[String],
) -> anyhow::Result<(Manifest, Vec<String>)> {
    let top = match location {
        Location::DockerArchive { .. } => Manifest::Image(image.platforms[0].image.clone()),
        _ => Manifest::Index(image.index.clone()),
    };
    let mut tags: Vec<String> = match location {
        Location::Registry { .. } => destination_tag(location)?.into_iter().collect(),
        Location::DockerArchive { reference, .. } => {
            vec![
                reference
                    .clone()
                    .unwrap_or_else(|| format!("{}:latest", image.name)),
            ]
        }
        _ => vec![
            location
                .tag()
                .map_or_else(|| image.name.clone(), str::to_string),
        ],
    };
    for tag in extra {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    Ok((top, tags))
}

/// The `--push` tags computed for the image called `name` (none when it is
/// not pushed).
fn push_tags_of<'a>(push_tags: &'a [(String, Vec<String>)], name: &str) -> &'a [String] {
    push_tags
        .iter()
        .find(|(image, _)| image == name)
        .map_or(&[], |(_, tags)| tags.as_slice())
}

/// Where layer blobs are built when the cache is not used: beside the
/// first layout output when its directory exists, so they are hard-linked
/// into it instead of copied and hashed again from another filesystem (and
/// a tmpfs `/tmp` does not hold every layer in memory meanwhile); else the
/// system's temporary directory.
fn blob_parent(first_output: Option<&Location>) -> std::path::PathBuf {
    if let Some(Location::Layout { path, .. }) = first_output {
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        if parent.is_dir() {
            return parent;
        }
    }
    std::env::temp_dir()
}
