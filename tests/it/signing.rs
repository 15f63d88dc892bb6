//! Cosign-compatible signing, checked against implementations that are not
//! hoist's: openssl verifies the signatures and reads the keys, python's
//! scrypt with PyNaCl's secretbox decrypts (and writes) the key files from the
//! format alone, skopeo reads the signature image, and the official OCI
//! schemas validate its manifest and config.
use crate::common;

use hoist::attest::key::{self, KeyError, SigningKey};
use hoist::attest::sign::{
    self, Rejection, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, VerifyError,
};
use hoist::image::{Blob, BytesBlob, Image};
use hoist::oci::{Digest, sha256_digest};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const REPOSITORY: &str = "registry.example/team/app";

fn target_digest(content: &str) -> Digest {
    sha256_digest(content.as_bytes())
}

fn blob_bytes(blob: &dyn Blob) -> Vec<u8> {
    let mut bytes = Vec::new();
    blob.open().unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

fn layer_signature(blob: &dyn Blob) -> Vec<u8> {
    use base64::Engine as _;
    let encoded = &blob.descriptor().annotations().as_ref().unwrap()[SIGNATURE_ANNOTATION];
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap()
}

/// Runs openssl's verifier on hoist's output; returns (success, stdout).
fn openssl_verify(
    dir: &Path,
    public_pem: &str,
    payload: &[u8],
    signature: &[u8],
) -> (bool, String) {
    fs::write(dir.join("pub.pem"), public_pem).unwrap();
    fs::write(dir.join("payload.json"), payload).unwrap();
    fs::write(dir.join("sig.der"), signature).unwrap();
    let output = Command::new("openssl")
        .current_dir(dir)
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig.der",
            "payload.json",
        ])
        .output()
        .expect("openssl runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn generated_key_signs_and_verifies_round_trip() {
    let (private_pem, public_pem) = key::generate_key_pair(b"s3cret").unwrap();
    let signing_key = key::load_private_key(&private_pem, b"s3cret").unwrap();
    let public_key = key::load_public_key(&public_pem).unwrap();
    let target = target_digest("an image manifest");

    let artifact = sign::sign(&signing_key, REPOSITORY, &target).unwrap();
    assert_eq!(artifact.tag, format!("sha256-{}.sig", target.digest()));
    let verified = sign::verify(&public_key, &artifact.image, &target)
        .unwrap()
        .verified;
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].docker_reference, REPOSITORY);
    assert_eq!(verified[0].manifest_digest, target);
    assert!(verified[0].optional.is_none());

    common::assert_valid_json_bytes(
        "oci/image-manifest-schema.json",
        artifact.image.manifest.bytes(),
    );
    common::assert_valid_json_bytes("oci/config-schema.json", artifact.image.config.bytes());
}

#[test]
fn annotations_reach_the_verified_claims() {
    let signing_key = SigningKey::generate().unwrap();
    let target = target_digest("annotated");
    let mut annotations = BTreeMap::new();
    annotations.insert("git-sha".to_string(), "abc123".to_string());
    let artifact =
        sign::add_signature(None, &signing_key, REPOSITORY, &target, &annotations).unwrap();
    let verified = sign::verify(&signing_key.public_key(), &artifact.image, &target)
        .unwrap()
        .verified;
    assert_eq!(
        verified[0].optional,
        Some(serde_json::json!({"git-sha": "abc123"}))
    );
}

#[test]
fn wrong_password_is_a_distinct_error() {
    let (private_pem, _) = key::generate_key_pair(b"right password").unwrap();
    let error = key::load_private_key(&private_pem, b"wrong password").unwrap_err();
    assert!(matches!(error, KeyError::WrongPassword), "{error}");
    assert!(error.to_string().contains("password"));
}

