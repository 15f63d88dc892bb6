//! Sinks on the local disk, the last stage of the pipeline besides the
//! registry: an OCI image layout directory ([`LayoutSink`]), a tar of one
//! ([`OciArchiveSink`]) and what `docker load` reads ([`DockerArchiveSink`]).
//! All of them stage everything out of sight and make it visible in one step
//! on [`Sink::finish`](crate::image::Sink::finish), so a failed build never
//! leaves a half-written output behind.

pub mod docker_archive;
pub mod layout;
pub mod oci_archive;
mod staging;

pub use docker_archive::DockerArchiveSink;
pub use layout::LayoutSink;
pub use oci_archive::OciArchiveSink;

use crate::oci::Digest;
use crate::oci::digest::DigestError;
use std::io;
use std::path::PathBuf;

/// What went wrong writing a layout or an archive; carried inside a
/// [`SinkError`](crate::image::SinkError) as its source.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(
        "{path} exists and is not an OCI image layout (it has no oci-layout file): write to a new or empty directory, or to an existing layout"
    )]
    NotALayout { path: PathBuf },
    #[error("{path} exists and is a directory: an archive output must be a file path")]
    DirectoryInTheWay { path: PathBuf },
    #[error("{path} declares image layout version `{version}`; only 1.0.0 is understood")]
    LayoutVersion { path: PathBuf, version: String },
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not valid JSON of the expected shape")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("encoding {what} as JSON")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("blob {digest} does not match its descriptor")]
    Content {
        digest: Digest,
        #[source]
        source: Box<DigestError>,
    },
    #[error(
        "blob {digest} was in the layout when the publish began but is gone now: another process removed it; publish again"
    )]
    BlobVanished { digest: Digest },
    #[error("this output was already finished; open a new one to publish again")]
    AlreadyFinished,
    #[error(
        "{path} holds one image and no index: the manifest {digest} cannot be stored as part of an index"
    )]
    NotAnIndexOutput { path: PathBuf, digest: Digest },
    #[error(
        "the manifest lists {what} {digest}, which was not stored before it (media type `{media_type}`): a docker archive takes tar layers, plain, gzip or zstd"
    )]
    MissingBlob {
        what: &'static str,
        digest: Digest,
        media_type: String,
    },
    #[error(
        "the layers' uncompressed digests {actual:?} differ from the config's rootfs.diff_ids {expected:?}: `docker load` would refuse this image; rebuild it"
    )]
    DiffIds {
        expected: Vec<String>,
        actual: Vec<String>,
    },
    #[error("`{reference}` is not a docker-archive reference: {reason}")]
    Reference {
        reference: String,
        reason: &'static str,
    },
}

impl OutputError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        OutputError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
