//! Supply-chain evidence for a built image, between building and
//! publishing: each platform image's final filesystem (base layers and
//! hoist's) is cataloged into SPDX and CycloneDX SBOMs, SLSA provenance is
//! written from the plan, and the statements are attached either inside the
//! index, as BuildKit does (attestation manifests on `unknown/unknown`), or
//! as OCI 1.1 referrer artifacts published after the image.
//!
//! Nothing here reads the clock unless provenance `max` asks for build
//! times, so the same inputs give the same index digest.

use super::BuiltImage;
use super::transport::{TransportError, Transports};
use crate::attest::{
    self, AttestError, BaseImage as ProvenanceBase, BuildInputs, Builder, ProvenanceMode,
    RunParameters, SourceRepository, Statement, Subject,
};
use crate::image::model::{ChildEntry, ModelError};
use crate::image::{Blob, BytesBlob, Image, Index, Manifest, SinkError, publish};
use crate::oci::{Digest, Location};
use crate::progress::Observer;
use crate::spec::plan::ProvenanceLevel;
use crate::spec::{BaseImage, ImagePlan, Plan};
use oci_spec::image::{Descriptor, MediaType};
use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

/// Artifact type of an SPDX JSON document attached as a referrer.
pub const SPDX_ARTIFACT_TYPE: &str = "application/spdx+json";
/// Artifact type of a CycloneDX JSON document attached as a referrer.
pub const CYCLONEDX_ARTIFACT_TYPE: &str = "application/vnd.cyclonedx+json";
/// Artifact type of an in-toto statement attached as a referrer.
pub const IN_TOTO_ARTIFACT_TYPE: &str = "application/vnd.in-toto+json";

/// Where attestations go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// In the index, as BuildKit does: Docker, Docker Hub and Scout find them there.
    #[default]
    Index,
    /// As OCI 1.1 referrers (artifact manifests with a `subject`).
    Referrers,
}

/// What to attest and the facts about the build that provenance records.
#[derive(Clone, Debug)]
pub struct AttestRequest {
    pub sbom: bool,
    pub provenance: Option<ProvenanceLevel>,
    pub attach: AttachMode,
    /// The tags the image is published under.
    pub tags: Vec<String>,
    pub source: Option<SourceRepository>,
    pub builder: Builder,
    /// The event, ref and format version the provenance records.
    pub run: RunParameters,
    /// When the build started (read only for provenance `max`).
    pub started_on: SystemTime,
}

impl AttestRequest {
    pub fn is_empty(&self) -> bool {
        !self.sbom && self.provenance.is_none()
    }
}

/// An artifact manifest about one platform image, to publish after it.
#[derive(Clone)]
pub struct Referrer {
    /// The platform manifest it is about.
    pub subject: Digest,
    pub image: Image,
    /// Its descriptor with `artifactType`, as referrer lists carry it.
    pub descriptor: Descriptor,
}

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("image `{image}` ({platform}): making its SBOM and provenance")]
    Attest {
        image: String,
        platform: String,
        #[source]
        source: AttestError,
    },
    #[error("image `{image}`: making the index with its attestations")]
    Index {
        image: String,
        #[source]
        source: ModelError,
    },
    #[error(
        "{location} cannot hold OCI referrers: write it with --attach index, or use an oci: layout or a registry"
    )]
    NoReferrers { location: String },
    #[error("attaching referrers of image `{image}` to {location}")]
    Publish {
        image: String,
        location: String,
        #[source]
        source: Box<SinkError>,
    },
    #[error("attaching referrers of image `{image}` to {location}")]
    Registry {
        image: String,
        location: String,
        #[source]
        source: Box<crate::registry::RegistryError>,
    },
    #[error("attaching referrers of image `{image}` to {location}")]
    Transport {
        image: String,
        location: String,
        #[source]
        source: Box<TransportError>,
    },
}

