//! `docker-archive:FILE[:REF]` as a source: what `docker save` writes. The
//! archive holds no manifest, so one is made: OCI media types (OCI layouts
//! list only OCI manifests, and skopeo and umoci read nothing else there),
//! the config bytes unchanged (its digest is the image ID) and the layer
//! files as they are, each hashed once to describe it.

use super::archive::TarIndex;
use super::tree::MAX_DOCUMENT;
use super::{ReadError, Source, SourceError};
use crate::image::{Blob, BytesBlob, Image, Manifest};
use crate::oci::{DigestWriter, media_type, to_canonical_json};
use oci_spec::image::{Descriptor, MediaType};
use serde::Deserialize;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An image in a docker archive, by `name[:tag]` or as its only image.
pub struct DockerArchiveSource {
    path: PathBuf,
    reference: Option<String>,
}

/// One entry of `manifest.json`.
#[derive(Deserialize)]
struct ArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// `name[:tag]` in its shortest form with a tag, so `debian`,
/// `docker.io/library/debian:latest` and `debian:latest` compare equal.
fn familiar(reference: &str) -> String {
    let short = reference
        .strip_prefix("docker.io/library/")
        .or_else(|| reference.strip_prefix("docker.io/"))
        .unwrap_or(reference);
    let name_end = short.rfind('/').map_or(0, |slash| slash + 1);
    if short[name_end..].contains(':') {
        short.to_string()
    } else {
        format!("{short}:latest")
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

impl DockerArchiveSource {
    pub fn open(path: &Path, reference: Option<&str>) -> Result<DockerArchiveSource, SourceError> {
        let source = DockerArchiveSource {
            path: path.to_path_buf(),
            reference: reference.map(str::to_string),
        };
        super::require_archive_file(path, source.describe())?;
        Ok(source)
    }

    fn choose<'a>(&self, entries: &'a [ArchiveEntry]) -> Result<&'a ArchiveEntry, ReadError> {
        let tags = || -> Vec<String> {
            entries
                .iter()
                .map(|entry| match entry.repo_tags.as_deref() {
                    Some(tags) if !tags.is_empty() => tags.join(" "),
                    _ => format!("(untagged {})", entry.config),
                })
                .collect()
        };
        match &self.reference {
            Some(reference) => {
                let wanted = familiar(reference);
                entries
                    .iter()
                    .find(|entry| {
                        entry
                            .repo_tags
                            .iter()
                            .flatten()
                            .any(|tag| familiar(tag) == wanted)
                    })
                    .ok_or_else(|| ReadError::NoSuchTag {
                        tag: reference.clone(),
                        available: tags(),
                    })
            }
            None => match entries {
                [] => Err(ReadError::Empty),
                [only] => Ok(only),
                _ => Err(ReadError::Ambiguous {
                    count: entries.len(),
                    available: tags(),
                }),
            },
        }
    }

    fn read(&self) -> Result<Manifest, ReadError> {
        let archive = TarIndex::scan(&self.path)?;
        let listing = archive.read_small("manifest.json", MAX_DOCUMENT)?;
        let entries: Vec<ArchiveEntry> =
            serde_json::from_slice(&listing).map_err(|source| ReadError::Json {
                what: format!("manifest.json in {}", self.path.display()),
                source,
            })?;
        let entry = self.choose(&entries)?;
        let config_bytes = archive.read_small(&entry.config, MAX_DOCUMENT)?;
        let config = BytesBlob::new(media_type::OCI_CONFIG, config_bytes);
        let mut layers: Vec<Arc<dyn Blob>> = Vec::with_capacity(entry.layers.len());
        for name in &entry.layers {
            layers.push(Arc::new(describe_layer(&archive, name)?));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_MANIFEST,
            "config": descriptor_json(config.descriptor()),
            "layers": layers.iter().map(|layer| descriptor_json(layer.descriptor())).collect::<Vec<_>>(),
        });
        let bytes = to_canonical_json(&manifest).map_err(|source| ReadError::Json {
            what: "the image manifest made from manifest.json".to_string(),
            source,
        })?;
        Ok(Manifest::Image(Image {
            manifest: BytesBlob::new(media_type::OCI_MANIFEST, bytes),
            config,
            layers,
        }))
    }
}

fn descriptor_json(descriptor: &Descriptor) -> serde_json::Value {
    serde_json::json!({
        "mediaType": descriptor.media_type().to_string(),
        "size": descriptor.size(),
        "digest": descriptor.digest().to_string(),
    })
}

/// Hashes the layer file `name` and tells its compression from its first bytes.
fn describe_layer(
    archive: &TarIndex,
    name: &str,
) -> Result<super::archive::ArchiveBlob, ReadError> {
    let (offset, size) = archive.locate(name)?;
    let read_error = |error| ReadError::io("reading the tar archive", archive.path(), error);
    let mut reader = archive.open_range(offset, size).map_err(read_error)?;
    let mut head = Vec::with_capacity(4);
    (&mut reader)
        .take(4)
        .read_to_end(&mut head)
        .map_err(read_error)?;
    let mut writer = DigestWriter::new(io::sink());
    io::Write::write_all(&mut writer, &head).map_err(read_error)?;
    io::copy(&mut reader, &mut writer).map_err(read_error)?;
    let (_, digest, _) = writer.finish();
    let layer_type = if head.starts_with(GZIP_MAGIC) {
        media_type::OCI_LAYER_GZIP
    } else if head.starts_with(ZSTD_MAGIC) {
        media_type::OCI_LAYER_ZSTD
    } else {
        media_type::OCI_LAYER
    };
    archive.blob(
        name,
        Descriptor::new(MediaType::from(layer_type), size, digest),
    )
}

impl Source for DockerArchiveSource {
    fn describe(&self) -> String {
        match &self.reference {
            Some(reference) => format!("docker-archive:{}:{reference}", self.path.display()),
            None => format!("docker-archive:{}", self.path.display()),
        }
    }

    fn resolve(&self) -> Result<Manifest, SourceError> {
        self.read()
            .map_err(|error| SourceError::new(self.describe(), "reading", error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_compare_in_familiar_form() {
        assert_eq!(familiar("debian"), "debian:latest");
        assert_eq!(familiar("docker.io/library/debian:12"), "debian:12");
        assert_eq!(familiar("localhost:5000/app"), "localhost:5000/app:latest");
    }
}
