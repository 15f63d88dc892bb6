//! What the run attests of each image: the attestation request built from
//! the spec and the command line, and the run parameters provenance records.

use super::RunError;
use crate::attest::provenance::{Builder, RunParameters, SourceRepository};
use crate::build::attest::{AttachMode, AttestRequest};
use crate::ci::{CiEvent, GitInfo, Revision};
use crate::layer::FORMAT_VERSION;
use crate::spec::plan::ProvenanceLevel;
use crate::spec::{ImagePlan, Plan};
use std::time::SystemTime;

/// The attestations one image gets: the spec's `sbom` and `provenance`,
/// turned on (never off) by `sbom` and `provenance`. Provenance names the
/// git remote and commit of the spec's checkout.
pub fn attest_request(
    plan: &Plan,
    image: &ImagePlan,
    sbom: bool,
    provenance: Option<ProvenanceLevel>,
    attach: AttachMode,
    tags: Vec<String>,
    started_on: SystemTime,
) -> Result<AttestRequest, RunError> {
    let provenance = provenance.or(image.provenance);
    let source = if provenance.is_some() {
        GitInfo::discover(&plan.spec_directory)
            .map_err(|source| RunError::Source {
                path: plan.spec_directory.clone(),
                source,
            })?
            .and_then(|git| {
                git.remote_url.map(|url| SourceRepository {
                    url,
                    commit: git.commit,
                })
            })
    } else {
        None
    };
    Ok(AttestRequest {
        sbom: sbom || image.sbom,
        provenance,
        attach,
        tags,
        source,
        builder: Builder::from_environment(|name| std::env::var(name).ok()),
        run: RunParameters {
            format_version: FORMAT_VERSION,
            ..RunParameters::default()
        },
        started_on,
    })
}

/// What provenance records of the run: the event and ref the tags and
/// labels follow, and the layer format version.
pub fn run_parameters(revision: &Revision) -> RunParameters {
    let (event, git_ref) = match revision.event {
        CiEvent::Branch => (
            "branch",
            revision
                .branch
                .as_ref()
                .map(|branch| format!("refs/heads/{branch}")),
        ),
        CiEvent::Tag => (
            "tag",
            revision.tag.as_ref().map(|tag| format!("refs/tags/{tag}")),
        ),
        CiEvent::PullRequest => (
            "pull-request",
            revision
                .pull_request
                .map(|number| format!("refs/pull/{number}/merge")),
        ),
        CiEvent::Unknown => ("unknown", None),
    };
    RunParameters {
        event: event.to_string(),
        git_ref,
        format_version: FORMAT_VERSION,
    }
}
