//! `hoist attestations` as an operation: the SBOMs, provenance and other
//! documents attached to each platform image, in the index as BuildKit
//! attaches them or as OCI referrers (in a registry, or untagged in a
//! layout), each reported as [`Event::AttestationFound`] and, on request,
//! extracted to files.

use crate::attest::attach::{
    ATTESTATION_MANIFEST, PREDICATE_TYPE_ANNOTATION, REFERENCE_DIGEST_ANNOTATION,
    REFERENCE_TYPE_ANNOTATION,
};
use crate::build::transport::{
    TransportError, Transports, own_registries, parse_reference, scope_credentials,
};
use crate::image::{Blob, BytesBlob, FileBlob, Image, Manifest, open_regular_file};
use crate::oci::{Digest, DigestReader, Location, Platform, sha256_digest};
use crate::progress::{Event, Observer};
use crate::registry::Access;
use crate::registry::{ClientOptions, RegistryError, RegistrySource};
use crate::source::{Source, SourceError};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct AttestationsRequest {
    /// `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker://REF`.
    pub location: Location,
    /// Write every document found into this directory, one file each,
    /// named `<platform manifest hex>/<form>-<kind>-<digest hex>.json`.
    pub extract: Option<PathBuf>,
    pub registry: ClientOptions,
}

/// One document attached to a platform image.
pub struct Attached {
    pub subject: Digest,
    /// `index` (BuildKit style) or `referrer`.
    pub form: &'static str,
    /// Predicate type of a statement, else the artifact type.
    pub kind: String,
    pub blob: Arc<dyn Blob>,
}

#[derive(Debug, thiserror::Error)]
pub enum AttestationsError {
    #[error(transparent)]
    Source(Box<SourceError>),
    #[error(transparent)]
    Transport(Box<TransportError>),
    #[error("the index lists a descriptor that is not valid JSON")]
    Descriptors(#[source] serde_json::Error),
    #[error("listing the referrers of {subject}")]
    Referrers {
        subject: Digest,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("{action} {path}")]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an OCI index")]
    NotAnIndex {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} does not match its digest: the layout is damaged")]
    Damaged { path: PathBuf },
    #[error(
        "{path} was already written by this run for another document; refusing to overwrite it with {digest}"
    )]
    WrittenTwice { path: PathBuf, digest: Digest },
    #[error(
        "attached document {digest} is {size} bytes, more than the {limit} MiB hoist reads into memory"
    )]
    TooLarge {
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("{action} {digest}")]
    Blob {
        action: &'static str,
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
}

impl From<SourceError> for AttestationsError {
    fn from(error: SourceError) -> AttestationsError {
        AttestationsError::Source(Box::new(error))
    }
}

impl From<TransportError> for AttestationsError {
    fn from(error: TransportError) -> AttestationsError {
        AttestationsError::Transport(Box::new(error))
    }
}

fn file_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> AttestationsError {
    let path = path.to_path_buf();
    move |source| AttestationsError::File {
        action,
        path,
        source,
    }
}

/// Finds every document attached to the image at `request.location`,
/// reports each and, with `request.extract`, writes it to a file.
pub fn attestations(
    request: &AttestationsRequest,
    observer: &dyn Observer,
) -> Result<Vec<Attached>, AttestationsError> {
    let location = &request.location;
    let own = own_registries([location], []);
    let transports = Transports::new(scope_credentials(request.registry.clone(), &own));
    let manifest = transports.source(location)?.resolve()?;
    let mut found = in_index(&manifest)?;
    let subjects: Vec<Digest> = platform_images(&manifest)?
        .iter()
        .map(|(_, image)| image.manifest.digest().clone())
        .collect();
    let referrers = match location {
        Location::Layout { path, .. } => layout_referrers(path, &subjects)?,
        Location::Registry { reference } => registry_referrers(&transports, reference, &subjects)?,
        _ => Vec::new(),
    };
    for (subject, image) in referrers {
        found.extend(as_referrer(subject, &image));
    }
    let mut written = HashSet::new();
    for item in &found {
        observer.event(Event::AttestationFound {
            subject: item.subject.clone(),
            form: item.form.to_string(),
            kind: item.kind.clone(),
            digest: item.blob.digest().clone(),
        });
        if let Some(directory) = &request.extract {
            extract(directory, item, &mut written)?;
        }
    }
    Ok(found)
}

