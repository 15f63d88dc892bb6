//! `oci:DIR[:TAG]` as a source: an OCI image layout read back as a
//! [`Manifest`] tree whose layers are [`FileBlob`]s in the layout.
//!
//! A layout is input someone else wrote. Its blobs must be regular files
//! inside it: a symlink (the blob itself, `blobs` or `blobs/<algorithm>`) is
//! refused rather than followed, so no file elsewhere on the host can pass
//! for a blob, and every blob is checked against its digest and size
//! wherever it goes (see [`FileBlob::foreign`]).

use super::tree::{self, BlobStore};
use super::{ReadError, Source, SourceError};
use crate::image::{Blob, FileBlob, Manifest, open_regular_file};
use oci_spec::image::Descriptor;
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

    /// `blobs` and `blobs/<algorithm>` must be directories of the layout,
    /// not symlinks to somewhere else.
    fn check_blob_directories(&self, descriptor: &Descriptor) -> Result<(), ReadError> {
        let blobs = self.directory.join("blobs");
        let algorithm = blobs.join(descriptor.digest().algorithm().to_string());
        for directory in [blobs, algorithm] {
            match std::fs::symlink_metadata(&directory) {
                Ok(metadata) if metadata.file_type().is_symlink() => {
                    return Err(ReadError::NotARegularFile {
                        digest: descriptor.digest().clone(),
                        path: directory,
                        what: "a symbolic link",
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn missing(&self, descriptor: &Descriptor, path: &Path) -> ReadError {
        ReadError::MissingBlob {
            digest: descriptor.digest().clone(),
            location: path.display().to_string(),
        }
    }
}

impl BlobStore for LayoutSource {
    fn read_small(&self, descriptor: &Descriptor) -> Result<Vec<u8>, ReadError> {
        self.check_blob_directories(descriptor)?;
        let path = self.blob_path(descriptor);
        let file = open_regular_file(&path).map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => self.missing(descriptor, &path),
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
        self.check_blob_directories(descriptor)?;
        let path = self.blob_path(descriptor);
        let metadata = match std::fs::symlink_metadata(&path) {
            Ok(metadata) => metadata,
            Err(_) => return Err(self.missing(descriptor, &path)),
        };
        let what = if metadata.file_type().is_symlink() {
            "a symbolic link"
        } else if !metadata.is_file() {
            "not a regular file"
        } else {
            ""
        };
        if !what.is_empty() {
            return Err(ReadError::NotARegularFile {
                digest: descriptor.digest().clone(),
                path,
                what,
            });
        }
        // The size is checked now, the digest when the blob is read.
        if metadata.len() != descriptor.size() {
            return Err(ReadError::Content {
                digest: descriptor.digest().clone(),
                source: Box::new(crate::oci::digest::DigestError::SizeMismatch {
                    expected: descriptor.size(),
                    actual: metadata.len(),
                }),
            });
        }
        Ok(Arc::new(FileBlob::foreign(descriptor.clone(), path)))
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
