//! `hoist diff`: two manifest trees, read by any source or just built, compared
//! top down. The index (platforms, annotations, attestation manifests), then
//! per platform the manifest, the config's JSON paths and the layers, tar
//! entry by tar entry; each difference with where it is and a likely cause.
//! It sits beside `source` and `image`: it reads `Manifest` values and
//! returns a typed [`DiffReport`]; the CLI renders it.

mod cause;
mod codec;
mod config;
mod image;
mod provenance;
pub mod report;
mod tar;

pub use report::{Cause, Change, Codec, DiffReport, Difference, Place, Side};

use crate::image::{Blob, Image, Manifest};
use crate::oci::{Digest, Platform};
use crate::source::{ReadError, SourceError, image_platform, select_platform};
use config::compare_json;
use image::{compare_images, field_change};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// How to compare.
#[derive(Clone, Debug, Default)]
pub struct DiffOptions {
    /// Compare only this platform's image of each side.
    pub platform: Option<Platform>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("the {what} {digest} is not valid JSON")]
    Json {
        what: &'static str,
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("reading the tar of layer {digest}")]
    Layer {
        digest: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the {side:?} side has no image for the platform asked for")]
    Platform {
        side: Side,
        #[source]
        source: SourceError,
    },
    #[error("reading the platform of image {digest}")]
    ImagePlatform {
        digest: String,
        #[source]
        source: ReadError,
    },
}

/// Compares `left` with `right`, top down. Layers are streamed, never
/// unpacked; identical digests are never read.
pub fn diff(
    left: &Manifest,
    right: &Manifest,
    options: &DiffOptions,
) -> Result<DiffReport, DiffError> {
    if let Some(platform) = &options.platform {
        let select = |manifest: &Manifest, side: Side| {
            select_platform(manifest, platform)
                .map_err(|source| DiffError::Platform { side, source })
        };
        let (left, right) = (select(left, Side::Left)?, select(right, Side::Right)?);
        return Ok(DiffReport {
            left: left.manifest.digest().to_string(),
            right: right.manifest.digest().to_string(),
            differences: compare_images(Some(&platform.to_string()), &left, &right)?,
        });
    }
    let differences = match (left, right) {
        _ if left.digest() == right.digest() => Vec::new(),
        (Manifest::Image(left), Manifest::Image(right)) => compare_images(None, left, right)?,
        _ => compare_by_platform(left, right)?,
    };
    Ok(DiffReport {
        left: left.digest().to_string(),
        right: right.digest().to_string(),
        differences,
    })
}

/// What a tree holds per platform: its images and attestation manifests.
#[derive(Default)]
struct Platforms {
    images: BTreeMap<String, Image>,
    /// Attestation manifests by the platform they are about.
    attestations: BTreeMap<String, Manifest>,
}

/// An index against an index, or an index against one image: the index's
/// own fields, the platforms only one side has, then each shared platform.
fn compare_by_platform(left: &Manifest, right: &Manifest) -> Result<Vec<Difference>, DiffError> {
    let index_difference = |change: Change| Difference {
        platform: None,
        place: Place::Index,
        change,
        cause: None,
    };
    let mut differences: Vec<Difference> = index_fields(left, right)?
        .into_iter()
        .map(|(field, left, right)| index_difference(field_change(field, left, right)))
        .collect();
    let (left_platforms, right_platforms) = (platforms(left)?, platforms(right)?);
    let only_in = |platform: &str, side: Side, item: String| Difference {
        platform: Some(platform.to_string()),
        ..index_difference(Change::OnlyIn { side, item })
    };
    for (platform, left_image) in &left_platforms.images {
        match right_platforms.images.get(platform) {
            Some(right_image) => {
                let mut found = compare_images(Some(platform), left_image, right_image)?;
                provenance::attribute_to_builders(
                    &mut found,
                    left_platforms.attestations.get(platform),
                    right_platforms.attestations.get(platform),
                );
                differences.extend(found);
            }
            None => differences.push(only_in(platform, Side::Left, "platform".to_string())),
        }
    }
    for platform in right_platforms.images.keys() {
        if !left_platforms.images.contains_key(platform) {
            differences.push(only_in(platform, Side::Right, "platform".to_string()));
        }
    }
    annotate_index(&mut differences, &left_platforms, &right_platforms)?;
    differences.extend(compare_attestations(&left_platforms, &right_platforms));
    // One image against an index: hoist puts the image itself at the top
    // where its index would list nothing else (one platform, no attestation
    // manifests), so the kinds differ because of the platforms and
    // attestations named above; the kind alone is told when nothing else is.
    if !(left.is_index() && right.is_index())
        && differences.iter().any(|found| found.platform.is_some())
    {
        differences.retain(|found| found.platform.is_some());
    }
    Ok(differences)
}

