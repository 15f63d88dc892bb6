//! Checking a signature image against a public key: each payload layer's
//! signature, then what the payload claims, as `cosign verify --key` does.

use super::super::key::PublicKey;
use super::{
    MAX_PAYLOAD_SIZE, SIGNATURE_ANNOTATION, SIGNATURE_TYPE, SIMPLE_SIGNING_MEDIA_TYPE, read_payload,
};
use crate::image::{Blob, Image};
use crate::oci::Digest;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

/// Why one layer of a signature image gave no valid signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The layer is not a simple signing payload.
    NotSimpleSigning {
        media_type: String,
    },
    /// No `dev.cosignproject.cosign/signature` annotation.
    MissingSignature,
    SignatureNotBase64,
    PayloadTooLarge {
        size: u64,
    },
    /// The payload could not be read or does not match its digest.
    PayloadUnreadable {
        message: String,
    },
    /// Signed by another key, or the payload or signature was altered.
    SignatureDoesNotVerify,
    /// Validly signed with this key, but the payload names another
    /// manifest: copied beside this image, or the image was swapped.
    SignedForAnotherManifest {
        signed: String,
    },
    /// Validly signed with this key, but not a cosign image signature.
    NotACosignPayload {
        reason: String,
    },
}

impl Rejection {
    /// Whether the layer verified with the key yet does not vouch for this
    /// image: worth a warning even when another signature verifies.
    pub fn is_suspicious(&self) -> bool {
        matches!(
            self,
            Rejection::SignedForAnotherManifest { .. } | Rejection::NotACosignPayload { .. }
        )
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::NotSimpleSigning { media_type } => {
                write!(formatter, "not a signature layer (media type {media_type})")
            }
            Rejection::MissingSignature => {
                write!(formatter, "no {SIGNATURE_ANNOTATION} annotation")
            }
            Rejection::SignatureNotBase64 => write!(formatter, "the signature is not base64"),
            Rejection::PayloadTooLarge { size } => {
                write!(formatter, "the payload is {size} bytes, too large")
            }
            Rejection::PayloadUnreadable { message } => {
                write!(formatter, "reading the payload: {message}")
            }
            Rejection::SignatureDoesNotVerify => write!(
                formatter,
                "the signature does not verify with this key (another key, or altered)"
            ),
            Rejection::SignedForAnotherManifest { signed } => write!(
                formatter,
                "validly signed, but for manifest {signed}: the signature was copied here or the image swapped"
            ),
            Rejection::NotACosignPayload { reason } => write!(
                formatter,
                "validly signed, but the payload is not a cosign image signature: {reason}"
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("signature image {manifest} has no layers: {expected} is not signed")]
    NoSignatures { manifest: Digest, expected: Digest },
    #[error(
        "no signature in {manifest} verifies {expected} with the given key: {}",
        summarize(rejected)
    )]
    NoValidSignature {
        manifest: Digest,
        expected: Digest,
        rejected: Vec<(Digest, Rejection)>,
    },
}

