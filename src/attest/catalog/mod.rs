//! Catalogers: find the packages installed in an image's file tree, for the
//! SBOM writers. One read pass over the tree collects the package databases
//! and metadata files (small) and streams executables past the binary
//! catalogers one at a time; each cataloger then parses what it was given.
//!
//! Every cataloger fails soft: a database it cannot parse becomes a warning
//! naming the file, and the rest of the inventory is still produced.

mod apk;
mod binary;
pub mod budget;
mod cpe;
mod deb822;
mod dpkg;
pub mod license;
mod npm;
mod os_release;
mod python;
mod rpm;

pub use cpe::cpe;

use super::AttestError;
use super::files::{self, FileEntry, FileTree};
use crate::progress::{Event, Observer};
use budget::Reading;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// Which package manager or language ecosystem a package belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    Deb,
    Apk,
    Rpm,
    Python,
    Npm,
    Go,
    Cargo,
}

impl Ecosystem {
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Python => "python",
            Ecosystem::Npm => "npm",
            Ecosystem::Go => "go",
            Ecosystem::Cargo => "cargo",
        }
    }
}

/// A license as the package declares it, with its SPDX expression when the
/// mapping is certain.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct License {
    pub declared: String,
    pub spdx: Option<String>,
}

/// One installed package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub ecosystem: Ecosystem,
    pub purl: String,
    pub licenses: BTreeSet<License>,
    pub architecture: Option<String>,
    /// The source package it was built from, where the database says (dpkg, rpm, apk).
    pub source_package: Option<String>,
    /// The files that revealed it.
    pub locations: BTreeSet<String>,
}

impl Package {
    /// Every license as one SPDX expression, when every one of them maps.
    pub fn license_expression(&self) -> Option<String> {
        let expressions: BTreeSet<&str> = self
            .licenses
            .iter()
            .map(|license| license.spdx.as_deref())
            .collect::<Option<_>>()?;
        match expressions.len() {
            0 => None,
            1 => expressions.into_iter().next().map(str::to_string),
            _ => Some(
                expressions
                    .into_iter()
                    .map(|expression| {
                        if expression.contains(' ') {
                            format!("({expression})")
                        } else {
                            expression.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" AND "),
            ),
        }
    }
}

/// The distribution, from `/etc/os-release`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatingSystem {
    /// `debian`, `ubuntu`, `alpine`, `fedora`.
    pub id: String,
    pub version_id: Option<String>,
    pub version_codename: Option<String>,
    pub name: Option<String>,
    pub pretty_name: Option<String>,
    pub id_like: Vec<String>,
    /// The version as the distribution's own file reports it, where it is
    /// more precise than `VERSION_ID`: Debian's point release (`12.5`) from
    /// `/etc/debian_version`, which scanners record beside the major version.
    pub point_release: Option<String>,
}

impl OperatingSystem {
    /// The purl `distro` qualifier: `debian-12`, `alpine-3.19.1`.
    pub fn distro(&self) -> String {
        match &self.version_id {
            Some(version) => format!("{}-{version}", self.id),
            None => self.id.clone(),
        }
    }

    /// The most precise version known: the point release, else `VERSION_ID`.
    pub fn version(&self) -> Option<&str> {
        self.point_release.as_deref().or(self.version_id.as_deref())
    }
}

/// What the catalogers found, sorted by ecosystem, name, version and purl.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    pub operating_system: Option<OperatingSystem>,
    pub packages: Vec<Package>,
    /// Files that could not be parsed, each message naming the file.
    pub warnings: Vec<String>,
    /// Files skipped (over a limit of [`budget`], unreadable, unparseable),
    /// with why: the inventory is incomplete when there are any.
    pub skipped: Vec<(String, String)>,
}

impl Inventory {
    /// True when every file the catalogers wanted was read and parsed.
    pub fn is_complete(&self) -> bool {
        self.skipped.is_empty()
    }
}

/// Collects packages and warnings while the catalogers run.
pub(crate) struct Findings<'a> {
    packages: Vec<Package>,
    warnings: Vec<String>,
    skipped: Vec<(String, String)>,
    observer: &'a dyn Observer,
}

