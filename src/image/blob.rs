//! Blobs: a descriptor known up front and content that can be reopened, so a
//! failed upload can be retried from the start without keeping it in memory.

use crate::oci::{Digest, sha256_digest};
use oci_spec::image::{Descriptor, MediaType};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Content addressed by a descriptor.
pub trait Blob: Send + Sync {
    fn descriptor(&self) -> &Descriptor;

    /// Opens the content from its start. Can be called any number of times.
    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>>;

    /// The content's path on the local disk, where it has one; sinks use it
    /// to hard-link or copy instead of streaming.
    fn local_path(&self) -> Option<&Path> {
        None
    }

    /// Whether the file at [`Blob::local_path`] is known to hold exactly the
    /// descriptor's content because hoist wrote it (a spooled layer, the
    /// cache). A sink that hard-links any other file checks the link against
    /// the digest and size first, as a copy is checked.
    fn local_path_trusted(&self) -> bool {
        false
    }

    /// The repository a registry blob came from, so a push to the same
    /// registry can mount it instead of uploading.
    fn origin(&self) -> Option<&BlobOrigin> {
        None
    }

    fn digest(&self) -> &Digest {
        self.descriptor().digest()
    }

    fn size(&self) -> u64 {
        self.descriptor().size()
    }
}

/// Where a blob read from a registry lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobOrigin {
    /// Registry host as used in API URLs (`registry-1.docker.io`, `localhost:5000`).
    pub registry: String,
    /// Repository path (`library/debian`).
    pub repository: String,
}

/// A small blob held in memory: configs, manifests, attestations.
#[derive(Clone, Debug)]
pub struct BytesBlob {
    descriptor: Descriptor,
    bytes: Arc<[u8]>,
}

impl BytesBlob {
    /// Wraps `bytes`, computing the descriptor.
    pub fn new(media_type: impl Into<MediaType>, bytes: impl Into<Arc<[u8]>>) -> Self {
        let bytes = bytes.into();
        let descriptor =
            Descriptor::new(media_type.into(), bytes.len() as u64, sha256_digest(&bytes));
        BytesBlob { descriptor, bytes }
    }

    /// Wraps bytes whose descriptor is already known (read from a source);
    /// the caller has verified them.
    pub fn with_descriptor(descriptor: Descriptor, bytes: impl Into<Arc<[u8]>>) -> Self {
        BytesBlob {
            descriptor,
            bytes: bytes.into(),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn descriptor_mut(&mut self) -> &mut Descriptor {
        &mut self.descriptor
    }
}

impl Blob for BytesBlob {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(&self.bytes[..]))
    }
}

/// A blob stored in a file: a layer hoist spooled itself ([`FileBlob::new`]),
/// or a blob of a layout someone else wrote ([`FileBlob::foreign`]), which is
/// opened without following a symlink and checked against its digest and
/// size as it is read, so neither a file outside the layout nor bytes that do
/// not match the descriptor can pass for it.
#[derive(Clone, Debug)]
pub struct FileBlob {
    descriptor: Descriptor,
    path: PathBuf,
    foreign: bool,
}

impl FileBlob {
    /// A file hoist wrote and hashed itself.
    pub fn new(descriptor: Descriptor, path: impl Into<PathBuf>) -> Self {
        FileBlob {
            descriptor,
            path: path.into(),
            foreign: false,
        }
    }

    /// A file of a layout hoist did not write: trusted for nothing but its
    /// place.
    pub fn foreign(descriptor: Descriptor, path: impl Into<PathBuf>) -> Self {
        FileBlob {
            descriptor,
            path: path.into(),
            foreign: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Blob for FileBlob {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        if self.foreign {
            let file = open_regular_file(&self.path)?;
            return Ok(Box::new(crate::oci::DigestReader::new(
                io::BufReader::with_capacity(1 << 20, file),
                self.descriptor.digest().clone(),
                Some(self.descriptor.size()),
            )));
        }
        let file = std::fs::File::open(&self.path).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("opening blob {}: {error}", self.path.display()),
            )
        })?;
        Ok(Box::new(io::BufReader::with_capacity(1 << 20, file)))
    }

    fn local_path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn local_path_trusted(&self) -> bool {
        !self.foreign
    }
}

/// Opens `path` for reading only if it is a regular file itself: a symlink
/// is refused rather than followed (it could point anywhere on the host),
/// and so is a FIFO or a device (which could block or never end).
pub fn open_regular_file(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let refused = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is {what}, not a regular file: a blob must be a file of its own, so hoist does not read it",
                path.display()
            ),
        )
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        // O_NONBLOCK so that a FIFO does not hang the open; it changes
        // nothing for a regular file.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|error| match error.raw_os_error() {
            Some(libc::ELOOP) => refused("a symbolic link"),
            _ => io::Error::new(
                error.kind(),
                format!("opening blob {}: {error}", path.display()),
            ),
        })?;
    if !file.metadata()?.is_file() {
        return Err(refused("a special file"));
    }
    Ok(file)
}

/// A layer of a Docker-format image under its OCI media type: the same
/// bytes, digest and size, so an OCI manifest that builds on a Docker base
/// names only OCI types (umoci, for one, refuses Docker layer types there).
/// Layers already of OCI types are returned as they are.
pub fn as_oci_layer(layer: &Arc<dyn Blob>) -> Arc<dyn Blob> {
    let media_type = layer.descriptor().media_type().to_string();
    match crate::oci::media_type::oci_layer_type(&media_type) {
        Some(oci) => {
            let mut descriptor = layer.descriptor().clone();
            descriptor.set_media_type(MediaType::from(oci));
            Arc::new(RetypedBlob {
                inner: Arc::clone(layer),
                descriptor,
            })
        }
        None => Arc::clone(layer),
    }
}

/// Another blob's content under a different descriptor.
struct RetypedBlob {
    inner: Arc<dyn Blob>,
    descriptor: Descriptor,
}

impl Blob for RetypedBlob {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        self.inner.open()
    }

    fn local_path(&self) -> Option<&Path> {
        self.inner.local_path()
    }

    fn local_path_trusted(&self) -> bool {
        self.inner.local_path_trusted()
    }

    fn origin(&self) -> Option<&BlobOrigin> {
        self.inner.origin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_layers_take_their_oci_media_type_and_keep_their_bytes() {
        use crate::oci::media_type::{DOCKER_LAYER_GZIP, OCI_LAYER_GZIP};
        let docker: Arc<dyn Blob> = Arc::new(BytesBlob::new(
            MediaType::Other(DOCKER_LAYER_GZIP.to_string()),
            b"layer bytes".to_vec(),
        ));
        let oci = as_oci_layer(&docker);
        assert_eq!(oci.descriptor().media_type().to_string(), OCI_LAYER_GZIP);
        assert_eq!(oci.digest(), docker.digest());
        assert_eq!(oci.size(), docker.size());
        let mut bytes = Vec::new();
        oci.open().unwrap().read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"layer bytes");
        // An OCI layer is left as it is.
        let again = as_oci_layer(&oci);
        assert!(Arc::ptr_eq(&again, &oci));
    }

    #[test]
    fn bytes_blob_descriptor_and_reopen() {
        let blob = BytesBlob::new(MediaType::EmptyJSON, b"{}".to_vec());
        assert_eq!(blob.size(), 2);
        assert_eq!(
            blob.digest().to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        for _ in 0..2 {
            let mut text = String::new();
            blob.open().unwrap().read_to_string(&mut text).unwrap();
            assert_eq!(text, "{}");
        }
    }
}