#[test]
fn tampered_payload_fails_verification() {
    let signing_key = SigningKey::generate().unwrap();
    let target = target_digest("the real manifest");
    let artifact = sign::sign(&signing_key, REPOSITORY, &target).unwrap();
    let original = &artifact.image.layers[0];

    // An attacker edits the payload (here: the repository it names) and
    // gives it a consistent descriptor, keeping the old signature.
    let payload = String::from_utf8(blob_bytes(original.as_ref())).unwrap();
    let edited = payload.replace(REPOSITORY, "registry.example/evil/app");
    assert_ne!(edited, payload);
    let mut tampered = BytesBlob::new(SIMPLE_SIGNING_MEDIA_TYPE, edited.into_bytes());
    tampered
        .descriptor_mut()
        .set_annotations(original.descriptor().annotations().clone());
    let tampered: Arc<dyn Blob> = Arc::new(tampered);
    let image = Image::from_parts(
        artifact.image.config.clone(),
        vec![tampered],
        &BTreeMap::new(),
        None,
        None,
    )
    .unwrap();

    let error = sign::verify(&signing_key.public_key(), &image, &target).unwrap_err();
    match &error {
        VerifyError::NoValidSignature { rejected, .. } => {
            assert_eq!(rejected.len(), 1);
            assert_eq!(rejected[0].1, Rejection::SignatureDoesNotVerify);
        }
        other => panic!("expected NoValidSignature, got {other}"),
    }
    assert!(error.to_string().contains("does not verify"), "{error}");
}

#[test]
fn signature_over_another_digest_is_skipped_for_the_next() {
    let signing_key = SigningKey::generate().unwrap();
    let signed = target_digest("image A");
    let other = target_digest("image B");
    let artifact = sign::sign(&signing_key, REPOSITORY, &signed).unwrap();

    // A valid signature for A copied to B's `.sig` tag must not vouch for B.
    let error = sign::verify(&signing_key.public_key(), &artifact.image, &other).unwrap_err();
    match &error {
        VerifyError::NoValidSignature {
            rejected, expected, ..
        } => {
            assert_eq!(expected, &other);
            assert_eq!(
                rejected[0].1,
                Rejection::SignedForAnotherManifest {
                    signed: signed.to_string()
                }
            );
        }
        other => panic!("expected NoValidSignature, got {other}"),
    }
    assert!(error.to_string().contains(&signed.to_string()), "{error}");

    // Beside a good signature for B, the copied one is passed over (and
    // reported), and B verifies by the good one.
    let mixed = sign::add_signature(
        Some(&artifact.image),
        &signing_key,
        REPOSITORY,
        &other,
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(mixed.image.layers.len(), 2);
    let verification = sign::verify(&signing_key.public_key(), &mixed.image, &other).unwrap();
    assert_eq!(verification.verified.len(), 1);
    assert_eq!(verification.verified[0].manifest_digest, other);
    assert_eq!(
        verification.verified[0].layer,
        *mixed.image.layers[1].digest()
    );
    assert_eq!(verification.skipped.len(), 1);
    assert_eq!(verification.skipped[0].0, *mixed.image.layers[0].digest());
    assert!(verification.skipped[0].1.is_suspicious());
}

#[test]
fn openssl_verifies_hoists_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (private_pem, public_pem) = key::generate_key_pair(b"pw").unwrap();
    let signing_key = key::load_private_key(&private_pem, b"pw").unwrap();
    let target = target_digest("checked by openssl");
    let artifact = sign::sign(&signing_key, REPOSITORY, &target).unwrap();
    let layer = &artifact.image.layers[0];
    let payload = blob_bytes(layer.as_ref());
    let signature = layer_signature(layer.as_ref());

    let (ok, stdout) = openssl_verify(dir.path(), &public_pem, &payload, &signature);
    assert!(ok, "openssl rejected hoist's signature: {stdout}");
    assert!(stdout.contains("Verified OK"), "{stdout}");

    // The same check fails on a changed payload, so the success above means something.
    let mut changed = payload.clone();
    changed.push(b' ');
    let (ok, stdout) = openssl_verify(dir.path(), &public_pem, &changed, &signature);
    assert!(!ok, "openssl accepted a changed payload: {stdout}");
    assert!(stdout.contains("Verification failure"), "{stdout}");
}

