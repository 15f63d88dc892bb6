//! Image signatures in cosign's storage format, made after an image's
//! manifest digest is known and published beside it like any other image.
//!
//! A signature is a "simple signing" payload naming the repository and the
//! manifest digest, signed with ECDSA-SHA256. Cosign keeps all signatures of
//! a manifest in one artifact image tagged `sha256-<hex>.sig` in the same
//! repository: an OCI image whose layers are the payloads (media type
//! `application/vnd.dev.cosign.simplesigning.v1+json`), each carrying its
//! base64 DER signature in the `dev.cosignproject.cosign/signature`
//! annotation. A new signature is appended as one more layer.
//!
//! hoist signs with a key pair (see [`super::key`]), like `cosign sign --key`
//! with `--tlog-upload=false`; `cosign verify --key cosign.pub
//! --insecure-ignore-tlog` accepts the result. Keyless signing (a Fulcio
//! certificate for an OIDC identity, recorded in Rekor) needs those services,
//! which this build environment cannot reach, so it is not implemented. Signing
//! goes through the [`Signer`] trait so a keyless signer can be added: it
//! would return the certificate, chain and Rekor bundle as extra layer
//! annotations (`dev.sigstore.cosign/certificate`, `.../chain`, `.../bundle`).

mod payload;
mod verify;

pub use payload::{docker_reference, simple_signing_payload};
pub use verify::{Rejection, Verification, VerifiedSignature, VerifyError, verify};

use super::key::{PublicKey, SigningKey};
use crate::image::model::ModelError;
use crate::image::{Blob, BytesBlob, Image};
use crate::oci::{Digest, DigestReader, media_type, to_canonical_json};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::Arc;

/// Media type of a signature layer (the simple signing payload).
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature over the payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `critical.type` of a cosign payload.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// Payloads are a few hundred bytes; anything far larger is not a signature
/// and is not read into memory.
const MAX_PAYLOAD_SIZE: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("encoding the signature payload for {reference}")]
    Payload {
        reference: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the signer failed to sign the payload for {reference}")]
    Signer {
        reference: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "reading signature layer {layer} of the existing signature image; \
         fetch the whole `.sig` image or sign without it"
    )]
    ExistingLayer {
        layer: Digest,
        #[source]
        source: std::io::Error,
    },
    #[error("building the signature image for {reference}")]
    Image {
        reference: String,
        #[source]
        source: ModelError,
    },
}

/// What a [`Signer`] returns for one payload.
#[derive(Clone, Debug, Default)]
pub struct SignerOutput {
    /// The signature bytes (ASN.1 DER for ECDSA), stored base64 encoded.
    pub signature: Vec<u8>,
    /// Extra layer annotations: a keyless signer's certificate, chain and
    /// transparency log bundle. Empty for key pairs.
    pub annotations: BTreeMap<String, String>,
}

/// Something that signs payloads: a local key pair today, a keyless
/// (Fulcio and Rekor) or KMS signer later.
pub trait Signer: Send + Sync {
    fn sign(
        &self,
        payload: &[u8],
    ) -> Result<SignerOutput, Box<dyn std::error::Error + Send + Sync>>;

    /// The key that verifies this signer's signatures, when it has a
    /// lasting one; used to skip appending a signature already present.
    fn public_key(&self) -> Option<PublicKey>;
}

impl Signer for SigningKey {
    fn sign(
        &self,
        payload: &[u8],
    ) -> Result<SignerOutput, Box<dyn std::error::Error + Send + Sync>> {
        Ok(SignerOutput {
            signature: self.sign_der(payload),
            annotations: BTreeMap::new(),
        })
    }

    fn public_key(&self) -> Option<PublicKey> {
        Some(SigningKey::public_key(self))
    }
}

/// A signature image and the tag cosign looks it up by.
#[derive(Clone)]
pub struct SignatureArtifact {
    pub image: Image,
    /// `sha256-<hex>.sig`.
    pub tag: String,
}

pub use crate::registry::referrers::signature_tag;

/// Signs `manifest_digest` for `docker_reference` into a new signature image.
pub fn sign(
    signer: &dyn Signer,
    docker_reference: &str,
    manifest_digest: &Digest,
) -> Result<SignatureArtifact, SignError> {
    add_signature(
        None,
        signer,
        docker_reference,
        manifest_digest,
        &BTreeMap::new(),
    )
}

