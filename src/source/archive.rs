//! Reading tar archives in place: one pass over the headers records where
//! each file's bytes start, and blobs are read from those offsets later, so
//! an archive is never unpacked to disk or held in memory. Used by
//! `oci-archive:FILE[:TAG]` (here) and `docker-archive:` sources.

use super::tree::{self, BlobStore};
use super::{ReadError, Source, SourceError};
use crate::image::{Blob, Manifest};
use crate::oci::DigestReader;
use oci_spec::image::Descriptor;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where each regular file of a tar archive lies.
pub(crate) struct TarIndex {
    path: Arc<PathBuf>,
    entries: HashMap<String, (u64, u64)>,
}

/// `./a//b` and `/a/b` as `a/b`.
fn normalize(name: &str) -> String {
    name.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

impl TarIndex {
    pub(crate) fn scan(path: &Path) -> Result<TarIndex, ReadError> {
        let file = File::open(path).map_err(|error| ReadError::io("opening", path, error))?;
        let mut archive = tar::Archive::new(file);
        let mut entries = HashMap::new();
        let mut links = Vec::new();
        let read_error = |error| ReadError::io("reading the tar archive", path, error);
        for entry in archive.entries_with_seek().map_err(read_error)? {
            let entry = entry.map_err(read_error)?;
            let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    entries.insert(name, (entry.raw_file_position(), entry.size()));
                }
                tar::EntryType::Link => {
                    if let Some(target) = entry.link_name_bytes() {
                        links.push((name, normalize(&String::from_utf8_lossy(&target))));
                    }
                }
                _ => {}
            }
        }
        // Hard links share the bytes of an earlier entry.
        for (name, target) in links {
            if let Some(location) = entries.get(&target).copied() {
                entries.insert(name, location);
            }
        }
        Ok(TarIndex {
            path: Arc::new(path.to_path_buf()),
            entries,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Offset and size of the file `name`.
    pub(crate) fn locate(&self, name: &str) -> Result<(u64, u64), ReadError> {
        self.entries
            .get(&normalize(name))
            .copied()
            .ok_or_else(|| ReadError::MissingEntry {
                name: name.to_string(),
            })
    }

    /// Opens the file `name` where it lies, reading at most `size` bytes.
    pub(crate) fn open_range(
        &self,
        offset: u64,
        size: u64,
    ) -> io::Result<impl Read + Send + use<>> {
        open_range(&self.path, offset, size)
    }

    /// Reads a small file whole, refusing one larger than `limit`.
    pub(crate) fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
        let (offset, size) = self.locate(name)?;
        if size > limit {
            return Err(ReadError::EntryTooLarge {
                name: name.to_string(),
                size,
                limit,
            });
        }
        // The size is the tar header's word: memory grows with the bytes
        // that arrive, not with what the header claims.
        let mut bytes = Vec::with_capacity(size.min(64 * 1024) as usize);
        self.open_range(offset, size)
            .and_then(|mut reader| reader.read_to_end(&mut bytes))
            .map_err(|error| ReadError::io("reading the tar archive", self.path(), error))?;
        Ok(bytes)
    }

    /// A blob read from the file `name`, checked against `descriptor` as it is read.
    pub(crate) fn blob(
        &self,
        name: &str,
        descriptor: Descriptor,
    ) -> Result<ArchiveBlob, ReadError> {
        let (offset, size) = self.locate(name)?;
        if size != descriptor.size() {
            return Err(ReadError::Content {
                digest: descriptor.digest().clone(),
                source: Box::new(crate::oci::digest::DigestError::SizeMismatch {
                    expected: descriptor.size(),
                    actual: size,
                }),
            });
        }
        Ok(ArchiveBlob {
            descriptor,
            archive: self.path.clone(),
            offset,
        })
    }
}

fn open_range(path: &Path, offset: u64, size: u64) -> io::Result<impl Read + Send + use<>> {
    let mut file = File::open(path).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("opening archive {}: {error}", path.display()),
        )
    })?;
    file.seek(SeekFrom::Start(offset))?;
    Ok(BufReader::with_capacity(1 << 20, file).take(size))
}

/// A blob stored as a file inside a tar archive.
pub struct ArchiveBlob {
    descriptor: Descriptor,
    archive: Arc<PathBuf>,
    offset: u64,
}

impl Blob for ArchiveBlob {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        let reader = open_range(&self.archive, self.offset, self.descriptor.size())?;
        Ok(Box::new(DigestReader::new(
            reader,
            self.descriptor.digest().clone(),
            Some(self.descriptor.size()),
        )))
    }
}

/// An image in an OCI archive (a tar of a layout), by tag or as its only image.
pub struct OciArchiveSource {
    path: PathBuf,
    tag: Option<String>,
}

impl OciArchiveSource {
    pub fn open(path: &Path, tag: Option<&str>) -> Result<OciArchiveSource, SourceError> {
        let source = OciArchiveSource {
            path: path.to_path_buf(),
            tag: tag.map(str::to_string),
        };
        super::require_archive_file(path, source.describe())?;
        Ok(source)
    }
}

/// An OCI layout inside a tar archive.
struct ArchivedLayout(TarIndex);

fn blob_name(descriptor: &Descriptor) -> String {
    let digest = descriptor.digest();
    format!("blobs/{}/{}", digest.algorithm(), digest.digest())
}

impl BlobStore for ArchivedLayout {
    fn read_small(&self, descriptor: &Descriptor) -> Result<Vec<u8>, ReadError> {
        self.0
            .read_small(&blob_name(descriptor), tree::MAX_DOCUMENT)
            .map_err(|error| match error {
                ReadError::MissingEntry { name } => ReadError::MissingBlob {
                    digest: descriptor.digest().clone(),
                    location: format!("{name} in {}", self.0.path().display()),
                },
                other => other,
            })
    }

    fn handle(&self, descriptor: &Descriptor) -> Result<Arc<dyn Blob>, ReadError> {
        let name = blob_name(descriptor);
        match self.0.blob(&name, descriptor.clone()) {
            Ok(blob) => Ok(Arc::new(blob)),
            Err(ReadError::MissingEntry { .. }) => Err(ReadError::MissingBlob {
                digest: descriptor.digest().clone(),
                location: format!("{name} in {}", self.0.path().display()),
            }),
            Err(other) => Err(other),
        }
    }
}

impl Source for OciArchiveSource {
    fn describe(&self) -> String {
        match &self.tag {
            Some(tag) => format!("oci-archive:{}:{tag}", self.path.display()),
            None => format!("oci-archive:{}", self.path.display()),
        }
    }

    fn resolve(&self) -> Result<Manifest, SourceError> {
        let fail = |error| SourceError::new(self.describe(), "reading", error);
        let layout = ArchivedLayout(TarIndex::scan(&self.path).map_err(fail)?);
        if layout.0.locate("oci-layout").is_err() {
            return Err(fail(ReadError::NotALayout {
                path: self.path.clone(),
            }));
        }
        let index = layout
            .0
            .read_small("index.json", tree::MAX_DOCUMENT)
            .map_err(fail)?;
        let top = tree::choose_entry(&index, self.tag.as_deref()).map_err(fail)?;
        tree::resolve(&layout, &top).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize("./blobs//sha256/ab"), "blobs/sha256/ab");
        assert_eq!(normalize("/index.json"), "index.json");
    }
}