#[test]
fn openssl_key_is_imported_and_its_public_key_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("ec.pem");
    common::run(
        Command::new("openssl")
            .args([
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
            ])
            .arg(&key_path),
    );
    let openssl_public = common::run(
        Command::new("openssl")
            .args(["ec", "-pubout", "-in"])
            .arg(&key_path),
    );
    let imported = SigningKey::from_unencrypted_pem(&fs::read_to_string(&key_path).unwrap())
        .expect("hoist reads openssl's SEC1 key");
    // Re-encrypted in cosign's format and loaded back, it is the same key.
    let encrypted = imported.to_encrypted_pem(b"pw").unwrap();
    let reloaded = key::load_private_key(&encrypted, b"pw").unwrap();
    assert_eq!(
        key::load_public_key(&openssl_public).unwrap(),
        reloaded.public_key()
    );

    let target = target_digest("imported key");
    let artifact = sign::sign(&reloaded, REPOSITORY, &target).unwrap();
    let layer = &artifact.image.layers[0];
    let (ok, stdout) = openssl_verify(
        dir.path(),
        &openssl_public,
        &blob_bytes(layer.as_ref()),
        &layer_signature(layer.as_ref()),
    );
    assert!(ok && stdout.contains("Verified OK"), "{stdout}");
}

/// Decrypts a cosign key file from the format description alone:
/// hashlib's scrypt and PyNaCl's SecretBox, then openssl derives the public key.
const PYTHON_DECRYPT: &str = r#"
import base64, hashlib, json, sys
import nacl.secret
pem = open(sys.argv[1]).read().strip().splitlines()
assert pem[0] == "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----", pem[0]
assert pem[-1] == "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----", pem[-1]
envelope = json.loads(base64.b64decode("".join(pem[1:-1])))
assert envelope["kdf"]["name"] == "scrypt"
assert envelope["cipher"]["name"] == "nacl/secretbox"
params = envelope["kdf"]["params"]
key = hashlib.scrypt(sys.argv[2].encode(), salt=base64.b64decode(envelope["kdf"]["salt"]),
                     n=params["N"], r=params["r"], p=params["p"], dklen=32, maxmem=1 << 30)
der = nacl.secret.SecretBox(key).decrypt(base64.b64decode(envelope["ciphertext"]),
                                         base64.b64decode(envelope["cipher"]["nonce"]))
open(sys.argv[3], "wb").write(der)
"#;

/// Writes a cosign key file from a PKCS#8 DER key, independently of hoist.
const PYTHON_ENCRYPT: &str = r#"
import base64, hashlib, json, os, sys
import nacl.secret
der = open(sys.argv[1], "rb").read()
salt, nonce = os.urandom(32), os.urandom(24)
key = hashlib.scrypt(sys.argv[2].encode(), salt=salt, n=32768, r=8, p=1, dklen=32, maxmem=1 << 30)
sealed = nacl.secret.SecretBox(key).encrypt(der, nonce).ciphertext
b64 = lambda data: base64.b64encode(data).decode()
body = json.dumps({"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": b64(salt)},
                   "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
                   "ciphertext": b64(sealed)}, separators=(",", ":")).encode()
text = base64.b64encode(body).decode()
lines = [text[i:i + 64] for i in range(0, len(text), 64)]
open(sys.argv[3], "w").write("\n".join(["-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----", *lines,
                                         "-----END ENCRYPTED COSIGN PRIVATE KEY-----", ""]))
"#;

fn require_pynacl() {
    let output = Command::new("python3")
        .args(["-c", "import nacl.secret"])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "PyNaCl is needed to check the key format independently: pip install pynacl\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn python_and_openssl_decrypt_a_key_hoist_wrote() {
    require_pynacl();
    let dir = tempfile::tempdir().unwrap();
    let (private_pem, public_pem) = key::generate_key_pair(b"open sesame").unwrap();
    let key_path = dir.path().join("cosign.key");
    let der_path = dir.path().join("key.der");
    fs::write(&key_path, &private_pem).unwrap();
    common::run(
        Command::new("python3")
            .args(["-c", PYTHON_DECRYPT])
            .arg(&key_path)
            .arg("open sesame")
            .arg(&der_path),
    );
    let public_from_openssl = common::run(
        Command::new("openssl")
            .args(["pkey", "-inform", "DER", "-pubout", "-in"])
            .arg(&der_path),
    );
    assert_eq!(public_from_openssl.trim(), public_pem.trim());
}

