//! `hoist build --scan`: after every image is built and attested and before
//! anything is published, each platform image's packages are cataloged (as
//! for an SBOM, whether or not one is attached) and matched against an
//! offline OSV database. A failed gate stops the run before the publish
//! phase: no manifest, no tag, no local output. Layer blobs already streamed
//! to a registry stay unreferenced, for its garbage collector.

use super::RunError;
use crate::attest;
use crate::build::BuiltImage;
use crate::ci::{ScanFindingMetadata, ScanGateMetadata};
use crate::progress::{Event, Observer};
use crate::scan::gate::{self, GatePolicy};
use crate::scan::matcher::{Finding, match_inventory};
use crate::scan::osv::Database;
use std::path::PathBuf;

/// What `--scan` asks of a build.
#[derive(Clone, Debug)]
pub struct ScanGate {
    /// The OSV export: a zip, a record, or a directory of them.
    pub database: PathBuf,
    /// Where the parsed export is cached (`None`: not cached).
    pub cache: Option<PathBuf>,
    pub policy: GatePolicy,
}

/// Matches every platform image of `built` and decides the gate.
pub(super) fn check(
    scan: &ScanGate,
    built: &[BuiltImage],
    observer: &dyn Observer,
) -> Result<ScanGateMetadata, RunError> {
    let database = Database::open(&scan.database, scan.cache.as_deref()).map_err(|source| {
        RunError::ScanDatabase {
            path: scan.database.clone(),
            source: Box::new(source),
        }
    })?;
    observer.event(Event::ScanDatabaseOpened {
        records: database.len(),
        withdrawn: database.withdrawn,
        newest_modified: database.newest_modified.clone(),
        cached: database.from_cache,
    });
    let mut findings: Vec<(String, String, Finding)> = Vec::new();
    let mut incomplete = Vec::new();
    for image in built {
        for platform in &image.platforms {
            let name = platform.platform.to_string();
            let failed = |source| RunError::ScanCatalog {
                image: image.name.clone(),
                platform: name.clone(),
                source: Box::new(source),
            };
            let tree = attest::image_files(&platform.image.layers).map_err(failed)?;
            let inventory = attest::catalog(&tree, observer).map_err(failed)?;
            if !inventory.is_complete() {
                incomplete.push(format!("{} {name}", image.name));
            }
            let outcome = match_inventory(&database, &inventory);
            for message in outcome.warnings {
                observer.event(Event::Warning { message });
            }
            observer.event(Event::ScanPlatformMatched {
                platform: Some(name.clone()),
                packages: inventory.packages.len(),
                findings: outcome.findings.len(),
            });
            for finding in outcome.findings {
                findings.push((image.name.clone(), name.clone(), finding));
            }
        }
    }
    let result = gate::decide(
        &scan.policy,
        findings.iter().map(|(_, _, finding)| finding),
        &incomplete,
    );
    Ok(ScanGateMetadata {
        passed: result.passed,
        reasons: result.reasons,
        counts: result
            .counts
            .iter()
            .map(|(severity, count)| (severity.as_str().to_string(), *count))
            .collect(),
        findings: findings
            .into_iter()
            .map(|(image, platform, finding)| ScanFindingMetadata {
                image,
                platform,
                package: finding.package,
                installed: finding.version,
                fixed: finding.fixed,
                advisory: finding.advisory,
                severity: finding.severity.as_str().to_string(),
            })
            .collect(),
    })
}
