//! `hoist ls`, `hoist digest`, `hoist tag`, `hoist delete` and `hoist
//! prune`: a repository's tags after the push. Listing them, reading what
//! one points at (to pin a base by digest), moving tags to a digest the
//! repository holds (a rollback moves no blobs), deleting what old tags
//! pointed at, and cleaning up by a policy that never takes a kept tag with
//! it.

use super::RegistryArguments;
use super::report::{Mode, Reporter};
use anyhow::{Context, bail};
use hoist::build::transport::parse_reference;
use hoist::image::Blob as _;
use hoist::registry::retention::{
    self, Distribution, ImageRegistry as _, KeptBecause, PrunePolicy,
};
use hoist::registry::{Access, Reference, RegistryClient};
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
pub struct DigestArguments {
    /// The references, e.g. docker.io/library/debian:12 (docker:// is optional).
    #[arg(required = true)]
    references: Vec<String>,
    /// The digest of this platform's manifest (os/arch[/variant]) instead of
    /// the index's.
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
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
    /// Leave the deleted manifest's referrers fallback index
    /// (`sha256-<hex>`) and cosign signatures (`sha256-<hex>.sig`) in place.
    #[arg(long)]
    keep_attachments: bool,
    #[command(flatten)]
    output: OutputArguments,
    #[command(flatten)]
    registry: RegistryArguments,
}

