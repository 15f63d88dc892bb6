//! Matching an image's inventory (`attest::catalog`) against the OSV
//! database: each package is asked under the ecosystem OSV files it in
//! (a Debian binary package under its source package and release), its
//! version checked against each record's ranges and version lists, and
//! records that alias one another merged into one finding.

use super::osv::record::{Affected, Range, Record};
use super::osv::{Database, ecosystem};
use super::severity::{Severity, cvss3_base_score, cvss4_score};
use super::version::{Scheme, VersionError, compare};
use crate::attest::{Ecosystem, Inventory, OperatingSystem, Package};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BTreeSet;

/// One vulnerability in one installed package.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// The package as installed (binary package name for a distribution).
    pub package: String,
    pub version: String,
    pub purl: String,
    /// The OSV ecosystem it was matched in (`Debian:12`, `PyPI`).
    pub ecosystem: String,
    /// The name and version the advisory speaks of (a Debian source package).
    pub matched_name: String,
    pub matched_version: String,
    /// The finding's identifier: a CVE when one of the merged records is
    /// or aliases one, else the smallest record id.
    pub advisory: String,
    /// Every identifier of the merged records and their aliases.
    pub identifiers: BTreeSet<String>,
    /// The records that matched.
    pub records: BTreeSet<String>,
    /// The lowest fixed version above the installed one, if any record names one.
    pub fixed: Option<String>,
    pub severity: Severity,
    /// Where the severity came from: `cvss`, `alias`, `ecosystem` or `none`.
    pub severity_source: &'static str,
    pub summary: Option<String>,
}

/// What matching found, with the versions it could not compare.
#[derive(Debug, Default)]
pub struct MatchOutcome {
    pub findings: Vec<Finding>,
    pub warnings: Vec<String>,
}

/// A package as OSV files it.
struct Query {
    family: &'static str,
    release: String,
    name: String,
    version: String,
    scheme: Scheme,
}

/// The OSV family of a distribution, from `/etc/os-release`'s `ID`.
fn distribution_family(system: &OperatingSystem) -> Option<&'static str> {
    Some(match system.id.as_str() {
        "debian" => "Debian",
        "ubuntu" => "Ubuntu",
        "alpine" => "Alpine",
        "rhel" => "Red Hat",
        "almalinux" => "AlmaLinux",
        "rocky" => "Rocky Linux",
        "opensuse-leap" | "opensuse-tumbleweed" => "openSUSE",
        "sles" => "SUSE",
        "mageia" => "Mageia",
        _ => return None,
    })
}

/// A purl qualifier's value, percent-decoded.
fn qualifier(purl: &str, key: &str) -> Option<String> {
    let parsed: packageurl::PackageUrl = purl.parse().ok()?;
    parsed
        .qualifiers()
        .iter()
        .find(|(name, _)| name.as_ref() == key)
        .map(|(_, value)| value.to_string())
}

/// Python distributions under `/usr/lib/python3/dist-packages` are the
/// distribution's own (dpkg installs there; pip never does): the
/// distribution's advisories cover them, so they are not asked of PyPI.
fn installed_by_distribution(package: &Package) -> bool {
    package.locations.iter().any(|location| {
        location
            .trim_start_matches('/')
            .starts_with("usr/lib/python3/dist-packages/")
    })
}

fn query(package: &Package, system: Option<&OperatingSystem>) -> Option<Query> {
    let language = |family: &'static str, scheme| {
        Some(Query {
            family,
            release: String::new(),
            name: package.name.clone(),
            version: package.version.clone(),
            scheme,
        })
    };
    match package.ecosystem {
        Ecosystem::Python if installed_by_distribution(package) => None,
        Ecosystem::Python => language("PyPI", Scheme::Pep440),
        Ecosystem::Npm => language("npm", Scheme::Semver),
        Ecosystem::Cargo => language("crates.io", Scheme::Semver),
        Ecosystem::Go => language("Go", Scheme::Go),
        Ecosystem::Deb | Ecosystem::Apk | Ecosystem::Rpm => {
            let system = system?;
            let family = distribution_family(system)?;
            let (name, version) = distribution_name(package);
            Some(Query {
                family,
                release: system.version_id.clone().unwrap_or_default(),
                name,
                version,
                scheme: ecosystem::scheme(family)?,
            })
        }
    }
}

/// Debian and Ubuntu advisories name the source package and its version
/// (the purl's `upstream` qualifier), Alpine's the origin package; RPM
/// advisories name binary packages, with the epoch the purl carries.
fn distribution_name(package: &Package) -> (String, String) {
    match package.ecosystem {
        Ecosystem::Deb => match qualifier(&package.purl, "upstream") {
            Some(upstream) => match upstream.split_once('@') {
                Some((name, version)) => (name.to_string(), version.to_string()),
                None => (upstream, package.version.clone()),
            },
            None => (package.name.clone(), package.version.clone()),
        },
        Ecosystem::Apk => (
            package
                .source_package
                .clone()
                .unwrap_or_else(|| package.name.clone()),
            package.version.clone(),
        ),
        _ => match qualifier(&package.purl, "epoch").filter(|epoch| !epoch.is_empty()) {
            Some(epoch) => (package.name.clone(), format!("{epoch}:{}", package.version)),
            None => (package.name.clone(), package.version.clone()),
        },
    }
}

