//! What a build produced, as one serde document: images, their platforms,
//! digests, sizes, layer counts, tags and attestations, and how long each
//! phase took. Written by `--metadata-file`, and the source of every CI
//! output ([`super::outputs`]).

use super::CiError;
use super::run::RunMetadata;
use crate::image::{Blob, Image, Manifest};
use crate::oci::{Digest, Platform};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Annotation BuildKit puts on attestation manifests in an index.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
const ATTESTATION_MANIFEST: &str = "attestation-manifest";
/// Annotation on each in-toto layer naming its predicate.
const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
const VERSION_LABEL: &str = "org.opencontainers.image.version";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildMetadata {
    /// `--dry-run`: nothing was pushed; every image's status says so too.
    #[serde(default)]
    pub dry_run: bool,
    /// The run: revision, ref, event, CI run id and address, start and end.
    #[serde(default)]
    pub run: RunMetadata,
    pub images: Vec<ImageMetadata>,
    /// Wall time per phase in milliseconds (`layers`, `push`, ...). Only in
    /// this file, never in anything hashed.
    pub timings_ms: BTreeMap<String, u64>,
    /// `--scan`: the vulnerability gate's result, before anything was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanGateMetadata>,
}

/// The gate of `hoist build --scan`: whether it passed, why not, and the
/// findings per severity. The findings themselves go to the job summary only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanGateMetadata {
    pub passed: bool,
    pub reasons: Vec<String>,
    /// Findings per severity (`critical`, `high`, ..., `unknown`).
    pub counts: BTreeMap<String, usize>,
    #[serde(skip)]
    pub findings: Vec<ScanFindingMetadata>,
}

/// One finding as the job summary lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanFindingMetadata {
    pub image: String,
    pub platform: String,
    pub package: String,
    pub installed: String,
    pub fixed: Option<String>,
    pub advisory: String,
    pub severity: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageMetadata {
    /// The image's name in the spec.
    pub name: String,
    /// Where it was pushed (`ghcr.io/org/web`); `None` for layouts and archives.
    pub repository: Option<String>,
    /// Digest of the top manifest (the index for multi-platform images).
    pub digest: Digest,
    pub media_type: String,
    /// Size of the top manifest in bytes.
    pub size: u64,
    /// Tags as given to the sink (`main`, `sha-3f2a9c1`), not full references.
    pub tags: Vec<String>,
    /// What this run did with the image.
    #[serde(default)]
    pub status: ImageStatus,
    /// The `org.opencontainers.image.version` label, when it has one.
    #[serde(default)]
    pub version: Option<String>,
    /// The config labels of its first platform image (every platform gets
    /// the same from the spec and CI).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub platforms: Vec<PlatformMetadata>,
    pub attestations: Vec<AttestationMetadata>,
}

/// What a run did with one image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageStatus {
    /// Built and pushed to its repository.
    Pushed,
    /// Unchanged, and this run's tags pointed at the image it matched.
    Retagged,
    /// Unchanged since the image it matched; nothing was written.
    Skipped,
    /// Built, and `--dry-run` pushed nothing.
    DryRun,
    /// Built and written to local outputs (layouts, archives) only.
    #[default]
    Written,
}