#[test]
fn hoist_loads_a_key_written_by_python() {
    require_pynacl();
    let dir = tempfile::tempdir().unwrap();
    let pem_path = dir.path().join("ec.pem");
    let der_path = dir.path().join("key.der");
    let key_path = dir.path().join("cosign.key");
    common::run(
        Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
            ])
            .arg(&pem_path),
    );
    common::run(
        Command::new("openssl")
            .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
            .arg(&pem_path)
            .arg("-out")
            .arg(&der_path),
    );
    let openssl_public = common::run(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&pem_path),
    );
    common::run(
        Command::new("python3")
            .args(["-c", PYTHON_ENCRYPT])
            .arg(&der_path)
            .arg("pw from python")
            .arg(&key_path),
    );
    let text = fs::read_to_string(&key_path).unwrap();
    let loaded = key::load_private_key(&text, b"pw from python").unwrap();
    assert_eq!(
        loaded.public_key(),
        key::load_public_key(&openssl_public).unwrap()
    );
    assert!(matches!(
        key::load_private_key(&text, b"not it"),
        Err(KeyError::WrongPassword)
    ));
}

/// Writes `image` as an OCI layout tagged `tag`, by the image-spec's rules.
fn write_layout(dir: &Path, image: &Image, tag: &str) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let write_blob = |blob: &dyn Blob| {
        fs::write(blobs.join(blob.digest().digest()), blob_bytes(blob)).unwrap();
    };
    write_blob(&image.manifest);
    image.blobs().for_each(write_blob);
    let mut descriptor = image.manifest.descriptor().clone();
    descriptor.set_annotations(Some(HashMap::from([(
        "org.opencontainers.image.ref.name".to_string(),
        tag.to_string(),
    )])));
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [descriptor],
    });
    fs::write(dir.join("index.json"), index.to_string()).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

#[test]
fn skopeo_reads_the_signature_image() {
    let signing_key = SigningKey::generate().unwrap();
    let target = target_digest("published");
    let first = sign::sign(&signing_key, REPOSITORY, &target).unwrap();
    let second_key = SigningKey::generate().unwrap();
    let artifact = sign::add_signature(
        Some(&first.image),
        &second_key,
        REPOSITORY,
        &target,
        &BTreeMap::new(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    write_layout(&layout, &artifact.image, &artifact.tag);

    let location = format!("oci:{}:{}", layout.display(), artifact.tag);
    let raw = common::run(Command::new("skopeo").args(["inspect", "--raw", &location]));
    assert_eq!(raw.as_bytes(), artifact.image.manifest.bytes());

    // A full copy reads and checks every blob against its digest.
    let copy = dir.path().join("copy");
    common::run(Command::new("skopeo").args([
        "copy",
        &location,
        &format!("dir:{}", copy.display()),
    ]));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(copy.join("manifest.json")).unwrap()).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for (layer, original) in layers.iter().zip(&artifact.image.layers) {
        assert_eq!(layer["mediaType"], SIMPLE_SIGNING_MEDIA_TYPE);
        assert_eq!(layer["digest"], original.digest().to_string().as_str());
        assert!(layer["annotations"][SIGNATURE_ANNOTATION].is_string());
    }
}

/// A `docker-registry` (the CNCF distribution registry) on a loopback port,
/// stopped when dropped.
struct Registry {
    child: std::process::Child,
    address: String,
    _storage: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let storage = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let config = storage.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
                storage.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry starts (apt-get install docker-registry)");
        let registry = Registry {
            child,
            address,
            _storage: storage,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(&registry.address).is_ok() {
                return registry;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("docker-registry did not listen on {}", registry.address);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal runnable-shaped image: one empty uncompressed tar layer.
fn tiny_image() -> Image {
    let tar_end = vec![0u8; 1024];
    let layer = BytesBlob::new(hoist::oci::media_type::OCI_LAYER, tar_end);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer.digest().to_string()]},
    });
    let config = BytesBlob::new(
        hoist::oci::media_type::OCI_CONFIG,
        hoist::oci::to_canonical_json(&config).unwrap(),
    );
    Image::from_parts(config, vec![Arc::new(layer)], &BTreeMap::new(), None, None).unwrap()
}

