//! `hoist build`: spec → plan → images → every output.

use super::RegistryArguments;
use super::report::{Mode, Reporter};
use crate::build::stream::RegistryStream;
use crate::build::transport::{Transports, destination_tag};
use crate::build::{BuildOptions, BuiltImage, build_image};
use crate::image::{Blob, Manifest, publish};
use crate::layer::BlobStream;
use crate::layer::LayerCache;
use crate::oci::{Location, Platform};
use crate::spec::{Plan, PlanOptions};
use anyhow::{Context, bail};
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
    /// Worker threads (default: HOIST_JOBS, else the number of cores).
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Also write the final digest to this file.
    #[arg(long, value_name = "FILE")]
    digest_file: Option<PathBuf>,
    /// Print only the final digest.
    #[arg(short, long)]
    quiet: bool,
    /// Print one JSON object per event on stdout.
    #[arg(long, conflicts_with = "quiet")]
    json: bool,
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
    let reporter = Reporter::new(Mode::from_flags(arguments.json, arguments.quiet));
    let jobs = super::jobs(arguments.jobs)?;
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
    if arguments.push {
        outputs.push(Output::Push);
    } else if outputs.is_empty() {
        let default = Location::Layout {
            path: PathBuf::from("hoist-out"),
            tag: None,
        };
        outputs.push(Output::Location(plan.output.clone().unwrap_or(default)));
    }
    check_outputs(&plan, &outputs)?;
    let push_tags = if arguments.push {
        push_tags(&plan, &reporter)?
    } else {
        Vec::new()
    };

    let transports = Transports::new(arguments.registry.client_options(jobs)?);
    let blob_directory = tempfile::Builder::new()
        .prefix("hoist-blobs-")
        .tempdir()
        .context("creating a temporary directory for layer blobs")?;
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
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("starting worker threads")?;

    // Build everything before writing anything, so a failing image leaves no
    // output half-written. With a registry as the only output, layers are
    // pushed while they compress: blobs without a manifest are not an image.
    let mut streams = Vec::new();
    let built: Vec<BuiltImage> = pool.install(|| {
        plan.images
            .iter()
            .map(|image| {
                let stream = match only_registry_output(&plan, &outputs, &image.name) {
                    Some(location) => {
                        RegistryStream::for_location(&transports, &location)?.map(Arc::new)
                    }
                    None => None,
                };
                let options = BuildOptions {
                    stream: stream.clone().map(|stream| stream as Arc<dyn BlobStream>),
                    ..build_options.clone()
                };
                streams.push(stream);
                Ok(build_image(image, &options, &transports, &reporter)?)
            })
            .collect::<anyhow::Result<_>>()
    })?;

    let mut final_digest = None;
    for (image, stream) in built.iter().zip(&streams) {
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
        for (position, output) in outputs.iter().enumerate() {
            let (location, top, tags) = match output {
                Output::Location(location) => {
                    let (top, tags) = top_and_tags(image, location, &arguments.tags)?;
                    (location.clone(), top, tags)
                }
                Output::Push => {
                    let repository = plan
                        .images
                        .iter()
                        .find(|candidate| candidate.name == image.name)
                        .and_then(|candidate| candidate.repository.clone())
                        .context("--push without a repository")?;
                    let mut tags = push_tags
                        .iter()
                        .find(|(name, _)| *name == image.name)
                        .map(|(_, tags)| tags.clone())
                        .unwrap_or_default();
                    for tag in &arguments.tags {
                        if !tags.contains(tag) {
                            tags.push(tag.clone());
                        }
                    }
                    let location = Location::Registry {
                        reference: repository,
                    };
                    (location, Manifest::Index(image.index.clone()), tags)
                }
            };
            let sink = transports.sink(&location)?;
            let report = pool
                .install(|| publish(&top, sink.as_ref(), &tags, &reporter))
                .with_context(|| format!("writing image `{}` to {location}", image.name))?;
            let streamed = stream
                .as_ref()
                .map_or_else(Vec::new, |stream| stream.streamed());
            if let Location::Registry { reference } = &location {
                reporter.line(&format!(
                    "pushed {} to {reference} ({}): {} blobs uploaded ({} bytes), {} mounted, {} already there ({} of them streamed while building)",
                    image.name,
                    tags.join(", "),
                    report.uploaded.len(),
                    report.bytes_sent,
                    report.mounted.len(),
                    report.existed.len(),
                    streamed.len()
                ));
            }
            reporter.json(json!({
                "event": "output",
                "image": image.name,
                "output": location.to_string(),
                "digest": top.digest().to_string(),
                "tags": tags,
                "uploaded": report.uploaded.len(),
                "bytes": report.bytes_sent,
                "mounted": report.mounted.len(),
                "existed": report.existed.len(),
                "streamed": streamed.len(),
            }));
            if position == 0 {
                final_digest = Some(top.digest().to_string());
            }
        }
    }
    reporter.finish();
    let digest = final_digest.context("nothing was built")?;
    if let Some(path) = &arguments.digest_file {
        std::fs::write(path, format!("{digest}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    reporter.digest(&digest);
    Ok(())
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

/// The tags `--push` gives each image: its spec `tags` (a list, or a strategy
/// computed from git and the CI environment; the default strategy when absent).
fn push_tags(plan: &Plan, reporter: &Reporter) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let git = crate::ci::GitInfo::discover(&plan.spec_directory)?;
    let environment = crate::ci::CiEnvironment::from_process_env()?;
    let revision = crate::ci::Revision::resolve(git.as_ref(), &environment);
    let mut result = Vec::new();
    for image in &plan.images {
        let spec: crate::ci::TagSpec = match &image.tags {
            Some(value) => value.clone().try_into().with_context(|| {
                format!(
                    "`tags` of image `{}` in {}",
                    image.name,
                    plan.spec_path.display()
                )
            })?,
            None => crate::ci::TagSpec::default(),
        };
        let tags = crate::ci::compute_tags(&spec, &revision, reporter)
            .with_context(|| format!("computing the tags of image `{}`", image.name))?;
        result.push((image.name.clone(), tags));
    }
    Ok(result)
}
