//! Sources mirror sinks: they read an image or index back from an OCI layout,
//! an archive or a registry, as the same [`Manifest`] values a build makes, so
//! `hoist copy` and base images share one code path.

pub mod archive;
pub mod docker_archive;
pub mod layout;
mod tree;

pub use archive::OciArchiveSource;
pub use docker_archive::DockerArchiveSource;
pub use layout::LayoutSource;

use crate::image::{Blob, Image, Manifest};
use crate::oci::digest::DigestError;
use crate::oci::{Digest, Platform};
use std::error::Error as StdError;
use std::io;
use std::path::PathBuf;

/// Somewhere an image can be read from.
pub trait Source: Send + Sync {
    /// For messages: `oci:base:1.0`, `docker://debian:bookworm`.
    fn describe(&self) -> String;

    /// Reads the manifest tree the location points at, with every manifest
    /// and config verified against its digest. Layer blobs are opened lazily.
    fn resolve(&self) -> Result<Manifest, SourceError>;
}

/// A source operation that failed, naming the source and what it was doing.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {operation}")]
pub struct SourceError {
    pub source_name: String,
    pub operation: String,
    #[source]
    pub source: Box<dyn StdError + Send + Sync>,
}

impl SourceError {
    pub fn new(
        source_name: impl Into<String>,
        operation: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        SourceError {
            source_name: source_name.into(),
            operation: operation.into(),
            source: source.into(),
        }
    }
}

/// What went wrong reading a layout or an archive; carried inside a
/// [`SourceError`] as its source.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not an OCI image layout (it has no oci-layout file)")]
    NotALayout { path: PathBuf },
    #[error("{what} is not valid JSON of the expected shape")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("no image is tagged `{tag}`; the tags here are: {}", list(.available))]
    NoSuchTag { tag: String, available: Vec<String> },
    #[error("{count} images are here; name one with :TAG. The tags are: {}", list(.available))]
    Ambiguous {
        count: usize,
        available: Vec<String>,
    },
    #[error("no images are here")]
    Empty,
    #[error(
        "blob {digest}: {path} is {what}; a layout's blobs must be regular files inside it, so hoist refuses it rather than follow it"
    )]
    NotARegularFile {
        digest: Digest,
        path: PathBuf,
        what: &'static str,
    },
    #[error("blob {digest} is missing (looked for {location})")]
    MissingBlob { digest: Digest, location: String },
    #[error("blob {digest} does not match its descriptor")]
    Content {
        digest: Digest,
        #[source]
        source: Box<DigestError>,
    },
    #[error(
        "{digest} has media type `{media_type}`, which is neither an image manifest nor an index"
    )]
    UnknownMediaType { digest: Digest, media_type: String },
    #[error("{digest} is {size} bytes, more than the {limit} a manifest or config may have")]
    TooLarge {
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("indexes nest more than {limit} deep below {digest}")]
    TooDeep { digest: Digest, limit: usize },
    #[error("the archive has no entry `{name}`")]
    MissingEntry { name: String },
    #[error("the archive entry `{name}` is {size} bytes, more than the {limit} it may have")]
    EntryTooLarge { name: String, size: u64, limit: u64 },
    #[error("no image for {wanted}; the platforms here are: {}", list(.available))]
    NoPlatform {
        wanted: Platform,
        available: Vec<String>,
    },
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}

/// An archive source fails at once, naming the path, when its file is missing,
/// rather than when it is first read.
pub(crate) fn require_archive_file(
    path: &std::path::Path,
    source_name: String,
) -> Result<(), SourceError> {
    if path.is_file() {
        return Ok(());
    }
    Err(SourceError::new(
        source_name,
        "opening",
        ReadError::io(
            "opening",
            path,
            io::Error::new(io::ErrorKind::NotFound, "no such file"),
        ),
    ))
}

impl ReadError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        ReadError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// The image for `platform` in `manifest`: from an index, the child whose
/// descriptor platform matches (searching nested indexes too); an image
/// whose config's os and architecture match. Else an error listing the
/// platforms there are.
pub fn select_platform(manifest: &Manifest, platform: &Platform) -> Result<Image, SourceError> {
    let mut available = Vec::new();
    find_platform(manifest, platform, &mut available, 0)
        .map_err(|error| SourceError::new(manifest.digest().to_string(), "reading", error))?
        .ok_or_else(|| {
            SourceError::new(
                manifest.digest().to_string(),
                format!("choosing the image for {platform}"),
                ReadError::NoPlatform {
                    wanted: platform.clone(),
                    available,
                },
            )
        })
}

