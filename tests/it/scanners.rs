//! The scanners users point at images, run for real: syft and trivy read
//! every local output hoist writes for the Debian fixture and list the packages
//! hoist's own SBOM lists, and they accept hoist's SPDX and CycloneDX
//! documents as input. trivy runs offline: with `--scanners license` it needs
//! no vulnerability database, which no test here could download.

use crate::common::hoist::{debian_rootfs, hoist, read_json};
use crate::common::{purl_qualifier, run};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// The local outputs of one build of the Debian fixture, as scanners name them.
const OUTPUTS: [(&str, &str); 3] = [
    ("oci:out", "oci-dir:out"),
    ("oci-archive:out.tar", "oci-archive:out.tar"),
    ("docker-archive:docker.tar", "docker-archive:docker.tar"),
];

/// Builds a single-platform image of the Debian fixture into every local output.
fn build_debian(work: &Path) {
    let architecture = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    let spec = work.join("hoist.toml");
    std::fs::write(
        &spec,
        format!(
            "[[image]]\nname = \"debian\"\nplatforms = [\"linux/{architecture}\"]\n\
             source-date-epoch = 1700000000\n\n\
             [[image.layer]]\nsource = \"{}\"\ntarget = \"/\"\n\
             owner = \"preserve\"\npermissions = \"preserve\"\n",
            debian_rootfs().display()
        ),
    )
    .unwrap();
    let mut command = hoist(["build", "-f"]);
    command = command.arg(&spec);
    for (output, _) in OUTPUTS {
        command = command.args(["-o", output]);
    }
    command
        .env("HOIST_CACHE", work.join("cache"))
        .current_dir(work)
        .run()
        .success();
}

/// hoist's own SBOM of the image, written to `work/hoist.<format>.json`.
fn hoist_sbom(work: &Path, format: &str) -> std::path::PathBuf {
    let path = work.join(format!("hoist.{format}"));
    hoist(["sbom", "oci:out:debian", "--format", format, "-o"])
        .arg(&path)
        .current_dir(work)
        .run()
        .success();
    path
}

/// The deb and pypi purls of a CycloneDX document's components.
fn cyclonedx_purls(document: &Value) -> BTreeSet<String> {
    package_purls(
        document["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|component| component["purl"].as_str()),
    )
}

fn package_purls<'a>(purls: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    purls
        .filter(|purl| purl.starts_with("pkg:deb/") || purl.starts_with("pkg:pypi/"))
        .map(str::to_string)
        .collect()
}

/// A purl's package and full version, decoded: trivy spells an epoch's `:`
/// as `%3A`, or moves the epoch to an `epoch` qualifier, and writes its
/// `distro` qualifier with the point release.
fn identity(purl: &str) -> (String, String, String, String) {
    let parsed: packageurl::PackageUrl = purl.parse().unwrap();
    let version = parsed.version().unwrap_or_default();
    let version = match parsed.qualifiers().get("epoch") {
        Some(epoch) => format!("{epoch}:{version}"),
        None => version.to_string(),
    };
    (
        parsed.ty().to_string(),
        parsed.namespace().unwrap_or_default().to_string(),
        parsed.name().to_string(),
        version,
    )
}

fn identities(purls: &BTreeSet<String>, kind: &str) -> BTreeSet<(String, String, String, String)> {
    purls
        .iter()
        .filter(|purl| purl.starts_with(&format!("pkg:{kind}/")))
        .map(|purl| identity(purl))
        .collect()
}

/// syft's JSON document of `source` (a syft source or an SBOM to convert).
fn syft_document(arguments: &[&str], work: &Path) -> Value {
    let output = run(Command::new("syft")
        .args(arguments)
        .args(["-q", "-o", "syft-json"])
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .current_dir(work));
    serde_json::from_str(&output).unwrap()
}

