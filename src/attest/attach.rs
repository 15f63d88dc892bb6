//! Attaching statements to images, the two ways registries and tools look for
//! them: BuildKit's attestation manifests listed in the image index
//! (platform `unknown/unknown`, `vnd.docker.reference.*` annotations), and
//! OCI 1.1 referrers (a manifest whose `subject` is the image), with the
//! `sha256-<hex>` tag for registries without the referrers API.

use super::{AttestError, sha256_hex};
use crate::image::model::ChildEntry;
use crate::image::{Blob, BytesBlob, Image};
use crate::oci::{Digest, Platform, media_type, to_canonical_json};
use oci_spec::image::{Descriptor, MediaType};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The in-toto statement type hoist writes.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The layer annotation naming a statement's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "in-toto.io/predicate-type";
pub const REFERENCE_TYPE_ANNOTATION: &str = "vnd.docker.reference.type";
pub const REFERENCE_DIGEST_ANNOTATION: &str = "vnd.docker.reference.digest";
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";

/// A serialized in-toto statement and the type of its predicate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub predicate_type: String,
    pub bytes: Vec<u8>,
}

/// What a statement is about: an image by name and manifest digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// `pkg:docker/ghcr.io/org/app@1.0?platform=linux%2Famd64` or a plain name.
    pub name: String,
    pub digest: Digest,
}

#[derive(Serialize)]
struct StatementDocument<'a> {
    #[serde(rename = "_type")]
    statement_type: &'static str,
    subject: Vec<SubjectDocument<'a>>,
    #[serde(rename = "predicateType")]
    predicate_type: &'a str,
    predicate: Value,
}

#[derive(Serialize)]
struct SubjectDocument<'a> {
    name: &'a str,
    digest: BTreeMap<&'static str, &'a str>,
}

/// Wraps `predicate` in an in-toto v1 statement about `subjects`.
pub fn in_toto_statement(
    subjects: &[Subject],
    predicate_type: &str,
    predicate: Value,
) -> Result<Statement, AttestError> {
    let subject = subjects
        .iter()
        .map(|subject| {
            Ok(SubjectDocument {
                name: &subject.name,
                digest: BTreeMap::from([("sha256", sha256_hex(&subject.digest)?)]),
            })
        })
        .collect::<Result<Vec<_>, AttestError>>()?;
    let document = StatementDocument {
        statement_type: STATEMENT_TYPE,
        subject,
        predicate_type,
        predicate,
    };
    let bytes = to_canonical_json(&document).map_err(|source| AttestError::Encode {
        what: "in-toto statement",
        source,
    })?;
    Ok(Statement {
        predicate_type: predicate_type.to_string(),
        bytes,
    })
}

/// A statement carrying an SBOM document (SPDX or CycloneDX JSON bytes).
pub fn sbom_statement(
    subjects: &[Subject],
    predicate_type: &str,
    document: &[u8],
) -> Result<Statement, AttestError> {
    let predicate: Value =
        serde_json::from_slice(document).map_err(|source| AttestError::NotJson {
            what: format!("{predicate_type} document"),
            source,
        })?;
    in_toto_statement(subjects, predicate_type, predicate)
}

/// BuildKit's attestation manifest for the image `subject`: one
/// `application/vnd.in-toto+json` layer per statement, annotated with its
/// predicate type. Every statement must name `subject` by digest.
pub fn attestation_manifest(
    subject: &Descriptor,
    statements: &[Statement],
) -> Result<Image, AttestError> {
    let subject_hex = sha256_hex(subject.digest())?;
    let mut layers: Vec<Arc<dyn Blob>> = Vec::with_capacity(statements.len());
    for statement in statements {
        check_subject(statement, subject_hex)?;
        let mut blob = BytesBlob::new(
            MediaType::Other(media_type::IN_TOTO.to_string()),
            statement.bytes.clone(),
        );
        blob.descriptor_mut().set_annotations(Some(HashMap::from([(
            PREDICATE_TYPE_ANNOTATION.to_string(),
            statement.predicate_type.clone(),
        )])));
        layers.push(Arc::new(blob));
    }
    // The config BuildKit writes: an image config for no platform whose
    // diff_ids are the statements (they are not compressed).
    let config = serde_json::json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|layer| layer.digest().to_string()).collect::<Vec<_>>(),
        },
    });
    let config = to_canonical_json(&config).map_err(|source| AttestError::Encode {
        what: "attestation config",
        source,
    })?;
    Image::from_parts(
        BytesBlob::new(MediaType::ImageConfig, config),
        layers,
        &BTreeMap::new(),
        None,
        None,
    )
    .map_err(|source| AttestError::Manifest {
        what: "attestation",
        source,
    })
}

