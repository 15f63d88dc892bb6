//! Resolution of a parsed spec into a [`Plan`]: defaults filled in, every
//! value checked, every source path checked to exist for every platform it
//! expands to. The build takes a plan and never sees the spec's raw types.

mod resolve;

use super::error::{SpecError, SpecLocation};
use super::file::SpecFile;
use crate::layer::{Compression, LayerInput, LayerRecipe, OwnerPolicy, Permissions};
use crate::oci::time::LATEST_EPOCH;
use crate::oci::{Digest, Location, Platform, sha256_digest};
use resolve::Resolver;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// What the caller adds to the spec: the environment and command-line filters.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// The value of `SOURCE_DATE_EPOCH`, if set.
    pub source_date_epoch: Option<String>,
    /// Build only these images (all when empty).
    pub images: Vec<String>,
    /// Build only these platforms (all of each image's when empty).
    pub platforms: Vec<Platform>,
}

/// A validated spec.
#[derive(Clone, Debug)]
pub struct Plan {
    pub spec_path: PathBuf,
    pub spec_directory: PathBuf,
    /// sha256 of the spec file's bytes, for provenance.
    pub spec_digest: Digest,
    /// The spec's default output, resolved against its directory.
    pub output: Option<Location>,
    /// `cache-repo`: the layer cache in a registry, read and written.
    pub cache_repository: Option<String>,
    pub images: Vec<ImagePlan>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseImage {
    Scratch,
    /// A layout, archive or registry reference.
    Location(Location),
}

/// One `[[image]]`, resolved.
#[derive(Clone, Debug)]
pub struct ImagePlan {
    pub name: String,
    pub base: BaseImage,
    pub platforms: Vec<Platform>,
    pub compression: Compression,
    pub epoch: u64,
    pub config: ImageConfigPlan,
    pub repository: Option<String>,
    /// The spec's `tags`, checked; `None` means the default strategy.
    pub tags: Option<crate::ci::TagSpec>,
    /// `skip-unchanged = true`: skip the image when the published one carries
    /// the same inputs digest.
    pub skip_unchanged: bool,
    /// The spec's text for this `[[image]]`, one of the inputs whose digest
    /// decides whether the image changed.
    pub section: String,
    pub layers: Vec<LayerTemplate>,
    /// `sbom = true`.
    pub sbom: bool,
    /// `provenance = true | "max"`.
    pub provenance: Option<ProvenanceLevel>,
    /// `scan = { ... }`: the vulnerability gate before publishing.
    pub scan: Option<super::scan::ScanPlan>,
}

/// How much build provenance to attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProvenanceLevel {
    /// Reproducible: no times.
    Min,
    /// With the build's start and finish times.
    Max,
}

/// `[image.config]`, resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfigPlan {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// `PORT/PROTOCOL`, protocol defaulted to tcp.
    pub ports: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
}

/// A layer whose sources may still contain platform placeholders.
#[derive(Clone, Debug)]
pub struct LayerTemplate {
    pub name: String,
    pub inputs: Vec<InputTemplate>,
    pub owner: OwnerPolicy,
    pub permissions: Permissions,
    pub remove: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct InputTemplate {
    /// Absolute path, possibly with `{os}`, `{arch}`, `{variant}`, `{platform}`.
    pub source: String,
    pub target: String,
    pub mode: Option<u32>,
    pub exclude: Vec<String>,
}

const PLACEHOLDERS: &[&str] = &["{os}", "{arch}", "{variant}", "{platform}"];

impl Plan {
    /// Reads and resolves the spec at `path`.
    pub fn load(path: &Path, options: &PlanOptions) -> Result<Plan, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Plan::parse(path, &text, options)
    }

