//! `hoist tags`: the tags each image of a spec gets from git and the CI
//! environment, without building anything.

use super::report::{Mode, Reporter};
use hoist::build::changes::{plan_tags, revision};
use hoist::spec::{Plan, PlanOptions};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct TagsArguments {
    /// The spec to read.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "hoist.toml",
        value_name = "SPEC"
    )]
    file: PathBuf,
    /// Only this image. Repeatable.
    #[arg(long = "image", value_name = "NAME")]
    images: Vec<String>,
    /// An extra tag, as `hoist build --tag` adds. Repeatable.
    #[arg(short, long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Print one JSON array of {image, repository, tags} (warnings go to stderr).
    #[arg(long)]
    json: bool,
}

/// Prints `NAME REPOSITORY TAG...` per image (`-` without a repository).
pub fn run(arguments: TagsArguments) -> anyhow::Result<()> {
    let reporter = Reporter::new(Mode::from_flags(arguments.json, false)).with_warnings_on_stderr();
    let options = PlanOptions {
        source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok(),
        images: arguments.images.clone(),
        platforms: Vec::new(),
    };
    let plan = Plan::load(&arguments.file, &options)?;
    let revision = revision(&plan)?;
    let entries = plan_tags(&plan, &revision, &arguments.tags, &reporter)?;
    for entry in &entries {
        reporter.line(
            &[
                entry.image.as_str(),
                entry.repository.as_deref().unwrap_or("-"),
            ]
            .into_iter()
            .chain(entry.tags.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        );
    }
    reporter.json(serde_json::to_value(&entries)?);
    Ok(())
}