/// Attestation manifests by the platform they are about: those only one
/// side has, and those that differ (expected where the image they name does).
fn compare_attestations(left: &Platforms, right: &Platforms) -> Vec<Difference> {
    let item = "attestation manifest".to_string();
    let found = |platform: &str, change: Change, cause: Option<Cause>| Difference {
        platform: Some(platform.to_string()),
        place: Place::Index,
        change,
        cause,
    };
    let platforms: std::collections::BTreeSet<&String> = left
        .attestations
        .keys()
        .chain(right.attestations.keys())
        .collect();
    let mut differences = Vec::new();
    for platform in platforms {
        let only_in = |side| Change::OnlyIn {
            side,
            item: item.clone(),
        };
        match (
            left.attestations.get(platform),
            right.attestations.get(platform),
        ) {
            (Some(_), None) => differences.push(found(platform, only_in(Side::Left), None)),
            (None, Some(_)) => differences.push(found(platform, only_in(Side::Right), None)),
            (Some(left_attestation), Some(right_attestation))
                if left_attestation.digest() != right_attestation.digest() =>
            {
                let image_digest = |side: &Platforms| {
                    side.images
                        .get(platform)
                        .map(|image| image.manifest.digest().clone())
                };
                let image_differs = image_digest(left) != image_digest(right);
                let change = field_change(
                    item.clone(),
                    Some(json!(left_attestation.digest().to_string())),
                    Some(json!(right_attestation.digest().to_string())),
                );
                let cause = image_differs.then_some(Cause::AttestedImageDiffers);
                differences.push(found(platform, change, cause));
            }
            _ => {}
        }
    }
    differences
}

/// Causes for the index's own fields (its `created` and base annotations),
/// recognised from the configs of the first platform both sides have.
fn annotate_index(
    differences: &mut [Difference],
    left: &Platforms,
    right: &Platforms,
) -> Result<(), DiffError> {
    let context = match left
        .images
        .iter()
        .find_map(|(platform, image)| Some((image, right.images.get(platform)?)))
    {
        Some((left_image, right_image)) => {
            let config =
                |image: &Image| parse_json("config", image.config.digest(), image.config.bytes());
            cause::Context::from_configs(&config(left_image)?, &config(right_image)?)
        }
        None => cause::Context::default(),
    };
    cause::annotate(differences, &context);
    Ok(())
}

/// The top manifests' own fields (media type, annotations), without the
/// list of manifests, which is compared platform by platform.
fn index_fields(
    left: &Manifest,
    right: &Manifest,
) -> Result<Vec<config::JsonDifference>, DiffError> {
    // An index against a single image: only their kinds are set side by side.
    let both_indexes = left.is_index() && right.is_index();
    let own_fields = |manifest: &Manifest| -> Result<Value, DiffError> {
        let blob = manifest.manifest_blob();
        let mut value = parse_json("index", blob.digest(), blob.bytes())?;
        if let Some(object) = value.as_object_mut() {
            object.remove("manifests");
            if !both_indexes {
                object.retain(|key, _| key == "mediaType");
            }
        }
        Ok(value)
    };
    let mut fields = Vec::new();
    compare_json(
        "",
        Some(&own_fields(left)?),
        Some(&own_fields(right)?),
        &mut fields,
    );
    Ok(fields)
}

/// The annotation that marks an attestation manifest in an index, and the
/// one naming the manifest it is about (BuildKit's convention).
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";

fn platforms(manifest: &Manifest) -> Result<Platforms, DiffError> {
    let mut found = Platforms::default();
    let mut attestations = Vec::new();
    collect(manifest, None, &mut found, &mut attestations)?;
    let platform_of: BTreeMap<String, String> = found
        .images
        .iter()
        .map(|(platform, image)| (image.manifest.digest().to_string(), platform.clone()))
        .collect();
    for (subject, attestation) in attestations {
        let platform = platform_of
            .get(&subject)
            .cloned()
            .unwrap_or_else(|| format!("manifest {subject}"));
        found.attestations.insert(platform, attestation);
    }
    Ok(found)
}

/// Walks an index (and the indexes in it), filing images by platform and
/// attestation manifests by the digest they are about.
fn collect(
    manifest: &Manifest,
    descriptor_platform: Option<Platform>,
    found: &mut Platforms,
    attestations: &mut Vec<(String, Manifest)>,
) -> Result<(), DiffError> {
    match manifest {
        Manifest::Image(image) => {
            let platform = match descriptor_platform {
                Some(platform) => platform,
                None => image_platform(image).map_err(|source| DiffError::ImagePlatform {
                    digest: image.manifest.digest().to_string(),
                    source,
                })?,
            };
            found.images.insert(platform.to_string(), image.clone());
        }
        Manifest::Index(index) => {
            let descriptors = index.descriptors().map_err(|source| DiffError::Json {
                what: "index",
                digest: index.manifest.digest().to_string(),
                source,
            })?;
            for descriptor in &descriptors {
                let Some(child) = index.child(descriptor.digest()) else {
                    continue;
                };
                let annotations = descriptor.annotations().clone().unwrap_or_default();
                if annotations.get(REFERENCE_TYPE).map(String::as_str)
                    == Some("attestation-manifest")
                {
                    let subject = annotations
                        .get(REFERENCE_DIGEST)
                        .cloned()
                        .unwrap_or_default();
                    attestations.push((subject, child.clone()));
                    continue;
                }
                let platform = descriptor.platform().as_ref().map(Platform::from_oci);
                collect(child, platform, found, attestations)?;
            }
        }
    }
    Ok(())
}

pub(crate) fn parse_json(
    what: &'static str,
    digest: &Digest,
    bytes: &[u8],
) -> Result<Value, DiffError> {
    serde_json::from_slice(bytes).map_err(|source| DiffError::Json {
        what,
        digest: digest.to_string(),
        source,
    })
}