/// syft's packages of `source` (a syft source or an SBOM to convert), as purls.
fn syft(arguments: &[&str], work: &Path) -> BTreeSet<String> {
    let document = syft_document(arguments, work);
    package_purls(
        document["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|artifact| artifact["purl"].as_str()),
    )
}

/// trivy's packages of `target` (`image --input FILE` or `sbom FILE`), offline.
fn trivy(arguments: &[&str], work: &Path) -> Value {
    let output = work.join("trivy.json");
    run(Command::new("trivy")
        .args(arguments)
        .args(["--cache-dir", "trivy-cache", "--skip-db-update"])
        .args(["--skip-java-db-update", "--offline-scan"])
        .args(["--scanners", "license", "--format", "cyclonedx", "--output"])
        .arg(&output)
        .current_dir(work));
    read_json(&output)
}

/// The operating system component's version in a CycloneDX document.
fn os_version(document: &Value) -> String {
    document["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|component| component["type"] == "operating-system")
        .and_then(|component| component["version"].as_str())
        .expect("an operating-system component")
        .to_string()
}

#[test]
fn syft_and_trivy_list_the_packages_hoist_lists_in_every_local_output() {
    let work = tempfile::tempdir().unwrap();
    build_debian(work.path());
    let hoist_document = read_json(&hoist_sbom(work.path(), "cyclonedx-json"));
    let expected = cyclonedx_purls(&hoist_document);
    assert!(
        expected
            .iter()
            .any(|purl| purl.starts_with("pkg:pypi/six@"))
            && expected.len() > 50
            && expected
                .iter()
                .any(|purl| purl_qualifier(purl, "upstream").is_some()),
        "{expected:?}"
    );
    let release = std::fs::read_to_string(debian_rootfs().join("etc/debian_version")).unwrap();
    assert_eq!(os_version(&hoist_document), release.trim());
    for (output, syft_source) in OUTPUTS {
        // syft writes the same purls, qualifiers and all. Its OCI sources
        // (`oci-dir:`, `oci-archive:`) want a manifest, not an index, at
        // the top, which a single-platform build without attestations in
        // the index has.
        assert_eq!(
            syft(&["scan", syft_source], work.path()),
            expected,
            "{output}"
        );
        // trivy lists only the dpkg packages (it leaves the Python ones to
        // dpkg), under its own qualifiers, and the same point release.
        let mut file = output.split_once(':').unwrap().1.to_string();
        if output.starts_with("oci-archive:") {
            // trivy reads OCI layouts as directories only.
            std::fs::create_dir(work.path().join("unpacked")).unwrap();
            run(Command::new("tar")
                .args(["-xf", &file, "-C", "unpacked"])
                .current_dir(work.path()));
            file = "unpacked".to_string();
        }
        let trivy_document = trivy(&["image", "--input", &file], work.path());
        let found = cyclonedx_purls(&trivy_document);
        assert_eq!(
            identities(&found, "deb"),
            identities(&expected, "deb"),
            "{output}"
        );
        assert_eq!(os_version(&trivy_document), release.trim(), "{output}");
    }
}

/// Each deb and pypi package's CPEs, by purl, from the components of a
/// CycloneDX document (its `cpe`) or the artifacts of a syft one (`cpes`).
fn cpes_by_purl(packages: &Value, field: &str) -> BTreeMap<String, BTreeSet<String>> {
    packages
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|package| {
            let purl = package["purl"].as_str()?;
            (purl.starts_with("pkg:deb/") || purl.starts_with("pkg:pypi/")).then_some(())?;
            let cpes = match &package[field] {
                Value::String(cpe) => BTreeSet::from([cpe.clone()]),
                Value::Array(cpes) => cpes
                    .iter()
                    .filter_map(|cpe| cpe["cpe"].as_str().map(str::to_string))
                    .collect(),
                _ => BTreeSet::new(),
            };
            Some((purl.to_string(), cpes))
        })
        .collect()
}

#[test]
fn hoist_gives_dpkg_and_python_packages_a_cpe_syft_gives_them() {
    let work = tempfile::tempdir().unwrap();
    build_debian(work.path());
    let hoist_document = read_json(&hoist_sbom(work.path(), "cyclonedx-json"));
    let ours = cpes_by_purl(&hoist_document["components"], "cpe");
    let syfts = cpes_by_purl(
        &syft_document(&["scan", "oci-dir:out"], work.path())["artifacts"],
        "cpes",
    );
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        syfts.keys().collect::<Vec<_>>()
    );
    for (purl, cpes) in &ours {
        assert_eq!(cpes.len(), 1, "{purl}: {cpes:?}");
        // syft lists several candidates for some names; hoist writes the
        // first, which is among them.
        assert!(
            cpes.is_subset(&syfts[purl]),
            "{purl}: {cpes:?} not in {:?}",
            syfts[purl]
        );
    }
    // The SPDX document names the same CPE as a security reference.
    let spdx = read_json(&hoist_sbom(work.path(), "spdx-json"));
    let references: BTreeSet<&str> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|package| package["externalRefs"].as_array())
        .flatten()
        .filter(|reference| reference["referenceType"] == "cpe23Type")
        .map(|reference| reference["referenceLocator"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = ours.values().flatten().map(String::as_str).collect();
    assert_eq!(references, expected);
}

#[test]
fn syft_and_trivy_accept_hoist_sboms() {
    let work = tempfile::tempdir().unwrap();
    build_debian(work.path());
    let expected = cyclonedx_purls(&read_json(&hoist_sbom(work.path(), "cyclonedx-json")));
    for format in ["spdx-json", "cyclonedx-json"] {
        let document = hoist_sbom(work.path(), format);
        let document = document.to_str().unwrap();
        assert_eq!(
            syft(&["convert", document], work.path()),
            expected,
            "{format}"
        );
        let found = cyclonedx_purls(&trivy(&["sbom", document], work.path()));
        // trivy keeps the purls it reads, spelling an epoch's `:` its own way.
        assert_eq!(
            identities(&found, "deb"),
            identities(&expected, "deb"),
            "{format}"
        );
        assert_eq!(
            identities(&found, "pypi"),
            identities(&expected, "pypi"),
            "{format}"
        );
    }
}
