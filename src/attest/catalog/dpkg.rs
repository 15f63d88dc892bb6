//! Debian and Ubuntu packages: dpkg's `/var/lib/dpkg/status` (and the
//! `status.d/` files distroless images carry instead), with licenses from the
//! machine-readable (DEP-5) `/usr/share/doc/<package>/copyright` files.

use super::deb822::{self, first_line};
use super::{
    DistributionPackage, Ecosystem, Findings, License, OperatingSystem, Texts,
    distribution_package, license,
};
use crate::attest::files::FileTree;

const STATUS: &str = "/var/lib/dpkg/status";
const STATUS_DIRECTORY: &str = "/var/lib/dpkg/status.d/";
const DOCS: &str = "/usr/share/doc/";

pub fn wants(path: &str) -> bool {
    if path == STATUS {
        return true;
    }
    if let Some(name) = path.strip_prefix(STATUS_DIRECTORY) {
        // distroless also keeps `<pkg>.md5sums` there.
        return !name.contains('/') && !name.ends_with(".md5sums");
    }
    path.strip_prefix(DOCS)
        .and_then(|rest| rest.strip_suffix("/copyright"))
        .is_some_and(|package| !package.is_empty() && !package.contains('/'))
}

pub fn catalog(
    tree: &FileTree,
    texts: &Texts,
    operating_system: Option<&OperatingSystem>,
    findings: &mut Findings,
) {
    let namespace = operating_system
        .map(|os| os.id.as_str())
        .unwrap_or("debian")
        .to_string();
    let distro = operating_system
        .map(OperatingSystem::distro)
        .unwrap_or_default();
    for (path, text) in texts.range(STATUS.to_string()..) {
        if !(path == STATUS || path.starts_with(STATUS_DIRECTORY)) {
            continue;
        }
        // status.d files come from distroless, which writes no Status field.
        let require_installed = path == STATUS;
        let paragraphs = deb822::parse(text);
        if paragraphs.is_empty() || paragraphs.iter().all(|p| !p.contains_key("package")) {
            findings.warn(path, "no `Package:` paragraphs: not a dpkg status file");
            continue;
        }
        for paragraph in paragraphs {
            let Some(name) = first_line(&paragraph, "package") else {
                continue;
            };
            if require_installed
                && !first_line(&paragraph, "status")
                    .is_some_and(|status| status.ends_with(" installed"))
            {
                continue;
            }
            let Some(version) = first_line(&paragraph, "version") else {
                findings.warn(path, format!("package `{name}` has no Version"));
                continue;
            };
            let architecture = first_line(&paragraph, "architecture").unwrap_or_default();
            let source = first_line(&paragraph, "source").and_then(source_package);
            let upstream = source.as_ref().map(upstream).unwrap_or_default();
            let recorded = DistributionPackage {
                ecosystem: Ecosystem::Deb,
                kind: "deb",
                namespace: Some(&namespace),
                name,
                version,
                architecture,
                qualifiers: &[("distro", &distro), ("upstream", &upstream)],
            };
            let Some(mut found) = distribution_package(findings, recorded, path) else {
                continue;
            };
            found.source_package = source.map(|(name, _)| name.to_string());
            if let Some((copyright_path, licenses)) = copyright_licenses(tree, texts, name) {
                found.licenses = licenses;
                found.locations.insert(copyright_path);
            }
            findings.add(found);
        }
    }
}

/// `Source: glibc (2.36-9)` names the source package and, when it differs
/// from the binary package's, its version. dpkg writes no `Source:` for a
/// package built from a source of the same name and version.
fn source_package(field: &str) -> Option<(&str, Option<&str>)> {
    let mut words = field.split_whitespace();
    let name = words.next()?;
    let version = words
        .next()
        .and_then(|word| word.strip_prefix('('))
        .and_then(|word| word.strip_suffix(')'))
        .filter(|version| !version.is_empty());
    Some((name, version))
}

/// The purl `upstream` qualifier scanners match source-package advisories
/// with, written as syft writes it: `glibc`, or `glibc@2.36-9` when the
/// source's version differs.
fn upstream((name, version): &(&str, Option<&str>)) -> String {
    match version {
        Some(version) => format!("{name}@{version}"),
        None => name.to_string(),
    }
}

/// The licenses a machine-readable copyright file declares, if the package
/// has one (its doc directory may be a symlink to another package's).
fn copyright_licenses(
    tree: &FileTree,
    texts: &Texts,
    package: &str,
) -> Option<(String, std::collections::BTreeSet<License>)> {
    let wanted = format!("{DOCS}{package}/copyright");
    let path = if texts.contains_key(&wanted) {
        wanted
    } else {
        tree.resolve(&wanted)
            .filter(|path| texts.contains_key(path))?
    };
    let text = texts.get(&path)?;
    let paragraphs = deb822::parse(text);
    let header = paragraphs.first()?;
    // Free-form copyright files have no machine-readable licenses to take.
    if !first_line(header, "format").is_some_and(|format| format.contains("copyright-format")) {
        return None;
    }
    let mut licenses = std::collections::BTreeSet::new();
    for paragraph in &paragraphs {
        // Stand-alone License paragraphs only hold texts for names used above.
        if !(paragraph.contains_key("files") || paragraph.contains_key("format")) {
            continue;
        }
        if let Some(declared) = first_line(paragraph, "license") {
            licenses.insert(License {
                declared: declared.to_string(),
                spdx: license::from_dep5(declared),
            });
        }
    }
    // Some files put only prose under `License:`, no short name to map.
    (!licenses.is_empty()).then_some((path, licenses))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_status_and_copyright_files() {
        assert!(wants("/var/lib/dpkg/status"));
        assert!(wants("/var/lib/dpkg/status.d/base"));
        assert!(!wants("/var/lib/dpkg/status.d/base.md5sums"));
        assert!(wants("/usr/share/doc/libc6/copyright"));
        assert!(!wants("/usr/share/doc/libc6/examples/copyright"));
        assert!(!wants("/var/lib/dpkg/status-old"));
    }

    #[test]
    fn source_field_gives_the_upstream_qualifier() {
        let with_version = source_package("openssl (3.0.11-1~deb12u2)").unwrap();
        assert_eq!(with_version, ("openssl", Some("3.0.11-1~deb12u2")));
        assert_eq!(upstream(&with_version), "openssl@3.0.11-1~deb12u2");
        let name_only = source_package("glibc").unwrap();
        assert_eq!(upstream(&name_only), "glibc");
        assert_eq!(source_package("  "), None);
    }
}
