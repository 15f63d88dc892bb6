//! The simple signing payload a cosign signature signs, and the repository
//! name it carries, byte for byte as cosign writes them.

use super::SIGNATURE_TYPE;
use crate::oci::{Digest, to_canonical_json};
use std::collections::BTreeMap;

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