fn find_platform(
    manifest: &Manifest,
    wanted: &Platform,
    available: &mut Vec<String>,
    depth: usize,
) -> Result<Option<Image>, ReadError> {
    if depth > tree::MAX_DEPTH {
        return Err(ReadError::TooDeep {
            digest: manifest.digest().clone(),
            limit: tree::MAX_DEPTH,
        });
    }
    match manifest {
        Manifest::Image(image) => {
            let platform = image_platform(image)?;
            available.push(platform.to_string());
            Ok(wanted.matches(&platform).then(|| image.clone()))
        }
        Manifest::Index(index) => {
            let descriptors = index.descriptors().map_err(|source| ReadError::Json {
                what: format!("index {}", index.manifest.digest()),
                source,
            })?;
            for descriptor in descriptors {
                let Some(child) = index.child(descriptor.digest()) else {
                    continue;
                };
                match (descriptor.platform(), child) {
                    (Some(platform), Manifest::Image(image)) => {
                        let platform = Platform::from_oci(platform);
                        available.push(platform.to_string());
                        if wanted.matches(&platform) {
                            return Ok(Some(image.clone()));
                        }
                    }
                    // A child without a platform says it in its config; a
                    // nested index lists its own.
                    _ => {
                        if let Some(image) = find_platform(child, wanted, available, depth + 1)? {
                            return Ok(Some(image));
                        }
                    }
                }
            }
            Ok(None)
        }
    }
}

/// The platform an image's config declares.
pub fn image_platform(image: &Image) -> Result<Platform, ReadError> {
    let config: serde_json::Value =
        serde_json::from_slice(image.config.bytes()).map_err(|source| ReadError::Json {
            what: format!("config {}", image.config.descriptor().digest()),
            source,
        })?;
    let field = |name: &str| config.get(name).and_then(serde_json::Value::as_str);
    Ok(Platform::new(
        field("os").unwrap_or("unknown"),
        field("architecture").unwrap_or("unknown"),
        field("variant").filter(|variant| !variant.is_empty()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::model::ChildEntry;
    use crate::image::{BytesBlob, Index};
    use crate::oci::media_type;
    use std::collections::BTreeMap;

    fn image(os: &str, architecture: &str) -> Image {
        let config = serde_json::json!({"os": os, "architecture": architecture, "rootfs": {"type": "layers", "diff_ids": []}});
        let config = BytesBlob::new(media_type::OCI_CONFIG, serde_json::to_vec(&config).unwrap());
        Image::from_parts(config, Vec::new(), &BTreeMap::new(), None, None).unwrap()
    }

    #[test]
    fn picks_the_matching_child_and_lists_the_others() {
        let entry = |platform: &str| ChildEntry {
            platform: Some(platform.parse().unwrap()),
            ..Default::default()
        };
        let amd64 = image("linux", "amd64");
        let arm64 = image("linux", "arm64");
        let index = Manifest::Index(
            Index::from_children(
                vec![
                    (Manifest::Image(amd64), entry("linux/amd64")),
                    (Manifest::Image(arm64.clone()), entry("linux/arm64/v8")),
                ],
                &BTreeMap::new(),
            )
            .unwrap(),
        );
        let chosen = select_platform(&index, &"linux/arm64".parse().unwrap()).unwrap();
        assert_eq!(chosen.manifest.digest(), arm64.manifest.digest());
        let Err(error) = select_platform(&index, &"linux/s390x".parse().unwrap()) else {
            panic!("linux/s390x is not in the index");
        };
        let message = error.source.to_string();
        assert!(message.contains("linux/amd64, linux/arm64/v8"), "{message}");
    }

    #[test]
    fn a_single_image_is_checked_against_its_config() {
        let single = Manifest::Image(image("linux", "amd64"));
        assert!(select_platform(&single, &"linux/amd64".parse().unwrap()).is_ok());
        assert!(select_platform(&single, &"linux/arm64".parse().unwrap()).is_err());
    }
}
