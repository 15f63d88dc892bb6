//! What a published image's hoist provenance recorded about the run that
//! built it (commit, spec, tags, event, ref, format version), read back for
//! `hoist build --verify` from the attestation manifests in its index or,
//! in a registry, from the referrers of its platform manifests.

use crate::attest::attach::{
    ATTESTATION_MANIFEST, PREDICATE_TYPE_ANNOTATION, REFERENCE_TYPE_ANNOTATION,
};
use crate::attest::provenance::{BUILD_TYPE, PREDICATE_TYPE};
use crate::build::transport::{Transports, parse_reference};
use crate::image::{Blob, Image, Manifest};
use crate::oci::Location;
use crate::registry::Access;
use crate::registry::RegistrySource;
use crate::source::Source;
use serde_json::Value;
use std::io::Read;

/// A provenance statement larger than this is not hoist's and is not read.
const STATEMENT_LIMIT: u64 = 4 << 20;

/// The run a published image records, as its provenance says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The git commit of the checkout built.
    pub commit: Option<String>,
    pub spec_path: Option<String>,
    /// The spec's digest, `sha256:<hex>`.
    pub spec_digest: Option<String>,
    pub tags: Vec<String>,
    pub event: Option<String>,
    pub git_ref: Option<String>,
    /// Absent from provenance written before hoist recorded it.
    pub format_version: Option<u64>,
    /// The hoist version that built it.
    pub hoist_version: Option<String>,
    /// The run that built it (the CI's run URL), where the CI names one.
    pub invocation: Option<String>,
}

/// The first hoist provenance about the published image: in its index,
/// else (in a registry) among the referrers of its platform manifests.
/// Statements that cannot be read are passed over: an image without
/// readable provenance is verified by its bytes alone.
pub fn recorded_provenance(
    manifest: &Manifest,
    location: &Location,
    transports: &Transports,
) -> Option<Recorded> {
    let mut attestations = Vec::new();
    let mut subjects = Vec::new();
    match manifest {
        Manifest::Image(image) => subjects.push(image.clone()),
        Manifest::Index(index) => {
            let descriptors = index.descriptors().ok()?;
            for (descriptor, child) in descriptors.iter().zip(&index.children) {
                let Manifest::Image(image) = child else {
                    continue;
                };
                let is_attestation = descriptor
                    .annotations()
                    .as_ref()
                    .and_then(|annotations| annotations.get(REFERENCE_TYPE_ANNOTATION))
                    .is_some_and(|kind| kind == ATTESTATION_MANIFEST);
                if is_attestation {
                    attestations.push(image.clone());
                } else {
                    subjects.push(image.clone());
                }
            }
        }
    }
    if let Some(recorded) = attestations.iter().find_map(provenance_in) {
        return Some(recorded);
    }
    let Location::Registry { reference } = location else {
        return None;
    };
    let reference = parse_reference(reference).ok()?;
    let client = transports.registry().ok()?;
    let repository = client.repository(&reference, Access::PULL);
    subjects.iter().find_map(|subject| {
        let listed = repository.referrers(subject.manifest.digest()).ok()?;
        listed.descriptors().iter().find_map(|descriptor| {
            let source = RegistrySource::new(
                client.clone(),
                reference.with_digest(descriptor.digest().clone()),
            );
            match source.resolve().ok()? {
                Manifest::Image(image) => provenance_in(&image),
                Manifest::Index(_) => None,
            }
        })
    })
}

/// The hoist provenance among an attestation manifest's layers.
fn provenance_in(attestation: &Image) -> Option<Recorded> {
    let manifest = attestation.parsed_manifest().ok()?;
    manifest
        .layers()
        .iter()
        .zip(&attestation.layers)
        .filter(|(descriptor, _)| {
            descriptor
                .annotations()
                .as_ref()
                .and_then(|annotations| annotations.get(PREDICATE_TYPE_ANNOTATION))
                .is_some_and(|predicate| predicate == PREDICATE_TYPE)
        })
        .find_map(|(_, blob)| {
            let mut bytes = Vec::new();
            blob.open()
                .ok()?
                .take(STATEMENT_LIMIT)
                .read_to_end(&mut bytes)
                .ok()?;
            parse_statement(&serde_json::from_slice(&bytes).ok()?)
        })
}

/// The fields of a statement whose build type is hoist's.
pub fn parse_statement(statement: &Value) -> Option<Recorded> {
    let definition = statement.pointer("/predicate/buildDefinition")?;
    if definition.get("buildType").and_then(Value::as_str) != Some(BUILD_TYPE) {
        return None;
    }
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_string);
    let external = definition.get("externalParameters");
    let external_text = |pointer: &str| text(external.and_then(|value| value.pointer(pointer)));
    let commit = definition
        .get("resolvedDependencies")
        .and_then(Value::as_array)
        .and_then(|dependencies| {
            dependencies
                .iter()
                .find_map(|dependency| text(dependency.pointer("/digest/gitCommit")))
        });
    let tags = external
        .and_then(|value| value.get("tags"))
        .and_then(Value::as_array)
        .map(|tags| tags.iter().filter_map(|tag| text(Some(tag))).collect())
        .unwrap_or_default();
    Some(Recorded {
        commit,
        spec_path: external_text("/spec/path"),
        spec_digest: external_text("/spec/digest/sha256").map(|hex| format!("sha256:{hex}")),
        tags,
        event: external_text("/event"),
        git_ref: external_text("/ref"),
        format_version: definition
            .pointer("/internalParameters/formatVersion")
            .and_then(Value::as_u64),
        hoist_version: text(statement.pointer("/predicate/runDetails/builder/version/hoist")),
        invocation: text(statement.pointer("/predicate/runDetails/metadata/invocationId")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_hoist_statements_only() {
        let statement = json!({
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": {
                        "spec": {"path": "hoist.toml", "digest": {"sha256": "ab"}},
                        "tags": ["main", "sha-1234567"],
                        "event": "branch",
                        "ref": "refs/heads/main"
                    },
                    "internalParameters": {"formatVersion": 2},
                    "resolvedDependencies": [
                        {"uri": "git+https://example.com/app", "digest": {"gitCommit": "c0ffee"}}
                    ]
                },
                "runDetails": {
                    "builder": {"id": "b", "version": {"hoist": "0.1.0"}},
                    "metadata": {"invocationId": "https://example.com/runs/1"}
                }
            }
        });
        let recorded = parse_statement(&statement).unwrap();
        assert_eq!(recorded.commit.as_deref(), Some("c0ffee"));
        assert_eq!(recorded.spec_digest.as_deref(), Some("sha256:ab"));
        assert_eq!(recorded.tags, ["main", "sha-1234567"]);
        assert_eq!(recorded.git_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(recorded.format_version, Some(2));
        let mut other = statement.clone();
        other["predicate"]["buildDefinition"]["buildType"] = json!("https://example.com/other");
        assert_eq!(parse_statement(&other), None);
    }
}
