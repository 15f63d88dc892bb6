//! `hoist ls`, `hoist tag` and `hoist delete`: a repository's tags after the
//! push. Listing them, moving tags to a digest the repository holds (a
//! rollback moves no blobs), and deleting what old tags pointed at.

use super::RegistryArguments;
use super::report::{Mode, Reporter};
use crate::build::transport::parse_reference;
use crate::registry::{Reference, RegistryClient, tags};
use anyhow::{Context, bail};
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct ListArguments {
    /// The repository, e.g. ghcr.io/acme/api (docker:// is optional). Tags
    /// print one per line, sorted.
    repository: String,
    /// Only tags matching this glob (`pr-*`, `sha-*`, `1.*`). Repeatable: a
    /// tag matching any is listed.
    #[arg(long = "match", value_name = "GLOB")]
    patterns: Vec<String>,
    /// Print the tags as one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArguments,
}

#[derive(Debug, clap::Args)]
pub struct TagArguments {
    /// What the tags should point at: REPOSITORY:TAG or REPOSITORY@DIGEST.
    source: String,
    /// The tags to point at it, in the same repository.
    #[arg(required = true)]
    tags: Vec<String>,
    #[command(flatten)]
    output: OutputArguments,
    #[command(flatten)]
    registry: RegistryArguments,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArguments {
    /// The manifests to delete: REPOSITORY@DIGEST, or REPOSITORY:TAG for the
    /// manifest the tag points at (every other tag on it goes too).
    #[arg(required = true)]
    references: Vec<String>,
    #[command(flatten)]
    output: OutputArguments,
    #[command(flatten)]
    registry: RegistryArguments,
}

#[derive(Debug, clap::Args)]
struct OutputArguments {
    /// Print only the digests.
    #[arg(short, long)]
    quiet: bool,
    /// Print one JSON object per event on stdout.
    #[arg(long, conflicts_with = "quiet")]
    json: bool,
}

impl OutputArguments {
    fn reporter(&self) -> Reporter {
        Reporter::new(Mode::from_flags(self.json, self.quiet))
    }
}

/// A registry reference from the command line, with or without `docker://`.
fn reference(text: &str) -> anyhow::Result<Reference> {
    if text.contains("://") && !text.starts_with("docker://") {
        bail!("{text}: only registry references work here (REGISTRY/REPOSITORY, or docker://…)");
    }
    Ok(parse_reference(text.trim_start_matches("docker://"))?)
}

/// True when a reference names a tag or a digest: parsed, one that names
/// neither stands for `latest`, which must not be deleted or listed by
/// accident.
fn names_tag_or_digest(text: &str) -> bool {
    let last = text.rsplit('/').next().unwrap_or(text);
    last.contains(':') || last.contains('@')
}

/// A client whose `--creds` without a registry go to the registries of
/// `references`.
fn client_for(
    arguments: &RegistryArguments,
    references: &[Reference],
) -> anyhow::Result<RegistryClient> {
    let mut hosts: Vec<String> = references
        .iter()
        .map(|reference| reference.registry.clone())
        .collect();
    hosts.sort();
    hosts.dedup();
    let options = arguments.client_options_for(1, &hosts)?;
    Ok(RegistryClient::new(options)?)
}

pub fn list(arguments: ListArguments) -> anyhow::Result<()> {
    let repository = reference(&arguments.repository)?;
    if names_tag_or_digest(&arguments.repository) {
        bail!(
            "{}: `hoist ls` takes a repository without a tag or digest, e.g. {}",
            arguments.repository,
            repository.repository_name()
        );
    }
    let mut patterns = globset::GlobSetBuilder::new();
    for pattern in &arguments.patterns {
        patterns.add(globset::Glob::new(pattern).with_context(|| format!("--match {pattern}"))?);
    }
    let patterns = patterns.build().context("--match")?;
    let client = client_for(&arguments.registry, std::slice::from_ref(&repository))?;
    let mut listed: Vec<String> = tags::list_tags(&client, &repository)?
        .into_iter()
        .filter(|tag| arguments.patterns.is_empty() || patterns.is_match(tag))
        .collect();
    // In lexical order, as the distribution spec has registries page them
    // (some answer in storage order).
    listed.sort();
    if arguments.json {
        println!(
            "{}",
            json!({"repository": repository.repository_name(), "tags": listed})
        );
    } else {
        for tag in &listed {
            println!("{tag}");
        }
    }
    Ok(())
}

pub fn tag(arguments: TagArguments) -> anyhow::Result<()> {
    let reporter = arguments.output.reporter();
    let source = reference(&arguments.source)?;
    if !names_tag_or_digest(&arguments.source) {
        bail!(
            "{}: name what the tags should point at, REPOSITORY:TAG or REPOSITORY@DIGEST",
            arguments.source
        );
    }
    // Each new tag is checked as part of a reference before anything moves.
    for tag in &arguments.tags {
        let text = format!("{}:{tag}", source.repository_name());
        text.parse::<Reference>()
            .with_context(|| format!("tag {tag}"))?;
    }
    let client = client_for(&arguments.registry, std::slice::from_ref(&source))?;
    let digest = tags::tag_manifest(&client, &source, &arguments.tags)
        .with_context(|| format!("tagging {}", arguments.source))?;
    for tag in &arguments.tags {
        let tagged = source.with_tag(tag);
        reporter.line(&format!("{tagged} now points at {digest}"));
        reporter.json(json!({
            "event": "tagged",
            "reference": tagged.to_string(),
            "digest": digest.to_string(),
        }));
    }
    reporter.digest(digest.as_ref());
    Ok(())
}

pub fn delete(arguments: DeleteArguments) -> anyhow::Result<()> {
    let reporter = arguments.output.reporter();
    // Every reference is checked before the first delete.
    let references = arguments
        .references
        .iter()
        .map(|text| {
            let parsed = reference(text)?;
            if !names_tag_or_digest(text) {
                bail!("{text}: name the manifest to delete, REPOSITORY@DIGEST or REPOSITORY:TAG");
            }
            Ok(parsed)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let client = client_for(&arguments.registry, &references)?;
    for reference in &references {
        let digest = tags::delete_manifest(&client, reference)?;
        reporter.line(&format!("deleted {reference} ({digest})"));
        reporter.quiet_line(digest.as_ref());
        reporter.json(json!({
            "event": "deleted",
            "reference": reference.to_string(),
            "digest": digest.to_string(),
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_or_digest_is_seen_in_the_last_segment_only() {
        assert!(!names_tag_or_digest("localhost:5000/app"));
        assert!(!names_tag_or_digest("ghcr.io/acme/api"));
        assert!(names_tag_or_digest("localhost:5000/app:1"));
        assert!(names_tag_or_digest("ghcr.io/acme/api@sha256:0123"));
        assert!(names_tag_or_digest("docker://ghcr.io/acme/api:latest"));
    }
}