/// The documents in the index's attestation manifests, as BuildKit attaches them.
fn in_index(manifest: &Manifest) -> Result<Vec<Attached>, AttestationsError> {
    let mut found = Vec::new();
    let Manifest::Index(index) = manifest else {
        return Ok(found);
    };
    let descriptors = index
        .descriptors()
        .map_err(AttestationsError::Descriptors)?;
    for (descriptor, child) in descriptors.iter().zip(&index.children) {
        let (Manifest::Image(image), true) = (child, is_attestation(descriptor)) else {
            continue;
        };
        let Some(subject) = descriptor
            .annotations()
            .as_ref()
            .and_then(|annotations| annotations.get(REFERENCE_DIGEST_ANNOTATION))
            .and_then(|text| text.parse::<Digest>().ok())
        else {
            continue;
        };
        for layer in &image.layers {
            found.push(Attached {
                subject: subject.clone(),
                form: "index",
                kind: predicate_or_media_type(layer.as_ref()),
                blob: layer.clone(),
            });
        }
    }
    Ok(found)
}

/// The documents of a referrer artifact, each of the predicate type its
/// layer names, else the artifact's type, else its media type.
fn as_referrer(subject: Digest, image: &Image) -> Vec<Attached> {
    let artifact_type = image
        .parsed_manifest()
        .ok()
        .and_then(|manifest| manifest.artifact_type().as_ref().map(ToString::to_string));
    image
        .layers
        .iter()
        .map(|layer| {
            let kind = layer
                .descriptor()
                .annotations()
                .as_ref()
                .and_then(|annotations| annotations.get(PREDICATE_TYPE_ANNOTATION))
                .cloned()
                .or_else(|| artifact_type.clone())
                .unwrap_or_else(|| layer.descriptor().media_type().to_string());
            Attached {
                subject: subject.clone(),
                form: "referrer",
                kind,
                blob: layer.clone(),
            }
        })
        .collect()
}

/// The referrer images the registry lists for each subject.
fn registry_referrers(
    transports: &Transports,
    reference: &str,
    subjects: &[Digest],
) -> Result<Vec<(Digest, Image)>, AttestationsError> {
    let parsed = parse_reference(reference)?;
    let client = transports.registry()?;
    let repository = client.repository(&parsed, Access::PULL);
    let mut images = Vec::new();
    for subject in subjects {
        let listed =
            repository
                .referrers(subject)
                .map_err(|source| AttestationsError::Referrers {
                    subject: subject.clone(),
                    source: Box::new(source),
                })?;
        for descriptor in listed.descriptors() {
            let source = RegistrySource::new(
                client.clone(),
                parsed.with_digest(descriptor.digest().clone()),
            );
            if let Manifest::Image(image) = source.resolve()? {
                images.push((subject.clone(), image));
            }
        }
    }
    Ok(images)
}

/// The platform images of a manifest (attestation manifests left out),
/// with their platforms where the index names them.
pub fn platform_images(
    manifest: &Manifest,
) -> Result<Vec<(Option<Platform>, Image)>, AttestationsError> {
    match manifest {
        Manifest::Image(image) => Ok(vec![(None, image.clone())]),
        Manifest::Index(index) => {
            let mut images = Vec::new();
            let descriptors = index
                .descriptors()
                .map_err(AttestationsError::Descriptors)?;
            for (descriptor, child) in descriptors.iter().zip(&index.children) {
                let Manifest::Image(image) = child else {
                    continue;
                };
                if is_attestation(descriptor) {
                    continue;
                }
                images.push((
                    descriptor.platform().as_ref().map(Platform::from_oci),
                    image.clone(),
                ));
            }
            Ok(images)
        }
    }
}

