//! SPDX 2.3 JSON for an [`Inventory`]: the image as the described package,
//! its operating system and packages contained in it. Identifiers come from
//! the image digest and package purls, the creation time from the epoch, so
//! the same image gives the same bytes.

use super::catalog::{Ecosystem, Inventory, Package};
use super::{AttestError, image_purl, name_for_uri, rfc3339, sha256_hex};
use crate::oci::{Digest, sha256_digest, to_canonical_json};
use serde::Serialize;
use std::collections::BTreeMap;

/// The in-toto predicate type BuildKit and Docker use for SPDX documents.
pub const PREDICATE_TYPE: &str = "https://spdx.dev/Document";

const NOASSERTION: &str = "NOASSERTION";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<SpdxPackage>,
    relationships: Vec<Relationship>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    has_extracted_licensing_infos: Vec<ExtractedLicense>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
    /// Present only when files were skipped: begins with
    /// [`INCOMPLETE_MARKER`], which a gate can refuse, and names them.
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

/// How the creation comment of an incomplete document begins.
pub const INCOMPLETE_MARKER: &str = "hoist: incomplete catalog";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<String>,
    download_location: &'static str,
    files_analyzed: bool,
    license_concluded: &'static str,
    license_declared: String,
    copyright_text: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary_package_purpose: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtractedLicense {
    license_id: String,
    extracted_text: String,
    name: String,
}

