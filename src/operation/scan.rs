//! `hoist scan`: a directory or every platform image at a location
//! cataloged (`attest::catalog`) and matched against an offline OSV
//! database (`scan`), findings filtered by ignores, unfixed and severity,
//! and the gate decided. Reports `ScanDatabaseOpened` and
//! `ScanPlatformMatched`; returns the report the CLI renders.

use super::attestations::{AttestationsError, platform_images};
use super::sbom::SbomSubject;
use crate::attest::{self, AttestError, FileTree, Inventory};
use crate::build::transport::{Transports, own_registries, scope_credentials};
use crate::progress::{Event, Observer};
use crate::registry::ClientOptions;
use crate::scan::gate::{self, GatePolicy};
use crate::scan::ignore::{IgnoreError, IgnoreList};
use crate::scan::matcher::match_inventory;
use crate::scan::osv::{Database, DatabaseError};
use crate::scan::report::{DatabaseSummary, PlatformFinding, ScanReport};
use crate::scan::severity::Severity;
use crate::source::{SourceError, select_platform};
use std::collections::BTreeSet;
use std::path::PathBuf;

pub struct ScanRequest {
    pub subject: SbomSubject,
    /// How the user named what is scanned, for the report and SARIF.
    pub target: String,
    /// The OSV export: a zip, a record, or a directory of them.
    pub database: PathBuf,
    /// Where the parsed export is cached (`None`: not cached).
    pub cache: Option<PathBuf>,
    pub policy: GatePolicy,
    pub ignore: Vec<PathBuf>,
    pub ignore_unfixed: bool,
    /// Only these severities are reported (empty: all).
    pub severities: BTreeSet<Severity>,
    pub registry: ClientOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
    #[error(transparent)]
    Attest(#[from] AttestError),
    #[error(transparent)]
    Source(Box<SourceError>),
    #[error(transparent)]
    Images(#[from] AttestationsError),
}

impl From<SourceError> for ScanError {
    fn from(error: SourceError) -> ScanError {
        ScanError::Source(Box::new(error))
    }
}

/// The inventories to match: one for a directory, one per platform image.
fn inventories(
    request: &ScanRequest,
    observer: &dyn Observer,
) -> Result<Vec<(Option<String>, Inventory)>, ScanError> {
    match &request.subject {
        SbomSubject::Directory(directory) => {
            let tree = FileTree::from_directory(directory)?;
            Ok(vec![(None, attest::catalog(&tree, observer)?)])
        }
        SbomSubject::Image { location, platform } => {
            let own = own_registries([location], []);
            let transports = Transports::new(scope_credentials(request.registry.clone(), &own));
            let manifest = transports.source(location)?.resolve()?;
            let images = match platform {
                Some(wanted) => vec![(Some(wanted.clone()), select_platform(&manifest, wanted)?)],
                None => platform_images(&manifest)?,
            };
            images
                .into_iter()
                .map(|(platform, image)| {
                    let tree = attest::image_files(&image.layers)?;
                    Ok((
                        platform.map(|platform| platform.to_string()),
                        attest::catalog(&tree, observer)?,
                    ))
                })
                .collect()
        }
    }
}

pub fn scan(request: &ScanRequest, observer: &dyn Observer) -> Result<ScanReport, ScanError> {
    let database = Database::open(&request.database, request.cache.as_deref())?;
    observer.event(Event::ScanDatabaseOpened {
        records: database.len(),
        withdrawn: database.withdrawn,
        newest_modified: database.newest_modified.clone(),
        cached: database.from_cache,
    });
    // An ignore entry's expiry is a calendar date, so the wall clock decides it.
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default();
    let today = chrono::DateTime::from_timestamp(seconds, 0)
        .map(|time| time.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let ignore = IgnoreList::read(&request.ignore, &today)?;
    let mut findings = Vec::new();
    let mut ignored = 0;
    let mut incomplete = Vec::new();
    for (platform, inventory) in inventories(request, observer)? {
        if !inventory.is_complete() {
            incomplete.push(platform.clone().unwrap_or_else(|| request.target.clone()));
        }
        let outcome = match_inventory(&database, &inventory);
        for message in outcome.warnings {
            observer.event(Event::Warning { message });
        }
        observer.event(Event::ScanPlatformMatched {
            platform: platform.clone(),
            packages: inventory.packages.len(),
            findings: outcome.findings.len(),
        });
        for finding in outcome.findings {
            let unfixed = request.ignore_unfixed && finding.fixed.is_none();
            let unwanted =
                !request.severities.is_empty() && !request.severities.contains(&finding.severity);
            let kept = !(ignore.covers(finding.identifiers.iter()) || unfixed || unwanted);
            if kept {
                findings.push(PlatformFinding {
                    platform: platform.clone(),
                    finding,
                });
            } else {
                ignored += 1;
            }
        }
    }
    let gate = gate::decide(
        &request.policy,
        findings.iter().map(|found| &found.finding),
        &incomplete,
    );
    Ok(ScanReport {
        target: request.target.clone(),
        findings,
        ignored,
        database: DatabaseSummary {
            records: database.len(),
            withdrawn: database.withdrawn,
            newest_modified: database.newest_modified.clone(),
            cached: database.from_cache,
        },
        incomplete,
        gate,
    })
}
