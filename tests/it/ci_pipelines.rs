//! Five image pipelines as teams run them with docker/metadata-action, each
//! written as hoist tag rules (the same specs as in docs/ci.md), and the
//! exact tags each gets on each event: a push to the default branch and to
//! a feature branch, a release tag, a pull request, a schedule and a manual
//! run, with GitHub's variables and, for two pipelines, GitLab's, computed
//! through the library. `ci_workflows` runs the same cases through the
//! binary, with the workflows' own commands, against a real registry.

use crate::common::warnings;
use hoist::ci::{CiEnvironment, GitInfo, Revision, TagSpec, compute_tags};
use hoist::progress::Recorder;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

pub(crate) const SHA: &str = "3f2a9c1e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a";
/// When the run started: 2023-11-16T02:00:00Z.
const STARTED: i64 = 1_700_100_000;

/// The pipelines' specs, as docs/ci.md gives them (`<!-- pipeline-spec: NAME -->`).
pub(crate) fn pipeline_specs() -> HashMap<String, String> {
    let text = std::fs::read_to_string(crate::common::root().join("docs/ci.md")).unwrap();
    crate::ci_docs::marked_blocks(&text, "pipeline-spec")
        .into_iter()
        .map(|block| (block.name, block.body))
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Run {
    DefaultBranch,
    FeatureBranch,
    Release,
    PullRequest,
    Schedule,
    Manual,
}

/// GitHub's variables for `run`, with the event file that names the
/// default branch.
fn github(run: Run, default_branch: &str, event_file: &Path) -> HashMap<String, String> {
    let mut variables: HashMap<String, String> = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_SHA", SHA),
        ("GITHUB_RUN_NUMBER", "7"),
        ("GITHUB_EVENT_PATH", event_file.to_str().unwrap()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    let on_default = format!("refs/heads/{default_branch}");
    let (event, reference) = match run {
        Run::DefaultBranch => ("push", on_default.as_str()),
        Run::FeatureBranch => ("push", "refs/heads/feature/login"),
        Run::Release => ("push", "refs/tags/v1.2.3"),
        Run::PullRequest => ("pull_request", "refs/pull/42/merge"),
        Run::Schedule => ("schedule", on_default.as_str()),
        Run::Manual => ("workflow_dispatch", on_default.as_str()),
    };
    variables.insert("GITHUB_EVENT_NAME".into(), event.into());
    variables.insert("GITHUB_REF".into(), reference.into());
    variables
}

/// GitLab's variables for `run` (default branch `main`).
fn gitlab(run: Run) -> HashMap<String, String> {
    let mut variables: HashMap<String, String> = [
        ("GITLAB_CI", "true"),
        ("CI_COMMIT_SHA", SHA),
        ("CI_PIPELINE_IID", "7"),
        ("CI_DEFAULT_BRANCH", "main"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    let mut set = |name: &str, value: &str| variables.insert(name.into(), value.into());
    match run {
        Run::DefaultBranch => {
            set("CI_PIPELINE_SOURCE", "push");
            set("CI_COMMIT_BRANCH", "main");
        }
        Run::FeatureBranch => {
            set("CI_PIPELINE_SOURCE", "push");
            set("CI_COMMIT_BRANCH", "feature/login");
        }
        Run::Release => {
            set("CI_PIPELINE_SOURCE", "push");
            set("CI_COMMIT_TAG", "v1.2.3");
        }
        Run::PullRequest => {
            set("CI_PIPELINE_SOURCE", "merge_request_event");
            set("CI_MERGE_REQUEST_IID", "42");
        }
        Run::Schedule => {
            set("CI_PIPELINE_SOURCE", "schedule");
            set("CI_COMMIT_BRANCH", "main");
        }
        Run::Manual => {
            set("CI_PIPELINE_SOURCE", "web");
            set("CI_COMMIT_BRANCH", "main");
        }
    }
    variables
}

#[derive(Deserialize)]
struct TagsSection {
    tags: Option<TagSpec>,
}

#[derive(Deserialize)]
struct SpecFile {
    defaults: Option<TagsSection>,
    image: Vec<TagsSection>,
}

/// The tags `spec` gives on a run with `variables`, and the warnings.
fn tags(spec: &str, variables: &HashMap<String, String>) -> (BTreeSet<String>, Vec<String>) {
    // The first image's own rules, else the ones it takes from `[defaults]`.
    let mut file = toml::from_str::<SpecFile>(spec).unwrap();
    let spec = file
        .image
        .remove(0)
        .tags
        .or_else(|| file.defaults.and_then(|defaults| defaults.tags))
        .unwrap();
    spec.validate().unwrap();
    let lookup = |name: &str| variables.get(name).cloned();
    let ci = CiEnvironment::from_env(&lookup).unwrap();
    let git = GitInfo {
        commit: SHA.to_string(),
        commit_time: 1_700_000_000,
        branch: None,
        tags: Vec::new(),
        remote_url: None,
        default_branch: None,
        shallow: false,
        dirty: false,
    };
    let mut revision = Revision::resolve(Some(&git), &ci);
    revision.started = Some(STARTED);
    let recorder = Recorder::default();
    let tags = compute_tags(&spec, &revision, &recorder).unwrap();
    (tags.into_iter().collect(), warnings(&recorder))
}

fn set(tags: &[&str]) -> BTreeSet<String> {
    tags.iter().map(|tag| tag.to_string()).collect()
}

/// Who runs a pipeline's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Provider {
    GitHub,
    GitLab,
}

/// Each pipeline's runs and the tags each must get. `{date:FORMAT}` stands
/// for the run's start time in that format.
pub(crate) const CASES: &[(&str, Provider, Run, &[&str])] = &[
    (
        "web-app",
        Provider::GitHub,
        Run::DefaultBranch,
        &["latest", "main-3f2a9c1"],
    ),
    (
        "web-app",
        Provider::GitHub,
        Run::Release,
        &["v1.2.3", "1.2", "1", "latest"],
    ),
    ("web-app", Provider::GitHub, Run::PullRequest, &["pr-42"]),
    (
        "web-app",
        Provider::GitHub,
        Run::FeatureBranch,
        &["feature-login-3f2a9c1"],
    ),
    (
        "web-app",
        Provider::GitHub,
        Run::Schedule,
        &["{date:%Y%m%d}"],
    ),
    (
        "api",
        Provider::GitHub,
        Run::DefaultBranch,
        &["sha-3f2a9c1", "master"],
    ),
    (
        "api",
        Provider::GitHub,
        Run::Release,
        &["sha-3f2a9c1", "v1.2.3", "latest"],
    ),
    ("api", Provider::GitHub, Run::PullRequest, &[]),
    (
        "services",
        Provider::GitHub,
        Run::DefaultBranch,
        &["3f2a9c1", "{date:%Y%m%d-%H%M%S}", "latest"],
    ),
    ("services", Provider::GitHub, Run::PullRequest, &["pr-42"]),
    (
        "services",
        Provider::GitLab,
        Run::DefaultBranch,
        &["3f2a9c1", "{date:%Y%m%d-%H%M%S}", "latest"],
    ),
    ("services", Provider::GitLab, Run::PullRequest, &["pr-42"]),
    ("services", Provider::GitLab, Run::Schedule, &[]),
    (
        "three-images",
        Provider::GitHub,
        Run::DefaultBranch,
        &["latest", "{date:%Y.%m.%d}.7"],
    ),
    (
        "three-images",
        Provider::GitHub,
        Run::PullRequest,
        &["pr-42-image"],
    ),
    (
        "three-images",
        Provider::GitHub,
        Run::FeatureBranch,
        &["feature-login-3f2a9c1"],
    ),
    (
        "command-line",
        Provider::GitHub,
        Run::DefaultBranch,
        &["latest", "main-3f2a9c1"],
    ),
    (
        "command-line",
        Provider::GitHub,
        Run::Release,
        &["v1.2.3", "v1.2", "v1", "latest"],
    ),
    ("command-line", Provider::GitHub, Run::PullRequest, &[]),
    ("command-line", Provider::GitHub, Run::Manual, &["beta"]),
    ("command-line", Provider::GitLab, Run::Manual, &["beta"]),
];

/// `expected` with `{date:FORMAT}` written for `time`.
pub(crate) fn expand(expected: &[&str], time: i64) -> BTreeSet<String> {
    expected
        .iter()
        .map(|tag| match tag.split_once("{date:") {
            Some((before, rest)) => {
                let (format, after) = rest.split_once('}').unwrap();
                let date = chrono::DateTime::from_timestamp(time, 0)
                    .unwrap()
                    .format(format);
                format!("{before}{date}{after}")
            }
            None => tag.to_string(),
        })
        .collect()
}

/// The variables of `run` under `provider`; GitHub's event file names the
/// pipeline's default branch.
pub(crate) fn variables(
    pipeline: &str,
    provider: Provider,
    run: Run,
    work: &Path,
) -> HashMap<String, String> {
    match provider {
        Provider::GitLab => gitlab(run),
        Provider::GitHub => {
            let default_branch = if pipeline == "api" { "master" } else { "main" };
            let path = work.join(format!("event-{default_branch}.json"));
            let body = format!(r#"{{"repository":{{"default_branch":"{default_branch}"}}}}"#);
            std::fs::write(&path, body).unwrap();
            github(run, default_branch, &path)
        }
    }
}

#[test]
fn each_pipeline_gets_exactly_its_tags_on_each_event() {
    let work = tempfile::tempdir().unwrap();
    let specs = pipeline_specs();
    let mut failures = Vec::new();
    for (pipeline, provider, run, expected) in CASES {
        let variables = variables(pipeline, *provider, *run, work.path());
        let (got, warnings) = tags(&specs[*pipeline], &variables);
        if got != expand(expected, STARTED) {
            failures.push(format!(
                "{pipeline} {provider:?} {run:?}: got {got:?}, expected {expected:?}"
            ));
        }
        // Rules limited to other events are silent; only "no tag at all" may warn.
        if let Some(warning) = warnings
            .iter()
            .find(|warning| !warning.contains("no tag applies"))
        {
            failures.push(format!(
                "{pipeline} {run:?}: unexpected warning {warning:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn date_tags_follow_the_run_not_the_commit() {
    let work = tempfile::tempdir().unwrap();
    let event = work.path().join("event.json");
    std::fs::write(&event, r#"{"repository":{"default_branch":"main"}}"#).unwrap();
    let variables = github(Run::Schedule, "main", &event);
    let spec = "[[image]]\n[image.tags]\ndate = { format = \"%Y%m%d-%H%M\", on = [\"schedule\"] }\ndate-timezone = \"+09:00\"\nsha = false\n";
    let (got, _) = tags(spec, &variables);
    // 2023-11-16T02:00Z is 11:00 in +09:00; the commit is two days older.
    assert_eq!(got, set(&["20231116-1100"]));
}

#[test]
fn tags_json_is_one_document_and_warnings_go_to_stderr() {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("app")).unwrap();
    std::fs::write(
        work.path().join("hoist.toml"),
        "[[image]]\nname = \"web\"\nrepository = \"registry.example/web\"\n\
         [image.tags]\nraw = [{ value = \"pr-{pr}\", on = [\"branch\"] }, \"edge\"]\n\
         [[image.layer]]\nsource = \"app\"\ntarget = \"/app\"\n",
    )
    .unwrap();
    let output = crate::common::hoist::hoist(["tags", "--json"])
        .current_dir(work.path())
        .run()
        .success();
    let document: serde_json::Value =
        serde_json::from_str(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is not one JSON document ({error}): {}",
                output.stdout
            )
        });
    assert_eq!(document[0]["tags"], serde_json::json!(["edge"]));
    assert!(
        output.stderr.contains("`pr-{pr}` can never give a tag"),
        "{}",
        output.stderr
    );
}
