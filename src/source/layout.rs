//! `oci:DIR[:TAG]` as a source: an OCI image layout read back as a
//! [`Manifest`] tree whose layers are [`FileBlob`]s in the layout.

use super::tree::{self, BlobStore};
use super::{ReadError, Source, SourceError};
use crate::image::{Blob, FileBlob, Manifest};
use oci_spec::image::Descriptor;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An image in an OCI layout directory, by tag or as its only image.
pub struct LayoutSource {
    directory: PathBuf,
    tag: Option<String>,
}

impl LayoutSource {
    pub fn open(directory: &Path, tag: Option<&str>) -> Result<LayoutSource, SourceError> {
        let source = LayoutSource {
            directory: directory.to_path_buf(),
            tag: tag.map(str::to_string),
        };
        if !directory.join("oci-layout").is_file() {
            return Err(SourceError::new(
                source.describe(),
                "opening",
                ReadError::NotALayout {
                    path: directory.to_path_buf(),
                },
            ));
        }
        Ok(source)
    }

    fn blob_path(&self, descriptor: &Descriptor) -> PathBuf {
        let digest = descriptor.digest();
        self.directory
            .join("blobs")
            .join(digest.algorithm().to_string())
            .join(digest.digest())
    }
}

impl BlobStore for LayoutSource {
    fn read_small(&self, descriptor: &Descriptor) -> Result<Vec<u8>, ReadError> {
        let path = self.blob_path(descriptor);
        let file = File::open(&path).map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => ReadError::MissingBlob {
                digest: descriptor.digest().clone(),
                location: path.display().to_string(),
            },
            _ => ReadError::io("opening", &path, error),
        })?;
        let mut bytes = Vec::new();
        // One byte more than expected is enough to notice a wrong size.
        file.take(descriptor.size().saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|error| ReadError::io("reading", &path, error))?;
        Ok(bytes)
    }

    fn handle(&self, descriptor: &Descriptor) -> Result<Arc<dyn Blob>, ReadError> {
        let path = self.blob_path(descriptor);
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => {
                Ok(Arc::new(FileBlob::new(descriptor.clone(), path)))
            }
            _ => Err(ReadError::MissingBlob {
                digest: descriptor.digest().clone(),
                location: path.display().to_string(),
            }),
        }
    }
}

impl Source for LayoutSource {
    fn describe(&self) -> String {
        match &self.tag {
            Some(tag) => format!("oci:{}:{tag}", self.directory.display()),
            None => format!("oci:{}", self.directory.display()),
        }
    }

    fn resolve(&self) -> Result<Manifest, SourceError> {
        let fail = |error| SourceError::new(self.describe(), "reading", error);
        let index_path = self.directory.join("index.json");
        let index = std::fs::read(&index_path)
            .map_err(|error| fail(ReadError::io("reading", &index_path, error)))?;
        let top = tree::choose_entry(&index, self.tag.as_deref()).map_err(fail)?;
        tree::resolve(self, &top).map_err(fail)
    }
}
