//! What the CI system says about the build, read from its environment
//! variables: GitHub Actions, GitLab CI, or nothing (a local build). The
//! environment is injected as a lookup function so tests need not touch the
//! process environment.

use super::CiError;
use std::path::PathBuf;

/// How a run was started, apart from the ref it builds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Trigger {
    /// A push, a pull request, or a local build.
    #[default]
    Push,
    Schedule,
    Manual,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CiProvider {
    GitHubActions,
    GitLabCi,
    /// No CI system recognized: everything comes from git.
    #[default]
    Local,
}

/// Why the pipeline runs, as far as tagging cares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CiEvent {
    /// A push to a branch (also scheduled and manual runs on a branch).
    Branch,
    /// A push of a git tag (or a release).
    Tag,
    /// A pull or merge request.
    PullRequest,
    /// Not known: a local build, or a CI event that names no ref.
    #[default]
    Unknown,
}

/// Everything the CI system tells about the build. Empty variables count as
/// unset (GitHub sets `GITHUB_BASE_REF=""` on pushes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CiEnvironment {
    pub provider: CiProvider,
    pub event: CiEvent,
    /// The provider's own event name (`push`, `pull_request`, `merge_request_event`).
    pub event_name: Option<String>,
    /// The full git ref (`refs/heads/main`, `refs/tags/v1.2.3`, `refs/pull/7/merge`).
    pub git_ref: Option<String>,
    /// The short ref name the provider reports (`main`, `v1.2.3`, `7/merge`).
    pub ref_name: Option<String>,
    pub commit: Option<String>,
    /// The branch built on a branch event.
    pub branch: Option<String>,
    /// The git tag built on a tag event.
    pub tag: Option<String>,
    /// Pull request number (GitHub) or merge request IID (GitLab).
    pub pull_request: Option<u64>,
    /// The branch a pull request merges into.
    pub base_ref: Option<String>,
    /// The branch a pull request comes from.
    pub head_ref: Option<String>,
    pub default_branch: Option<String>,
    /// Per-repository run counter (`GITHUB_RUN_NUMBER`, `CI_PIPELINE_IID`).
    pub run_number: Option<u64>,
    /// Globally unique run id (`GITHUB_RUN_ID`, `CI_PIPELINE_ID`).
    pub run_id: Option<String>,
    pub job_id: Option<String>,
    /// Web URL of the repository (`https://github.com/org/repo`).
    pub repository_url: Option<String>,
    /// `owner/name` or the GitLab project path.
    pub repository: Option<String>,
    /// `GITHUB_WORKFLOW_REF`: which workflow file at which ref ran.
    pub workflow_ref: Option<String>,
    /// A scheduled or manual run, whatever ref it builds.
    pub trigger: Trigger,
}

impl CiEnvironment {
    /// Reads the CI environment through `lookup` (usually
    /// `&|name| std::env::var(name).ok()`).
    ///
    /// Fails only when a variable the provider always sets well is malformed
    /// (a run number that is not a number, an unreadable event file), since
    /// that means the environment is not what it claims to be.
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<CiEnvironment, CiError> {
        let get = |name: &str| lookup(name).filter(|value| !value.is_empty());
        if get("GITHUB_ACTIONS").as_deref() == Some("true") {
            github(&get)
        } else if get("GITLAB_CI").as_deref() == Some("true") {
            gitlab(&get)
        } else {
            Ok(CiEnvironment::default())
        }
    }

    /// Reads the CI environment of this process.
    pub fn from_process_env() -> Result<CiEnvironment, CiError> {
        Self::from_env(&|name| std::env::var(name).ok())
    }

    /// The provider, as a short name for logs and metadata.
    pub fn provider_name(&self) -> &'static str {
        match self.provider {
            CiProvider::GitHubActions => "github-actions",
            CiProvider::GitLabCi => "gitlab-ci",
            CiProvider::Local => "local",
        }
    }
}