fn is_attestation(descriptor: &oci_spec::image::Descriptor) -> bool {
    descriptor
        .annotations()
        .as_ref()
        .and_then(|annotations| annotations.get(REFERENCE_TYPE_ANNOTATION))
        .is_some_and(|kind| kind == ATTESTATION_MANIFEST)
}

/// Writes one document to `<subject hex>/<form>-<kind>-<digest hex>.json`
/// under `directory`. The digest in the name keeps two documents of one
/// kind (two SBOMs of one image) apart; a name this run already wrote is
/// refused rather than overwritten.
fn extract(
    directory: &Path,
    item: &Attached,
    written: &mut HashSet<PathBuf>,
) -> Result<(), AttestationsError> {
    let folder = directory.join(item.subject.digest());
    std::fs::create_dir_all(&folder).map_err(file_error("creating", &folder))?;
    let hex = item.blob.digest().digest();
    let name = format!(
        "{}-{}-{}.json",
        item.form,
        short_kind(&item.kind),
        &hex[..hex.len().min(DIGEST_IN_NAME)]
    );
    let path = folder.join(name);
    if !written.insert(path.clone()) {
        return Err(AttestationsError::WrittenTwice {
            path,
            digest: item.blob.digest().clone(),
        });
    }
    let bytes = read_blob(item.blob.as_ref())?;
    std::fs::write(&path, bytes).map_err(file_error("writing", &path))
}

/// Hex digits of a document's digest in its extracted file's name.
const DIGEST_IN_NAME: usize = 16;

/// The largest attached document `--extract` reads into memory.
const MAX_ATTACHED_DOCUMENT: u64 = 64 << 20;

fn predicate_or_media_type(layer: &dyn Blob) -> String {
    layer
        .descriptor()
        .annotations()
        .as_ref()
        .and_then(|annotations| annotations.get(PREDICATE_TYPE_ANNOTATION))
        .cloned()
        .unwrap_or_else(|| layer.descriptor().media_type().to_string())
}

/// A file name for a predicate or artifact type.
fn short_kind(kind: &str) -> &'static str {
    if kind.contains("spdx") {
        "spdx"
    } else if kind.contains("cyclonedx") {
        "cyclonedx"
    } else if kind.contains("slsa.dev/provenance") {
        "provenance"
    } else {
        "other"
    }
}

/// Reads an attached document whole, checking its digest and size. One
/// larger than the limit is an error, never cut short: the checking reader
/// fails on a byte past the descriptor's size, so the whole is read or none.
fn read_blob(blob: &dyn Blob) -> Result<Vec<u8>, AttestationsError> {
    if blob.size() > MAX_ATTACHED_DOCUMENT {
        return Err(AttestationsError::TooLarge {
            digest: blob.digest().clone(),
            size: blob.size(),
            limit: MAX_ATTACHED_DOCUMENT >> 20,
        });
    }
    let failed = |action: &'static str| {
        move |source| AttestationsError::Blob {
            action,
            digest: blob.digest().clone(),
            source,
        }
    };
    let mut reader = DigestReader::new(
        blob.open().map_err(failed("opening"))?,
        blob.digest().clone(),
        Some(blob.size()),
    );
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(failed("reading"))?;
    Ok(bytes)
}

