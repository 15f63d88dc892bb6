//! Reading a manifest tree out of anything that stores blobs by digest (a
//! layout directory, an archive): every manifest and config read whole and
//! checked against its digest, layers left as handles opened later.

use super::ReadError;
use crate::image::{Blob, BytesBlob, Image, Index, Manifest};
use crate::oci::digest::DigestError;
use crate::oci::{media_type, sha256_digest};
use oci_spec::image::{ANNOTATION_REF_NAME, Descriptor, ImageIndex, ImageManifest};
use serde_json::Value;
use std::sync::Arc;

/// Indexes nest at most this deep; deeper is a loop or an attack.
pub(crate) const MAX_DEPTH: usize = 8;

/// Manifests and configs larger than this are refused before being read.
pub(crate) const MAX_DOCUMENT: u64 = 64 << 20;

/// A place that holds blobs by digest.
pub(crate) trait BlobStore {
    /// The bytes of a small blob (manifest, config), unverified; the size
    /// has been checked against `MAX_DOCUMENT` by the caller.
    fn read_small(&self, descriptor: &Descriptor) -> Result<Vec<u8>, ReadError>;

    /// A handle on a blob that is opened later, checked present now.
    fn handle(&self, descriptor: &Descriptor) -> Result<Arc<dyn Blob>, ReadError>;
}

/// Reads a manifest or config and checks it against its descriptor.
fn read_document(store: &dyn BlobStore, descriptor: &Descriptor) -> Result<Vec<u8>, ReadError> {
    if descriptor.size() > MAX_DOCUMENT {
        return Err(ReadError::TooLarge {
            digest: descriptor.digest().clone(),
            size: descriptor.size(),
            limit: MAX_DOCUMENT,
        });
    }
    let bytes = store.read_small(descriptor)?;
    let content_error = |source| ReadError::Content {
        digest: descriptor.digest().clone(),
        source: Box::new(source),
    };
    if bytes.len() as u64 != descriptor.size() {
        return Err(content_error(DigestError::SizeMismatch {
            expected: descriptor.size(),
            actual: bytes.len() as u64,
        }));
    }
    let actual = sha256_digest(&bytes);
    if &actual != descriptor.digest() {
        return Err(content_error(DigestError::Mismatch {
            expected: descriptor.digest().clone(),
            actual,
        }));
    }
    Ok(bytes)
}

/// The descriptor of the image `tag` names in an `index.json`, or of the
/// only image there when no tag is given.
pub(crate) fn choose_entry(index_json: &[u8], tag: Option<&str>) -> Result<Descriptor, ReadError> {
    let index: Value = serde_json::from_slice(index_json).map_err(|source| ReadError::Json {
        what: "index.json".to_string(),
        source,
    })?;
    let entries: Vec<&Value> = index
        .get("manifests")
        .and_then(Value::as_array)
        .map(|manifests| manifests.iter().collect())
        .unwrap_or_default();
    let name = |entry: &Value| {
        entry
            .get("annotations")
            .and_then(|annotations| annotations.get(ANNOTATION_REF_NAME))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let names = || -> Vec<String> {
        entries
            .iter()
            .map(|entry| {
                name(entry).unwrap_or_else(|| {
                    let digest = entry.get("digest").and_then(Value::as_str).unwrap_or("?");
                    format!("(untagged {digest})")
                })
            })
            .collect()
    };
    let chosen = match tag {
        Some(tag) => entries
            .iter()
            .find(|entry| name(entry).as_deref() == Some(tag))
            .ok_or_else(|| ReadError::NoSuchTag {
                tag: tag.to_string(),
                available: names(),
            })?,
        None => match entries.as_slice() {
            [] => return Err(ReadError::Empty),
            [only] => only,
            _ => {
                return Err(ReadError::Ambiguous {
                    count: entries.len(),
                    available: names(),
                });
            }
        },
    };
    let descriptor: Descriptor =
        serde_json::from_value((*chosen).clone()).map_err(|source| ReadError::Json {
            what: "an index.json entry".to_string(),
            source,
        })?;
    // The tag belongs to this layout, not to the image: drop it.
    let mut plain = Descriptor::new(
        descriptor.media_type().clone(),
        descriptor.size(),
        descriptor.digest().clone(),
    );
    plain.set_artifact_type(descriptor.artifact_type().clone());
    Ok(plain)
}

/// Reads the tree below `descriptor`.
pub(crate) fn resolve(
    store: &dyn BlobStore,
    descriptor: &Descriptor,
) -> Result<Manifest, ReadError> {
    resolve_at(store, descriptor, 0)
}

fn resolve_at(
    store: &dyn BlobStore,
    descriptor: &Descriptor,
    depth: usize,
) -> Result<Manifest, ReadError> {
    if depth > MAX_DEPTH {
        return Err(ReadError::TooDeep {
            digest: descriptor.digest().clone(),
            limit: MAX_DEPTH,
        });
    }
    let bytes = read_document(store, descriptor)?;
    let json_error = |source| ReadError::Json {
        what: format!("manifest {}", descriptor.digest()),
        source,
    };
    let declared = descriptor.media_type().to_string();
    let media_type = if media_type::is_index(&declared) || media_type::is_manifest(&declared) {
        declared
    } else {
        // Descriptors may omit or generalise it; the document says what it is.
        let value: Value = serde_json::from_slice(&bytes).map_err(json_error)?;
        match value.get("mediaType").and_then(Value::as_str) {
            Some(inner) => inner.to_string(),
            None if value.get("manifests").is_some() => media_type::OCI_INDEX.to_string(),
            None if value.get("config").is_some() => media_type::OCI_MANIFEST.to_string(),
            None => declared,
        }
    };
    let blob = BytesBlob::with_descriptor(descriptor.clone(), bytes);
    if media_type::is_index(&media_type) {
        let index: ImageIndex = serde_json::from_slice(blob.bytes()).map_err(json_error)?;
        let children = index
            .manifests()
            .iter()
            .map(|child| resolve_at(store, child, depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Manifest::Index(Index {
            manifest: blob,
            children,
        }))
    } else if media_type::is_manifest(&media_type) {
        let manifest: ImageManifest = serde_json::from_slice(blob.bytes()).map_err(json_error)?;
        let config_bytes = read_document(store, manifest.config())?;
        let config = BytesBlob::with_descriptor(manifest.config().clone(), config_bytes);
        let layers = manifest
            .layers()
            .iter()
            .map(|layer| store.handle(layer))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Manifest::Image(Image {
            manifest: blob,
            config,
            layers,
        }))
    } else {
        Err(ReadError::UnknownMediaType {
            digest: descriptor.digest().clone(),
            media_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_listed_when_missing_or_ambiguous() {
        let index = br#"{"schemaVersion":2,"manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"annotations":{"org.opencontainers.image.ref.name":"one"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"annotations":{"org.opencontainers.image.ref.name":"two"}}]}"#;
        let chosen = choose_entry(index, Some("two")).unwrap();
        assert_eq!(chosen.size(), 2);
        assert!(chosen.annotations().is_none());
        let missing = choose_entry(index, Some("three")).unwrap_err().to_string();
        assert!(missing.contains("one, two"), "{missing}");
        assert!(matches!(
            choose_entry(index, None),
            Err(ReadError::Ambiguous { count: 2, .. })
        ));
        assert!(matches!(
            choose_entry(br#"{"manifests":[]}"#, None),
            Err(ReadError::Empty)
        ));
    }
}