fn github(get: &dyn Fn(&str) -> Option<String>) -> Result<CiEnvironment, CiError> {
    let git_ref = get("GITHUB_REF");
    let event_name = get("GITHUB_EVENT_NAME");
    let event_json = match get("GITHUB_EVENT_PATH") {
        Some(path) => Some(read_event(PathBuf::from(path))?),
        None => None,
    };
    let from_event = |pointer: &str| event_json.as_ref().and_then(|json| json.pointer(pointer));

    let mut environment = CiEnvironment {
        provider: CiProvider::GitHubActions,
        event_name: event_name.clone(),
        ref_name: get("GITHUB_REF_NAME"),
        commit: get("GITHUB_SHA"),
        base_ref: get("GITHUB_BASE_REF"),
        head_ref: get("GITHUB_HEAD_REF"),
        default_branch: from_event("/repository/default_branch")
            .and_then(|value| value.as_str())
            .map(str::to_string),
        run_number: number(get, "GITHUB_RUN_NUMBER")?,
        run_id: get("GITHUB_RUN_ID"),
        job_id: get("GITHUB_JOB"),
        repository: get("GITHUB_REPOSITORY"),
        workflow_ref: get("GITHUB_WORKFLOW_REF"),
        ..CiEnvironment::default()
    };
    if let Some(repository) = &environment.repository {
        let server = get("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".to_string());
        environment.repository_url = Some(format!("{}/{repository}", server.trim_end_matches('/')));
    }

    // `refs/pull/N/merge` on pull_request events; pull_request_target runs
    // on the base branch's ref, so the number only comes from the event.
    let pull_request = git_ref
        .as_deref()
        .and_then(|reference| reference.strip_prefix("refs/pull/"))
        .and_then(|rest| rest.split('/').next())
        .and_then(|number| number.parse::<u64>().ok())
        .or_else(|| {
            let is_pull_request_event = event_name
                .as_deref()
                .is_some_and(|name| name.starts_with("pull_request"));
            is_pull_request_event
                .then(|| from_event("/pull_request/number").or_else(|| from_event("/number")))
                .flatten()
                .and_then(|value| value.as_u64())
        });

    let ref_type = get("GITHUB_REF_TYPE");
    if let Some(number) = pull_request {
        environment.event = CiEvent::PullRequest;
        environment.pull_request = Some(number);
    } else if let Some(tag) = git_ref
        .as_deref()
        .and_then(|r| r.strip_prefix("refs/tags/"))
    {
        environment.event = CiEvent::Tag;
        environment.tag = Some(tag.to_string());
    } else if let Some(branch) = git_ref
        .as_deref()
        .and_then(|r| r.strip_prefix("refs/heads/"))
    {
        environment.event = CiEvent::Branch;
        environment.branch = Some(branch.to_string());
    } else if let Some(name) = environment.ref_name.clone() {
        // No full ref (older runners): fall back on the ref type.
        match ref_type.as_deref() {
            Some("tag") => {
                environment.event = CiEvent::Tag;
                environment.tag = Some(name);
            }
            Some("branch") => {
                environment.event = CiEvent::Branch;
                environment.branch = Some(name);
            }
            _ => {}
        }
    }
    environment.git_ref = git_ref;
    environment.trigger = match event_name.as_deref() {
        Some("schedule") => Trigger::Schedule,
        Some("workflow_dispatch") => Trigger::Manual,
        _ => Trigger::Push,
    };
    Ok(environment)
}