impl Findings<'_> {
    pub(crate) fn add(&mut self, package: Package) {
        self.packages.push(package);
    }

    pub(crate) fn warn(&mut self, path: &str, message: impl std::fmt::Display) {
        let reason = message.to_string();
        let message = format!("SBOM: skipping {path}: {reason}; the SBOM is marked incomplete");
        // The observer's warning is what the user sees; a tracing line too
        // would print it twice.
        self.observer.event(Event::Warning {
            message: message.clone(),
        });
        self.warnings.push(message);
        self.skipped.push((path.to_string(), reason));
    }
}

/// Files the text catalogers parse, by path.
pub(crate) type Texts = BTreeMap<String, String>;

/// Finds every package in `tree`. Fails only when the tree itself cannot be
/// read; problems with single files are warnings in the inventory (and sent
/// to `observer`).
pub fn catalog(tree: &FileTree, observer: &dyn Observer) -> Result<Inventory, AttestError> {
    let os_release_path = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|path| tree.resolve(path));
    let debian_version_path = tree.resolve(os_release::DEBIAN_VERSION);
    let is_text = |path: &str| {
        Some(path) == os_release_path.as_deref()
            || Some(path) == debian_version_path.as_deref()
            || dpkg::wants(path)
            || apk::wants(path)
            || python::wants(path)
            || npm::wants(path)
    };
    let classify = |path: &str, entry: &FileEntry| {
        if rpm::wants(path) {
            Some(Reading::RpmDatabase)
        } else if is_text(path) {
            Some(Reading::Text)
        } else if entry.is_executable() && entry.size >= 64 {
            Some(Reading::Binary)
        } else {
            None
        }
    };
    // Sizes are checked here, before anything is read.
    let selection = budget::select(tree, &classify);

    let mut findings = Findings {
        packages: Vec::new(),
        warnings: Vec::new(),
        skipped: Vec::new(),
        observer,
    };
    for (path, reason) in &selection.skipped {
        findings.warn(path, reason);
    }
    let mut texts = Texts::new();
    let mut rpm_spool = rpm::Spool::default();
    let mut unread = Vec::new();
    tree.read_files(
        &|path, _| selection.reading(path).is_some(),
        &mut |path, entry, reader| match selection.reading(path) {
            Some(Reading::RpmDatabase) => {
                if let Err(message) = rpm_spool.add(path, reader) {
                    findings.warn(path, message);
                }
            }
            Some(Reading::Text) => {
                let mut bytes = Vec::with_capacity(entry.size as usize);
                match reader.take(entry.size).read_to_end(&mut bytes) {
                    Ok(_) => {
                        texts.insert(
                            path.to_string(),
                            String::from_utf8_lossy(&bytes).into_owned(),
                        );
                    }
                    Err(error) => findings.warn(path, error),
                }
            }
            Some(Reading::Binary) => binary::catalog(path, entry.size, reader, &mut findings),
            None => {}
        },
        &mut |path, entry, first| {
            unread.push((
                path.to_string(),
                format!(
                    "a hard link to {first}, whose {} bytes are more than the {} MiB held to read them twice",
                    entry.size,
                    files::SHARED_BUFFER_LIMIT >> 20
                ),
            ));
        },
    )?;
    for (path, reason) in unread {
        findings.warn(&path, reason);
    }

    let operating_system = os_release_path
        .as_deref()
        .and_then(|path| texts.get(path))
        .and_then(|text| os_release::parse(text))
        .map(|mut os| {
            os.point_release = debian_version_path
                .as_deref()
                .and_then(|path| texts.get(path))
                .and_then(|text| os_release::debian_point_release(&os, text));
            os
        });
    dpkg::catalog(tree, &texts, operating_system.as_ref(), &mut findings);
    apk::catalog(&texts, operating_system.as_ref(), &mut findings);
    rpm_spool.catalog(operating_system.as_ref(), &mut findings);
    python::catalog(&texts, &mut findings);
    npm::catalog(&texts, &mut findings);

    Ok(Inventory {
        operating_system,
        packages: merge(findings.packages),
        warnings: findings.warnings,
        skipped: findings.skipped,
    })
}

/// Sorts packages and merges those with the same purl (one package found in
/// two places), keeping every location and license.
fn merge(packages: Vec<Package>) -> Vec<Package> {
    let mut by_key: BTreeMap<(Ecosystem, String, String, String), Package> = BTreeMap::new();
    for package in packages {
        let key = (
            package.ecosystem,
            package.name.clone(),
            package.version.clone(),
            package.purl.clone(),
        );
        match by_key.get_mut(&key) {
            Some(existing) => {
                existing.locations.extend(package.locations);
                existing.licenses.extend(package.licenses);
                if existing.source_package.is_none() {
                    existing.source_package = package.source_package;
                }
            }
            None => {
                by_key.insert(key, package);
            }
        }
    }
    by_key.into_values().collect()
}

