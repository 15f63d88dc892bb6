//! `hoist sign` and `hoist verify` as operations: cosign signatures of an
//! image's digest, stored where cosign 2 looks (`sha256-<hex>.sig`), in a
//! registry or an OCI layout. Keys are loaded by the caller (with
//! [`read_key`] and `attest::key`), since only it can ask for a password.

use crate::attest::key::{PublicKey, SigningKey};
use crate::attest::sign::{
    SignError, VerifiedSignature, VerifyError, add_signature, docker_reference, signature_tag,
    verify as verify_signatures,
};
use crate::build::transport::{
    TransportError, Transports, own_registries, parse_reference, scope_credentials,
};
use crate::image::{Blob, Image, Manifest, SinkError, publish};
use crate::oci::{Digest, Location};
use crate::progress::{Event, Observer};
use crate::registry::{ClientOptions, RegistryError, get_manifest_digest};
use crate::source::SourceError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Sign the digest `location` points at now.
pub struct SignRequest {
    /// `docker://REF[@sha256:...]` or `oci:DIR[:TAG]`.
    pub location: Location,
    pub key: SigningKey,
    /// Claims signed with the digest (the payload's `optional`).
    pub annotations: BTreeMap<String, String>,
    pub registry: ClientOptions,
}

/// What was signed.
pub struct SignOutcome {
    pub digest: Digest,
    /// The identity the payload names.
    pub identity: String,
    /// The digest of the signature image stored.
    pub signature: Digest,
}

/// Check the signatures of the digest `location` points at.
pub struct VerifyRequest {
    pub location: Location,
    pub public_key: PublicKey,
    /// Claims a signature must carry to count.
    pub annotations: BTreeMap<String, String>,
    pub registry: ClientOptions,
}

/// The signatures that verified and carry every wanted claim (at least one).
pub struct VerifyOutcome {
    pub signatures: Vec<VerifiedSignature>,
}

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("reading the {kind} key {path}")]
    ReadKey {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Transport(Box<TransportError>),
    #[error(transparent)]
    Registry(Box<RegistryError>),
    #[error("{location} does not exist")]
    Missing { location: String },
    #[error(transparent)]
    Source(Box<SourceError>),
    #[error("reading {path}")]
    LayoutIndex {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not JSON")]
    LayoutIndexJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{location}: signatures are stored in registries (docker://) and OCI layouts (oci:)")]
    Unsupported { location: String },
    #[error("{location} is an index, not a cosign signature image")]
    NotASignatureImage { location: String },
    #[error(transparent)]
    Sign(Box<SignError>),
    #[error("storing the signature in {location}")]
    Store {
        location: String,
        #[source]
        source: Box<SinkError>,
    },
    #[error("{location} ({digest}) has no signatures: nothing at {signatures}")]
    Unsigned {
        location: String,
        digest: Digest,
        signatures: String,
    },
    #[error("verifying {location} ({digest})")]
    Verify {
        location: String,
        digest: Digest,
        #[source]
        source: Box<VerifyError>,
    },
    #[error(
        "{location} ({digest}): {verified} signature(s) verify with this key, but none carries {wanted}"
    )]
    NoneCarries {
        location: String,
        digest: Digest,
        verified: usize,
        wanted: String,
    },
}

impl From<TransportError> for SigningError {
    fn from(error: TransportError) -> SigningError {
        SigningError::Transport(Box::new(error))
    }
}

impl From<RegistryError> for SigningError {
    fn from(error: RegistryError) -> SigningError {
        SigningError::Registry(Box::new(error))
    }
}

impl From<SourceError> for SigningError {
    fn from(error: SourceError) -> SigningError {
        SigningError::Source(Box::new(error))
    }
}

/// A key file's PEM text; `kind` (`private`, `public`) names it in the error.
pub fn read_key(path: &Path, kind: &'static str) -> Result<String, SigningError> {
    std::fs::read_to_string(path).map_err(|source| SigningError::ReadKey {
        kind,
        path: path.to_path_buf(),
        source,
    })
}

/// Signs the image and stores the signature beside it; reports
/// [`Event::ImageSigned`].
pub fn sign(request: &SignRequest, observer: &dyn Observer) -> Result<SignOutcome, SigningError> {
    let transports = transports(&request.location, &request.registry);
    let target = target(&request.location, &transports)?;
    let existing = signature_image(&target, &transports)?;
    let artifact = add_signature(
        existing.as_ref(),
        &request.key,
        &target.identity,
        &target.digest,
        &request.annotations,
    )
    .map_err(|error| SigningError::Sign(Box::new(error)))?;
    let store = |source: SinkError| SigningError::Store {
        location: target.signatures.to_string(),
        source: Box::new(source),
    };
    let sink = transports.sink(&target.signatures).map_err(store)?;
    publish(
        &Manifest::Image(artifact.image.clone()),
        sink.as_ref(),
        std::slice::from_ref(&artifact.tag),
        observer,
    )
    .map_err(store)?;
    let signature = artifact.image.manifest.digest().clone();
    observer.event(Event::ImageSigned {
        digest: target.digest.clone(),
        identity: target.identity.clone(),
        signature: signature.clone(),
    });
    Ok(SignOutcome {
        digest: target.digest,
        identity: target.identity,
        signature,
    })
}

