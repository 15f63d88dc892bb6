//! Files CI systems read back after a build: GitHub's `GITHUB_OUTPUT` and
//! `GITHUB_STEP_SUMMARY`, a GitLab dotenv report, and the rollback file
//! that says how to put each moved tag back. All are written from
//! [`BuildMetadata`], after publishing.

use super::CiError;
use super::metadata::{BuildMetadata, ImageMetadata, ImageStatus, write_atomically};
use crate::oci::{Digest, sha256_digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// Step outputs for GitHub Actions, named as docker/metadata-action names
/// them: `digest`, `image`, `tags`, `version` and `labels` describe the
/// first image (the only one in most specs), `images` every image, `dry-run`
/// whether anything was pushed, and `metadata` the whole build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitHubOutputs {
    /// Top manifest digest of the first image.
    pub digest: Digest,
    /// `repository@digest` of the first image (its digest alone when it was
    /// not pushed to a registry).
    pub image: String,
    /// Every `repository:tag` of every image, one per line.
    pub tags: Vec<String>,
    /// The first image's `org.opencontainers.image.version` label.
    pub version: String,
    /// The first image's config labels, as `key=value` lines.
    pub labels: Vec<String>,
    /// Every image by name, as one line of JSON (see [`ImageOutput`]).
    pub images: String,
    pub dry_run: bool,
    /// The whole build, as one line of JSON.
    pub metadata: String,
}

/// One image in the `images` output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageOutput {
    pub digest: Digest,
    /// `repository@digest`, or the digest alone when nothing was pushed.
    pub image: String,
    /// `repository:tag` for every tag.
    pub tags: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub version: Option<String>,
    pub status: ImageStatus,
}

impl ImageOutput {
    pub fn new(image: &ImageMetadata) -> ImageOutput {
        ImageOutput {
            digest: image.digest.clone(),
            image: image
                .pinned_reference()
                .unwrap_or_else(|| image.digest.to_string()),
            tags: image.tag_references(),
            labels: image.labels.clone(),
            version: image.version.clone(),
            status: image.status,
        }
    }
}

impl GitHubOutputs {
    /// `None` when the build produced no image.
    pub fn from_metadata(metadata: &BuildMetadata) -> Result<Option<GitHubOutputs>, CiError> {
        let Some(first) = metadata.images.first() else {
            return Ok(None);
        };
        let images: BTreeMap<&str, ImageOutput> = metadata
            .images
            .iter()
            .map(|image| (image.name.as_str(), ImageOutput::new(image)))
            .collect();
        let images = serde_json::to_string(&images).map_err(|source| CiError::Encode {
            what: "images output",
            source,
        })?;
        let first_output = ImageOutput::new(first);
        Ok(Some(GitHubOutputs {
            digest: first_output.digest,
            image: first_output.image,
            tags: metadata
                .images
                .iter()
                .flat_map(ImageMetadata::tag_references)
                .collect(),
            version: first.version.clone().unwrap_or_default(),
            labels: first
                .labels
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect(),
            images,
            dry_run: metadata.dry_run,
            metadata: metadata.to_json_line()?,
        }))
    }

    /// Appends the outputs to `path` (the file `GITHUB_OUTPUT` names; other
    /// steps append to it too). Every value uses the `key<<DELIMITER` form
    /// GitHub documents for multi-line values. The delimiter is derived from
    /// the value's digest: unique without randomness, and it cannot occur in
    /// the value.
    pub fn write(&self, path: &Path) -> Result<(), CiError> {
        let mut text = String::new();
        let entries = [
            ("digest", self.digest.to_string()),
            ("image", self.image.clone()),
            ("tags", self.tags.join("\n")),
            ("version", self.version.clone()),
            ("labels", self.labels.join("\n")),
            ("images", self.images.clone()),
            ("dry-run", self.dry_run.to_string()),
            ("metadata", self.metadata.clone()),
        ];
        for (key, value) in entries {
            let delimiter = format!("ghadelimiter_{}", sha256_digest(value.as_bytes()).digest());
            if value.lines().any(|line| line == delimiter) {
                return Err(CiError::OutputValue {
                    key: key.to_string(),
                    path: path.to_path_buf(),
                    reason: "the value contains its own delimiter line",
                });
            }
            // Infallible: writing to a String.
            let _ = write!(text, "{key}<<{delimiter}\n{value}\n{delimiter}\n");
        }
        append(path, text.as_bytes())
    }
}

