//! `hoist build --scan`: after every image is built and attested and before
//! anything is published, each platform image's packages are cataloged (as
//! for an SBOM, whether or not one is attached) and matched against an
//! offline OSV database. A failed gate stops the run before the publish
//! phase: no manifest, no tag, no local output. Layer blobs already streamed
//! to a registry stay unreferenced, for its garbage collector.

use super::{RunError, scan_attestation};
use crate::attest;
use crate::build::BuiltImage;
use crate::build::attest::Referrer;
use crate::ci::{ScanFindingMetadata, ScanGateMetadata};
use crate::progress::{Event, Observer};
use crate::scan::gate::{self, GatePolicy};
use crate::scan::matcher::{Finding, match_inventory};
use crate::scan::osv::Database;
use crate::scan::severity::Severity;
use crate::spec::ImagePlan;
use std::path::{Path, PathBuf};

/// What `--scan` and its flags ask of a build; the spec's `scan` key asks
/// the same of one image.
#[derive(Clone, Debug, Default)]
pub struct ScanGate {
    /// `--scan`: every image is scanned, whether its spec has `scan` or not.
    pub requested: bool,
    /// `--db`, else the image's `scan.db`.
    pub database: Option<PathBuf>,
    /// Where the parsed export is cached (`None`: not cached).
    pub cache: Option<PathBuf>,
    /// `--fail-on` overrides the spec's `fail-on`; the other two add to it.
    pub policy: GatePolicy,
    /// `--attest-scan`: each scanned platform image gets its result as a
    /// vulnerability attestation, attached as a referrer.
    pub attest: bool,
}

/// The database and policy one image is scanned with, if it is scanned.
fn image_gate(
    gate: &ScanGate,
    image: &ImagePlan,
) -> Result<Option<(PathBuf, GatePolicy)>, RunError> {
    let spec = image.scan.as_ref();
    if !gate.requested && spec.is_none() {
        return Ok(None);
    }
    let database = gate
        .database
        .clone()
        .or_else(|| spec.and_then(|spec| spec.database.clone()))
        .ok_or_else(|| RunError::ScanWithoutDatabase {
            image: image.name.clone(),
        })?;
    let spec_threshold = spec
        .and_then(|spec| spec.fail_on.as_deref())
        .and_then(Severity::parse);
    let policy = GatePolicy {
        fail_on: gate.policy.fail_on.or(spec_threshold),
        fail_on_unknown: gate.policy.fail_on_unknown
            || spec.is_some_and(|spec| spec.fail_on_unknown),
        allow_incomplete: gate.policy.allow_incomplete
            || spec.is_some_and(|spec| spec.allow_incomplete),
    };
    Ok(Some((database, policy)))
}

/// The findings of one image, with its platform, as the summary lists them.
type Found = Vec<(String, Finding)>;

/// The gate over every image scanned (`None` when none is), and each
/// image's vulnerability attestations (empty without `--attest-scan`).
pub(super) type Checked = (Option<ScanGateMetadata>, Vec<Vec<Referrer>>);

/// Scans every image the request or its spec asks to.
pub(super) fn check_all(
    gate: &ScanGate,
    built: &[BuiltImage],
    plans: &[ImagePlan],
    observer: &dyn Observer,
) -> Result<Checked, RunError> {
    let mut result: Option<ScanGateMetadata> = None;
    let mut referrers = Vec::with_capacity(built.len());
    for (image, plan) in built.iter().zip(plans) {
        let Some((database, policy)) = image_gate(gate, plan)? else {
            referrers.push(Vec::new());
            continue;
        };
        let (one, attached) = check(&database, gate, &policy, image, observer)?;
        referrers.push(attached);
        let total = result.get_or_insert_with(|| ScanGateMetadata {
            passed: true,
            ..ScanGateMetadata::default()
        });
        total.passed &= one.passed;
        total.reasons.extend(
            one.reasons
                .into_iter()
                .map(|reason| format!("image `{}`: {reason}", image.name)),
        );
        for (severity, count) in one.counts {
            *total.counts.entry(severity).or_default() += count;
        }
        total.findings.extend(one.findings);
    }
    Ok((result, referrers))
}

/// Matches every platform image of `built` and decides the gate.
fn check(
    path: &Path,
    gate: &ScanGate,
    policy: &GatePolicy,
    image: &BuiltImage,
    observer: &dyn Observer,
) -> Result<(ScanGateMetadata, Vec<Referrer>), RunError> {
    let started = scan_attestation::now();
    let mut referrers = Vec::new();
    let database =
        Database::open(path, gate.cache.as_deref()).map_err(|source| RunError::ScanDatabase {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
    observer.event(Event::ScanDatabaseOpened {
        records: database.len(),
        withdrawn: database.withdrawn,
        newest_modified: database.newest_modified.clone(),
        cached: database.from_cache,
    });
    let mut findings: Found = Vec::new();
    let mut incomplete = Vec::new();
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
        if gate.attest {
            let found: Vec<&Finding> = outcome.findings.iter().collect();
            referrers.push(scan_attestation::vulnerability_referrer(
                &image.name,
                platform,
                &found,
                &database,
                &started,
            )?);
        }
        for finding in outcome.findings {
            findings.push((name.clone(), finding));
        }
    }
    let result = gate::decide(
        policy,
        findings.iter().map(|(_, finding)| finding),
        &incomplete,
    );
    let metadata = ScanGateMetadata {
        passed: result.passed,
        reasons: result.reasons,
        counts: result
            .counts
            .iter()
            .map(|(severity, count)| (severity.as_str().to_string(), *count))
            .collect(),
        findings: findings
            .into_iter()
            .map(|(platform, finding)| ScanFindingMetadata {
                image: image.name.clone(),
                platform,
                package: finding.package,
                installed: finding.version,
                fixed: finding.fixed,
                advisory: finding.advisory,
                severity: finding.severity.as_str().to_string(),
            })
            .collect(),
    };
    Ok((metadata, referrers))
}