/// Checks the image's signatures against the public key; reports a
/// [`Event::SignatureVerified`] for each that verifies and carries every
/// wanted claim, and a warning for a layer passed over suspiciously.
pub fn verify(
    request: &VerifyRequest,
    observer: &dyn Observer,
) -> Result<VerifyOutcome, SigningError> {
    let location = &request.location;
    let transports = transports(location, &request.registry);
    let target = target(location, &transports)?;
    let Some(image) = signature_image(&target, &transports)? else {
        return Err(SigningError::Unsigned {
            location: location.to_string(),
            digest: target.digest,
            signatures: target.signatures.to_string(),
        });
    };
    let verification =
        verify_signatures(&request.public_key, &image, &target.digest).map_err(|source| {
            SigningError::Verify {
                location: location.to_string(),
                digest: target.digest.clone(),
                source: Box::new(source),
            }
        })?;
    for (layer, reason) in &verification.skipped {
        if reason.is_suspicious() {
            observer.event(Event::Warning {
                message: format!(
                    "signature layer {layer} skipped: {reason}; another signature verifies {}",
                    target.digest
                ),
            });
        }
    }
    let verified = verification.verified.len();
    let matching: Vec<VerifiedSignature> = verification
        .verified
        .into_iter()
        .filter(|signature| carries(signature, &request.annotations))
        .collect();
    if matching.is_empty() {
        let wanted: Vec<String> = request
            .annotations
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        return Err(SigningError::NoneCarries {
            location: location.to_string(),
            digest: target.digest,
            verified,
            wanted: wanted.join(", "),
        });
    }
    for signature in &matching {
        observer.event(Event::SignatureVerified {
            digest: signature.manifest_digest.clone(),
            identity: signature.docker_reference.clone(),
            layer: signature.layer.clone(),
            claims: signature.optional.clone(),
        });
    }
    Ok(VerifyOutcome {
        signatures: matching,
    })
}

/// Credentials given for every registry go to the image's.
fn transports(location: &Location, registry: &ClientOptions) -> Transports {
    let own = own_registries([location], []);
    Transports::new(scope_credentials(registry.clone(), &own))
}

/// True when the payload's `optional` claims include every one wanted.
fn carries(signature: &VerifiedSignature, wanted: &BTreeMap<String, String>) -> bool {
    wanted.iter().all(|(key, value)| {
        signature
            .optional
            .as_ref()
            .and_then(|optional| optional.get(key))
            .and_then(serde_json::Value::as_str)
            == Some(value.as_str())
    })
}

/// An image to sign or verify: its digest, the identity its signature
/// payload names, and the location of its `.sig` image.
struct Target {
    digest: Digest,
    identity: String,
    signatures: Location,
    /// True when something is stored at `signatures`.
    signed: bool,
}

fn target(location: &Location, transports: &Transports) -> Result<Target, SigningError> {
    match location {
        Location::Registry { reference } => {
            let parsed = parse_reference(reference)?;
            let client = transports.registry()?;
            let digest = match &parsed.digest {
                Some(digest) => digest.clone(),
                None => {
                    get_manifest_digest(client, &parsed)?.ok_or_else(|| SigningError::Missing {
                        location: location.to_string(),
                    })?
                }
            };
            let tag = signature_tag(&digest);
            let mut unpinned = parsed.with_tag(&tag);
            unpinned.digest = None;
            let signed = get_manifest_digest(client, &unpinned)?.is_some();
            Ok(Target {
                identity: docker_reference(&parsed.registry, &parsed.repository),
                signatures: Location::Registry {
                    reference: unpinned.to_string(),
                },
                signed,
                digest,
            })
        }
        Location::Layout { path, .. } => {
            let manifest = transports.source(location)?.resolve()?;
            let digest = manifest.digest().clone();
            let tag = signature_tag(&digest);
            let signed = layout_has_tag(path, &tag)?;
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |name| name.to_string_lossy().into_owned(),
            );
            Ok(Target {
                identity: name,
                signatures: Location::Layout {
                    path: path.clone(),
                    tag: Some(tag),
                },
                signed,
                digest,
            })
        }
        other => Err(SigningError::Unsupported {
            location: other.to_string(),
        }),
    }
}

fn layout_has_tag(directory: &Path, tag: &str) -> Result<bool, SigningError> {
    let path = directory.join("index.json");
    let bytes = std::fs::read(&path).map_err(|source| SigningError::LayoutIndex {
        path: path.clone(),
        source,
    })?;
    let index: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|source| SigningError::LayoutIndexJson { path, source })?;
    Ok(index["manifests"].as_array().is_some_and(|entries| {
        entries.iter().any(|entry| {
            entry["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some(tag)
        })
    }))
}

fn signature_image(
    target: &Target,
    transports: &Transports,
) -> Result<Option<Image>, SigningError> {
    if !target.signed {
        return Ok(None);
    }
    match transports.source(&target.signatures)?.resolve()? {
        Manifest::Image(image) => Ok(Some(image)),
        Manifest::Index(_) => Err(SigningError::NotASignatureImage {
            location: target.signatures.to_string(),
        }),
    }
}