#[derive(Debug, clap::Args)]
pub struct PruneArguments {
    /// The repository, e.g. ghcr.io/acme/api (docker:// is optional).
    repository: String,
    /// Tags that may go (`pr-*`, `sha-*`). Repeatable; tags matching none
    /// are never touched.
    #[arg(long = "match", value_name = "GLOB", required = true)]
    patterns: Vec<String>,
    /// Keep the newest N matching tags, by when their images were created.
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// Let go only of images created longer ago than this: 12h, 30d, 8w.
    #[arg(long, value_name = "AGE")]
    older_than: Option<String>,
    /// Print what would be deleted, and delete nothing.
    #[arg(long)]
    dry_run: bool,
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

/// A repository from the command line, refusing a tag or digest.
fn repository(text: &str, command: &str) -> anyhow::Result<Reference> {
    let parsed = reference(text)?;
    if names_tag_or_digest(text) {
        bail!(
            "{text}: `hoist {command}` takes a repository without a tag or digest, e.g. {}",
            parsed.repository_name()
        );
    }
    Ok(parsed)
}

fn glob_set(patterns: &[String]) -> anyhow::Result<globset::GlobSet> {
    let mut set = globset::GlobSetBuilder::new();
    for pattern in patterns {
        set.add(globset::Glob::new(pattern).with_context(|| format!("--match {pattern}"))?);
    }
    set.build().context("--match")
}

/// Seconds in an age such as `12h`, `30d` or `8w`.
fn parse_age(text: &str) -> anyhow::Result<i64> {
    let unit = match text.chars().last() {
        Some('h') => 3600,
        Some('d') => 86_400,
        Some('w') => 7 * 86_400,
        _ => bail!("--older-than {text}: give a number of hours, days or weeks, e.g. 12h, 30d, 8w"),
    };
    let count: i64 = text[..text.len() - 1]
        .parse()
        .ok()
        .filter(|count| *count >= 0)
        .with_context(|| {
            format!("--older-than {text}: give a number of hours, days or weeks, e.g. 12h, 30d, 8w")
        })?;
    count
        .checked_mul(unit)
        .with_context(|| format!("--older-than {text}: too long"))
}

pub fn list(arguments: ListArguments) -> anyhow::Result<()> {
    let repository = repository(&arguments.repository, "ls")?;
    let patterns = glob_set(&arguments.patterns)?;
    let client = client_for(&arguments.registry, std::slice::from_ref(&repository))?;
    let mut listed: Vec<String> = client
        .repository(&repository, Access::PULL)
        .tags()?
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

pub fn digest(arguments: DigestArguments) -> anyhow::Result<()> {
    let platform = arguments
        .platform
        .as_deref()
        .map(|text| {
            text.parse::<hoist::oci::Platform>()
                .with_context(|| format!("--platform {text}"))
        })
        .transpose()?;
    let references = arguments
        .references
        .iter()
        .map(|text| reference(text))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let client = client_for(&arguments.registry, &references)?;
    for reference in &references {
        let digest = match &platform {
            None => hoist::registry::require_manifest_digest(&client, reference)?,
            Some(platform) => {
                use hoist::source::Source as _;
                let manifest =
                    hoist::registry::RegistrySource::new(client.clone(), reference.clone())
                        .resolve()?;
                hoist::source::select_platform(&manifest, platform)?
                    .manifest
                    .digest()
                    .clone()
            }
        };
        println!("{digest}");
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
    let digest = client
        .repository(&source, Access::PUSH)
        .tag_manifest(&source.manifest_reference(), &arguments.tags)
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

pub fn prune(arguments: PruneArguments) -> anyhow::Result<()> {
    let reporter = arguments.output.reporter();
    let repository = repository(&arguments.repository, "prune")?;
    if arguments.keep.is_none() && arguments.older_than.is_none() {
        bail!("say which matching tags stay: --keep N (the newest N), --older-than AGE, or both");
    }
    let created_before = match &arguments.older_than {
        Some(age) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("reading the clock")?
                .as_secs();
            Some(i64::try_from(now).unwrap_or(i64::MAX) - parse_age(age)?)
        }
        None => None,
    };
    let policy = PrunePolicy {
        patterns: glob_set(&arguments.patterns)?,
        keep: arguments.keep,
        created_before,
    };
    let client = client_for(&arguments.registry, std::slice::from_ref(&repository))?;
    let registry = Distribution::new(client.repository(&repository, Access::DELETE));
    let listed = registry.tags()?;
    let facts = retention::gather(&registry, &listed, &policy)
        .with_context(|| format!("reading the tags of {}", repository.repository_name()))?;
    let mut plan = retention::plan(&facts, &policy);
    retention::add_api_referrers(&registry, &facts, &mut plan).with_context(|| {
        format!(
            "asking {} for the referrers of what would go",
            repository.repository_name()
        )
    })?;
    for (tag, why) in &plan.kept {
        let reason = match why {
            KeptBecause::Newest => "among the newest".to_string(),
            KeptBecause::Recent => "newer than --older-than".to_string(),
            KeptBecause::NoCreationTime => "its image has no creation time".to_string(),
            KeptBecause::Shared { with } => {
                format!("its manifest also carries {}", with.join(", "))
            }
        };
        reporter.line(&format!("keep {tag}: {reason}"));
        reporter.json(json!({"event": "kept", "tag": tag, "reason": reason}));
    }
    let verb = if arguments.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for (digest, tags) in &plan.delete {
        if !arguments.dry_run {
            registry.delete_manifest(digest)?;
        }
        reporter.line(&format!("{verb} {digest} ({})", tags.join(", ")));
        reporter.quiet_line(digest.as_ref());
        reporter.json(json!({
            "event": if arguments.dry_run { "would-delete" } else { "deleted" },
            "digest": digest.to_string(),
            "tags": tags,
        }));
    }
    // After what they refer to, so a failed delete never leaves an image
    // without its attestations.
    let mut gone_already = 0;
    for (referrer, subject) in &plan.referrers {
        if !arguments.dry_run && !registry.delete_manifest_if_present(referrer)? {
            reporter.line(&format!(
                "{referrer} (a referrer of {subject}) went with it"
            ));
            gone_already += 1;
            continue;
        }
        reporter.line(&format!("{verb} {referrer} (a referrer of {subject})"));
        reporter.quiet_line(referrer.as_ref());
        reporter.json(json!({
            "event": if arguments.dry_run { "would-delete" } else { "deleted" },
            "digest": referrer.to_string(),
            "tags": [],
            "referrer-of": subject.to_string(),
        }));
    }
    reporter.line(&format!(
        "{}: {verb} {} manifests ({} tags), kept {} matching tags",
        repository.repository_name(),
        plan.delete.len() + plan.referrers.len() - gone_already,
        plan.delete
            .iter()
            .map(|(_, tags)| tags.len())
            .sum::<usize>(),
        plan.kept.len()
    ));
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
        // Pinned first, so the attachments looked up are those of what is
        // deleted even if the tag moves meanwhile.
        let registry = Distribution::new(client.repository(reference, Access::DELETE));
        let repository = registry.repository();
        let digest = repository.require_manifest_digest(&reference.manifest_reference())?;
        let listed = if arguments.keep_attachments {
            Vec::new()
        } else {
            registry.children(&digest)?
        };
        repository.delete_found_manifest(&digest)?;
        reporter.line(&format!("deleted {reference} ({digest})"));
        reporter.quiet_line(digest.as_ref());
        reporter.json(json!({
            "event": "deleted",
            "reference": reference.to_string(),
            "digest": digest.to_string(),
        }));
        if arguments.keep_attachments {
            continue;
        }
        let attachments =
            retention::attachments_of(&registry, &digest, &listed).with_context(|| {
                format!("{reference} is deleted; looking up what was attached to it")
            })?;
        for (attachment, tags_on_it) in attachments.tagged {
            registry.delete_manifest(&attachment)?;
            let shown = reference.with_tag(&tags_on_it.join(" "));
            reporter.line(&format!("deleted {shown} ({attachment}), attached to it"));
            reporter.quiet_line(attachment.as_ref());
            reporter.json(json!({
                "event": "deleted",
                "reference": shown.to_string(),
                "digest": attachment.to_string(),
                "attached-to": digest.to_string(),
            }));
        }
        for (referrer, subject) in attachments.referrers {
            let shown = reference.with_digest(referrer.clone());
            if !registry.delete_manifest_if_present(&referrer)? {
                reporter.line(&format!("{shown}, a referrer of {subject}, went with it"));
                continue;
            }
            reporter.line(&format!("deleted {shown}, a referrer of {subject}"));
            reporter.quiet_line(referrer.as_ref());
            reporter.json(json!({
                "event": "deleted",
                "reference": shown.to_string(),
                "digest": referrer.to_string(),
                "attached-to": digest.to_string(),
                "referrer-of": subject.to_string(),
            }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_hours_days_or_weeks() {
        assert_eq!(parse_age("12h").unwrap(), 12 * 3600);
        assert_eq!(parse_age("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_age("2w").unwrap(), 14 * 86_400);
        for bad in ["30", "d", "-1d", "1.5d", "3m", ""] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_tag_or_digest_is_seen_in_the_last_segment_only() {
        assert!(!names_tag_or_digest("localhost:5000/app"));
        assert!(!names_tag_or_digest("ghcr.io/acme/api"));
        assert!(names_tag_or_digest("localhost:5000/app:1"));
        assert!(names_tag_or_digest("ghcr.io/acme/api@sha256:0123"));
        assert!(names_tag_or_digest("docker://ghcr.io/acme/api:latest"));
    }
}
