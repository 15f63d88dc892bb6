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

use super::key::{PublicKey, SigningKey};
use crate::image::model::ModelError;
use crate::image::{Blob, BytesBlob, Image};
use crate::oci::{Digest, DigestReader, media_type, to_canonical_json};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
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

pub use crate::registry::referrers::signature_tag;

/// The simple signing payload, byte for byte as cosign writes it: keys in
/// order, no whitespace, `optional` null without annotations, and `<`, `>`,
/// `&`, U+2028 and U+2029 escaped as Go's encoder does.
///
/// `docker_reference` is the repository as go-containerregistry names it
/// (`index.docker.io/library/alpine`, `ghcr.io/owner/app`), without tag or
/// digest.
pub fn simple_signing_payload(
    docker_reference: &str,
    manifest_digest: &Digest,
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<u8>, serde_json::Error> {
    let optional = if annotations.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::to_value(annotations)?
    };
    let payload = serde_json::json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest.to_string()},
            "type": SIGNATURE_TYPE,
        },
        "optional": optional,
    });
    // Go sorts map keys and its struct fields here are already in key
    // order, so canonical JSON gives the same bytes once escaping matches.
    let canonical = to_canonical_json(&payload)?;
    Ok(escape_like_go(&canonical))
}

/// Go's JSON encoder escapes `<`, `>` and `&` (for embedding in HTML) and the
/// JavaScript line terminators. None of these can occur outside strings in
/// JSON text, so replacing them over the whole document is exact.
fn escape_like_go(json: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(json);
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            other => out.push(other),
        }
    }
    out.into_bytes()
}

/// The `docker-reference` cosign writes for an image in `registry` at
/// `repository`: go-containerregistry's repository name, where Docker Hub is
/// `index.docker.io` and its official images sit under `library/`. Signing
/// with the same name cosign would use keeps hoist's payloads identical to
/// cosign's for the same image.
pub fn docker_reference(registry: &str, repository: &str) -> String {
    let registry = registry.trim_end_matches('/');
    let is_docker_hub = matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | ""
    );
    if !is_docker_hub {
        return format!("{registry}/{repository}");
    }
    if repository.contains('/') {
        format!("index.docker.io/{repository}")
    } else {
        format!("index.docker.io/library/{repository}")
    }
}

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
