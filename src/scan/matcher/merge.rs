//! Records that name each other (a DSA and its CVEs, a GHSA and its PYSEC
//! twin) become one finding, whose severity is the best-sourced one.

use super::{Finding, Query, cvss_severity, ecosystem_severity};
use crate::attest::Package;
use crate::scan::osv::Database;
use crate::scan::osv::record::Record;
use crate::scan::severity::Severity;
use crate::scan::version::compare;
use std::cmp::Ordering;
use std::collections::BTreeSet;

fn identifiers(record: &Record) -> BTreeSet<String> {
    std::iter::once(&record.id)
        .chain(&record.aliases)
        .chain(&record.upstream)
        .cloned()
        .collect()
}

/// A matched record and the fixed version its range gave.
type Matched<'a> = (&'a Record, Option<String>);

/// Groups the matched records by shared identifiers (connected groups).
fn groups(matched: Vec<Matched<'_>>) -> Vec<Vec<Matched<'_>>> {
    let mut groups: Vec<(BTreeSet<String>, Vec<Matched>)> = Vec::new();
    for (record, fixed) in matched {
        let mut names = identifiers(record);
        let mut members = vec![(record, fixed)];
        let mut index = 0;
        while index < groups.len() {
            if groups[index].0.is_disjoint(&names) {
                index += 1;
            } else {
                let (other_names, other_members) = groups.swap_remove(index);
                names.extend(other_names);
                members.extend(other_members);
            }
        }
        groups.push((names, members));
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

pub(super) fn findings(
    database: &Database,
    package: &Package,
    ecosystem: &str,
    query: &Query,
    matched: Vec<(&Record, Option<String>)>,
) -> Vec<Finding> {
    groups(matched)
        .into_iter()
        .map(|members| {
            let identifiers: BTreeSet<String> = members
                .iter()
                .flat_map(|(record, _)| identifiers(record))
                .collect();
            let records: BTreeSet<String> = members
                .iter()
                .map(|(record, _)| record.id.clone())
                .collect();
            let fixed = members
                .iter()
                .filter_map(|(_, fixed)| fixed.clone())
                .min_by(|left, right| {
                    compare(query.scheme, left, right).unwrap_or(Ordering::Equal)
                });
            let advisory = identifiers
                .iter()
                .find(|identifier| identifier.starts_with("CVE-"))
                .or_else(|| records.iter().next())
                .cloned()
                .unwrap_or_default();
            let (severity, severity_source) = severity(database, &members, &identifiers);
            Finding {
                package: package.name.clone(),
                version: package.version.clone(),
                purl: package.purl.clone(),
                ecosystem: ecosystem.to_string(),
                matched_name: query.name.clone(),
                matched_version: query.version.clone(),
                advisory,
                identifiers,
                records,
                fixed,
                severity,
                severity_source,
                summary: members
                    .iter()
                    .find_map(|(record, _)| record.summary.clone()),
            }
        })
        .collect()
}

/// CVSS vectors of the matched records, else of records in the database
/// named by or aliasing one of their identifiers (a Debian record's CVE,
/// which a GHSA aliases), else the ecosystem's rating.
fn severity(
    database: &Database,
    members: &[(&Record, Option<String>)],
    identifiers: &BTreeSet<String>,
) -> (Severity, &'static str) {
    if let Some(severity) = members
        .iter()
        .filter_map(|(record, _)| cvss_severity(record))
        .max()
    {
        return (severity, "cvss");
    }
    let aliased = identifiers
        .iter()
        .flat_map(|identifier| database.records_named(identifier))
        .filter_map(cvss_severity)
        .max();
    if let Some(severity) = aliased {
        return (severity, "alias");
    }
    match members
        .iter()
        .filter_map(|(record, _)| ecosystem_severity(record))
        .max()
    {
        Some(severity) => (severity, "ecosystem"),
        None => (Severity::Unknown, "none"),
    }
}