/// A manifest or config of a layout, checked against its digest: a regular
/// file (never a symlink followed out of the layout), read up to the size a
/// document may have.
fn read_layout_document(path: &Path, digest: &Digest) -> Result<Vec<u8>, AttestationsError> {
    let file = open_regular_file(path).map_err(file_error("opening", path))?;
    let mut bytes = Vec::new();
    file.take(64 << 20)
        .read_to_end(&mut bytes)
        .map_err(file_error("reading", path))?;
    if &sha256_digest(&bytes) != digest {
        return Err(AttestationsError::Damaged {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// The artifact manifests in a layout's `index.json` whose `subject` is one
/// of `subjects` (hoist stores referrers there, untagged).
fn layout_referrers(
    directory: &Path,
    subjects: &[Digest],
) -> Result<Vec<(Digest, Image)>, AttestationsError> {
    let index_path = directory.join("index.json");
    let bytes = std::fs::read(&index_path).map_err(file_error("reading", &index_path))?;
    let index: oci_spec::image::ImageIndex =
        serde_json::from_slice(&bytes).map_err(|source| AttestationsError::NotAnIndex {
            path: index_path.clone(),
            source,
        })?;
    let blob_path = |digest: &Digest| {
        directory
            .join("blobs")
            .join(digest.algorithm().to_string())
            .join(digest.digest())
    };
    let mut found = Vec::new();
    for entry in index.manifests() {
        if entry.media_type() != &oci_spec::image::MediaType::ImageManifest {
            continue;
        }
        let bytes = read_layout_document(&blob_path(entry.digest()), entry.digest())?;
        let Ok(manifest) = serde_json::from_slice::<oci_spec::image::ImageManifest>(&bytes) else {
            continue;
        };
        let Some(subject) = manifest.subject() else {
            continue;
        };
        if !subjects.contains(subject.digest()) {
            continue;
        }
        let layers: Vec<Arc<dyn Blob>> = manifest
            .layers()
            .iter()
            .map(|layer| {
                Arc::new(FileBlob::foreign(layer.clone(), blob_path(layer.digest())))
                    as Arc<dyn Blob>
            })
            .collect();
        let config_digest = manifest.config().digest();
        let config = read_layout_document(&blob_path(config_digest), config_digest)?;
        let image = Image {
            manifest: BytesBlob::with_descriptor(entry.clone(), bytes),
            config: BytesBlob::with_descriptor(manifest.config().clone(), config),
            layers,
        };
        found.push((subject.digest().clone(), image));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attached(bytes: &[u8]) -> Attached {
        Attached {
            subject: sha256_digest(b"the image"),
            form: "referrer",
            kind: "https://spdx.dev/Document".to_string(),
            blob: Arc::new(BytesBlob::new(
                "application/vnd.in-toto+json",
                bytes.to_vec(),
            )),
        }
    }

    #[test]
    fn two_documents_of_one_kind_get_two_files_and_none_is_overwritten() {
        let directory = tempfile::tempdir().unwrap();
        let mut written = HashSet::new();
        let first = attached(b"{\"first\": 1}");
        let second = attached(b"{\"second\": 2}");
        extract(directory.path(), &first, &mut written).unwrap();
        extract(directory.path(), &second, &mut written).unwrap();
        let mut contents: Vec<Vec<u8>> = written
            .iter()
            .map(|path| std::fs::read(path).unwrap())
            .collect();
        contents.sort();
        assert_eq!(
            contents,
            [b"{\"first\": 1}".to_vec(), b"{\"second\": 2}".to_vec()]
        );
        let error = extract(directory.path(), &first, &mut written).unwrap_err();
        assert!(
            error.to_string().contains("refusing to overwrite"),
            "{error}"
        );
    }

    #[test]
    fn a_document_is_read_whole_or_refused() {
        let large = vec![b' '; (MAX_ATTACHED_DOCUMENT + 1) as usize];
        let error = read_blob(&BytesBlob::new("application/json", large)).unwrap_err();
        assert!(
            error.to_string().contains("more than the 64 MiB"),
            "{error}"
        );
        // Bytes beyond what the descriptor says are an error, not cut off.
        let short = BytesBlob::new("application/json", b"{}".to_vec());
        let longer = BytesBlob::with_descriptor(short.descriptor().clone(), b"{}   ".to_vec());
        assert!(read_blob(&longer).is_err());
        assert_eq!(read_blob(&short).unwrap(), b"{}");
    }

    #[test]
    fn kinds_name_files() {
        assert_eq!(short_kind("https://spdx.dev/Document"), "spdx");
        assert_eq!(short_kind("application/vnd.cyclonedx+json"), "cyclonedx");
        assert_eq!(short_kind("https://slsa.dev/provenance/v1"), "provenance");
    }
}
