//! `hoist generate-key-pair`, `hoist sign` and `hoist verify`: cosign's key
//! pairs and signatures, stored where cosign 2 looks (`sha256-<hex>.sig`),
//! in a registry or an OCI layout.
//!
//! Keyless signing needs Fulcio and Rekor; [`hoist::attest::sign::Signer`]
//! is the seam where such a signer plugs in.

use super::RegistryArguments;
use super::report::{Mode, Reporter};
use anyhow::{Context, bail};
use hoist::attest::key::{generate_key_pair, load_private_key, load_public_key};
use hoist::attest::sign::{
    VerifiedSignature, add_signature, docker_reference, signature_tag, verify,
};
use hoist::build::transport::{Transports, parse_reference};
use hoist::image::{Blob, Manifest, publish};
use hoist::oci::{Digest, Location};
use hoist::registry::get_manifest_digest;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Where cosign (and hoist) read the key password from.
const PASSWORD_VARIABLE: &str = "COSIGN_PASSWORD";

#[derive(Debug, clap::Args)]
pub struct GenerateKeyPairArguments {
    /// Write PREFIX.key (encrypted private key) and PREFIX.pub.
    #[arg(long, default_value = "cosign", value_name = "PREFIX")]
    output_key_prefix: String,
}

#[derive(Debug, clap::Args)]
pub struct SignArguments {
    /// The image to sign: docker://REF[@sha256:...] or oci:DIR[:TAG]. A tag
    /// is resolved to the digest it points at now, and that digest is signed.
    location: String,
    /// The cosign private key (password from COSIGN_PASSWORD, else a prompt).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// A claim to sign along with the digest, in the payload's `optional`
    /// section as `cosign sign -a` puts it. Repeatable.
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    #[command(flatten)]
    registry: RegistryArguments,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArguments {
    /// The image to check: docker://REF[@sha256:...] or oci:DIR[:TAG].
    location: String,
    /// The cosign public key.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// A claim a signature must carry (`hoist sign -a`, `cosign sign -a`);
    /// signatures without every one given are not counted. Repeatable.
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    #[command(flatten)]
    registry: RegistryArguments,
}

/// `-a KEY=VALUE` flags as a map; a key given twice or a flag without `=`
/// is an error naming it.
fn parse_annotations(flags: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut annotations = BTreeMap::new();
    for flag in flags {
        let Some((key, value)) = flag.split_once('=') else {
            bail!("annotation `{flag}` must be KEY=VALUE");
        };
        if key.is_empty() {
            bail!("annotation `{flag}` has no key: it must be KEY=VALUE");
        }
        if annotations
            .insert(key.to_string(), value.to_string())
            .is_some()
        {
            bail!("annotation `{key}` is given twice");
        }
    }
    Ok(annotations)
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

/// The key password: `COSIGN_PASSWORD` (which may be empty), else asked on
/// the terminal (twice when `confirm`), else an error.
fn password(confirm: bool) -> anyhow::Result<zeroize::Zeroizing<String>> {
    if let Ok(value) = std::env::var(PASSWORD_VARIABLE) {
        return Ok(zeroize::Zeroizing::new(value));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no key password: set {PASSWORD_VARIABLE} (it may be empty), or run on a terminal to be asked"
        );
    }
    let first = zeroize::Zeroizing::new(
        rpassword::prompt_password("Enter password for private key: ")
            .context("reading the password from the terminal")?,
    );
    if confirm {
        let second = zeroize::Zeroizing::new(
            rpassword::prompt_password("Enter password for private key again: ")
                .context("reading the password from the terminal")?,
        );
        if *first != *second {
            bail!("the passwords do not match");
        }
    }
    Ok(first)
}

pub fn generate_key_pair_command(arguments: GenerateKeyPairArguments) -> anyhow::Result<()> {
    let reporter = Reporter::new(Mode::Human);
    let private_path = PathBuf::from(format!("{}.key", arguments.output_key_prefix));
    let public_path = PathBuf::from(format!("{}.pub", arguments.output_key_prefix));
    for path in [&private_path, &public_path] {
        if path.exists() {
            bail!(
                "{} exists: remove it or choose another --output-key-prefix",
                path.display()
            );
        }
    }
    let password = password(true)?;
    let (private_pem, public_pem) = generate_key_pair(password.as_bytes())?;
    write_private(&private_path, private_pem.as_bytes())?;
    std::fs::write(&public_path, public_pem.as_bytes())
        .with_context(|| format!("writing {}", public_path.display()))?;
    reporter.line(&format!(
        "Private key written to {}\nPublic key written to {}",
        private_path.display(),
        public_path.display()
    ));
    Ok(())
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// An image to sign or verify: where it is, its digest, the identity its
/// signature payload names, and the location of its `.sig` image.
struct Target {
    digest: Digest,
    identity: String,
    signatures: Location,
    /// True when something is stored at `signatures`.
    signed: bool,
}

fn target(location: &Location, transports: &Transports) -> anyhow::Result<Target> {
    match location {
        Location::Registry { reference } => {
            let parsed = parse_reference(reference)?;
            let client = transports.registry()?;
            let digest = match &parsed.digest {
                Some(digest) => digest.clone(),
                None => get_manifest_digest(client, &parsed)?
                    .with_context(|| format!("{location} does not exist"))?,
            };
            let tag = signature_tag(&digest);
            let signature_reference = parsed.with_tag(&tag);
            let mut unpinned = signature_reference.clone();
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
        other => {
            bail!("{other}: signatures are stored in registries (docker://) and OCI layouts (oci:)")
        }
    }
}

fn layout_has_tag(directory: &Path, tag: &str) -> anyhow::Result<bool> {
    let path = directory.join("index.json");
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("{} is not JSON", path.display()))?;
    Ok(index["manifests"].as_array().is_some_and(|entries| {
        entries.iter().any(|entry| {
            entry["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some(tag)
        })
    }))
}

fn signature_image(
    target: &Target,
    transports: &Transports,
) -> anyhow::Result<Option<hoist::image::Image>> {
    if !target.signed {
        return Ok(None);
    }
    match transports.source(&target.signatures)?.resolve()? {
        Manifest::Image(image) => Ok(Some(image)),
        Manifest::Index(_) => bail!(
            "{} is an index, not a cosign signature image",
            target.signatures
        ),
    }
}

pub fn sign(arguments: SignArguments) -> anyhow::Result<()> {
    let reporter = Reporter::new(Mode::Human);
    let location: Location = arguments
        .location
        .parse()
        .with_context(|| format!("image {}", arguments.location))?;
    let annotations = parse_annotations(&arguments.annotations)?;
    let pem = std::fs::read_to_string(&arguments.key)
        .with_context(|| format!("reading the private key {}", arguments.key.display()))?;
    let password = password(false)?;
    let key = load_private_key(&pem, password.as_bytes())
        .with_context(|| format!("opening the private key {}", arguments.key.display()))?;
    let own = super::own_registries([&location], []);
    let transports = Transports::new(arguments.registry.client_options_for(4, &own)?);
    let target = target(&location, &transports)?;
    let existing = signature_image(&target, &transports)?;
    let artifact = add_signature(
        existing.as_ref(),
        &key,
        &target.identity,
        &target.digest,
        &annotations,
    )?;
    let sink = transports.sink(&target.signatures)?;
    publish(
        &Manifest::Image(artifact.image.clone()),
        sink.as_ref(),
        std::slice::from_ref(&artifact.tag),
        &reporter,
    )
    .with_context(|| format!("storing the signature in {}", target.signatures))?;
    reporter.line(&format!(
        "signed {} ({}) as {}",
        target.digest,
        target.identity,
        artifact.image.manifest.digest()
    ));
    Ok(())
}

pub fn verify_command(arguments: VerifyArguments) -> anyhow::Result<()> {
    let reporter = Reporter::new(Mode::Human);
    let location: Location = arguments
        .location
        .parse()
        .with_context(|| format!("image {}", arguments.location))?;
    let wanted = parse_annotations(&arguments.annotations)?;
    let pem = std::fs::read_to_string(&arguments.key)
        .with_context(|| format!("reading the public key {}", arguments.key.display()))?;
    let public_key = load_public_key(&pem)
        .with_context(|| format!("opening the public key {}", arguments.key.display()))?;
    let own = super::own_registries([&location], []);
    let transports = Transports::new(arguments.registry.client_options_for(4, &own)?);
    let target = target(&location, &transports)?;
    let Some(image) = signature_image(&target, &transports)? else {
        bail!(
            "{location} ({}) has no signatures: nothing at {}",
            target.digest,
            target.signatures
        );
    };
    let verification = verify(&public_key, &image, &target.digest)
        .with_context(|| format!("verifying {location} ({})", target.digest))?;
    for (layer, reason) in &verification.skipped {
        if reason.is_suspicious() {
            reporter.warning(&format!(
                "signature layer {layer} skipped: {reason}; another signature verifies {}",
                target.digest
            ));
        }
    }
    let verified = verification.verified;
    let matching: Vec<&VerifiedSignature> = verified
        .iter()
        .filter(|signature| carries(signature, &wanted))
        .collect();
    if matching.is_empty() {
        let wanted: Vec<String> = wanted
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        bail!(
            "{location} ({}): {} signature(s) verify with this key, but none carries {}",
            target.digest,
            verified.len(),
            wanted.join(", ")
        );
    }
    for signature in matching {
        let claims = signature
            .optional
            .as_ref()
            .map(|optional| format!(", claims {optional}"))
            .unwrap_or_default();
        reporter.line(&format!(
            "verified {} signed for {} (signature layer {}{claims})",
            signature.manifest_digest, signature.docker_reference, signature.layer
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_are_key_value_pairs_given_once() {
        let parsed = parse_annotations(&["team=api".into(), "note=a=b".into()]).unwrap();
        assert_eq!(parsed["team"], "api");
        assert_eq!(parsed["note"], "a=b", "the value keeps later `=`");
        for (flags, message) in [
            (vec!["=x".to_string()], "has no key"),
            (vec!["a=1".into(), "a=2".into()], "`a` is given twice"),
        ] {
            let error = parse_annotations(&flags).unwrap_err().to_string();
            assert!(error.contains(message), "{error}");
        }
    }
}