fn push(layout_parent: &Path, registry: &Registry, image: &Image, repository: &str, tag: &str) {
    let layout = layout_parent.join(format!("layout-{tag}"));
    write_layout(&layout, image, tag);
    common::run(Command::new("skopeo").args([
        "copy",
        "--insecure-policy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:{tag}", layout.display()),
        &format!("docker://{}/{repository}:{tag}", registry.address),
    ]));
}

/// The signature image goes through a real registry under its `.sig` tag
/// (distribution validates the tag, manifest and blobs), comes back through
/// skopeo, and what came back verifies: with hoist, and with openssl on the
/// fetched payload and annotation. (Debian's skopeo has its own sigstore
/// verification disabled, so it cannot judge the signature itself.)
#[test]
fn signature_image_survives_a_registry_round_trip() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let repository = "team/app";
    let image = tiny_image();
    let target = image.manifest.digest().clone();
    push(dir.path(), &registry, &image, repository, "v1");

    let (private_pem, public_pem) = key::generate_key_pair(b"pw").unwrap();
    let signing_key = key::load_private_key(&private_pem, b"pw").unwrap();
    let reference = sign::docker_reference(&registry.address, repository);
    assert_eq!(reference, format!("{}/{repository}", registry.address));
    let artifact = sign::sign(&signing_key, &reference, &target).unwrap();
    push(
        dir.path(),
        &registry,
        &artifact.image,
        repository,
        &artifact.tag,
    );

    // Fetch it back the way a verifier does: by the tag derived from the digest.
    let source = format!(
        "docker://{}/{repository}:{}",
        registry.address,
        sign::signature_tag(&target)
    );
    let fetched = dir.path().join("fetched");
    common::run(Command::new("skopeo").args([
        "copy",
        "--insecure-policy",
        "--preserve-digests",
        "--src-tls-verify=false",
        &source,
        &format!("dir:{}", fetched.display()),
    ]));
    let manifest_bytes = fs::read(fetched.join("manifest.json")).unwrap();
    assert_eq!(manifest_bytes, artifact.image.manifest.bytes());

    let manifest: oci_spec::image::ImageManifest = serde_json::from_slice(&manifest_bytes).unwrap();
    let read_blob = |descriptor: &oci_spec::image::Descriptor| {
        let bytes = fs::read(fetched.join(descriptor.digest().digest())).unwrap();
        BytesBlob::with_descriptor(descriptor.clone(), bytes)
    };
    let layers: Vec<Arc<dyn Blob>> = manifest
        .layers()
        .iter()
        .map(|descriptor| Arc::new(read_blob(descriptor)) as Arc<dyn Blob>)
        .collect();
    let round_tripped = Image {
        manifest: BytesBlob::new(hoist::oci::media_type::OCI_MANIFEST, manifest_bytes.clone()),
        config: read_blob(manifest.config()),
        layers,
    };
    let public_key = key::load_public_key(&public_pem).unwrap();
    let verified = sign::verify(&public_key, &round_tripped, &target)
        .unwrap()
        .verified;
    assert_eq!(verified[0].docker_reference, reference);

    let layer = &round_tripped.layers[0];
    let (ok, stdout) = openssl_verify(
        dir.path(),
        &public_pem,
        &blob_bytes(layer.as_ref()),
        &layer_signature(layer.as_ref()),
    );
    assert!(ok && stdout.contains("Verified OK"), "{stdout}");
}