/// Appends a Markdown section per image to `path` (the file
/// `GITHUB_STEP_SUMMARY` names): its status, a table of platforms with
/// manifest digests, sizes and layer counts, the tags, the attestations and a
/// `docker pull repository@digest` line. A dry run says so first.
pub fn step_summary(path: &Path, metadata: &BuildMetadata) -> Result<(), CiError> {
    let mut text = String::new();
    if metadata.dry_run {
        let _ = writeln!(text, "**Dry run: nothing was pushed.**\n");
    }
    if let Some(scan) = &metadata.scan {
        summarize_scan(&mut text, scan);
    }
    for image in &metadata.images {
        summarize_image(&mut text, image);
    }
    append(path, text.as_bytes())
}

/// The vulnerability gate first: when it failed, nothing below was pushed.
fn summarize_scan(text: &mut String, scan: &super::ScanGateMetadata) {
    let verdict = if scan.passed { "passed" } else { "failed" };
    let _ = writeln!(text, "### Vulnerability scan: {verdict}\n");
    for reason in &scan.reasons {
        let _ = writeln!(text, "- {reason}");
    }
    let counts: Vec<String> = scan
        .counts
        .iter()
        .map(|(severity, count)| format!("{severity}: {count}"))
        .collect();
    let _ = writeln!(text, "\nFindings: {}\n", counts.join(", "));
    if scan.findings.is_empty() {
        return;
    }
    let _ = writeln!(
        text,
        "| Image | Platform | Package | Installed | Fixed in | Advisory | Severity |"
    );
    let _ = writeln!(text, "| --- | --- | --- | --- | --- | --- | --- |");
    for finding in &scan.findings {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {} | {} |",
            finding.image,
            finding.platform,
            finding.package,
            finding.installed,
            finding.fixed.as_deref().unwrap_or("-"),
            finding.advisory,
            finding.severity
        );
    }
    let _ = writeln!(text);
}

fn summarize_image(text: &mut String, image: &ImageMetadata) {
    let _ = writeln!(text, "### {}\n", image.name);
    let _ = writeln!(text, "Status: {}\n", image.status.as_str());
    let _ = writeln!(text, "Digest: `{}`\n", image.digest);
    let _ = writeln!(text, "| Platform | Manifest digest | Size | Layers |");
    let _ = writeln!(text, "| --- | --- | ---: | ---: |");
    for platform in &image.platforms {
        let _ = writeln!(
            text,
            "| {} | `{}` | {} | {} |",
            platform.platform,
            platform.digest,
            indicatif::HumanBytes(platform.size),
            platform.layers
        );
    }
    let _ = writeln!(text);
    let tags = image.tag_references();
    if tags.is_empty() {
        let _ = writeln!(text, "Tags: none (published by digest)\n");
    } else {
        let quoted: Vec<String> = tags.iter().map(|tag| format!("`{tag}`")).collect();
        let _ = writeln!(text, "Tags: {}\n", quoted.join(", "));
    }
    for attestation in &image.attestations {
        let subject = attestation
            .subject
            .as_ref()
            .map_or_else(|| "the index".to_string(), |digest| format!("`{digest}`"));
        let _ = writeln!(
            text,
            "- Attestation `{}` for {}: {}",
            attestation.digest,
            subject,
            attestation.predicate_types.join(", ")
        );
    }
    if !image.attestations.is_empty() {
        let _ = writeln!(text);
    }
    // A pull line only for what a registry holds.
    if let Some(reference) = image.pinned_reference()
        && image.status != ImageStatus::DryRun
    {
        let _ = writeln!(text, "```sh\ndocker pull {reference}\n```\n");
    }
}

/// GitLab's dotenv report (`artifacts: reports: dotenv:`), for later jobs:
/// `HOIST_DIGEST`, `HOIST_IMAGE` (the first image) and `HOIST_TAGS` (every
/// image's, comma-separated), `HOIST_DRY_RUN`, `HOIST_IMAGES` (the names),
/// and per image `HOIST_<NAME>_DIGEST`, `_IMAGE`, `_TAGS`, `_VERSION` and
/// `_STATUS`, `<NAME>` upper-cased with every other character than a letter
/// or digit made `_`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitLabDotenv {
    pub digest: Digest,
    pub image: String,
    pub tags: Vec<String>,
    pub dry_run: bool,
    /// Every image by name.
    pub images: Vec<(String, ImageOutput)>,
}

impl GitLabDotenv {
    /// `None` when the build produced no image.
    pub fn from_metadata(metadata: &BuildMetadata) -> Option<GitLabDotenv> {
        let first = ImageOutput::new(metadata.images.first()?);
        Some(GitLabDotenv {
            digest: first.digest,
            image: first.image,
            tags: metadata
                .images
                .iter()
                .flat_map(ImageMetadata::tag_references)
                .collect(),
            dry_run: metadata.dry_run,
            images: metadata
                .images
                .iter()
                .map(|image| (image.name.clone(), ImageOutput::new(image)))
                .collect(),
        })
    }

