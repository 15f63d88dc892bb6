//! What an image says about where it comes from, added to the plan before
//! building: the `org.opencontainers.image.*` labels and annotations (from
//! git and the CI environment) and the inputs digest that lets a later build
//! see nothing changed. Also reads that digest back from a published image.
//!
//! Labels are filled only when the revision is known (a git checkout or a CI
//! system): a build of a bare directory gets none, so its bytes depend on
//! nothing but the spec and the files.

use super::transport::Transports;
use crate::ci::{
    INPUTS_DIGEST_LABEL, ImageLabels, Revision, SourceFingerprint, inputs_digest, standard_labels,
};
use crate::image::Manifest;
use crate::layer::FileKind;
use crate::layer::walk::{PlannedEntry, plan as walk_plan};
use crate::layer::{TrackedFiles, entry_mode};
use crate::oci::{Digest, DigestWriter, Location};
use crate::progress::Observer;
use crate::source::SourceError;
use crate::spec::{BaseImage, ImagePlan};
use std::path::PathBuf;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("image `{image}`: reading base image {base} for its digest")]
    Base {
        image: String,
        base: String,
        #[source]
        source: SourceError,
    },
    #[error("image `{image}`: making its labels")]
    Labels {
        image: String,
        #[source]
        source: crate::ci::CiError,
    },
    #[error("image `{image}`: listing the inputs of layer `{layer}`")]
    Walk {
        image: String,
        layer: String,
        #[source]
        source: Box<crate::layer::LayerError>,
    },
    #[error("image `{image}`: reading {} to fingerprint it", path.display())]
    Read {
        image: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Whether labels are filled for this revision: only when git or a CI
/// system said something about it.
pub fn revision_is_known(revision: &Revision) -> bool {
    revision.commit.is_some() || revision.provider != crate::ci::CiProvider::Local
}

/// The digest of the base image as the spec names it (the index digest for a
/// multi-platform base); `None` for `scratch`.
pub fn base_digest(
    plan: &ImagePlan,
    transports: &Transports,
) -> Result<Option<Digest>, MetadataError> {
    match &plan.base {
        BaseImage::Scratch => Ok(None),
        BaseImage::Location(location) => transports
            .source(location)
            .and_then(|source| source.resolve())
            .map(|manifest| Some(manifest.digest().clone()))
            .map_err(|source| MetadataError::Base {
                image: plan.name.clone(),
                base: location.to_string(),
                source,
            }),
    }
}

/// Adds the standard labels to the plan's config labels and to its manifest
/// and index annotations, under what the spec sets itself (the spec wins).
/// `ref_name` is the image's first tag.
pub fn add_standard_labels(
    plan: &mut ImagePlan,
    revision: &Revision,
    ref_name: Option<&str>,
    base_digest: Option<&Digest>,
) -> Result<(), MetadataError> {
    if !revision_is_known(revision) {
        return Ok(());
    }
    let base_name = match &plan.base {
        BaseImage::Scratch => None,
        BaseImage::Location(Location::Registry { reference }) => Some(reference.clone()),
        // A local base's path says where it was on this machine, which is
        // nobody else's business and would break reproducibility.
        BaseImage::Location(_) => None,
    };
    let name = plan.name.clone();
    let labels = standard_labels(
        revision,
        i64::try_from(plan.epoch).unwrap_or(i64::MAX),
        &ImageLabels {
            title: Some(&name),
            version: None,
            ref_name,
            base_name: base_name.as_deref(),
            base_digest,
        },
    )
    .map_err(|source| MetadataError::Labels {
        image: plan.name.clone(),
        source,
    })?;
    for (key, value) in labels {
        // In an OCI layout `ref.name` on a descriptor is the tag; on a
        // manifest it would be read as one by some tools, so it stays a label.
        if key != REF_NAME {
            plan.config
                .annotations
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
        plan.config.labels.entry(key).or_insert(value);
    }
    Ok(())
}

/// The digest of everything that decides the image: its spec section, every
/// input file of every platform (content, kind, the mode and owner as the
/// layer will see them; never mtimes, which checkouts change) and the base
/// digest.
pub fn image_inputs_digest(
    plan: &ImagePlan,
    base_digest: Option<&Digest>,
    tracked: &TrackedFiles,
    observer: &dyn Observer,
) -> Result<Digest, MetadataError> {
    let mut fingerprints = Vec::new();
    for platform in &plan.platforms {
        for (position, recipe) in plan.recipes(platform).iter().enumerate() {
            let walked =
                walk_plan(recipe, tracked, observer).map_err(|source| MetadataError::Walk {
                    image: plan.name.clone(),
                    layer: recipe.name.clone(),
                    source: Box::new(source),
                })?;
            for (key, entry) in walked {
                let path = format!("{platform}/{position}/{}", String::from_utf8_lossy(&key));
                let fingerprint = match entry {
                    PlannedEntry::ParentDirectory => "parent".to_string(),
                    PlannedEntry::Whiteout => "whiteout".to_string(),
                    PlannedEntry::Disk(disk) => {
                        let facts = &disk.facts;
                        // The mode the layer gets: what normalizing drops
                        // (the umask, the checkout) is no change.
                        let mode = entry_mode(recipe.permissions, &disk);
                        let (uid, gid) = recipe.owner.owner_of(facts.uid, facts.gid);
                        let owner = format!("{uid}:{gid}");
                        let content = match facts.kind {
                            FileKind::Regular => {
                                file_digest(&disk.source).map_err(|source| MetadataError::Read {
                                    image: plan.name.clone(),
                                    path: disk.source.clone(),
                                    source,
                                })?
                            }
                            FileKind::Symlink => std::fs::read_link(&disk.source)
                                .map(|target| target.to_string_lossy().into_owned())
                                .map_err(|source| MetadataError::Read {
                                    image: plan.name.clone(),
                                    path: disk.source.clone(),
                                    source,
                                })?,
                            FileKind::CharDevice | FileKind::BlockDevice => {
                                format!("device {}", facts.rdev)
                            }
                            FileKind::Directory | FileKind::Fifo => String::new(),
                        };
                        format!("{:?} {mode:o} {owner} {content}", facts.kind)
                    }
                };
                fingerprints.push(SourceFingerprint { path, fingerprint });
            }
        }
    }
    Ok(inputs_digest(
        plan.section.as_bytes(),
        &fingerprints,
        base_digest,
    ))
}

fn file_digest(path: &std::path::Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut writer = DigestWriter::new(std::io::sink());
    std::io::copy(&mut file, &mut writer)?;
    Ok(writer.finish().1.to_string())
}

/// The inputs digest label of a published image (of its first platform:
/// every platform carries the same one).
pub fn published_inputs_digest(manifest: &Manifest) -> Option<String> {
    let image = match manifest {
        Manifest::Image(image) => image,
        Manifest::Index(index) => index.children.iter().find_map(|child| match child {
            Manifest::Image(image) => Some(image),
            Manifest::Index(_) => None,
        })?,
    };
    let config: serde_json::Value = serde_json::from_slice(image.config.bytes()).ok()?;
    config
        .get("config")?
        .get("Labels")?
        .get(INPUTS_DIGEST_LABEL)?
        .as_str()
        .map(str::to_string)
}

/// Records the inputs digest as a config label (not an annotation: it is
/// read back from the config, and must not change the index for nothing).
pub fn add_inputs_label(plan: &mut ImagePlan, digest: &Digest) {
    plan.config
        .labels
        .insert(INPUTS_DIGEST_LABEL.to_string(), digest.to_string());
}