/// Whether the version is in the range, and the fixed version that ends
/// the affected interval it is in. Events are applied in version order, as
/// the OSV specification's evaluation has it.
fn in_range(
    scheme: Scheme,
    version: &str,
    range: &Range,
) -> Result<(bool, Option<String>), VersionError> {
    let mut events: Vec<(&str, &str)> = Vec::new();
    for event in &range.events {
        for (kind, value) in [
            ("introduced", &event.introduced),
            ("fixed", &event.fixed),
            ("last_affected", &event.last_affected),
            ("limit", &event.limit),
        ] {
            if let Some(value) = value {
                events.push((kind, value));
            }
        }
    }
    let order = |left: &str, right: &str| -> Result<Ordering, VersionError> {
        match (left, right) {
            ("0", "0") => Ok(Ordering::Equal),
            ("0", _) => Ok(Ordering::Less),
            (_, "0") => Ok(Ordering::Greater),
            _ => compare(scheme, left, right),
        }
    };
    let mut sorted_error = None;
    events.sort_by(|left, right| {
        order(left.1, right.1).unwrap_or_else(|error| {
            sorted_error.get_or_insert(error);
            Ordering::Equal
        })
    });
    if let Some(error) = sorted_error {
        return Err(error);
    }
    let mut affected = false;
    let mut fixed = None;
    let mut limited = events.iter().any(|(kind, _)| *kind == "limit");
    for (kind, value) in &events {
        let against = order(version, value)?;
        match *kind {
            "introduced" if against != Ordering::Less => affected = true,
            "fixed" if against != Ordering::Less => affected = false,
            "fixed" if affected && fixed.is_none() => fixed = Some(value.to_string()),
            "last_affected" if against == Ordering::Greater => affected = false,
            "limit" if against == Ordering::Less => limited = false,
            _ => {}
        }
    }
    Ok((affected && !limited, if affected { fixed } else { None }))
}

/// Whether one affected entry covers the queried version.
fn affects(query: &Query, affected: &Affected) -> Result<Option<Option<String>>, VersionError> {
    let Some(package) = &affected.package else {
        return Ok(None);
    };
    let (family, release) = ecosystem::split(&package.ecosystem);
    if family != query.family
        || ecosystem::normalize_name(family, &package.name)
            != ecosystem::normalize_name(family, &query.name)
        || !ecosystem::release_matches(family, release, &query.release)
    {
        return Ok(None);
    }
    let mut hit = affected
        .versions
        .iter()
        .any(|listed| listed == &query.version);
    let mut fixed = None;
    for range in affected
        .ranges
        .iter()
        .filter(|range| range.kind == "ECOSYSTEM" || range.kind == "SEMVER")
    {
        let (inside, range_fixed) = in_range(query.scheme, &query.version, range)?;
        if inside {
            hit = true;
            fixed = fixed.or(range_fixed);
        }
    }
    Ok(hit.then_some(fixed))
}

/// Matches every package of the inventory against the database.
pub fn match_inventory(database: &Database, inventory: &Inventory) -> MatchOutcome {
    let mut outcome = MatchOutcome::default();
    let system = inventory.operating_system.as_ref();
    for package in &inventory.packages {
        let Some(query) = query(package, system) else {
            continue;
        };
        let mut matched: Vec<(&Record, Option<String>)> = Vec::new();
        for record in database.records_for(query.family, &query.name) {
            let mut hit = None;
            for affected in &record.affected {
                match affects(&query, affected) {
                    Ok(Some(fixed)) => hit = Some(hit.flatten().or(fixed)),
                    Ok(None) => {}
                    Err(error) => outcome.warnings.push(format!(
                        "{}: cannot compare {} {} with {}: {error}",
                        package.purl, query.name, query.version, record.id
                    )),
                }
            }
            if let Some(fixed) = hit {
                matched.push((record, fixed));
            }
        }
        outcome.findings.extend(merge::findings(
            database,
            package,
            &query_ecosystem(&query),
            &query,
            matched,
        ));
    }
    if database.unreadable() > 0 {
        outcome.warnings.push(format!(
            "{} cached OSV record(s) could not be read and were not matched; \
             delete the scan/ folder of the cache directory to read the export again",
            database.unreadable()
        ));
    }
    outcome.findings.sort_by(|left, right| {
        (&left.package, &left.version, &left.advisory).cmp(&(
            &right.package,
            &right.version,
            &right.advisory,
        ))
    });
    outcome
}

fn query_ecosystem(query: &Query) -> String {
    match query.release.as_str() {
        "" => query.family.to_string(),
        release => format!("{}:{release}", query.family),
    }
}

/// The severity a record's CVSS vectors give: its v4.0 vectors' highest
/// score when one scores, else its v3.x vectors' highest. A record carrying
/// both is rated by the newer version, as trivy's database and grype's rank
/// them and as GitHub rates its advisories.
fn cvss_severity(record: &Record) -> Option<Severity> {
    let vectors: Vec<&str> = record
        .severity
        .iter()
        .chain(
            record
                .affected
                .iter()
                .flat_map(|affected| &affected.severity),
        )
        .map(|score| score.score.as_str())
        .collect();
    let highest = |score: fn(&str) -> Option<f64>| {
        vectors
            .iter()
            .filter_map(|vector| score(vector))
            .max_by(f64::total_cmp)
    };
    highest(cvss4_score)
        .or_else(|| highest(cvss3_base_score))
        .map(Severity::from_score)
}

/// The rating the record's ecosystem gives, the highest of them.
fn ecosystem_severity(record: &Record) -> Option<Severity> {
    let holders = record
        .database_specific
        .iter()
        .chain(record.affected.iter().flat_map(|affected| {
            affected
                .ecosystem_specific
                .iter()
                .chain(&affected.database_specific)
        }));
    holders
        .flat_map(|holder| [&holder.severity, &holder.urgency, &holder.priority])
        .filter_map(|rating| rating.as_deref().and_then(Severity::from_rating))
        .max()
}

mod merge;

#[cfg(test)]
mod tests;
