//! Supply-chain evidence about built images, the step after the image and
//! before the sink: a file view of the image read straight from its layer
//! streams ([`files`]), catalogers that find the packages in it ([`catalog`]),
//! SBOM writers ([`spdx`], [`cyclonedx`]), SLSA provenance ([`provenance`]),
//! and the manifests that attach all of it to the image ([`attach`]).

pub mod attach;
pub mod catalog;
pub mod cyclonedx;
pub mod files;
pub mod provenance;
pub mod spdx;

pub use catalog::{Ecosystem, Inventory, License, OperatingSystem, Package, catalog};
pub use files::{FileEntry, FileKind, FileTree, image_files};

use crate::oci::Digest;
use std::path::PathBuf;

/// What went wrong while making or attaching evidence. Problems inside one
/// package database never land here: catalogers report them as warnings and
/// the SBOM is still written.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error(
        "layer {digest} has media type `{media_type}`, which is not a tar layer (plain, gzip or zstd): it cannot be read for an SBOM"
    )]
    UnsupportedLayer { digest: Digest, media_type: String },
    #[error("reading layer {digest} for the SBOM: the blob is unreadable or not a valid tar")]
    LayerRead {
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {} for the SBOM", path.display())]
    DirectoryRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("encoding the {what} as JSON")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("the {what} is not valid JSON; attestations must be JSON documents")]
    NotJson {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the epoch {epoch} is outside the range of dates an SBOM can carry")]
    Epoch { epoch: i64 },
    #[error("building the {what} manifest")]
    Manifest {
        what: &'static str,
        #[source]
        source: crate::image::model::ModelError,
    },
    #[error("`{digest}` is not a sha256 digest; attestations name their subjects by sha256")]
    NotSha256 { digest: String },
}

/// RFC 3339 UTC time of `epoch` (seconds since 1970), the only clock an SBOM reads.
pub(crate) fn rfc3339(epoch: i64) -> Result<String, AttestError> {
    let time = time::OffsetDateTime::from_unix_timestamp(epoch)
        .map_err(|_| AttestError::Epoch { epoch })?;
    time.format(&time::format_description::well_known::Rfc3339)
        .map_err(|_| AttestError::Epoch { epoch })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_formats_as_utc() {
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000).unwrap(), "2023-11-14T22:13:20Z");
        assert!(rfc3339(i64::MAX).is_err());
    }
}
