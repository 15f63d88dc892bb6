//! `hoist build`: spec → plan → images → every output.

use super::report::{Mode, Reporter};
use crate::build::transport::Transports;
use crate::build::{BuildOptions, BuiltImage, build_image};
use crate::image::{Blob, Manifest, publish};
use crate::oci::{Location, Platform};
use crate::spec::{Plan, PlanOptions};
use anyhow::{Context, bail};
use serde_json::json;
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
    /// Where to write: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]. Repeatable.
    #[arg(short, long = "output", value_name = "LOCATION")]
    outputs: Vec<String>,
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
}

/// An output with the images it receives.
struct Output {
    location: Location,
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

    let locations: Vec<Location> = if arguments.outputs.is_empty() {
        vec![plan.output.clone().unwrap_or(Location::Layout {
            path: PathBuf::from("hoist-out"),
            tag: None,
        })]
    } else {
        arguments
            .outputs
            .iter()
            .map(|text| {
                text.parse::<Location>()
                    .with_context(|| format!("--output {text}"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let outputs: Vec<Output> = locations
        .into_iter()
        .map(|location| Output { location })
        .collect();
    check_outputs(&plan, &outputs)?;

    let transports = Transports::new()?;
    let blob_directory = tempfile::Builder::new()
        .prefix("hoist-blobs-")
        .tempdir()
        .context("creating a temporary directory for layer blobs")?;
    let build_options = BuildOptions {
        jobs,
        blob_directory: blob_directory.path().to_path_buf(),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("starting worker threads")?;

    // Build everything before writing anything, so a failing image leaves no
    // output half-written.
    let built: Vec<BuiltImage> = pool.install(|| {
        plan.images
            .iter()
            .map(|image| build_image(image, &build_options, &transports, &reporter))
            .collect::<Result<_, _>>()
    })?;

    let mut final_digest = None;
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
        for (position, output) in outputs.iter().enumerate() {
            let (top, tags) = top_and_tags(image, &output.location, &arguments.tags);
            let sink = transports.sink(&output.location)?;
            pool.install(|| publish(&top, sink.as_ref(), &tags, &reporter))
                .with_context(|| {
                    format!("writing image `{}` to {}", image.name, output.location)
                })?;
            reporter.json(json!({
                "event": "output",
                "image": image.name,
                "output": output.location.to_string(),
                "digest": top.digest().to_string(),
                "tags": tags,
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

/// Rejects output combinations that cannot work, before anything is built.
fn check_outputs(plan: &Plan, outputs: &[Output]) -> anyhow::Result<()> {
    for output in outputs {
        let location = &output.location;
        let single_file = matches!(
            location,
            Location::OciArchive { .. } | Location::DockerArchive { .. }
        );
        if plan.images.len() > 1 && (single_file || location.tag().is_some()) {
            bail!(
                "{location} can hold one image, but the spec builds {} ({}): pick one with --image NAME",
                plan.images.len(),
                plan.images
                    .iter()
                    .map(|image| image.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
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
/// docker archives get the single manifest as `REF` (else `NAME:latest`).
fn top_and_tags(
    image: &BuiltImage,
    location: &Location,
    extra: &[String],
) -> (Manifest, Vec<String>) {
    let (top, default_tag) = match location {
        Location::DockerArchive { .. } => (
            Manifest::Image(image.platforms[0].image.clone()),
            format!("{}:latest", image.name),
        ),
        _ => (Manifest::Index(image.index.clone()), image.name.clone()),
    };
    let mut tags = vec![location.tag().map_or(default_tag, str::to_string)];
    for tag in extra {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    (top, tags)
}