fn gitlab(get: &dyn Fn(&str) -> Option<String>) -> Result<CiEnvironment, CiError> {
    // External pull requests are GitHub pull requests built by GitLab.
    let merge_request = match number(get, "CI_MERGE_REQUEST_IID")? {
        Some(iid) => Some(iid),
        None => number(get, "CI_EXTERNAL_PULL_REQUEST_IID")?,
    };
    let tag = get("CI_COMMIT_TAG");
    // Unset in merge request and tag pipelines, by GitLab's design.
    let branch = get("CI_COMMIT_BRANCH");
    let trigger = match get("CI_PIPELINE_SOURCE").as_deref() {
        Some("schedule") => Trigger::Schedule,
        Some("web" | "api") => Trigger::Manual,
        _ => Trigger::Push,
    };
    let mut environment = CiEnvironment {
        provider: CiProvider::GitLabCi,
        trigger,
        event_name: get("CI_PIPELINE_SOURCE"),
        ref_name: get("CI_COMMIT_REF_NAME"),
        commit: get("CI_COMMIT_SHA"),
        default_branch: get("CI_DEFAULT_BRANCH"),
        run_number: number(get, "CI_PIPELINE_IID")?,
        run_id: get("CI_PIPELINE_ID"),
        job_id: get("CI_JOB_ID"),
        repository_url: get("CI_PROJECT_URL"),
        repository: get("CI_PROJECT_PATH"),
        ..CiEnvironment::default()
    };
    if let Some(iid) = merge_request {
        environment.event = CiEvent::PullRequest;
        environment.pull_request = Some(iid);
        environment.base_ref = get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME")
            .or_else(|| get("CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_NAME"));
        environment.head_ref = get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")
            .or_else(|| get("CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME"));
        environment.git_ref = Some(format!("refs/merge-requests/{iid}/head"));
    } else if let Some(tag) = tag {
        environment.event = CiEvent::Tag;
        environment.git_ref = Some(format!("refs/tags/{tag}"));
        environment.tag = Some(tag);
    } else if let Some(branch) = branch {
        environment.event = CiEvent::Branch;
        environment.git_ref = Some(format!("refs/heads/{branch}"));
        environment.branch = Some(branch);
    }
    Ok(environment)
}

fn number(
    get: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<Option<u64>, CiError> {
    get(variable)
        .map(|value| {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| CiError::InvalidVariable {
                    variable,
                    value: value.clone(),
                    expected: "a whole number",
                })
        })
        .transpose()
}

