//! The hoist version each side's provenance names as its builder: when two
//! images compress or encode the same content differently and were built
//! by different hoist versions, the version (with its compressor and format
//! version) is the likely cause, more specific than "another compressor".

use super::report::{Cause, Difference};
use crate::image::Manifest;
use serde_json::Value;
use std::io::Read;

/// The predicate type of SLSA provenance, any version.
const PROVENANCE_PREFIX: &str = "https://slsa.dev/provenance";
const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
/// A provenance statement larger than this is not read for a hint.
const STATEMENT_LIMIT: u64 = 4 << 20;

/// Gives compression and tar-encoding differences the builder versions as
/// their cause, when both sides' provenance names hoist and the versions differ.
pub(crate) fn attribute_to_builders(
    differences: &mut [Difference],
    left: Option<&Manifest>,
    right: Option<&Manifest>,
) {
    let (Some(left), Some(right)) = (left.and_then(hoist_version), right.and_then(hoist_version))
    else {
        return;
    };
    if left == right {
        return;
    }
    for difference in differences {
        if matches!(
            difference.cause,
            Some(Cause::Compressor | Cause::TarEncoding)
        ) {
            difference.cause = Some(Cause::BuilderVersions {
                left: left.clone(),
                right: right.clone(),
            });
        }
    }
}

/// The hoist version an attestation manifest's provenance names. A hint
/// only: a statement that cannot be read or parsed gives none.
fn hoist_version(attestation: &Manifest) -> Option<String> {
    let Manifest::Image(image) = attestation else {
        return None;
    };
    let manifest = image.parsed_manifest().ok()?;
    let position = manifest.layers().iter().position(|layer| {
        layer
            .annotations()
            .as_ref()
            .and_then(|annotations| annotations.get(PREDICATE_TYPE))
            .is_some_and(|predicate| predicate.starts_with(PROVENANCE_PREFIX))
    })?;
    let blob = image.layers.get(position)?;
    let mut bytes = Vec::new();
    blob.open()
        .ok()?
        .take(STATEMENT_LIMIT)
        .read_to_end(&mut bytes)
        .ok()?;
    let statement: Value = serde_json::from_slice(&bytes).ok()?;
    statement
        .pointer("/predicate/runDetails/builder/version/hoist")
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::report::{Change, Place};
    use crate::image::{BytesBlob, Image};
    use crate::oci::media_type;
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Arc;

    fn attestation(version: &str) -> Manifest {
        let statement = serde_json::json!({
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"runDetails": {"builder": {"version": {"hoist": version}}}}
        });
        let mut layer = BytesBlob::new(media_type::IN_TOTO, statement.to_string().into_bytes());
        layer.descriptor_mut().set_annotations(Some(HashMap::from([(
            PREDICATE_TYPE.to_string(),
            "https://slsa.dev/provenance/v1".to_string(),
        )])));
        let config = BytesBlob::new(media_type::OCI_CONFIG, b"{}".to_vec());
        let image =
            Image::from_parts(config, vec![Arc::new(layer)], &BTreeMap::new(), None, None).unwrap();
        Manifest::Image(image)
    }

    #[test]
    fn builder_versions_explain_another_compression() {
        let mut differences = vec![Difference {
            platform: None,
            place: Place::Layer { layer: 0 },
            change: Change::OnlyIn {
                side: crate::diff::Side::Left,
                item: "stand-in".to_string(),
            },
            cause: Some(Cause::Compressor),
        }];
        let (old, new) = (attestation("0.1.0"), attestation("0.2.0"));
        attribute_to_builders(&mut differences, Some(&old), Some(&old));
        assert_eq!(differences[0].cause, Some(Cause::Compressor));
        attribute_to_builders(&mut differences, Some(&old), Some(&new));
        assert_eq!(
            differences[0].cause,
            Some(Cause::BuilderVersions {
                left: "0.1.0".to_string(),
                right: "0.2.0".to_string()
            })
        );
    }
}