/// The provenance `mode` for a level: only `max` reads the clock.
fn provenance_mode(level: ProvenanceLevel, started_on: SystemTime) -> ProvenanceMode {
    match level {
        ProvenanceLevel::Min => ProvenanceMode::Min,
        ProvenanceLevel::Max => ProvenanceMode::Max {
            started_on,
            finished_on: SystemTime::now(),
        },
    }
}

/// How the spec appears in provenance: relative to the working directory
/// when given that way, else by file name, so no absolute build path is hashed.
pub(crate) fn spec_path_for_provenance(path: &Path) -> String {
    if path.is_relative() {
        return path.to_string_lossy().into_owned();
    }
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The base image as provenance names it: a registry reference as written;
/// a local layout or archive relative to the spec's directory.
fn base_reference(location: &Location, spec_directory: &Path) -> String {
    let relative = |path: &Path| -> String {
        path.strip_prefix(spec_directory)
            .unwrap_or_else(|_| Path::new(path.file_name().unwrap_or_default()))
            .to_string_lossy()
            .into_owned()
    };
    match location {
        Location::Registry { reference } => format!("docker://{reference}"),
        Location::Layout { path, tag } => {
            with_tag(format!("oci:{}", relative(path)), tag.as_deref())
        }
        Location::OciArchive { path, tag } => {
            with_tag(format!("oci-archive:{}", relative(path)), tag.as_deref())
        }
        Location::DockerArchive { path, reference } => with_tag(
            format!("docker-archive:{}", relative(path)),
            reference.as_deref(),
        ),
    }
}

fn with_tag(text: String, tag: Option<&str>) -> String {
    match tag {
        Some(tag) => format!("{text}:{tag}"),
        None => text,
    }
}

/// One platform's evidence: SBOM documents and in-toto statements.
struct Evidence {
    subject: Descriptor,
    spdx: Option<Vec<u8>>,
    cyclonedx: Option<Vec<u8>>,
    statements: Vec<Statement>,
}

/// Makes the evidence for every platform of `built` and attaches it: in
/// [`AttachMode::Index`] the index is rebuilt with attestation manifests
/// (nothing returned); in [`AttachMode::Referrers`] the index is unchanged
/// and the referrer artifacts to publish are returned.
pub fn attest_image(
    built: &mut BuiltImage,
    plan: &Plan,
    image_plan: &ImagePlan,
    request: &AttestRequest,
    observer: &dyn Observer,
) -> Result<Vec<Referrer>, EvidenceError> {
    if request.is_empty() {
        return Ok(Vec::new());
    }
    let epoch = i64::try_from(image_plan.epoch).unwrap_or(i64::MAX);
    let base_images: Vec<ProvenanceBase> = match &image_plan.base {
        BaseImage::Scratch => Vec::new(),
        BaseImage::Location(location) => {
            let reference = base_reference(location, &plan.spec_directory);
            let mut bases: Vec<ProvenanceBase> = Vec::new();
            for (_, digest) in &built.base_digests {
                if !bases.iter().any(|base| &base.digest == digest) {
                    bases.push(ProvenanceBase {
                        reference: reference.clone(),
                        digest: digest.clone(),
                    });
                }
            }
            bases
        }
    };
    let platforms: Vec<String> = built
        .platforms
        .iter()
        .map(|platform| platform.platform.to_string())
        .collect();

    let mut evidence = Vec::with_capacity(built.platforms.len());
    for platform in &built.platforms {
        let failed = |source: AttestError| EvidenceError::Attest {
            image: built.name.clone(),
            platform: platform.platform.to_string(),
            source,
        };
        let subject_descriptor = platform.image.manifest.descriptor().clone();
        let digest = subject_descriptor.digest().clone();
        let subjects = [Subject {
            name: built.name.clone(),
            digest: digest.clone(),
        }];
        let mut item = Evidence {
            subject: subject_descriptor,
            spdx: None,
            cyclonedx: None,
            statements: Vec::new(),
        };
        if request.sbom {
            let tree = attest::image_files(&platform.image.layers).map_err(failed)?;
            let inventory = attest::catalog(&tree, observer).map_err(failed)?;
            let spdx =
                attest::spdx_json(&inventory, &built.name, &digest, epoch).map_err(failed)?;
            let cyclonedx =
                attest::cyclonedx_json(&inventory, &built.name, &digest, epoch).map_err(failed)?;
            item.statements.push(
                attest::sbom_statement(&subjects, attest::spdx::PREDICATE_TYPE, &spdx)
                    .map_err(failed)?,
            );
            item.statements.push(
                attest::sbom_statement(&subjects, attest::cyclonedx::PREDICATE_TYPE, &cyclonedx)
                    .map_err(failed)?,
            );
            item.spdx = Some(spdx);
            item.cyclonedx = Some(cyclonedx);
        }
        if let Some(level) = request.provenance {
            let inputs = BuildInputs {
                subjects: subjects.to_vec(),
                spec_path: spec_path_for_provenance(&plan.spec_path),
                spec_digest: plan.spec_digest.clone(),
                image: built.name.clone(),
                platforms: platforms.clone(),
                tags: request.tags.clone(),
                base_images: base_images.clone(),
                source: request.source.clone(),
                builder: request.builder.clone(),
                run: request.run.clone(),
                mode: provenance_mode(level, request.started_on),
            };
            item.statements
                .push(attest::provenance_statement(&inputs).map_err(failed)?);
        }
        evidence.push(item);
    }

    match request.attach {
        AttachMode::Index => {
            let mut children: Vec<(Manifest, ChildEntry)> = built
                .platforms
                .iter()
                .map(|platform| {
                    (
                        Manifest::Image(platform.image.clone()),
                        ChildEntry {
                            platform: Some(platform.platform.clone()),
                            ..Default::default()
                        },
                    )
                })
                .collect();
            for item in &evidence {
                let manifest = attest::attestation_manifest(&item.subject, &item.statements)
                    .map_err(|source| EvidenceError::Attest {
                        image: built.name.clone(),
                        platform: "unknown/unknown".to_string(),
                        source,
                    })?;
                children.push((
                    Manifest::Image(manifest),
                    attest::attestation_entry(item.subject.digest()),
                ));
            }
            built.index = Index::from_children(children, &image_plan.config.annotations).map_err(
                |source| EvidenceError::Index {
                    image: built.name.clone(),
                    source,
                },
            )?;
            Ok(Vec::new())
        }
        AttachMode::Referrers => {
            let mut referrers = Vec::new();
            for item in &evidence {
                let failed = |source: AttestError| EvidenceError::Attest {
                    image: built.name.clone(),
                    platform: item.subject.digest().to_string(),
                    source,
                };
                let mut documents: Vec<(&str, BytesBlob)> = Vec::new();
                if let Some(spdx) = &item.spdx {
                    documents.push((
                        SPDX_ARTIFACT_TYPE,
                        BytesBlob::new(MediaType::Other(SPDX_ARTIFACT_TYPE.into()), spdx.clone()),
                    ));
                }
                if let Some(cyclonedx) = &item.cyclonedx {
                    documents.push((
                        CYCLONEDX_ARTIFACT_TYPE,
                        BytesBlob::new(
                            MediaType::Other(CYCLONEDX_ARTIFACT_TYPE.into()),
                            cyclonedx.clone(),
                        ),
                    ));
                }
                for statement in &item.statements {
                    if statement.predicate_type != attest::provenance::PREDICATE_TYPE {
                        continue;
                    }
                    let mut blob = BytesBlob::new(
                        MediaType::Other(IN_TOTO_ARTIFACT_TYPE.into()),
                        statement.bytes.clone(),
                    );
                    blob.descriptor_mut().set_annotations(Some(HashMap::from([(
                        attest::attach::PREDICATE_TYPE_ANNOTATION.to_string(),
                        statement.predicate_type.clone(),
                    )])));
                    documents.push((IN_TOTO_ARTIFACT_TYPE, blob));
                }
                for (artifact_type, blob) in documents {
                    let image = attest::referrer_manifest(&item.subject, artifact_type, blob)
                        .map_err(failed)?;
                    let source = image.manifest.descriptor();
                    let mut descriptor = Descriptor::new(
                        MediaType::ImageManifest,
                        source.size(),
                        source.digest().clone(),
                    );
                    descriptor.set_artifact_type(Some(MediaType::Other(artifact_type.into())));
                    referrers.push(Referrer {
                        subject: item.subject.digest().clone(),
                        image,
                        descriptor,
                    });
                }
            }
            Ok(referrers)
        }
    }
}

/// Fails early for outputs that cannot hold referrers.
pub fn check_referrers_output(location: &Location) -> Result<(), EvidenceError> {
    match location {
        Location::Layout { .. } | Location::Registry { .. } => Ok(()),
        other => Err(EvidenceError::NoReferrers {
            location: other.to_string(),
        }),
    }
}

/// Publishes `referrers` to `location`, after the image they refer to.
///
/// A layout gets each artifact manifest as an untagged `index.json` entry
/// (the image layout spec allows any manifest there; `hoist attestations`
/// finds them by their `subject`). A registry gets each by digest, then the
/// referrer is recorded: nothing more where the registry has the referrers
/// API, else in the `sha256-<hex>` fallback tag index.
pub fn publish_referrers(
    image: &str,
    referrers: &[Referrer],
    location: &Location,
    transports: &Transports,
    observer: &dyn Observer,
) -> Result<(), EvidenceError> {
    check_referrers_output(location)?;
    let publish_error = |source: SinkError| EvidenceError::Publish {
        image: image.to_string(),
        location: location.to_string(),
        source: Box::new(source),
    };
    for referrer in referrers {
        let sink = transports.sink(location).map_err(publish_error)?;
        publish(
            &Manifest::Image(referrer.image.clone()),
            sink.as_ref(),
            &[],
            observer,
        )
        .map_err(publish_error)?;
        if let Location::Registry { reference } = location {
            let transport_error = |source: TransportError| EvidenceError::Transport {
                image: image.to_string(),
                location: location.to_string(),
                source: Box::new(source),
            };
            let parsed = super::transport::parse_reference(reference).map_err(transport_error)?;
            let client = transports.registry().map_err(transport_error)?;
            client
                .repository(&parsed, crate::registry::Access::PUSH)
                .record_referrer(&referrer.subject, &referrer.descriptor)
                .map_err(|source| EvidenceError::Registry {
                    image: image.to_string(),
                    location: location.to_string(),
                    source: Box::new(source),
                })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn provenance_names_no_absolute_paths() {
        assert_eq!(
            spec_path_for_provenance(Path::new("/home/me/src/app/hoist.toml")),
            "hoist.toml"
        );
        assert_eq!(
            spec_path_for_provenance(Path::new("deploy/hoist.toml")),
            "deploy/hoist.toml"
        );
        let layout = Location::Layout {
            path: PathBuf::from("/home/me/src/app/base"),
            tag: Some("1.0".into()),
        };
        assert_eq!(
            base_reference(&layout, Path::new("/home/me/src/app")),
            "oci:base:1.0"
        );
        let elsewhere = Location::OciArchive {
            path: PathBuf::from("/tmp/x/base.tar"),
            tag: None,
        };
        assert_eq!(
            base_reference(&elsewhere, Path::new("/home/me/src/app")),
            "oci-archive:base.tar"
        );
    }

    #[test]
    fn archives_cannot_hold_referrers() {
        let archive = Location::OciArchive {
            path: PathBuf::from("out.tar"),
            tag: None,
        };
        assert!(matches!(
            check_referrers_output(&archive),
            Err(EvidenceError::NoReferrers { .. })
        ));
        let layout = Location::Layout {
            path: PathBuf::from("out"),
            tag: None,
        };
        assert!(check_referrers_output(&layout).is_ok());
    }
}
