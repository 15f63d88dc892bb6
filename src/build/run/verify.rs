//! `hoist build --verify LOCATION`: the spec rebuilt in memory (blobs in a
//! temporary directory, nothing published) and compared with the image
//! published at LOCATION. Where the published image carries hoist's
//! provenance, the run it records (commit, spec, tags, event, ref, format
//! version) is checked against this one first, and the rebuild takes its
//! event and ref, since labels follow them. The platform manifests
//! (configs and layers) must match; what describes the run rather than the
//! inputs (attestation manifests, with their run id and tags) is reported
//! apart, as expected differences.

use super::checks::one_image_only;
use super::recorded::{Recorded, recorded_provenance};
use super::{BuildRequest, Context, RunError, open_cache, run_parameters};
use crate::build::BuildOptions;
use crate::build::attest::spec_path_for_provenance;
use crate::build::changes::{PrepareOptions, prepare, revision};
use crate::build::transport::{Transports, own_registries, scope_credentials};
use crate::ci::{CiEvent, GitInfo, Revision};
use crate::diff::{Change, DiffError, DiffOptions, DiffReport, Difference, Place, diff};
use crate::image::Manifest;
use crate::layer::{FORMAT_VERSION, TrackedFiles};
use crate::oci::Location;
use crate::progress::Observer;
use crate::source::SourceError;
use crate::spec::plan::ProvenanceLevel;
use crate::spec::{BaseImage, Plan};
use std::sync::Arc;
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Run(Box<RunError>),
    #[error("reading the published image {location}")]
    Published {
        location: String,
        #[source]
        source: Box<SourceError>,
    },
    #[error("comparing the rebuilt image with {location}")]
    Compare {
        location: String,
        #[source]
        source: Box<DiffError>,
    },
}

/// A failure of the build half, as a verification error.
fn run_error(error: impl Into<RunError>) -> VerifyError {
    VerifyError::Run(Box::new(error.into()))
}

/// An input of the run that the published provenance records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordedInput {
    Commit,
    SpecPath,
    SpecDigest,
    Tags,
    Event,
    Ref,
    FormatVersion,
}

/// One recorded input beside this run's.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecordCheck {
    pub input: RecordedInput,
    pub recorded: String,
    /// What this checkout and environment give.
    pub here: String,
}

impl RecordCheck {
    pub fn matches(&self) -> bool {
        self.recorded == self.here
    }
}

/// What a verification found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VerifyOutcome {
    /// The published top manifest's digest.
    pub published: String,
    /// The rebuilt top manifest's digest.
    pub rebuilt: String,
    /// The published provenance's run, when it has hoist's.
    pub recorded: Option<RecordedRun>,
    /// The checkout has changes git has not committed.
    pub dirty: bool,
    /// Differences in the platform manifests, configs and layers.
    pub differences: Vec<Difference>,
    /// Differences in what describes the run (attestation manifests).
    pub expected: Vec<Difference>,
    /// The whole comparison, published on the left.
    pub report: DiffReport,
}

/// The published provenance, checked against this run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RecordedRun {
    pub invocation: Option<String>,
    pub hoist_version: Option<String>,
    pub checks: Vec<RecordCheck>,
}

