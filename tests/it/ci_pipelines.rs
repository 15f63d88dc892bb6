//! Five image pipelines as teams run them with docker/metadata-action, each
//! written as hoist tag rules (the same specs as in docs/ci.md), and the
//! exact tags each gets on each event: a push to the default branch and to
//! a feature branch, a release tag, a pull request, a schedule and a manual
//! run, with GitHub's variables and, for one pipeline, GitLab's.

use crate::ci_tags::warnings;
use hoist::ci::{CiEnvironment, GitInfo, Revision, TagSpec, compute_tags};
use hoist::progress::Recorder;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

const SHA: &str = "3f2a9c1e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a";
/// When the run started: 2023-11-16T02:00:00Z.
const STARTED: i64 = 1_700_100_000;

pub const WEB_APP: &str = r#"
[tags]
sha = false
branch = false
semver = ["v{version}", "{major}.{minor}", "{major}"]
latest = ["release", "default-branch"]
date = { format = "%Y%m%d", on = ["schedule"] }
raw = [{ value = "{branch}-{short_sha}", on = ["branch"], except = [] }]
"#;

pub const API: &str = r#"
[tags]
sha = ["branch", "tag"]
pr = false
semver = ["v{version}"]
latest = "release"
"#;

pub const SERVICES: &str = r#"
[tags]
sha = false
branch = false
semver = []
latest = "default-branch"
date = { format = "%Y%m%d-%H%M%S", on = ["default-branch"] }
raw = [{ value = "{short_sha}", on = ["default-branch"] }]
"#;

pub const THREE_IMAGES: &str = r#"
[tags]
sha = false
branch = false
pr = false
semver = []
latest = "default-branch"
date = { format = "%Y.%m.%d", on = false }
raw = [
  { value = "{date}.{run_number}", on = ["default-branch"] },
  { value = "pr-{pr}-image", on = ["pr"] },
  { value = "{branch}-{short_sha}", on = ["branch"], except = ["default-branch"] },
]
"#;

pub const COMMAND_LINE: &str = r#"
[tags]
sha = false
branch = false
pr = false
semver = ["v{version}", "v{major}.{minor}", "v{major}"]
latest = ["release", "default-branch"]
raw = [
  { value = "{branch}-{short_sha}", on = ["default-branch"] },
  { value = "beta", on = ["manual"] },
]
"#;

#[derive(Clone, Copy, Debug)]
enum Run {
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
struct ImageSection {
    tags: TagSpec,
}

/// The tags `spec` gives on a run with `variables`, and the warnings.
fn tags(spec: &str, variables: &HashMap<String, String>) -> (BTreeSet<String>, Vec<String>) {
    let spec = toml::from_str::<ImageSection>(spec).unwrap().tags;
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

/// A pipeline's name and spec, a run's variables, the tags it must get.
type PipelineCase<'a> = (&'a str, &'a str, HashMap<String, String>, &'a [&'a str]);

#[test]
fn each_pipeline_gets_exactly_its_tags_on_each_event() {
    let work = tempfile::tempdir().unwrap();
    let event_file = |default_branch: &str| {
        let path = work.path().join(format!("event-{default_branch}.json"));
        let body = format!(r#"{{"repository":{{"default_branch":"{default_branch}"}}}}"#);
        std::fs::write(&path, body).unwrap();
        path
    };
    let (main, master) = (event_file("main"), event_file("master"));
    let cases: &[PipelineCase] = &[
        (
            "web app",
            WEB_APP,
            github(Run::DefaultBranch, "main", &main),
            &["latest", "main-3f2a9c1"],
        ),
        (
            "web app",
            WEB_APP,
            github(Run::Release, "main", &main),
            &["v1.2.3", "1.2", "1", "latest"],
        ),
        (
            "web app",
            WEB_APP,
            github(Run::PullRequest, "main", &main),
            &["pr-42"],
        ),
        (
            "web app",
            WEB_APP,
            github(Run::FeatureBranch, "main", &main),
            &["feature-login-3f2a9c1"],
        ),
        (
            "web app",
            WEB_APP,
            github(Run::Schedule, "main", &main),
            &["20231116"],
        ),
        (
            "api",
            API,
            github(Run::DefaultBranch, "master", &master),
            &["sha-3f2a9c1", "master"],
        ),
        (
            "api",
            API,
            github(Run::Release, "master", &master),
            &["sha-3f2a9c1", "v1.2.3", "latest"],
        ),
        ("api", API, github(Run::PullRequest, "master", &master), &[]),
        (
            "services",
            SERVICES,
            github(Run::DefaultBranch, "main", &main),
            &["3f2a9c1", "20231116-020000", "latest"],
        ),
        (
            "services",
            SERVICES,
            github(Run::PullRequest, "main", &main),
            &["pr-42"],
        ),
        (
            "services on GitLab",
            SERVICES,
            gitlab(Run::DefaultBranch),
            &["3f2a9c1", "20231116-020000", "latest"],
        ),
        (
            "services on GitLab",
            SERVICES,
            gitlab(Run::PullRequest),
            &["pr-42"],
        ),
        ("services on GitLab", SERVICES, gitlab(Run::Schedule), &[]),
        (
            "three images",
            THREE_IMAGES,
            github(Run::DefaultBranch, "main", &main),
            &["latest", "2023.11.16.7"],
        ),
        (
            "three images",
            THREE_IMAGES,
            github(Run::PullRequest, "main", &main),
            &["pr-42-image"],
        ),
        (
            "three images",
            THREE_IMAGES,
            github(Run::FeatureBranch, "main", &main),
            &["feature-login-3f2a9c1"],
        ),
        (
            "command line",
            COMMAND_LINE,
            github(Run::DefaultBranch, "main", &main),
            &["latest", "main-3f2a9c1"],
        ),
        (
            "command line",
            COMMAND_LINE,
            github(Run::Release, "main", &main),
            &["v1.2.3", "v1.2", "v1", "latest"],
        ),
        (
            "command line",
            COMMAND_LINE,
            github(Run::PullRequest, "main", &main),
            &[],
        ),
        (
            "command line",
            COMMAND_LINE,
            github(Run::Manual, "main", &main),
            &["beta"],
        ),
        (
            "command line on GitLab",
            COMMAND_LINE,
            gitlab(Run::Manual),
            &["beta"],
        ),
    ];
    let mut failures = Vec::new();
    for (name, spec, variables, expected) in cases {
        let (got, warnings) = tags(spec, variables);
        if got != set(expected) {
            failures.push(format!(
                "{name} with {:?} {:?}: got {got:?}, expected {expected:?}",
                variables
                    .get("GITHUB_EVENT_NAME")
                    .or(variables.get("CI_PIPELINE_SOURCE")),
                variables.get("GITHUB_REF"),
            ));
        }
        // Rules limited to other events are silent; only "no tag at all" may warn.
        if let Some(warning) = warnings
            .iter()
            .find(|warning| !warning.contains("no tag applies"))
        {
            failures.push(format!("{name}: unexpected warning {warning:?}"));
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
    let spec = "[tags]\ndate = { format = \"%Y%m%d-%H%M\", on = [\"schedule\"] }\ndate-timezone = \"+09:00\"\nsha = false\n";
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
