//! Supply-chain evidence about built images, the step after the image and
//! before the sink: a file view of the image read straight from its layer
//! streams ([`files`]), catalogers that find the packages in it ([`catalog`]),
//! SBOM writers ([`spdx`], [`cyclonedx`]), SLSA provenance ([`provenance`]),
//! the manifests that attach all of it to the image ([`attach`]), and
//! cosign-compatible keys and signatures ([`key`], [`sign`]).

pub mod attach;
pub mod catalog;
pub mod cyclonedx;
pub mod files;
pub mod key;
pub mod provenance;
pub mod sign;
pub mod spdx;

pub use attach::{
    Statement, Subject, attestation_entry, attestation_manifest, in_toto_statement,
    referrer_manifest, referrers_fallback_tag, sbom_statement,
};
pub use catalog::{Ecosystem, Inventory, License, OperatingSystem, Package, catalog};
pub use cyclonedx::cyclonedx_json;
pub use files::{FileEntry, FileKind, FileTree, image_files};
pub use provenance::{
    BaseImage, BuildInputs, Builder, ProvenanceMode, RunParameters, SourceRepository,
    provenance_statement,
};
pub use spdx::spdx_json;

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
    #[error(
        "the {predicate_type} statement is not an in-toto v1 statement about {subject}; attach statements only to the image they describe"
    )]
    StatementSubject {
        predicate_type: String,
        subject: String,
    },
    #[error("`{digest}` is not a sha256 digest; attestations name their subjects by sha256")]
    NotSha256 { digest: String },
}

/// RFC 3339 UTC time of `epoch` (seconds since 1970), the only clock an SBOM reads.
pub(crate) fn rfc3339(epoch: i64) -> Result<String, AttestError> {
    crate::oci::time::rfc3339(epoch).ok_or(AttestError::Epoch { epoch })
}

/// The hex part of a sha256 digest.
pub(crate) fn sha256_hex(digest: &Digest) -> Result<&str, AttestError> {
    let text: &str = digest.as_ref();
    text.strip_prefix("sha256:")
        .ok_or_else(|| AttestError::NotSha256 {
            digest: text.to_string(),
        })
}

/// An image name reduced to what a URI path segment holds unescaped.
pub(crate) fn name_for_uri(name: &str) -> String {
    name.chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || matches!(character, '.' | '-' | '_') {
                character
            } else {
                '-'
            }
        })
        .collect()
}

/// `pkg:oci/app@sha256%3A...?repository_url=ghcr.io/org/app` for image `name`.
pub(crate) fn image_purl(name: &str, digest: &Digest) -> Option<String> {
    // Drop a tag; the digest pins the image.
    let last_slash = name.rfind('/').map_or(0, |position| position + 1);
    let repository = match name[last_slash..].find(':') {
        Some(colon) => &name[..last_slash + colon],
        None => name,
    };
    let short = repository.rsplit('/').next().unwrap_or(repository);
    let qualifiers: Vec<(&str, &str)> = if repository.contains('/') {
        vec![("repository_url", repository)]
    } else {
        Vec::new()
    };
    catalog::purl(
        "oci",
        None,
        &short.to_ascii_lowercase(),
        digest.as_ref(),
        &qualifiers,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_without_a_spelling_is_an_error() {
        assert_eq!(rfc3339(1_700_000_000).unwrap(), "2023-11-14T22:13:20Z");
        let error = rfc3339(i64::MAX).unwrap_err();
        assert!(matches!(error, AttestError::Epoch { epoch: i64::MAX }));
    }

    #[test]
    fn image_purls_drop_the_tag() {
        let digest = crate::oci::sha256_digest(b"x");
        let purl = image_purl("ghcr.io/org/App:1.0", &digest).unwrap();
        assert_eq!(
            purl,
            format!(
                "pkg:oci/app@sha256:{}?repository_url=ghcr.io%2Forg%2FApp",
                digest.digest()
            )
        );
        assert_eq!(name_for_uri("ghcr.io/org/app:1"), "ghcr.io-org-app-1");
    }
}