fn read_event(path: PathBuf) -> Result<serde_json::Value, CiError> {
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(source) => return Err(CiError::EventFileRead { path, source }),
    };
    serde_json::from_slice(&bytes).map_err(|source| CiError::EventFileParse { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn environment(pairs: &[(&str, &str)]) -> Result<CiEnvironment, CiError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        CiEnvironment::from_env(&|name| map.get(name).cloned())
    }

    #[test]
    fn nothing_set_is_local() {
        let local = environment(&[("CI", "true")]).unwrap();
        assert_eq!(local, CiEnvironment::default());
        assert_eq!(local.provider_name(), "local");
    }

    #[test]
    fn github_branch_push() {
        let ci = environment(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/feature/x"),
            ("GITHUB_REF_NAME", "feature/x"),
            ("GITHUB_REF_TYPE", "branch"),
            ("GITHUB_SHA", "3f2a9c1d00000000000000000000000000000000"),
            ("GITHUB_BASE_REF", ""),
            ("GITHUB_RUN_NUMBER", "42"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "org/repo"),
        ])
        .unwrap();
        assert_eq!(ci.provider, CiProvider::GitHubActions);
        assert_eq!(ci.event, CiEvent::Branch);
        assert_eq!(ci.branch.as_deref(), Some("feature/x"));
        assert_eq!(ci.base_ref, None);
        assert_eq!(ci.run_number, Some(42));
        assert_eq!(
            ci.repository_url.as_deref(),
            Some("https://github.com/org/repo")
        );
    }

    #[test]
    fn github_pull_request_from_ref() {
        let ci = environment(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_REF", "refs/pull/123/merge"),
            ("GITHUB_HEAD_REF", "feature/x"),
            ("GITHUB_BASE_REF", "main"),
        ])
        .unwrap();
        assert_eq!(ci.event, CiEvent::PullRequest);
        assert_eq!(ci.pull_request, Some(123));
        assert_eq!(ci.branch, None);
        assert_eq!(ci.head_ref.as_deref(), Some("feature/x"));
    }

    #[test]
    fn github_pull_request_target_reads_the_event_file() {
        let directory = tempfile::tempdir().unwrap();
        let event = directory.path().join("event.json");
        std::fs::write(
            &event,
            br#"{"number": 77, "pull_request": {"number": 77}, "repository": {"default_branch": "trunk"}}"#,
        )
        .unwrap();
        let ci = environment(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "pull_request_target"),
            ("GITHUB_REF", "refs/heads/trunk"),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
        ])
        .unwrap();
        assert_eq!(ci.event, CiEvent::PullRequest);
        assert_eq!(ci.pull_request, Some(77));
        assert_eq!(ci.default_branch.as_deref(), Some("trunk"));
    }

    #[test]
    fn github_tag_push_and_ref_type_fallback() {
        let ci = environment(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF", "refs/tags/v1.2.3"),
        ])
        .unwrap();
        assert_eq!(
            (ci.event, ci.tag.as_deref()),
            (CiEvent::Tag, Some("v1.2.3"))
        );
        let ci = environment(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF_NAME", "v2.0.0"),
            ("GITHUB_REF_TYPE", "tag"),
        ])
        .unwrap();
        assert_eq!(
            (ci.event, ci.tag.as_deref()),
            (CiEvent::Tag, Some("v2.0.0"))
        );
    }

    #[test]
    fn github_malformed_values_are_errors() {
        let error =
            environment(&[("GITHUB_ACTIONS", "true"), ("GITHUB_RUN_NUMBER", "abc")]).unwrap_err();
        assert!(error.to_string().contains("GITHUB_RUN_NUMBER"), "{error}");
        let directory = tempfile::tempdir().unwrap();
        let event = directory.path().join("event.json");
        std::fs::write(&event, b"not json").unwrap();
        let error = environment(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
        ])
        .unwrap_err();
        assert!(matches!(error, CiError::EventFileParse { .. }), "{error}");
        let error = environment(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_PATH", "/nonexistent/event.json"),
        ])
        .unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/event.json"),
            "{error}"
        );
    }

    #[test]
    fn gitlab_events() {
        let common = [
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", "abcdef0123456789abcdef0123456789abcdef01"),
            ("CI_DEFAULT_BRANCH", "main"),
            ("CI_PIPELINE_IID", "9"),
            ("CI_PROJECT_URL", "https://gitlab.com/group/project"),
            ("CI_JOB_ID", "555"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = common.to_vec();
            pairs.extend_from_slice(extra);
            environment(&pairs).unwrap()
        };
        let branch = with(&[("CI_COMMIT_BRANCH", "main"), ("CI_COMMIT_REF_NAME", "main")]);
        assert_eq!(branch.event, CiEvent::Branch);
        assert_eq!(branch.git_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(branch.run_number, Some(9));
        assert_eq!(branch.job_id.as_deref(), Some("555"));
        let tag = with(&[
            ("CI_COMMIT_TAG", "v1.0.0"),
            ("CI_COMMIT_REF_NAME", "v1.0.0"),
        ]);
        assert_eq!(
            (tag.event, tag.tag.as_deref()),
            (CiEvent::Tag, Some("v1.0.0"))
        );
        let merge_request = with(&[
            ("CI_MERGE_REQUEST_IID", "31"),
            ("CI_COMMIT_REF_NAME", "feature"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature"),
            ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
        ]);
        assert_eq!(merge_request.event, CiEvent::PullRequest);
        assert_eq!(merge_request.pull_request, Some(31));
        assert_eq!(merge_request.branch, None);
        assert_eq!(merge_request.base_ref.as_deref(), Some("main"));
        assert_eq!(merge_request.default_branch.as_deref(), Some("main"));
        let external = with(&[
            ("CI_EXTERNAL_PULL_REQUEST_IID", "12"),
            ("CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME", "patch-1"),
        ]);
        assert_eq!(
            (external.event, external.pull_request),
            (CiEvent::PullRequest, Some(12))
        );
        assert_eq!(external.head_ref.as_deref(), Some("patch-1"));
    }
}