/// Builds a purl string; `None` only for names the purl spec cannot hold.
pub(crate) fn purl(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(&str, &str)],
) -> Option<String> {
    let mut purl = packageurl::PackageUrl::new(kind.to_string(), name.to_string()).ok()?;
    if let Some(namespace) = namespace.filter(|namespace| !namespace.is_empty()) {
        purl.with_namespace(namespace.to_string()).ok()?;
    }
    if !version.is_empty() {
        purl.with_version(version.to_string()).ok()?;
    }
    for (key, value) in qualifiers {
        if !value.is_empty() {
            purl.add_qualifier(key.to_string(), value.to_string())
                .ok()?;
        }
    }
    Some(purl.to_string())
}

/// A distribution's package (deb, apk, rpm) as its database records it,
/// before it becomes a [`Package`].
pub(crate) struct DistributionPackage<'a> {
    pub ecosystem: Ecosystem,
    /// The purl type: `deb`, `apk`, `rpm`.
    pub kind: &'a str,
    /// The purl namespace, the distribution's id (`debian`, `alpine`).
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub version: &'a str,
    pub architecture: &'a str,
    /// purl qualifiers besides `arch`; empty values are left out.
    pub qualifiers: &'a [(&'a str, &'a str)],
}

/// `recorded` as a package: the purl carries the architecture and the other
/// qualifiers, and the architecture is recorded; a name no purl can hold is
/// a warning naming `location`, not a package.
pub(crate) fn distribution_package(
    findings: &mut Findings<'_>,
    recorded: DistributionPackage<'_>,
    location: &str,
) -> Option<Package> {
    let DistributionPackage {
        ecosystem,
        kind,
        namespace,
        name,
        version,
        architecture,
        qualifiers,
    } = recorded;
    let mut all = vec![("arch", architecture)];
    all.extend_from_slice(qualifiers);
    let Some(url) = purl(kind, namespace, name, version, &all) else {
        findings.warn(
            location,
            format!("package `{name}` has a name no purl can hold"),
        );
        return None;
    };
    let mut found = package(ecosystem, name, version, url, location);
    found.architecture = (!architecture.is_empty()).then(|| architecture.to_string());
    Some(found)
}

/// A package with the fields every cataloger fills the same way.
pub(crate) fn package(
    ecosystem: Ecosystem,
    name: &str,
    version: &str,
    purl: String,
    location: &str,
) -> Package {
    Package {
        name: name.to_string(),
        version: version.to_string(),
        ecosystem,
        purl,
        licenses: BTreeSet::new(),
        architecture: None,
        source_package: None,
        locations: BTreeSet::from([location.to_string()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_encode_namespaces_and_sorted_qualifiers() {
        assert_eq!(
            purl(
                "deb",
                Some("debian"),
                "libc6",
                "2.36-9",
                &[("distro", "debian-12"), ("arch", "amd64")]
            )
            .unwrap(),
            "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12"
        );
        // syft percent-encodes the `@` of a versioned upstream.
        assert_eq!(
            purl(
                "deb",
                Some("debian"),
                "libssl3",
                "3.0.11-1~deb12u2",
                &[("upstream", "openssl@3.0.11-1~deb12u1")]
            )
            .unwrap(),
            "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?upstream=openssl%403.0.11-1~deb12u1"
        );
        assert_eq!(
            purl("npm", Some("@types"), "node", "1.0.0", &[]).unwrap(),
            "pkg:npm/%40types/node@1.0.0"
        );
    }

    #[test]
    fn license_expression_joins_only_when_all_map() {
        let mut package = package(Ecosystem::Deb, "a", "1", "pkg:deb/a@1".into(), "/x");
        package.licenses.insert(License {
            declared: "GPL-2+".into(),
            spdx: Some("GPL-2.0-or-later".into()),
        });
        package.licenses.insert(License {
            declared: "MIT or Apache".into(),
            spdx: Some("MIT OR Apache-2.0".into()),
        });
        assert_eq!(
            package.license_expression().as_deref(),
            Some("GPL-2.0-or-later AND (MIT OR Apache-2.0)")
        );
        package.licenses.insert(License {
            declared: "public-domain".into(),
            spdx: None,
        });
        assert_eq!(package.license_expression(), None);
    }
}
