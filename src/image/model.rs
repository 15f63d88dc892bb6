//! Image, Index and Layer: immutable values whose descriptors are all known
//! when they are made. A built image and one read from a registry look the same.

use super::blob::{Blob, BytesBlob};
use crate::oci::{Digest, Platform, media_type, to_canonical_json};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A layer blob and the digest of its uncompressed tar (the config's diff_id).
#[derive(Clone)]
pub struct Layer {
    pub blob: Arc<dyn Blob>,
    pub diff_id: Digest,
}

/// One image manifest with its config and layer blobs. Artifact manifests
/// (attestations, signatures) are images too, with another config media type.
#[derive(Clone)]
pub struct Image {
    pub manifest: BytesBlob,
    pub config: BytesBlob,
    pub layers: Vec<Arc<dyn Blob>>,
}

/// An index and what it lists, in the index's order.
#[derive(Clone)]
pub struct Index {
    pub manifest: BytesBlob,
    pub children: Vec<Manifest>,
}

/// Anything a reference can point at.
// A publish holds a handful of these, so the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Manifest {
    Image(Image),
    Index(Index),
}

/// What the index says about one of its children, besides the child itself.
#[derive(Clone, Debug, Default)]
pub struct ChildEntry {
    pub platform: Option<Platform>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("encoding {what} as JSON")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("building an OCI {what}: {message}")]
    Invalid { what: &'static str, message: String },
}

fn to_hash_map(map: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!map.is_empty()).then(|| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

impl Image {
    /// Makes the manifest for `config` and `layers` (canonical JSON, OCI media types).
    pub fn from_parts(
        config: BytesBlob,
        layers: Vec<Arc<dyn Blob>>,
        annotations: &BTreeMap<String, String>,
        subject: Option<Descriptor>,
        artifact_type: Option<&str>,
    ) -> Result<Image, ModelError> {
        let mut manifest = oci_spec::image::ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config.descriptor().clone())
            .layers(
                layers
                    .iter()
                    .map(|layer| layer.descriptor().clone())
                    .collect::<Vec<_>>(),
            )
            .build()
            .map_err(|error| ModelError::Invalid {
                what: "image manifest",
                message: error.to_string(),
            })?;
        manifest.set_annotations(to_hash_map(annotations));
        manifest.set_subject(subject);
        manifest.set_artifact_type(artifact_type.map(MediaType::from));
        let bytes = to_canonical_json(&manifest).map_err(|source| ModelError::Encode {
            what: "image manifest",
            source,
        })?;
        Ok(Image {
            manifest: BytesBlob::new(MediaType::ImageManifest, bytes),
            config,
            layers,
        })
    }

    pub fn parsed_manifest(&self) -> Result<ImageManifest, serde_json::Error> {
        serde_json::from_slice(self.manifest.bytes())
    }

    /// Config and layers, the blobs a sink needs before the manifest.
    pub fn blobs(&self) -> impl Iterator<Item = &dyn Blob> {
        std::iter::once(&self.config as &dyn Blob)
            .chain(self.layers.iter().map(|layer| layer.as_ref()))
    }
}

impl Index {
    /// Makes an OCI index over `children`, each with its platform and annotations.
    pub fn from_children(
        children: Vec<(Manifest, ChildEntry)>,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Index, ModelError> {
        let mut descriptors = Vec::with_capacity(children.len());
        for (child, entry) in &children {
            let mut descriptor = child.manifest_blob().descriptor().clone();
            descriptor.set_platform(entry.platform.as_ref().map(Platform::to_oci));
            descriptor.set_annotations(to_hash_map(&entry.annotations));
            descriptors.push(descriptor);
        }
        let mut index = ImageIndex::default();
        index.set_schema_version(2);
        index.set_media_type(Some(MediaType::ImageIndex));
        index.set_manifests(descriptors);
        index.set_annotations(to_hash_map(annotations));
        let bytes = to_canonical_json(&index).map_err(|source| ModelError::Encode {
            what: "image index",
            source,
        })?;
        Ok(Index {
            manifest: BytesBlob::new(MediaType::ImageIndex, bytes),
            children: children.into_iter().map(|(child, _)| child).collect(),
        })
    }

    pub fn parsed_index(&self) -> Result<ImageIndex, serde_json::Error> {
        serde_json::from_slice(self.manifest.bytes())
    }

    /// The child a descriptor of this index names (a source may have left
    /// out children it cannot read, so they are found by digest).
    pub fn child(&self, digest: &Digest) -> Option<&Manifest> {
        self.children.iter().find(|child| child.digest() == digest)
    }

    /// The child descriptors as the index lists them (with platforms and annotations).
    pub fn descriptors(&self) -> Result<Vec<Descriptor>, serde_json::Error> {
        Ok(self.parsed_index()?.manifests().clone())
    }
}

impl Manifest {
    pub fn manifest_blob(&self) -> &BytesBlob {
        match self {
            Manifest::Image(image) => &image.manifest,
            Manifest::Index(index) => &index.manifest,
        }
    }

    pub fn descriptor(&self) -> &Descriptor {
        self.manifest_blob().descriptor()
    }

    pub fn digest(&self) -> &Digest {
        self.descriptor().digest()
    }

    pub fn is_index(&self) -> bool {
        media_type::is_index(self.descriptor().media_type().as_ref())
    }

    /// Every image in the tree, depth first, children before parents' siblings.
    pub fn images(&self) -> Vec<&Image> {
        let mut out = Vec::new();
        fn visit<'a>(manifest: &'a Manifest, out: &mut Vec<&'a Image>) {
            match manifest {
                Manifest::Image(image) => out.push(image),
                Manifest::Index(index) => index.children.iter().for_each(|child| visit(child, out)),
            }
        }
        visit(self, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_image(content: &[u8]) -> Image {
        let layer: Arc<dyn Blob> =
            Arc::new(BytesBlob::new(MediaType::ImageLayer, content.to_vec()));
        let config = BytesBlob::new(MediaType::ImageConfig, b"{}".to_vec());
        let mut annotations = BTreeMap::new();
        annotations.insert("b".to_string(), "2".to_string());
        annotations.insert("a".to_string(), "1".to_string());
        Image::from_parts(config, vec![layer], &annotations, None, None).unwrap()
    }

    #[test]
    fn manifest_is_canonical_and_stable() {
        let first = tiny_image(b"layer");
        let second = tiny_image(b"layer");
        assert_eq!(first.manifest.digest(), second.manifest.digest());
        let text = std::str::from_utf8(first.manifest.bytes()).unwrap();
        assert!(
            text.starts_with(r#"{"annotations":{"a":"1","b":"2"},"config":"#),
            "{text}"
        );
        assert!(!text.contains(' '));
        assert_eq!(first.parsed_manifest().unwrap().layers().len(), 1);
    }

    #[test]
    fn index_lists_children_with_platforms() {
        let amd64 = Manifest::Image(tiny_image(b"a"));
        let arm64 = Manifest::Image(tiny_image(b"b"));
        let entry = |platform: &str| ChildEntry {
            platform: Some(platform.parse().unwrap()),
            ..Default::default()
        };
        let index = Index::from_children(
            vec![(amd64, entry("linux/amd64")), (arm64, entry("linux/arm64"))],
            &BTreeMap::new(),
        )
        .unwrap();
        let descriptors = index.descriptors().unwrap();
        assert_eq!(descriptors.len(), 2);
        assert_eq!(
            Platform::from_oci(descriptors[1].platform().as_ref().unwrap()).to_string(),
            "linux/arm64"
        );
        assert_eq!(Manifest::Index(index).images().len(), 2);
    }
}