impl ImageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Pushed => "pushed",
            ImageStatus::Retagged => "retagged",
            ImageStatus::Skipped => "skipped",
            ImageStatus::DryRun => "dry-run",
            ImageStatus::Written => "written",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformMetadata {
    /// `linux/arm64/v8`, or `unknown` when neither index nor config says.
    pub platform: String,
    /// The platform's image manifest digest.
    pub digest: Digest,
    /// Manifest, config and compressed layers, in bytes: what a pull downloads.
    pub size: u64,
    pub layers: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationMetadata {
    /// Digest of the attestation manifest.
    pub digest: Digest,
    /// The platform manifest it is about.
    pub subject: Option<Digest>,
    /// In-toto predicate types it carries (SPDX, CycloneDX, SLSA provenance).
    pub predicate_types: Vec<String>,
}

impl ImageMetadata {
    /// Describes a published image or index. Attestation manifests are
    /// recognized by BuildKit's `vnd.docker.reference.type` annotation.
    pub fn from_manifest(
        name: &str,
        repository: Option<&str>,
        manifest: &Manifest,
        tags: &[String],
    ) -> Result<ImageMetadata, CiError> {
        let descriptor = manifest.descriptor();
        let mut metadata = ImageMetadata {
            name: name.to_string(),
            repository: repository.map(str::to_string),
            digest: descriptor.digest().clone(),
            media_type: descriptor.media_type().to_string(),
            size: descriptor.size(),
            tags: tags.to_vec(),
            status: ImageStatus::default(),
            version: None,
            labels: BTreeMap::new(),
            platforms: Vec::new(),
            attestations: Vec::new(),
        };
        collect(manifest, None, &mut metadata)?;
        metadata.version = metadata.labels.get(VERSION_LABEL).cloned();
        Ok(metadata)
    }

    /// `repository@digest`, or `None` when nothing was pushed.
    pub fn pinned_reference(&self) -> Option<String> {
        self.repository
            .as_ref()
            .map(|repository| format!("{repository}@{}", self.digest))
    }

    /// `repository:tag` for every tag.
    pub fn tag_references(&self) -> Vec<String> {
        match &self.repository {
            Some(repository) => self
                .tags
                .iter()
                .map(|tag| format!("{repository}:{tag}"))
                .collect(),
            None => self.tags.clone(),
        }
    }
}

fn collect(
    manifest: &Manifest,
    platform: Option<Platform>,
    metadata: &mut ImageMetadata,
) -> Result<(), CiError> {
    match manifest {
        Manifest::Image(image) => {
            let platform = match platform {
                Some(platform) => platform,
                None => config_platform(image, manifest.digest())?,
            };
            if metadata.platforms.is_empty() {
                metadata.labels = config_labels(image);
            }
            metadata.platforms.push(platform_metadata(image, &platform));
        }
        Manifest::Index(index) => {
            let descriptors = index.descriptors().map_err(|source| CiError::Decode {
                what: "image index",
                digest: manifest.digest().clone(),
                source,
            })?;
            for (descriptor, child) in descriptors.iter().zip(&index.children) {
                let annotations = descriptor.annotations().clone().unwrap_or_default();
                if annotations.get(REFERENCE_TYPE).map(String::as_str) == Some(ATTESTATION_MANIFEST)
                {
                    metadata.attestations.push(attestation_metadata(
                        child,
                        annotations.get(REFERENCE_DIGEST),
                    ));
                } else {
                    let platform = descriptor.platform().as_ref().map(Platform::from_oci);
                    collect(child, platform, metadata)?;
                }
            }
        }
    }
    Ok(())
}

/// The image config's `config.Labels`; none when it has no such map.
fn config_labels(image: &Image) -> BTreeMap<String, String> {
    serde_json::from_slice::<serde_json::Value>(image.config.bytes())
        .ok()
        .and_then(|config| {
            serde_json::from_value(config.get("config")?.get("Labels")?.clone()).ok()
        })
        .unwrap_or_default()
}

fn platform_metadata(image: &Image, platform: &Platform) -> PlatformMetadata {
    let size = image.manifest.descriptor().size()
        + image
            .blobs()
            .map(|blob| blob.descriptor().size())
            .sum::<u64>();
    PlatformMetadata {
        platform: platform.to_string(),
        digest: image.manifest.descriptor().digest().clone(),
        size,
        layers: image.layers.len(),
    }
}

fn attestation_metadata(child: &Manifest, subject: Option<&String>) -> AttestationMetadata {
    let mut predicate_types: Vec<String> = match child {
        Manifest::Image(image) => image
            .layers
            .iter()
            .filter_map(|layer| {
                layer
                    .descriptor()
                    .annotations()
                    .as_ref()
                    .and_then(|annotations| annotations.get(PREDICATE_TYPE).cloned())
            })
            .collect(),
        Manifest::Index(_) => Vec::new(),
    };
    predicate_types.sort();
    predicate_types.dedup();
    AttestationMetadata {
        digest: child.digest().clone(),
        subject: subject.and_then(|text| Digest::try_from(text.as_str()).ok()),
        predicate_types,
    }
}

/// The platform a single image's config declares.
fn config_platform(image: &Image, digest: &Digest) -> Result<Platform, CiError> {
    #[derive(Deserialize)]
    struct ConfigPlatform {
        #[serde(default)]
        os: String,
        #[serde(default)]
        architecture: String,
        variant: Option<String>,
    }
    let config: ConfigPlatform =
        serde_json::from_slice(image.config.bytes()).map_err(|source| CiError::Decode {
            what: "image config",
            digest: digest.clone(),
            source,
        })?;
    if config.os.is_empty() || config.architecture.is_empty() {
        return Ok(Platform::unknown());
    }
    Ok(Platform::new(
        &config.os,
        &config.architecture,
        config.variant.as_deref(),
    ))
}

impl BuildMetadata {
    /// Writes the metadata as indented JSON, replacing `path` atomically so
    /// a reader never sees half a file.
    pub fn write(&self, path: &Path) -> Result<(), CiError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|source| CiError::Encode {
            what: "build metadata",
            source,
        })?;
        write_atomically(path, &bytes)
    }

    /// The metadata as one line of JSON, for CI outputs.
    pub fn to_json_line(&self) -> Result<String, CiError> {
        serde_json::to_string(self).map_err(|source| CiError::Encode {
            what: "build metadata",
            source,
        })
    }
}

