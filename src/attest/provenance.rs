//! SLSA v1 provenance as an in-toto statement: what was built (the images),
//! from what (the spec, base images, the git commit) and by whom (the CI
//! builder and run). The build fills a [`BuildInputs`]; nothing here reads
//! the clock unless the mode asks for it, so the same inputs give the same
//! bytes.

use super::attach::{Statement, Subject, in_toto_statement};
use super::{AttestError, rfc3339, sha256_hex};
use crate::oci::Digest;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::SystemTime;

pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
pub const BUILD_TYPE: &str = "https://hoist.dev/build/v1";

/// How much to record. `Min` is reproducible; `Max` adds when the build ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProvenanceMode {
    Min,
    Max {
        started_on: SystemTime,
        finished_on: SystemTime,
    },
}

/// A base image the build started from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseImage {
    /// As the spec names it: a registry reference (`debian:bookworm-slim`,
    /// with or without `docker://`) or a local location (`oci:base:1`).
    pub reference: String,
    /// The manifest digest it resolved to.
    pub digest: Digest,
}

/// The repository the spec came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRepository {
    pub url: String,
    pub commit: String,
}

/// Who ran the build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Builder {
    /// A URI naming the build platform (the CI workflow, or hoist itself).
    pub id: String,
    /// A URI naming this run, where the CI has one.
    pub invocation_id: Option<String>,
}

impl Builder {
    /// Reads the CI's environment through `variable` (e.g. `|name|
    /// std::env::var(name).ok()`): GitHub Actions, then GitLab CI, else a
    /// local build by this version of hoist.
    pub fn from_environment(variable: impl Fn(&str) -> Option<String>) -> Builder {
        let get = |name: &str| variable(name).filter(|value| !value.is_empty());
        if let (Some(server), Some(workflow)) =
            (get("GITHUB_SERVER_URL"), get("GITHUB_WORKFLOW_REF"))
        {
            let invocation_id = match (get("GITHUB_REPOSITORY"), get("GITHUB_RUN_ID")) {
                (Some(repository), Some(run)) => Some(match get("GITHUB_RUN_ATTEMPT") {
                    Some(attempt) => {
                        format!("{server}/{repository}/actions/runs/{run}/attempts/{attempt}")
                    }
                    None => format!("{server}/{repository}/actions/runs/{run}"),
                }),
                _ => None,
            };
            return Builder {
                id: format!("{server}/{workflow}"),
                invocation_id,
            };
        }
        if let (Some(server), Some(project)) = (get("CI_SERVER_URL"), get("CI_PROJECT_PATH")) {
            let id = match get("CI_RUNNER_ID") {
                Some(runner) => format!("{server}/{project}/-/runners/{runner}"),
                None => format!("{server}/{project}"),
            };
            let invocation_id = get("CI_JOB_URL")
                .or_else(|| get("CI_JOB_ID").map(|job| format!("{server}/{project}/-/jobs/{job}")));
            return Builder { id, invocation_id };
        }
        Builder {
            id: format!(
                "https://hoist.dev/builder/local@v{}",
                env!("CARGO_PKG_VERSION")
            ),
            invocation_id: None,
        }
    }
}

/// What the run was asked to build from beyond the spec: the CI event and
/// git ref (tags and labels follow them) and hoist's format version (the
/// layer bytes follow it). `hoist build --verify` checks a rebuild against
/// these.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunParameters {
    /// `branch`, `tag`, `pull-request` or `unknown`.
    pub event: String,
    /// The full git ref built (`refs/heads/main`, `refs/tags/v1.2.3`,
    /// `refs/pull/7/merge`), where one is known.
    pub git_ref: Option<String>,
    /// The layer format version (`layer::FORMAT_VERSION`).
    pub format_version: u32,
}