impl VerifyOutcome {
    /// Every platform manifest came out byte for byte as published.
    pub fn is_reproduced(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Rebuilds the spec's one image (pick it with `PlanOptions::images`) and
/// compares it with the image at `published`. The request's outputs, files
/// and `--changed` are not used: nothing is written.
pub fn verify_build(
    request: &BuildRequest,
    published: &Location,
    observer: &dyn Observer,
) -> Result<VerifyOutcome, VerifyError> {
    let plan = Plan::load(&request.spec, &request.plan).map_err(run_error)?;
    if plan.images.len() != 1 {
        return Err(run_error(one_image_only(&plan, published)));
    }
    let bases = plan.images.iter().filter_map(|image| match &image.base {
        BaseImage::Location(location) => Some(location),
        BaseImage::Scratch => None,
    });
    let transports = Transports::new(scope_credentials(
        request.registry.clone(),
        &own_registries(std::iter::empty(), bases.chain([published])),
    ));
    let published_manifest = read_published(&transports, published)?;
    let recorded = recorded_provenance(&published_manifest, published, &transports);
    let mut revision = revision(&plan).map_err(run_error)?;
    let recorded_run = match &recorded {
        Some(recorded) => {
            let checks = record_checks(recorded, &plan, &revision, request)?;
            take_recorded_ref(&mut revision, recorded);
            Some(RecordedRun {
                invocation: recorded.invocation.clone(),
                hoist_version: recorded.hoist_version.clone(),
                checks,
            })
        }
        None => None,
    };
    let (rebuilt, _blob_directory) = rebuild(
        request,
        &plan,
        &revision,
        recorded.as_ref(),
        &transports,
        observer,
    )?;
    let report =
        diff(&published_manifest, &rebuilt, &DiffOptions::default()).map_err(|source| {
            VerifyError::Compare {
                location: published.to_string(),
                source: Box::new(source),
            }
        })?;
    let (expected, differences) = report
        .differences
        .iter()
        .cloned()
        .partition(|difference| describes_the_run(difference, request));
    Ok(VerifyOutcome {
        published: report.left.clone(),
        rebuilt: report.right.clone(),
        recorded: recorded_run,
        dirty: revision.dirty,
        differences,
        expected,
        report,
    })
}

fn read_published(transports: &Transports, published: &Location) -> Result<Manifest, VerifyError> {
    let failed = |source: SourceError| VerifyError::Published {
        location: published.to_string(),
        source: Box::new(source),
    };
    transports
        .source(published)
        .map_err(failed)?
        .resolve()
        .map_err(failed)
}

/// A difference outside the platform manifests: the index's own fields and
/// its attestation manifests. A platform only the published image has is
/// one the rebuild lacks, unless `--platform` left it out.
fn describes_the_run(difference: &Difference, request: &BuildRequest) -> bool {
    if difference.place != Place::Index {
        return false;
    }
    match &difference.change {
        Change::OnlyIn { item, .. } if item == "platform" => !request.plan.platforms.is_empty(),
        _ => true,
    }
}

/// Each input the provenance records beside this run's.
fn record_checks(
    recorded: &Recorded,
    plan: &Plan,
    revision: &Revision,
    request: &BuildRequest,
) -> Result<Vec<RecordCheck>, VerifyError> {
    let git = GitInfo::discover(&plan.spec_directory).map_err(|source| {
        run_error(RunError::Source {
            path: plan.spec_directory.clone(),
            source,
        })
    })?;
    let run = run_parameters(revision);
    let mut checks = Vec::new();
    let mut check = |input, recorded: &Option<String>, here: Option<String>| {
        if let Some(recorded) = recorded {
            checks.push(RecordCheck {
                input,
                recorded: recorded.clone(),
                here: here.unwrap_or_else(|| "none".to_string()),
            });
        }
    };
    check(
        RecordedInput::Commit,
        &recorded.commit,
        git.map(|git| git.commit),
    );
    check(
        RecordedInput::SpecPath,
        &recorded.spec_path,
        Some(spec_path_for_provenance(&plan.spec_path)),
    );
    check(
        RecordedInput::SpecDigest,
        &recorded.spec_digest,
        Some(plan.spec_digest.to_string()),
    );
    check(RecordedInput::Event, &recorded.event, Some(run.event));
    check(RecordedInput::Ref, &recorded.git_ref, run.git_ref);
    check(
        RecordedInput::FormatVersion,
        &recorded.format_version.map(|version| version.to_string()),
        Some(FORMAT_VERSION.to_string()),
    );
    let here_tags = this_run_tags(plan, revision, request);
    checks.push(RecordCheck {
        input: RecordedInput::Tags,
        recorded: recorded.tags.join(", "),
        here: here_tags.join(", "),
    });
    Ok(checks)
}

/// The tags this run would push the image under.
fn this_run_tags(plan: &Plan, revision: &Revision, request: &BuildRequest) -> Vec<String> {
    plan.images
        .first()
        .and_then(|image| {
            crate::build::changes::image_tags(
                image,
                revision,
                &request.extra_tags,
                &crate::progress::Silent,
            )
            .ok()
        })
        .unwrap_or_default()
}

/// Takes the recorded event and ref into the revision, so the labels that
/// follow them come out as they were published.
fn take_recorded_ref(revision: &mut Revision, recorded: &Recorded) {
    let Some(git_ref) = &recorded.git_ref else {
        return;
    };
    if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
        revision.event = CiEvent::Branch;
        revision.branch = Some(branch.to_string());
        revision.tag = None;
        revision.version = None;
        revision.pull_request = None;
    } else if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        revision.event = CiEvent::Tag;
        revision.tag = Some(tag.to_string());
        revision.version = semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok();
        revision.branch = None;
        revision.pull_request = None;
    } else if let Some(number) = git_ref
        .strip_prefix("refs/pull/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|number| number.parse().ok())
    {
        revision.event = CiEvent::PullRequest;
        revision.pull_request = Some(number);
        revision.branch = None;
        revision.tag = None;
        revision.version = None;
    }
}

/// Builds and attests the image as `hoist build` would, into a temporary
/// blob directory, and returns its top manifest with that directory, which
/// must outlive the comparison that reads its blobs. The provenance takes the
/// recorded tags, so only the run's own fields differ from the published.
fn rebuild(
    request: &BuildRequest,
    plan: &Plan,
    revision: &Revision,
    recorded: Option<&Recorded>,
    transports: &Transports,
    observer: &dyn Observer,
) -> Result<(Manifest, tempfile::TempDir), VerifyError> {
    let tracked = Arc::new(TrackedFiles::new());
    let prepare_options = PrepareOptions {
        pushing: true,
        changed: false,
        retag: false,
        extra_tags: &request.extra_tags,
        first_output: None,
        tracked: &tracked,
    };
    let mut prepared =
        prepare(plan, revision, &prepare_options, transports, observer).map_err(run_error)?;
    if let Some(recorded) = recorded {
        for (_, tags) in &mut prepared.tags {
            tags.clone_from(&recorded.tags);
        }
    }
    let parent = std::env::temp_dir();
    let blob_directory = tempfile::Builder::new()
        .prefix(".hoist-verify-")
        .tempdir_in(&parent)
        .map_err(|source| {
            run_error(RunError::BlobDirectory {
                path: parent,
                source,
            })
        })?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(request.jobs)
        .build()
        .map_err(run_error)?;
    let context = Context {
        request,
        plan,
        outputs: &[],
        transports,
        pool: &pool,
        observer,
        revision,
        // A published image with provenance is compared with one that has
        // it too, so its attestation differs rather than is missing.
        provenance: request
            .provenance
            .or(recorded.map(|_| ProvenanceLevel::Min)),
    };
    let options = BuildOptions {
        jobs: request.jobs,
        blob_directory: blob_directory.path().to_path_buf(),
        cache: open_cache(request.cache.as_deref()).map_err(run_error)?,
        stream: None,
        tracked,
        shared: None,
        cache_target: None,
    };
    let (mut built, _) = context.build_all(&prepared, &options).map_err(run_error)?;
    context
        .attest_all(&mut built, &prepared, SystemTime::now())
        .map_err(run_error)?;
    let image = built
        .into_iter()
        .next()
        .ok_or_else(|| run_error(RunError::NothingBuilt))?;
    Ok((image.top(), blob_directory))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(git_ref: &str) -> Recorded {
        Recorded {
            git_ref: Some(git_ref.to_string()),
            ..Recorded::default()
        }
    }

    #[test]
    fn the_recorded_ref_becomes_the_event_labels_follow() {
        let mut revision = Revision {
            event: CiEvent::Branch,
            branch: Some("main".to_string()),
            ..Revision::default()
        };
        take_recorded_ref(&mut revision, &recorded("refs/tags/v1.2.3"));
        assert_eq!(revision.event, CiEvent::Tag);
        assert_eq!(revision.tag.as_deref(), Some("v1.2.3"));
        assert_eq!(revision.version, Some(semver::Version::new(1, 2, 3)));
        assert_eq!(revision.branch, None);
        assert_eq!(
            run_parameters(&revision).git_ref.as_deref(),
            Some("refs/tags/v1.2.3")
        );

        take_recorded_ref(&mut revision, &recorded("refs/pull/7/merge"));
        assert_eq!(revision.event, CiEvent::PullRequest);
        assert_eq!(revision.pull_request, Some(7));
        assert_eq!(revision.tag, None);

        take_recorded_ref(&mut revision, &recorded("refs/heads/release"));
        assert_eq!(run_parameters(&revision).event, "branch");
        assert_eq!(revision.branch.as_deref(), Some("release"));
    }
}
