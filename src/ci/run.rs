//! What release pipelines record about a run, for `--metadata-file`: the
//! revision, ref and event, the CI run's id and web address, and when the
//! build started and ended. The clock is read by the caller and lands only
//! in this record, never in anything hashed.

use super::events::{TagEvent, run_events};
use super::{CiEnvironment, Revision};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunMetadata {
    /// The full commit id built; `None` outside git and CI.
    pub revision: Option<String>,
    /// The full git ref (`refs/heads/main`, `refs/tags/v1.2.3`,
    /// `refs/pull/42/merge`).
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// The CI system's own event name (`push`, `pull_request`,
    /// `merge_request_event`).
    pub event: Option<String>,
    /// The events tag rules saw (`branch`, `default-branch`, `release`, ...).
    pub events: Vec<TagEvent>,
    /// `github-actions`, `gitlab-ci` or `local`.
    pub provider: String,
    /// `GITHUB_RUN_ID` or `CI_PIPELINE_ID`.
    pub run_id: Option<String>,
    /// The run's page: the Actions run, or the GitLab pipeline.
    pub run_url: Option<String>,
    /// When the build started and ended, RFC 3339 in UTC.
    pub started: Option<String>,
    pub finished: Option<String>,
}

impl RunMetadata {
    /// The run `environment` and `revision` describe. `variable` reads the
    /// process environment (for the run's address, which no other part of
    /// hoist needs); `started` and `finished` are seconds since 1970.
    pub fn new(
        environment: &CiEnvironment,
        revision: &Revision,
        variable: impl Fn(&str) -> Option<String>,
        started: i64,
        finished: i64,
    ) -> RunMetadata {
        let git_ref = environment.git_ref.clone().or_else(|| {
            revision
                .tag
                .as_ref()
                .map(|tag| format!("refs/tags/{tag}"))
                .or_else(|| {
                    revision
                        .branch
                        .as_ref()
                        .map(|branch| format!("refs/heads/{branch}"))
                })
        });
        RunMetadata {
            revision: revision.commit.clone(),
            git_ref,
            event: environment.event_name.clone(),
            events: run_events(revision),
            provider: environment.provider_name().to_string(),
            run_id: environment.run_id.clone(),
            run_url: run_url(&variable),
            started: crate::oci::time::rfc3339(started),
            finished: crate::oci::time::rfc3339(finished),
        }
    }
}

/// GitHub's run page from its variables, or GitLab's `CI_PIPELINE_URL`.
fn run_url(variable: &impl Fn(&str) -> Option<String>) -> Option<String> {
    let get = |name: &str| variable(name).filter(|value| !value.is_empty());
    if let (Some(server), Some(repository), Some(run)) = (
        get("GITHUB_SERVER_URL"),
        get("GITHUB_REPOSITORY"),
        get("GITHUB_RUN_ID"),
    ) {
        return Some(format!("{server}/{repository}/actions/runs/{run}"));
    }
    get("CI_PIPELINE_URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_run_with_its_address_and_times() {
        let variables = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_SHA", "3f2a9c1d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REPOSITORY", "org/repo"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_RUN_ID", "9001"),
        ];
        let lookup = |name: &str| {
            variables
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        };
        let environment = CiEnvironment::from_env(&lookup).unwrap();
        let revision = Revision::resolve(None, &environment);
        let run = RunMetadata::new(
            &environment,
            &revision,
            lookup,
            1_700_000_000,
            1_700_000_042,
        );
        assert_eq!(run.git_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(run.event.as_deref(), Some("push"));
        assert_eq!(run.events, [TagEvent::Branch]);
        assert_eq!(run.provider, "github-actions");
        assert_eq!(run.run_id.as_deref(), Some("9001"));
        assert_eq!(
            run.run_url.as_deref(),
            Some("https://github.com/org/repo/actions/runs/9001")
        );
        assert_eq!(run.started.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(run.finished.as_deref(), Some("2023-11-14T22:14:02Z"));
        assert_eq!(
            run.revision.as_deref(),
            Some("3f2a9c1d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b")
        );
    }
}