fn check_subject(statement: &Statement, subject_hex: &str) -> Result<(), AttestError> {
    let document: Value =
        serde_json::from_slice(&statement.bytes).map_err(|source| AttestError::NotJson {
            what: format!("{} statement", statement.predicate_type),
            source,
        })?;
    let names_subject = document["subject"].as_array().is_some_and(|subjects| {
        subjects
            .iter()
            .any(|subject| subject["digest"]["sha256"].as_str() == Some(subject_hex))
    });
    if document["_type"] != STATEMENT_TYPE
        || document["predicateType"] != statement.predicate_type.as_str()
        || !names_subject
    {
        return Err(AttestError::StatementSubject {
            predicate_type: statement.predicate_type.clone(),
            subject: format!("sha256:{subject_hex}"),
        });
    }
    Ok(())
}

/// The index entry for an attestation manifest about `subject_digest`.
pub fn attestation_entry(subject_digest: &Digest) -> ChildEntry {
    ChildEntry {
        platform: Some(Platform::unknown()),
        annotations: BTreeMap::from([
            (
                REFERENCE_TYPE_ANNOTATION.to_string(),
                ATTESTATION_MANIFEST.to_string(),
            ),
            (
                REFERENCE_DIGEST_ANNOTATION.to_string(),
                subject_digest.to_string(),
            ),
        ]),
    }
}

/// An OCI 1.1 referrer: `blob` as the only layer, the empty config,
/// `artifactType` set and `subject` pointing at the image.
pub fn referrer_manifest(
    subject: &Descriptor,
    artifact_type: &str,
    blob: BytesBlob,
) -> Result<Image, AttestError> {
    sha256_hex(subject.digest())?;
    // Only what identifies the subject: platform and annotations are the index's business.
    let subject = Descriptor::new(
        subject.media_type().clone(),
        subject.size(),
        subject.digest().clone(),
    );
    let config = BytesBlob::new(MediaType::EmptyJSON, b"{}".to_vec());
    Image::from_parts(
        config,
        vec![Arc::new(blob)],
        &BTreeMap::new(),
        Some(subject),
        Some(artifact_type),
    )
    .map_err(|source| AttestError::Manifest {
        what: "referrer",
        source,
    })
}

/// The tag that lists referrers of `digest` on registries without the
/// referrers API: `sha256-<hex>`.
pub fn referrers_fallback_tag(digest: &Digest) -> Result<String, AttestError> {
    Ok(format!("sha256-{}", sha256_hex(digest)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::sha256_digest;

    fn subject() -> Descriptor {
        Descriptor::new(MediaType::ImageManifest, 100, sha256_digest(b"manifest"))
    }

    #[test]
    fn statements_must_name_the_subject() {
        let about = Subject {
            name: "app".into(),
            digest: subject().digest().clone(),
        };
        let good = sbom_statement(&[about], "https://spdx.dev/Document", b"{\"a\":1}").unwrap();
        assert!(attestation_manifest(&subject(), &[good]).is_ok());
        let other = Subject {
            name: "app".into(),
            digest: sha256_digest(b"other"),
        };
        let wrong = sbom_statement(&[other], "https://spdx.dev/Document", b"{}").unwrap();
        assert!(matches!(
            attestation_manifest(&subject(), &[wrong]),
            Err(AttestError::StatementSubject { .. })
        ));
        assert!(sbom_statement(&[], "x", b"not json").is_err());
    }

    #[test]
    fn fallback_tag() {
        let digest = sha256_digest(b"manifest");
        assert_eq!(
            referrers_fallback_tag(&digest).unwrap(),
            format!("sha256-{}", digest.digest())
        );
    }
}