/// Everything provenance records, filled in by the build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInputs {
    /// The images built: platform manifests (and the index, if wanted).
    pub subjects: Vec<Subject>,
    /// The spec as given, relative to the repository (`hoist.toml`).
    pub spec_path: String,
    pub spec_digest: Digest,
    /// The image name (`ghcr.io/org/app`).
    pub image: String,
    pub platforms: Vec<String>,
    pub tags: Vec<String>,
    pub base_images: Vec<BaseImage>,
    pub source: Option<SourceRepository>,
    pub builder: Builder,
    pub run: RunParameters,
    pub mode: ProvenanceMode,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Predicate {
    build_definition: BuildDefinition,
    run_details: RunDetails,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildDefinition {
    build_type: &'static str,
    external_parameters: ExternalParameters,
    internal_parameters: InternalParameters,
    resolved_dependencies: Vec<ResourceDescriptor>,
}

#[derive(Serialize)]
struct ExternalParameters {
    spec: SpecParameter,
    image: String,
    platforms: Vec<String>,
    tags: Vec<String>,
    event: String,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    git_ref: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InternalParameters {
    format_version: u32,
}

#[derive(Serialize)]
struct SpecParameter {
    path: String,
    digest: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct ResourceDescriptor {
    uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    digest: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct RunDetails {
    builder: BuilderDocument,
    metadata: Metadata,
}

#[derive(Serialize)]
struct BuilderDocument {
    id: String,
    version: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    invocation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_on: Option<String>,
}

fn seconds(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(duration) => i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// A base image's URI and name: a registry reference gets `docker://` once
/// (the name is the bare reference), a local location stays as it is.
fn base_uri(reference: &str) -> (String, String) {
    const LOCAL: [&str; 3] = ["oci:", "oci-archive:", "docker-archive:"];
    if let Some(bare) = reference.strip_prefix("docker://") {
        (reference.to_string(), bare.to_string())
    } else if LOCAL.iter().any(|prefix| reference.starts_with(prefix)) {
        (reference.to_string(), reference.to_string())
    } else {
        (format!("docker://{reference}"), reference.to_string())
    }
}

/// The SLSA v1 provenance statement for a build.
pub fn provenance_statement(inputs: &BuildInputs) -> Result<Statement, AttestError> {
    let mut resolved_dependencies = Vec::new();
    for base in &inputs.base_images {
        let (uri, name) = base_uri(&base.reference);
        resolved_dependencies.push(ResourceDescriptor {
            uri,
            name: Some(name),
            digest: BTreeMap::from([("sha256", sha256_hex(&base.digest)?.to_string())]),
        });
    }
    if let Some(source) = &inputs.source {
        let uri = if source.url.starts_with("git+") {
            source.url.clone()
        } else {
            format!("git+{}", source.url)
        };
        resolved_dependencies.push(ResourceDescriptor {
            uri,
            name: None,
            digest: BTreeMap::from([("gitCommit", source.commit.clone())]),
        });
    }
    let (started_on, finished_on) = match inputs.mode {
        ProvenanceMode::Min => (None, None),
        ProvenanceMode::Max {
            started_on,
            finished_on,
        } => (
            Some(rfc3339(seconds(started_on))?),
            Some(rfc3339(seconds(finished_on))?),
        ),
    };
    let predicate = Predicate {
        build_definition: BuildDefinition {
            build_type: BUILD_TYPE,
            external_parameters: ExternalParameters {
                spec: SpecParameter {
                    path: inputs.spec_path.clone(),
                    digest: BTreeMap::from([(
                        "sha256",
                        sha256_hex(&inputs.spec_digest)?.to_string(),
                    )]),
                },
                image: inputs.image.clone(),
                platforms: inputs.platforms.clone(),
                tags: inputs.tags.clone(),
                event: inputs.run.event.clone(),
                git_ref: inputs.run.git_ref.clone(),
            },
            internal_parameters: InternalParameters {
                format_version: inputs.run.format_version,
            },
            resolved_dependencies,
        },
        run_details: RunDetails {
            builder: BuilderDocument {
                id: inputs.builder.id.clone(),
                version: BTreeMap::from([("hoist", env!("CARGO_PKG_VERSION"))]),
            },
            metadata: Metadata {
                invocation_id: inputs.builder.invocation_id.clone(),
                started_on,
                finished_on,
            },
        },
    };
    let predicate = serde_json::to_value(&predicate).map_err(|source| AttestError::Encode {
        what: "provenance predicate",
        source,
    })?;
    in_toto_statement(&inputs.subjects, PREDICATE_TYPE, predicate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn base_images_are_named_once() {
        assert_eq!(
            base_uri("docker://ghcr.io/org/base:1"),
            (
                "docker://ghcr.io/org/base:1".to_string(),
                "ghcr.io/org/base:1".to_string()
            )
        );
        assert_eq!(
            base_uri("debian:bookworm-slim"),
            (
                "docker://debian:bookworm-slim".to_string(),
                "debian:bookworm-slim".to_string()
            )
        );
        assert_eq!(base_uri("oci:base:1").0, "oci:base:1");
    }

    #[test]
    fn builder_from_github_gitlab_and_local() {
        let github = Builder::from_environment(lookup(&[
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "org/app"),
            (
                "GITHUB_WORKFLOW_REF",
                "org/app/.github/workflows/build.yml@refs/heads/main",
            ),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
        ]));
        assert_eq!(
            github.id,
            "https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"
        );
        assert_eq!(
            github.invocation_id.as_deref(),
            Some("https://github.com/org/app/actions/runs/42/attempts/2")
        );
        let gitlab = Builder::from_environment(lookup(&[
            ("CI_SERVER_URL", "https://gitlab.com"),
            ("CI_PROJECT_PATH", "group/app"),
            ("CI_RUNNER_ID", "7"),
            ("CI_JOB_ID", "99"),
        ]));
        assert_eq!(gitlab.id, "https://gitlab.com/group/app/-/runners/7");
        assert_eq!(
            gitlab.invocation_id.as_deref(),
            Some("https://gitlab.com/group/app/-/jobs/99")
        );
        let local = Builder::from_environment(lookup(&[("GITHUB_SERVER_URL", "")]));
        assert!(local.id.starts_with("https://hoist.dev/builder/local@v"));
        assert_eq!(local.invocation_id, None);
    }
}
