//! CycloneDX 1.6 JSON for an [`Inventory`]: the image as the metadata
//! component, the operating system and packages as components with purls,
//! licenses and where they were found. The serial number is a name-based
//! UUID of the image digest and the timestamp is the epoch, so the same
//! image gives the same bytes.

use super::catalog::{Inventory, Package};
use super::{AttestError, image_purl, rfc3339, sha256_hex};
use crate::oci::{Digest, to_canonical_json};
use serde::Serialize;

/// The in-toto predicate type BuildKit and Docker use for CycloneDX BOMs.
pub const PREDICATE_TYPE: &str = "https://cyclonedx.org/bom";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
    /// Present only when files were skipped: the image's assembly is
    /// `incomplete`, which a gate can refuse.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    compositions: Vec<Composition>,
}

#[derive(Serialize)]
struct Metadata {
    timestamp: String,
    tools: Tools,
    component: Component,
    /// One `hoist:sbom:skipped` property per file skipped, naming it and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct Composition {
    aggregate: &'static str,
    assemblies: Vec<String>,
}

/// The property naming a skipped file, `PATH: REASON`.
pub const SKIPPED_PROPERTY: &str = "hoist:sbom:skipped";

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize, Default)]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<LicenseChoice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<Evidence>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum LicenseChoice {
    Expression { expression: String },
    License { license: NamedLicense },
}

#[derive(Serialize)]
struct NamedLicense {
    name: String,
}

#[derive(Serialize)]
struct Property {
    name: &'static str,
    value: String,
}

#[derive(Serialize)]
struct Evidence {
    occurrences: Vec<Occurrence>,
}

#[derive(Serialize)]
struct Occurrence {
    location: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    depends_on: Vec<String>,
}

/// The `urn:uuid:` serial number of the BOM for image `name` at `image`.
pub fn serial_number(name: &str, image: &Digest) -> String {
    let uuid = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("https://hoist.dev/cyclonedx/{name}@{image}").as_bytes(),
    );
    format!("urn:uuid:{uuid}")
}

/// The `bom-ref` of the image, the metadata component.
fn image_ref_name() -> String {
    "image".to_string()
}

/// Writes the CycloneDX 1.6 BOM for the image `name` with manifest digest
/// `image`, timestamped at `epoch` (seconds since 1970).
pub fn cyclonedx_json(
    inventory: &Inventory,
    name: &str,
    image: &Digest,
    epoch: i64,
) -> Result<Vec<u8>, AttestError> {
    sha256_hex(image)?;
    let image_ref = image_ref_name();
    let mut components = Vec::new();
    if let Some(os) = &inventory.operating_system {
        components.push(Component {
            kind: "operating-system",
            bom_ref: Some(format!("os:{}", os.distro())),
            name: os.id.clone(),
            version: os.version().map(str::to_string),
            description: os.pretty_name.clone(),
            // The major version scanners key on, beside the point release.
            properties: os
                .version_id
                .iter()
                .map(|version_id| Property {
                    name: "hoist:os:version_id",
                    value: version_id.clone(),
                })
                .collect(),
            ..Component::default()
        });
    }
    components.extend(inventory.packages.iter().map(component));
    let dependencies = vec![Dependency {
        reference: image_ref.clone(),
        depends_on: components
            .iter()
            .filter_map(|component| component.bom_ref.clone())
            .collect(),
    }];
    let mut bom = Bom {
        bom_format: "CycloneDX",
        spec_version: "1.6",
        serial_number: serial_number(name, image),
        version: 1,
        metadata: Metadata {
            timestamp: rfc3339(epoch)?,
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    name: "hoist".into(),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                    ..Component::default()
                }],
            },
            component: Component {
                kind: "container",
                bom_ref: Some(image_ref),
                name: name.to_string(),
                version: Some(image.to_string()),
                purl: image_purl(name, image),
                ..Component::default()
            },
            properties: Vec::new(),
        },
        components,
        dependencies,
        compositions: Vec::new(),
    };
    if !inventory.is_complete() {
        bom.compositions.push(Composition {
            aggregate: "incomplete",
            assemblies: vec![image_ref_name()],
        });
        bom.metadata.properties = inventory
            .skipped
            .iter()
            .map(|(path, reason)| Property {
                name: SKIPPED_PROPERTY,
                value: format!("{path}: {reason}"),
            })
            .collect();
    }
    to_canonical_json(&bom).map_err(|source| AttestError::Encode {
        what: "CycloneDX BOM",
        source,
    })
}

fn component(package: &Package) -> Component {
    // CycloneDX takes either one expression or a list of licenses, not both.
    let licenses = match package.license_expression() {
        Some(expression) => vec![LicenseChoice::Expression { expression }],
        None => package
            .licenses
            .iter()
            .map(|license| LicenseChoice::License {
                license: NamedLicense {
                    name: license
                        .spdx
                        .clone()
                        .unwrap_or_else(|| license.declared.clone()),
                },
            })
            .collect(),
    };
    let mut properties = vec![Property {
        name: "hoist:package:ecosystem",
        value: package.ecosystem.as_str().to_string(),
    }];
    if let Some(architecture) = &package.architecture {
        properties.push(Property {
            name: "hoist:package:architecture",
            value: architecture.clone(),
        });
    }
    if let Some(source) = &package.source_package {
        properties.push(Property {
            name: "hoist:package:source",
            value: source.clone(),
        });
    }
    Component {
        kind: "library",
        bom_ref: Some(package.purl.clone()),
        name: package.name.clone(),
        version: (!package.version.is_empty()).then(|| package.version.clone()),
        description: None,
        cpe: super::catalog::cpe(package),
        purl: Some(package.purl.clone()),
        licenses,
        properties,
        evidence: Some(Evidence {
            occurrences: package
                .locations
                .iter()
                .map(|location| Occurrence {
                    location: location.clone(),
                })
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::sha256_digest;

    #[test]
    fn serial_number_is_a_stable_uuid_per_image() {
        let first = serial_number("app", &sha256_digest(b"a"));
        assert_eq!(first, serial_number("app", &sha256_digest(b"a")));
        assert_ne!(first, serial_number("app", &sha256_digest(b"b")));
        assert!(
            first.starts_with("urn:uuid:") && first.len() == 45,
            "{first}"
        );
    }
}
