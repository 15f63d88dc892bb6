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
use hoist::oci::Location;
use hoist::operation::sign::{SignRequest, VerifyRequest, read_key, sign as sign_image, verify};
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

pub fn sign(arguments: SignArguments) -> anyhow::Result<()> {
    let reporter = Reporter::new(Mode::Human);
    let location = location(&arguments.location)?;
    let annotations = parse_annotations(&arguments.annotations)?;
    let pem = read_key(&arguments.key, "private")?;
    let password = password(false)?;
    let key = load_private_key(&pem, password.as_bytes())
        .with_context(|| format!("opening the private key {}", arguments.key.display()))?;
    let request = SignRequest {
        location,
        key,
        annotations,
        registry: arguments.registry.client_options(4)?,
    };
    sign_image(&request, &reporter)?;
    Ok(())
}

pub fn verify_command(arguments: VerifyArguments) -> anyhow::Result<()> {
    let reporter = Reporter::new(Mode::Human);
    let location = location(&arguments.location)?;
    let annotations = parse_annotations(&arguments.annotations)?;
    let pem = read_key(&arguments.key, "public")?;
    let public_key = load_public_key(&pem)
        .with_context(|| format!("opening the public key {}", arguments.key.display()))?;
    let request = VerifyRequest {
        location,
        public_key,
        annotations,
        registry: arguments.registry.client_options(4)?,
    };
    verify(&request, &reporter)?;
    Ok(())
}

fn location(text: &str) -> anyhow::Result<Location> {
    text.parse().with_context(|| format!("image {text}"))
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