/// Adds a signature to the manifest's existing signature image (the one at
/// its `.sig` tag, if any), as cosign does: earlier signatures stay, the new
/// payload is appended. When the signer's key already signed the same
/// payload there, the existing image is returned unchanged.
pub fn add_signature(
    existing: Option<&Image>,
    signer: &dyn Signer,
    docker_reference: &str,
    manifest_digest: &Digest,
    annotations: &BTreeMap<String, String>,
) -> Result<SignatureArtifact, SignError> {
    let tag = signature_tag(manifest_digest);
    let payload = simple_signing_payload(docker_reference, manifest_digest, annotations).map_err(
        |source| SignError::Payload {
            reference: docker_reference.to_string(),
            source,
        },
    )?;
    if let Some(existing) = existing
        && let Some(public_key) = signer.public_key()
        && already_signed(existing, &public_key, &payload)?
    {
        return Ok(SignatureArtifact {
            image: existing.clone(),
            tag,
        });
    }
    let output = signer.sign(&payload).map_err(|source| SignError::Signer {
        reference: docker_reference.to_string(),
        source,
    })?;
    let mut layer_annotations: HashMap<String, String> = output.annotations.into_iter().collect();
    layer_annotations.insert(
        SIGNATURE_ANNOTATION.to_string(),
        BASE64.encode(&output.signature),
    );
    let mut layer = BytesBlob::new(SIMPLE_SIGNING_MEDIA_TYPE, payload);
    layer
        .descriptor_mut()
        .set_annotations(Some(layer_annotations));

    let mut layers: Vec<Arc<dyn Blob>> = existing
        .map(|image| image.layers.clone())
        .unwrap_or_default();
    layers.push(Arc::new(layer));
    let image_error = |source| SignError::Image {
        reference: docker_reference.to_string(),
        source,
    };
    let config = signature_config(&layers).map_err(image_error)?;
    let image =
        Image::from_parts(config, layers, &BTreeMap::new(), None, None).map_err(image_error)?;
    Ok(SignatureArtifact { image, tag })
}