    /// Resolves spec `text` as if read from `path`.
    pub fn parse(path: &Path, text: &str, options: &PlanOptions) -> Result<Plan, SpecError> {
        let spec: SpecFile = toml::from_str(text).map_err(|error| SpecError::Syntax {
            location: SpecLocation::from_span(path, text, &error.span().unwrap_or(0..0)),
            message: error.message().trim().to_string(),
        })?;
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let directory = std::path::absolute(&directory).unwrap_or(directory);
        let resolver = Resolver {
            path,
            text,
            directory: &directory,
        };

        let environment_epoch = match &options.source_date_epoch {
            Some(value) => {
                let epoch = value.trim().parse::<u64>().map_err(|_| {
                    SpecError::MalformedSourceDateEpoch {
                        value: value.clone(),
                    }
                })?;
                if epoch > LATEST_EPOCH {
                    return Err(SpecError::SourceDateEpochTooLate {
                        value: value.clone(),
                    });
                }
                Some(epoch)
            }
            None => None,
        };

        let output = match &spec.output {
            Some(output) => Some(resolver.location(output.get_ref(), output.span(), "output")?),
            None => None,
        };

        if let Some(repository) = &spec.cache_repo {
            super::cache_repo::check(repository.get_ref())
                .map_err(|reason| resolver.invalid(repository.span(), "cache-repo", reason))?;
        }

        if spec.images.is_empty() {
            return Err(SpecError::NoImages {
                path: path.to_path_buf(),
            });
        }
        let mut names = BTreeSet::new();
        for image in &spec.images {
            let name = image.get_ref().name.get_ref();
            if !names.insert(name.clone()) {
                return Err(resolver.invalid(
                    image.get_ref().name.span(),
                    "name",
                    format!("another image is already named `{name}`: image names must be unique"),
                ));
            }
        }
        for wanted in &options.images {
            if !names.contains(wanted) {
                return Err(SpecError::UnknownImage {
                    name: wanted.clone(),
                    available: names.iter().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        }

        if let Some(defaults) = &spec.defaults
            && let Some(refused) = super::defaults::refused_key(defaults.get_ref())
        {
            return Err(resolver.invalid(
                refused.span,
                refused.key,
                format!("`[defaults]` cannot set it: {}", refused.reason),
            ));
        }
        let boundaries = section_boundaries(&spec, text);
        let defaults = spec.defaults.map(toml::Spanned::into_inner);
        let mut git_epoch = None;
        let mut images = Vec::new();
        for image in spec.images {
            let span = image.span();
            let mut image = image.into_inner();
            if !options.images.is_empty() && !options.images.contains(image.name.get_ref()) {
                continue;
            }
            let used_defaults = defaults
                .as_ref()
                .map(|defaults| super::defaults::apply(&mut image, defaults))
                .unwrap_or_default();
            let epoch = match (environment_epoch, &image.source_date_epoch) {
                (Some(epoch), _) => epoch,
                (None, Some(epoch)) => u64::try_from(*epoch.get_ref())
                    .ok()
                    .filter(|seconds| *seconds <= LATEST_EPOCH)
                    .ok_or_else(|| {
                        resolver.invalid(
                            epoch.span(),
                            "source-date-epoch",
                            "must be a number of seconds from 1970-01-01 UTC (0) to \
                             9999-12-31T23:59:59Z (253402300799)"
                                .into(),
                        )
                    })?,
                (None, None) => {
                    *git_epoch.get_or_insert_with(|| git_commit_time(&directory).unwrap_or(0))
                }
            };
            let mut resolved = resolver.image(&image, epoch, &options.platforms)?;
            let end = boundaries
                .iter()
                .copied()
                .find(|boundary| *boundary > span.start)
                .unwrap_or(text.len())
                .max(span.end);
            resolved.section = text.get(span.start..end).unwrap_or_default().to_string();
            if !used_defaults.is_empty() {
                // The defaults this image took decide it as much as its own keys.
                resolved.section.push_str("\n# [defaults] used: ");
                resolved.section.push_str(&used_defaults);
            }
            images.push(resolved);
        }
        Ok(Plan {
            spec_path: path.to_path_buf(),
            spec_directory: directory.clone(),
            spec_digest: sha256_digest(text.as_bytes()),
            output,
            cache_repository: spec.cache_repo.map(toml::Spanned::into_inner),
            images,
        })
    }
}

impl ImagePlan {
    /// The layer recipes for one platform, placeholders expanded.
    pub fn recipes(&self, platform: &Platform) -> Vec<LayerRecipe> {
        self.layers
            .iter()
            .map(|layer| LayerRecipe {
                name: layer.name.clone(),
                inputs: layer
                    .inputs
                    .iter()
                    .map(|input| LayerInput {
                        source: PathBuf::from(expand(&input.source, platform)),
                        target: input.target.clone(),
                        mode: input.mode,
                        exclude: input.exclude.clone(),
                    })
                    .collect(),
                owner: layer.owner,
                permissions: layer.permissions,
                remove: layer.remove.clone(),
                epoch: self.epoch,
                compression: self.compression,
            })
            .collect()
    }
}

/// Where each image's section of the text ends: at the next `[[image]]`
/// header or `[defaults...]` header, whichever comes first. A header's span
/// covers only the header, and TOML puts no top-level key after a table, so
/// a section runs from its header to the next one of these.
fn section_boundaries(spec: &SpecFile, text: &str) -> Vec<usize> {
    let mut boundaries: Vec<usize> = spec.images.iter().map(|image| image.span().start).collect();
    // `[defaults.config]` and `[defaults.tags]` are headers of their own,
    // which the span of `[defaults]` does not cover.
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("[defaults]") || trimmed.starts_with("[defaults.") {
            boundaries.push(offset + (line.len() - trimmed.len()));
        }
        offset += line.len();
    }
    boundaries.sort_unstable();
    boundaries
}

fn expand(template: &str, platform: &Platform) -> String {
    template
        .replace("{os}", &platform.os)
        .replace("{arch}", &platform.architecture)
        .replace("{variant}", platform.variant.as_deref().unwrap_or(""))
        .replace("{platform}", &platform.to_string())
}

/// The commit time of HEAD in the spec's repository, if it is in one.
fn git_commit_time(directory: &Path) -> Option<u64> {
    let output = Command::new("git")
        .arg("-C")
        .arg(directory)
        .args(["log", "-1", "--format=%ct"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod defaults_tests;