/// Replaces `path` with `bytes` through a temporary file in the same
/// directory and a rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CiError> {
    use std::io::Write as _;
    let error = |source| CiError::WriteOutput {
        path: path.to_path_buf(),
        source,
    };
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(directory).map_err(error)?;
    file.write_all(bytes).map_err(error)?;
    file.persist(path).map_err(|persist| error(persist.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::BytesBlob;
    use crate::image::model::{ChildEntry, Index};
    use crate::oci::media_type;
    use oci_spec::image::MediaType;
    use std::sync::Arc;

    fn image(config: &str, layers: &[&[u8]]) -> Image {
        let layers: Vec<Arc<dyn Blob>> = layers
            .iter()
            .map(|bytes| {
                Arc::new(BytesBlob::new(MediaType::ImageLayerGzip, bytes.to_vec())) as Arc<dyn Blob>
            })
            .collect();
        let config = BytesBlob::new(MediaType::ImageConfig, config.as_bytes().to_vec());
        Image::from_parts(config, layers, &BTreeMap::new(), None, None).unwrap()
    }

    #[test]
    fn single_image_takes_its_platform_from_the_config() {
        let single = image(
            r#"{"os":"linux","architecture":"arm64","variant":"v8"}"#,
            &[b"abc", b"de"],
        );
        let manifest_size = single.manifest.descriptor().size();
        let config_size = single.config.descriptor().size();
        let metadata = ImageMetadata::from_manifest(
            "web",
            Some("registry.example/web"),
            &Manifest::Image(single),
            &["main".to_string()],
        )
        .unwrap();
        assert_eq!(metadata.platforms.len(), 1);
        let platform = &metadata.platforms[0];
        assert_eq!(platform.platform, "linux/arm64/v8");
        assert_eq!(platform.layers, 2);
        assert_eq!(platform.size, manifest_size + config_size + 5);
        assert_eq!(metadata.tag_references(), ["registry.example/web:main"]);
        assert!(
            metadata
                .pinned_reference()
                .unwrap()
                .starts_with("registry.example/web@sha256:")
        );
    }

    #[test]
    fn index_separates_platforms_and_attestations() {
        let amd64 = Manifest::Image(image("{}", &[b"a"]));
        let amd64_digest = amd64.digest().clone();
        let arm64 = Manifest::Image(image("{}", &[b"b", b"c"]));
        let mut statement = BytesBlob::new(media_type::IN_TOTO, b"{}".to_vec());
        let mut layer_annotations = std::collections::HashMap::new();
        layer_annotations.insert(
            PREDICATE_TYPE.to_string(),
            "https://spdx.dev/Document".to_string(),
        );
        statement
            .descriptor_mut()
            .set_annotations(Some(layer_annotations));
        let attestation = Manifest::Image(
            Image::from_parts(
                BytesBlob::new(MediaType::ImageConfig, b"{}".to_vec()),
                vec![Arc::new(statement)],
                &BTreeMap::new(),
                None,
                None,
            )
            .unwrap(),
        );
        let attestation_digest = attestation.digest().clone();
        let entry = |platform: &str| ChildEntry {
            platform: Some(platform.parse().unwrap()),
            ..Default::default()
        };
        let mut attestation_entry = ChildEntry {
            platform: Some(Platform::unknown()),
            ..Default::default()
        };
        attestation_entry
            .annotations
            .insert(REFERENCE_TYPE.to_string(), ATTESTATION_MANIFEST.to_string());
        attestation_entry
            .annotations
            .insert(REFERENCE_DIGEST.to_string(), amd64_digest.to_string());
        let index = Manifest::Index(
            Index::from_children(
                vec![
                    (amd64, entry("linux/amd64")),
                    (arm64, entry("linux/arm64")),
                    (attestation, attestation_entry),
                ],
                &BTreeMap::new(),
            )
            .unwrap(),
        );
        let metadata = ImageMetadata::from_manifest("web", None, &index, &[]).unwrap();
        assert_eq!(metadata.media_type, media_type::OCI_INDEX);
        let platforms: Vec<(&str, usize)> = metadata
            .platforms
            .iter()
            .map(|platform| (platform.platform.as_str(), platform.layers))
            .collect();
        assert_eq!(platforms, [("linux/amd64", 1), ("linux/arm64", 2)]);
        assert_eq!(metadata.attestations.len(), 1);
        assert_eq!(metadata.attestations[0].digest, attestation_digest);
        assert_eq!(
            metadata.attestations[0].subject.as_ref(),
            Some(&amd64_digest)
        );
        assert_eq!(
            metadata.attestations[0].predicate_types,
            ["https://spdx.dev/Document"]
        );
        assert_eq!(metadata.pinned_reference(), None);
    }
}