/// The config of a signature image: empty but valid, listing the payloads
/// as uncompressed layers. Cosign also stamps the signing time here; hoist
/// leaves time out so that signing the same digest with the same key gives
/// the same signature image.
fn signature_config(layers: &[Arc<dyn Blob>]) -> Result<BytesBlob, ModelError> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|layer| layer.digest().to_string())
        .collect();
    let config = serde_json::json!({
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let bytes = to_canonical_json(&config).map_err(|source| ModelError::Encode {
        what: "signature image config",
        source,
    })?;
    Ok(BytesBlob::new(media_type::OCI_CONFIG, bytes))
}

fn already_signed(
    existing: &Image,
    public_key: &PublicKey,
    payload: &[u8],
) -> Result<bool, SignError> {
    for layer in &existing.layers {
        let descriptor = layer.descriptor();
        if descriptor.media_type().to_string() != SIMPLE_SIGNING_MEDIA_TYPE
            || descriptor.size() != payload.len() as u64
        {
            continue;
        }
        let Some(signature) = layer_signature(layer.as_ref()) else {
            continue;
        };
        let existing_payload =
            read_payload(layer.as_ref()).map_err(|source| SignError::ExistingLayer {
                layer: layer.digest().clone(),
                source,
            })?;
        if existing_payload == payload && public_key.verify_der(payload, &signature) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn layer_signature(layer: &dyn Blob) -> Option<Vec<u8>> {
    let encoded = layer
        .descriptor()
        .annotations()
        .as_ref()?
        .get(SIGNATURE_ANNOTATION)?;
    BASE64.decode(encoded.trim()).ok()
}

/// Reads a payload layer, checking its size and digest.
fn read_payload(layer: &dyn Blob) -> std::io::Result<Vec<u8>> {
    let size = layer.size();
    let reader = DigestReader::new(layer.open()?, layer.digest().clone(), Some(size));
    let mut payload = Vec::with_capacity(size.min(MAX_PAYLOAD_SIZE) as usize);
    reader
        .take(MAX_PAYLOAD_SIZE + 1)
        .read_to_end(&mut payload)?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::sha256_digest;

    fn digest(hex_byte: &str) -> Digest {
        Digest::try_from(format!("sha256:{}", hex_byte.repeat(32))).unwrap()
    }

    #[test]
    fn payload_matches_cosign_bytes() {
        let manifest = Digest::try_from(
            "sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f",
        )
        .unwrap();
        let payload =
            simple_signing_payload("example.com/test/image", &manifest, &BTreeMap::new()).unwrap();
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"example.com/test/image"},"image":{"docker-manifest-digest":"sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f"},"type":"cosign container image signature"},"optional":null}"#
        );
    }

    #[test]
    fn payload_annotations_are_sorted_and_escaped_like_go() {
        let mut annotations = BTreeMap::new();
        annotations.insert("z".to_string(), "a<b>&c".to_string());
        annotations.insert("a".to_string(), "1".to_string());
        let payload = simple_signing_payload("ghcr.io/o/app", &digest("ab"), &annotations).unwrap();
        let text = String::from_utf8(payload).unwrap();
        assert!(
            text.ends_with(r#""optional":{"a":"1","z":"a\u003cb\u003e\u0026c"}}"#),
            "{text}"
        );
    }

    #[test]
    fn docker_reference_names_repositories_like_cosign() {
        assert_eq!(
            docker_reference("docker.io", "alpine"),
            "index.docker.io/library/alpine"
        );
        assert_eq!(
            docker_reference("registry-1.docker.io", "owner/app"),
            "index.docker.io/owner/app"
        );
        assert_eq!(
            docker_reference("localhost:5000", "app"),
            "localhost:5000/app"
        );
        assert_eq!(docker_reference("ghcr.io", "o/a/b"), "ghcr.io/o/a/b");
    }

    #[test]
    fn tag_is_algorithm_dash_hex_dot_sig() {
        assert_eq!(
            signature_tag(&digest("0f")),
            format!("sha256-{}.sig", "0f".repeat(32))
        );
    }

    #[test]
    fn signature_image_has_cosign_shape() {
        let key = SigningKey::generate().unwrap();
        let artifact = sign(&key, "registry.local/app", &digest("12")).unwrap();
        let manifest = artifact.image.parsed_manifest().unwrap();
        assert_eq!(
            manifest.config().media_type().to_string(),
            media_type::OCI_CONFIG
        );
        assert_eq!(manifest.layers().len(), 1);
        let layer = &manifest.layers()[0];
        assert_eq!(layer.media_type().to_string(), SIMPLE_SIGNING_MEDIA_TYPE);
        let signature = layer.annotations().as_ref().unwrap()[SIGNATURE_ANNOTATION].clone();
        assert!(BASE64.decode(signature).is_ok());
        let config: serde_json::Value =
            serde_json::from_slice(artifact.image.config.bytes()).unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            layer.digest().to_string().as_str()
        );
    }

    #[test]
    fn signing_twice_with_one_key_is_deterministic_and_not_appended_again() {
        let key = SigningKey::generate().unwrap();
        let first = sign(&key, "registry.local/app", &digest("34")).unwrap();
        let again = sign(&key, "registry.local/app", &digest("34")).unwrap();
        assert_eq!(first.image.manifest.digest(), again.image.manifest.digest());
        let appended = add_signature(
            Some(&first.image),
            &key,
            "registry.local/app",
            &digest("34"),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(appended.image.layers.len(), 1);
        assert_eq!(
            appended.image.manifest.digest(),
            first.image.manifest.digest()
        );
    }

    #[test]
    fn second_key_appends_and_each_key_verifies_its_own() {
        let alice = SigningKey::generate().unwrap();
        let bob = SigningKey::generate().unwrap();
        let target = digest("56");
        let first = sign(&alice, "registry.local/app", &target).unwrap();
        let both = add_signature(
            Some(&first.image),
            &bob,
            "registry.local/app",
            &target,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(both.image.layers.len(), 2);
        assert_eq!(
            both.image.layers[0].digest(),
            first.image.layers[0].digest()
        );
        let config: serde_json::Value = serde_json::from_slice(both.image.config.bytes()).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        for key in [&alice, &bob] {
            let verified = verify(&key.public_key(), &both.image, &target)
                .unwrap()
                .verified;
            assert_eq!(verified.len(), 1);
            assert_eq!(verified[0].docker_reference, "registry.local/app");
        }
        let stranger = SigningKey::generate().unwrap();
        let error = verify(&stranger.public_key(), &both.image, &target).unwrap_err();
        match error {
            VerifyError::NoValidSignature { rejected, .. } => {
                assert_eq!(rejected.len(), 2);
                assert!(
                    rejected
                        .iter()
                        .all(|(_, reason)| *reason == Rejection::SignatureDoesNotVerify)
                );
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn layer_whose_bytes_do_not_match_its_digest_is_rejected() {
        let key = SigningKey::generate().unwrap();
        let target = digest("78");
        let artifact = sign(&key, "registry.local/app", &target).unwrap();
        let original = &artifact.image.layers[0];
        // Same descriptor (digest and signature), other bytes of the same size.
        let payload = read_payload(original.as_ref()).unwrap();
        let mut altered = payload.clone();
        let position = altered.len() - 3;
        altered[position] = b'X';
        assert_ne!(sha256_digest(&altered), *original.digest());
        let swapped: Arc<dyn Blob> = Arc::new(BytesBlob::with_descriptor(
            original.descriptor().clone(),
            altered,
        ));
        let mut image = artifact.image.clone();
        image.layers = vec![swapped];
        let error = verify(&key.public_key(), &image, &target).unwrap_err();
        assert!(
            matches!(
                &error,
                VerifyError::NoValidSignature { rejected, .. }
                    if matches!(rejected[0].1, Rejection::PayloadUnreadable { .. })
            ),
            "{error}"
        );
    }

    #[test]
    fn empty_signature_image_is_not_signed() {
        let key = SigningKey::generate().unwrap();
        let config = signature_config(&[]).unwrap();
        let image = Image::from_parts(config, Vec::new(), &BTreeMap::new(), None, None).unwrap();
        assert!(matches!(
            verify(&key.public_key(), &image, &digest("9a")),
            Err(VerifyError::NoSignatures { .. })
        ));
    }
}