/// Writes the SPDX 2.3 document for the image `name` (`ghcr.io/org/app`)
/// with manifest digest `image`, created at `epoch` (seconds since 1970).
pub fn spdx_json(
    inventory: &Inventory,
    name: &str,
    image: &Digest,
    epoch: i64,
) -> Result<Vec<u8>, AttestError> {
    let hex = sha256_hex(image)?;
    let image_id = "SPDXRef-Image".to_string();
    let mut packages = vec![SpdxPackage {
        spdx_id: image_id.clone(),
        name: name.to_string(),
        version_info: Some(image.to_string()),
        download_location: NOASSERTION,
        files_analyzed: false,
        license_concluded: NOASSERTION,
        license_declared: NOASSERTION.into(),
        copyright_text: NOASSERTION,
        source_info: None,
        primary_package_purpose: Some("CONTAINER"),
        checksums: vec![Checksum {
            algorithm: "SHA256",
            checksum_value: hex.to_string(),
        }],
        external_refs: image_purl(name, image).map(purl_ref).into_iter().collect(),
    }];
    let mut relationships = vec![Relationship {
        spdx_element_id: "SPDXRef-DOCUMENT".into(),
        relationship_type: "DESCRIBES",
        related_spdx_element: image_id.clone(),
    }];
    if let Some(os) = &inventory.operating_system {
        let id = "SPDXRef-OperatingSystem".to_string();
        packages.push(SpdxPackage {
            spdx_id: id.clone(),
            name: os.id.clone(),
            // The point release where known (`12.5`): the purls' `distro`
            // qualifiers carry the major version scanners key on.
            version_info: os.version().map(str::to_string),
            download_location: NOASSERTION,
            files_analyzed: false,
            license_concluded: NOASSERTION,
            license_declared: NOASSERTION.into(),
            copyright_text: NOASSERTION,
            source_info: os.pretty_name.clone(),
            primary_package_purpose: Some("OPERATING_SYSTEM"),
            checksums: Vec::new(),
            external_refs: Vec::new(),
        });
        relationships.push(contains(&image_id, id));
    }
    let mut extracted: BTreeMap<String, String> = BTreeMap::new();
    for package in &inventory.packages {
        let id = package_id(package);
        packages.push(SpdxPackage {
            spdx_id: id.clone(),
            name: package.name.clone(),
            version_info: (!package.version.is_empty()).then(|| package.version.clone()),
            download_location: NOASSERTION,
            files_analyzed: false,
            license_concluded: NOASSERTION,
            license_declared: declared_license(package, &mut extracted),
            copyright_text: NOASSERTION,
            source_info: Some(format!(
                "found in {}",
                package
                    .locations
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            primary_package_purpose: Some(match package.ecosystem {
                Ecosystem::Deb | Ecosystem::Apk | Ecosystem::Rpm => "APPLICATION",
                _ => "LIBRARY",
            }),
            checksums: Vec::new(),
            external_refs: std::iter::once(purl_ref(package.purl.clone()))
                .chain(super::catalog::cpe(package).map(cpe_ref))
                .collect(),
        });
        relationships.push(contains(&image_id, id));
    }
    let document = Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: name.to_string(),
        document_namespace: format!("https://hoist.dev/spdx/{}-{hex}", name_for_uri(name)),
        creation_info: CreationInfo {
            created: rfc3339(epoch)?,
            creators: vec![format!("Tool: hoist-{}", env!("CARGO_PKG_VERSION"))],
            comment: (!inventory.is_complete()).then(|| incomplete_comment(inventory)),
        },
        packages,
        relationships,
        has_extracted_licensing_infos: extracted
            .into_iter()
            .map(|(license_id, text)| ExtractedLicense {
                license_id,
                name: text.clone(),
                extracted_text: text,
            })
            .collect(),
    };
    to_canonical_json(&document).map_err(|source| AttestError::Encode {
        what: "SPDX document",
        source,
    })
}

/// Says the catalog is incomplete and names every file skipped, with why.
fn incomplete_comment(inventory: &Inventory) -> String {
    let skipped: Vec<String> = inventory
        .skipped
        .iter()
        .map(|(path, reason)| format!("{path} ({reason})"))
        .collect();
    format!(
        "{INCOMPLETE_MARKER}: {} file(s) the catalogers wanted were skipped, so packages may be missing: {}",
        skipped.len(),
        skipped.join("; ")
    )
}

/// A CPE as SPDX 2.3 names one: a security reference of type `cpe23Type`.
fn cpe_ref(locator: String) -> ExternalRef {
    ExternalRef {
        reference_category: "SECURITY",
        reference_type: "cpe23Type",
        reference_locator: locator,
    }
}

fn purl_ref(locator: String) -> ExternalRef {
    ExternalRef {
        reference_category: "PACKAGE-MANAGER",
        reference_type: "purl",
        reference_locator: locator,
    }
}

fn contains(container: &str, element: String) -> Relationship {
    Relationship {
        spdx_element_id: container.to_string(),
        relationship_type: "CONTAINS",
        related_spdx_element: element,
    }
}

/// `SPDXRef-Package-deb-<16 hex>`: stable across runs and unique per package.
fn package_id(package: &Package) -> String {
    let key = format!(
        "{}\n{}\n{}\n{}",
        package.ecosystem.as_str(),
        package.name,
        package.version,
        package.purl
    );
    let digest = sha256_digest(key.as_bytes());
    let hex = digest.digest();
    format!(
        "SPDXRef-Package-{}-{}",
        package.ecosystem.as_str(),
        &hex[..16]
    )
}

/// The declared licenses as one SPDX expression; names without an SPDX
/// identifier become `LicenseRef-` ids listed in `extracted`.
fn declared_license(package: &Package, extracted: &mut BTreeMap<String, String>) -> String {
    let mut terms: Vec<String> = Vec::new();
    for license in &package.licenses {
        let term = match &license.spdx {
            Some(expression) => expression.clone(),
            None => {
                let id = format!("LicenseRef-{}", license_ref(&license.declared));
                extracted
                    .entry(id.clone())
                    .or_insert_with(|| license.declared.clone());
                id
            }
        };
        if !terms.contains(&term) {
            terms.push(term);
        }
    }
    match terms.len() {
        0 => NOASSERTION.to_string(),
        1 => terms.remove(0),
        _ => terms
            .iter()
            .map(|term| {
                if term.contains(' ') {
                    format!("({term})")
                } else {
                    term.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" AND "),
    }
}

/// A license name reduced to the characters a LicenseRef id may hold.
fn license_ref(name: &str) -> String {
    let mut out = String::new();
    for character in name.chars() {
        if character.is_ascii_alphanumeric() || character == '.' {
            out.push(character);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "unnamed".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn license_refs_are_valid_ids() {
        assert_eq!(license_ref("public-domain"), "public-domain");
        assert_eq!(
            license_ref("GPL (any version) / Artistic"),
            "GPL-any-version-Artistic"
        );
        assert_eq!(license_ref("???"), "unnamed");
    }
}