fn summarize(rejected: &[(Digest, Rejection)]) -> String {
    rejected
        .iter()
        .map(|(layer, reason)| format!("layer {layer}: {reason}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One signature that verified, with what its payload says.
#[derive(Clone, Debug)]
pub struct VerifiedSignature {
    /// Digest of the payload layer.
    pub layer: Digest,
    /// The repository the signer named (`critical.identity.docker-reference`).
    pub docker_reference: String,
    /// The signed manifest digest; always the expected one.
    pub manifest_digest: Digest,
    /// The payload's `optional` claims (`cosign sign -a`), if any.
    pub optional: Option<serde_json::Value>,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
    #[serde(default)]
    optional: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Critical {
    identity: Identity,
    image: ImageClaim,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
struct ImageClaim {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// What [`verify`] found: the signatures that vouch for the manifest, and
/// the layers passed over, with why.
#[derive(Clone, Debug)]
pub struct Verification {
    pub verified: Vec<VerifiedSignature>,
    pub skipped: Vec<(Digest, Rejection)>,
}

/// Checks the signatures in `image` (a `.sig` signature image) for the
/// manifest `expected_digest`, like `cosign verify --key`.
///
/// Every layer is checked on its own, and one that does not vouch for this
/// manifest is passed over for the next: signed by other keys (several
/// parties may sign one image), altered, or validly signed for another
/// digest (a signature copied beside this image is never valid for it).
/// The image verifies when at least one layer does; what was skipped is
/// returned for the caller to report.
pub fn verify(
    public_key: &PublicKey,
    image: &Image,
    expected_digest: &Digest,
) -> Result<Verification, VerifyError> {
    let manifest = image.manifest.digest().clone();
    if image.layers.is_empty() {
        return Err(VerifyError::NoSignatures {
            manifest,
            expected: expected_digest.clone(),
        });
    }
    let mut verified = Vec::new();
    let mut skipped = Vec::new();
    for layer in &image.layers {
        let layer_digest = layer.digest().clone();
        match verify_layer(public_key, layer.as_ref(), expected_digest) {
            Ok(signature) => verified.push(signature),
            Err(reason) => skipped.push((layer_digest, reason)),
        }
    }
    if verified.is_empty() {
        return Err(VerifyError::NoValidSignature {
            manifest,
            expected: expected_digest.clone(),
            rejected: skipped,
        });
    }
    Ok(Verification { verified, skipped })
}

/// One layer checked: its signature with the key, then its payload names
/// `expected_digest` as a cosign signature.
fn verify_layer(
    public_key: &PublicKey,
    layer: &dyn Blob,
    expected_digest: &Digest,
) -> Result<VerifiedSignature, Rejection> {
    let (payload, signature) = check_layer(public_key, layer)?;
    let parsed: Payload =
        serde_json::from_slice(&payload).map_err(|error| Rejection::NotACosignPayload {
            reason: error.to_string(),
        })?;
    if parsed.critical.kind != SIGNATURE_TYPE {
        return Err(Rejection::NotACosignPayload {
            reason: format!(
                "type is `{}`, expected `{SIGNATURE_TYPE}`",
                parsed.critical.kind
            ),
        });
    }
    let signed = parsed.critical.image.docker_manifest_digest;
    if signed != expected_digest.to_string() {
        return Err(Rejection::SignedForAnotherManifest { signed });
    }
    Ok(VerifiedSignature {
        layer: layer.digest().clone(),
        docker_reference: parsed.critical.identity.docker_reference,
        manifest_digest: expected_digest.clone(),
        optional: parsed.optional.filter(|value| !value.is_null()),
        payload,
        signature,
    })
}

/// The payload and signature of a layer whose signature verifies.
fn check_layer(public_key: &PublicKey, layer: &dyn Blob) -> Result<(Vec<u8>, Vec<u8>), Rejection> {
    let descriptor = layer.descriptor();
    let media_type = descriptor.media_type().to_string();
    if media_type != SIMPLE_SIGNING_MEDIA_TYPE {
        return Err(Rejection::NotSimpleSigning { media_type });
    }
    let encoded = descriptor
        .annotations()
        .as_ref()
        .and_then(|annotations| annotations.get(SIGNATURE_ANNOTATION))
        .ok_or(Rejection::MissingSignature)?;
    let signature = BASE64
        .decode(encoded.trim())
        .map_err(|_| Rejection::SignatureNotBase64)?;
    if descriptor.size() > MAX_PAYLOAD_SIZE {
        return Err(Rejection::PayloadTooLarge {
            size: descriptor.size(),
        });
    }
    let payload = read_payload(layer).map_err(|error| Rejection::PayloadUnreadable {
        message: error.to_string(),
    })?;
    if !public_key.verify_der(&payload, &signature) {
        return Err(Rejection::SignatureDoesNotVerify);
    }
    Ok((payload, signature))
}
