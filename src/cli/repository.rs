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
use hoist::operation::repository::{
    self as repository_operation, DeleteRequest, DigestRequest, ListRequest, PruneRequest,
    TagRequest, digests, list_tags,
};
use hoist::registry::retention::PrunePolicy;
use hoist::registry::{ClientOptions, Reference};

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
    #[arg(
        long = "match",
        value_name = "GLOB",
        required_unless_present = "untagged"
    )]
    patterns: Vec<String>,
    /// Keep the newest N builds that matching tags point at (a build with
    /// several tags counts once), by push time where the registry records
    /// it (GHCR, Docker Hub, ECR), else by when the image was created.
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// Let go only of images pushed (or created) longer ago than this: 12h,
    /// 30d, 8w.
    #[arg(long, value_name = "AGE")]
    older_than: Option<String>,
    /// Delete top-level images without a tag too (with --older-than, those
    /// older than that), where the registry's API can list them (GHCR, ECR).
    #[arg(long)]
    untagged: bool,
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

/// The client options, with `--creds` without a registry going to the
/// registries of `references`.
fn client_options(
    arguments: &RegistryArguments,
    references: &[Reference],
) -> anyhow::Result<ClientOptions> {
    let mut hosts: Vec<String> = references
        .iter()
        .map(|reference| reference.registry.clone())
        .collect();
    hosts.sort();
    hosts.dedup();
    arguments.client_options_for(1, &hosts)
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

/// Seconds in an age such as `12h`, `30d` or `8w`, given to `flag`.
pub(super) fn parse_age(flag: &str, text: &str) -> anyhow::Result<i64> {
    let unit = match text.chars().last() {
        Some('h') => 3600,
        Some('d') => 86_400,
        Some('w') => 7 * 86_400,
        _ => bail!("{flag} {text}: give a number of hours, days or weeks, e.g. 12h, 30d, 8w"),
    };
    let count: i64 = text[..text.len() - 1]
        .parse()
        .ok()
        .filter(|count| *count >= 0)
        .with_context(|| {
            format!("{flag} {text}: give a number of hours, days or weeks, e.g. 12h, 30d, 8w")
        })?;
    count
        .checked_mul(unit)
        .with_context(|| format!("{flag} {text}: too long"))
}

pub fn list(arguments: ListArguments) -> anyhow::Result<()> {
    let repository = repository(&arguments.repository, "ls")?;
    let request = ListRequest {
        patterns: (!arguments.patterns.is_empty())
            .then(|| glob_set(&arguments.patterns))
            .transpose()?,
        registry: client_options(&arguments.registry, std::slice::from_ref(&repository))?,
        repository,
    };
    let listing = list_tags(&request)?;
    if arguments.json {
        println!("{}", serde_json::to_string(&listing)?);
    } else {
        for tag in &listing.tags {
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
    let request = DigestRequest {
        registry: client_options(&arguments.registry, &references)?,
        references,
        platform,
    };
    for digest in digests(&request)? {
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
    let request = TagRequest {
        registry: client_options(&arguments.registry, std::slice::from_ref(&source))?,
        source,
        tags: arguments.tags,
    };
    let digest = repository_operation::tag(&request, &reporter)?;
    reporter.digest(digest.as_ref());
    Ok(())
}

pub fn prune(arguments: PruneArguments) -> anyhow::Result<()> {
    let reporter = arguments.output.reporter();
    let repository = repository(&arguments.repository, "prune")?;
    if arguments.keep.is_none() && arguments.older_than.is_none() && !arguments.untagged {
        bail!("say which matching tags stay: --keep N (the newest N), --older-than AGE, or both");
    }
    let created_before = match &arguments.older_than {
        Some(age) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("reading the clock")?
                .as_secs();
            Some(i64::try_from(now).unwrap_or(i64::MAX) - parse_age("--older-than", age)?)
        }
        None => None,
    };
    let request = PruneRequest {
        policy: PrunePolicy {
            patterns: glob_set(&arguments.patterns)?,
            keep: arguments.keep,
            created_before,
            untagged: arguments.untagged,
        },
        dry_run: arguments.dry_run,
        api: arguments.registry.api_choice(),
        registry: client_options(&arguments.registry, std::slice::from_ref(&repository))?,
        repository,
    };
    let outcome = repository_operation::prune(&request, &reporter)?;
    let verb = if arguments.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let listed = match outcome.listed {
        0 => String::new(),
        count => format!("; with them the {count} platform and attestation manifests they listed"),
    };
    reporter.line(&format!(
        "{}: {verb} {} manifests ({} tags), kept {} matching tags{listed}",
        request.repository.repository_name(),
        outcome.manifests,
        outcome.tags,
        outcome.kept
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
    let request = DeleteRequest {
        registry: client_options(&arguments.registry, &references)?,
        references,
        keep_attachments: arguments.keep_attachments,
        api: arguments.registry.api_choice(),
    };
    repository_operation::delete(&request, &reporter)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_hours_days_or_weeks() {
        assert_eq!(parse_age("--older-than", "12h").unwrap(), 12 * 3600);
        assert_eq!(parse_age("--older-than", "30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_age("--older-than", "2w").unwrap(), 14 * 86_400);
        for bad in ["30", "d", "-1d", "1.5d", "3m", ""] {
            assert!(parse_age("--older-than", bad).is_err(), "{bad}");
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