    fn entries(&self) -> Vec<(String, String)> {
        let mut entries = vec![
            ("HOIST_DIGEST".to_string(), self.digest.to_string()),
            ("HOIST_IMAGE".to_string(), self.image.clone()),
            ("HOIST_TAGS".to_string(), self.tags.join(",")),
            ("HOIST_DRY_RUN".to_string(), self.dry_run.to_string()),
            (
                "HOIST_IMAGES".to_string(),
                self.images
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ];
        for (name, image) in &self.images {
            let prefix = format!("HOIST_{}", variable_part(name));
            entries.extend([
                (format!("{prefix}_DIGEST"), image.digest.to_string()),
                (format!("{prefix}_IMAGE"), image.image.clone()),
                (format!("{prefix}_TAGS"), image.tags.join(",")),
                (
                    format!("{prefix}_VERSION"),
                    image.version.clone().unwrap_or_default(),
                ),
                (
                    format!("{prefix}_STATUS"),
                    image.status.as_str().to_string(),
                ),
            ]);
        }
        entries
    }

    /// Replaces `path` with the report. GitLab's dotenv has no quoting and
    /// no multi-line values, so a value with a line break is refused.
    pub fn write(&self, path: &Path) -> Result<(), CiError> {
        let mut text = String::new();
        for (key, value) in self.entries() {
            if value.contains(['\n', '\r']) {
                return Err(CiError::OutputValue {
                    key,
                    path: path.to_path_buf(),
                    reason: "GitLab dotenv values cannot span lines",
                });
            }
            let _ = writeln!(text, "{key}={value}");
        }
        write_atomically(path, text.as_bytes())
    }
}

/// An image name as part of a variable name: `api-v2.web` -> `API_V2_WEB`.
fn variable_part(name: &str) -> String {
    name.chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() {
                character.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// How to undo one tag move: the tag pointed at `previous_digest` before
/// this build moved it to `new_digest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRecord {
    /// `ghcr.io/org/web`.
    pub repository: String,
    pub tag: String,
    /// `None` when the tag is new: there is nothing to restore.
    pub previous_digest: Option<Digest>,
    pub new_digest: Digest,
    /// `hoist tag repo@previous tag`: the tag moves back; no blob moves.
    pub restore_command: Option<String>,
}

impl RollbackRecord {
    pub fn new(
        repository: &str,
        tag: &str,
        previous_digest: Option<Digest>,
        new_digest: Digest,
    ) -> RollbackRecord {
        let restore_command = previous_digest
            .as_ref()
            .map(|previous| format!("hoist tag {repository}@{previous} {tag}"));
        RollbackRecord {
            repository: repository.to_string(),
            tag: tag.to_string(),
            previous_digest,
            new_digest,
            restore_command,
        }
    }

    /// The tag did not move (same digest as before): nothing to roll back.
    pub fn is_unchanged(&self) -> bool {
        self.previous_digest.as_ref() == Some(&self.new_digest)
    }
}

/// Writes the records as an indented JSON array, replacing `path` atomically.
pub fn write_rollback_file(path: &Path, records: &[RollbackRecord]) -> Result<(), CiError> {
    let bytes = serde_json::to_vec_pretty(records).map_err(|source| CiError::Encode {
        what: "rollback records",
        source,
    })?;
    write_atomically(path, &bytes)
}

/// Appends in one write, so concurrent appenders do not interleave lines.
fn append(path: &Path, bytes: &[u8]) -> Result<(), CiError> {
    let error = |source| CiError::WriteOutput {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(error)?;
    file.write_all(bytes).map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_command_only_when_there_was_a_previous_digest() {
        let previous = sha256_digest(b"old");
        let new = sha256_digest(b"new");
        let record = RollbackRecord::new(
            "ghcr.io/org/web",
            "main",
            Some(previous.clone()),
            new.clone(),
        );
        assert_eq!(
            record.restore_command.as_deref(),
            Some(format!("hoist tag ghcr.io/org/web@{previous} main").as_str())
        );
        assert!(!record.is_unchanged());
        let fresh = RollbackRecord::new("ghcr.io/org/web", "v2", None, new.clone());
        assert_eq!(fresh.restore_command, None);
        assert!(RollbackRecord::new("r", "t", Some(new.clone()), new).is_unchanged());
    }
}
