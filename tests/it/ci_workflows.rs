//! docs/ci.md's pipeline workflows hold: every GitHub Actions workflow on the
//! page passes GitHub's workflow schema and the services' GitLab job
//! GitLab's (the copies check-jsonschema vendors), and each pipeline's
//! commands, taken from the page (the `run:` steps its `if:`s select; the
//! GitLab job's, by its `rules:`, under GitLab), run through the hoist
//! binary on each event of the pipelines table, with that event's CI
//! variables, against a local docker-registry standing in for GHCR, ECR and
//! Docker Hub: `hoist tags --json` prints exactly the table's tags and
//! exactly those tags exist afterwards.

use crate::ci_docs::{marked_blocks, rewrite};
use crate::ci_pipelines::{CASES, Provider, Run, expand, pipeline_specs, variables};
use crate::common::registry::TestRegistry;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn docs() -> String {
    std::fs::read_to_string(crate::common::root().join("docs/ci.md")).unwrap()
}

/// Every GitHub Actions workflow on the page: each YAML block with a
/// top-level `jobs:` (GitLab's files and workflow excerpts have none).
fn workflow_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match current.as_mut() {
            None if line == "```yaml" => current = Some(Vec::new()),
            None => {}
            Some(lines) if line.starts_with("```") => {
                if lines.contains(&"jobs:") {
                    blocks.push(lines.join("\n"));
                }
                current = None;
            }
            Some(lines) => lines.push(line),
        }
    }
    blocks
}

/// check-jsonschema on `workflows` against one of the CI schemas it ships
/// (`vendor.github-workflows`, `vendor.gitlab-ci`; no network).
fn check_workflows(directory: &Path, schema: &str, workflows: &[String]) -> std::process::Output {
    let files: Vec<PathBuf> = workflows
        .iter()
        .enumerate()
        .map(|(number, workflow)| {
            let path = directory.join(format!("workflow-{number}.yml"));
            std::fs::write(&path, workflow).unwrap();
            path
        })
        .collect();
    Command::new("check-jsonschema")
        .args(["--builtin-schema", schema])
        .args(&files)
        .output()
        .expect("check-jsonschema runs (scripts/install-test-tools.sh installs it)")
}

#[test]
fn every_workflow_in_docs_ci_passes_githubs_workflow_schema() {
    let text = docs();
    let pipelines: Vec<String> = marked_blocks(&text, "pipeline-workflow")
        .into_iter()
        .map(|block| block.name)
        .collect();
    assert_eq!(
        pipelines,
        ["web-app", "api", "services", "three-images", "command-line"]
    );
    let workflows = workflow_blocks(&text);
    assert!(workflows.len() > pipelines.len(), "{workflows:#?}");
    let gitlab: Vec<String> = marked_blocks(&text, "pipeline-gitlab")
        .into_iter()
        .map(|block| block.body)
        .collect();
    assert_eq!(gitlab.len(), 1);
    let work = tempfile::tempdir().unwrap();
    for (schema, files) in [
        ("vendor.github-workflows", &workflows),
        ("vendor.gitlab-ci", &gitlab),
    ] {
        let checked = check_workflows(work.path(), schema, files);
        assert!(
            checked.status.success(),
            "{schema}: {}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
    }
    // The schemas do reject: a job without `runs-on`, or with a `script`
    // that is a number, is not a job.
    let broken = workflows[0].replace("runs-on:", "runs_on:");
    assert_ne!(broken, workflows[0]);
    let refused = check_workflows(work.path(), "vendor.github-workflows", &[broken]);
    assert!(!refused.status.success(), "a broken workflow passed");
    let broken = "images:\n  script: 7\n".to_string();
    let refused = check_workflows(work.path(), "vendor.gitlab-ci", &[broken]);
    assert!(!refused.status.success(), "a broken GitLab job passed");
}

/// YAML read as GitHub reads it (YAML 1.2: `on` is a key, not `true`), by
/// ruamel.yaml, which check-jsonschema brings.
fn parse_yaml(text: &str) -> Value {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import json, sys\nfrom ruamel.yaml import YAML\n\
             json.dump(YAML(typ='safe').load(sys.stdin), sys.stdout)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the workflow is not YAML");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// GitHub's name for the event of `run`.
pub(crate) fn github_event(run: Run) -> &'static str {
    match run {
        Run::DefaultBranch | Run::FeatureBranch | Run::Release => "push",
        Run::PullRequest => "pull_request",
        Run::Schedule => "schedule",
        Run::Manual => "workflow_dispatch",
    }
}

/// GitHub's filter patterns: `*` matches within a `/` segment, `**` across.
fn glob(pattern: &str, name: &str) -> bool {
    if let Some(rest) = pattern.strip_prefix("**") {
        return (0..=name.len()).any(|at| glob(rest, &name[at..]));
    }
    if let Some(rest) = pattern.strip_prefix('*') {
        return (0..=name.len())
            .take_while(|at| !name[..*at].contains('/'))
            .any(|at| glob(rest, &name[at..]));
    }
    match (pattern.chars().next(), name.chars().next()) {
        (None, None) => true,
        (Some(wanted), Some(found)) if wanted == found => glob(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// Whether `workflow`'s `on:` starts it for `run`: a push only when its
/// branch or tag passes the filters, as GitHub applies them.
fn triggered(workflow: &Value, run: Run, default_branch: &str) -> bool {
    let Some(filters) = workflow["on"].get(github_event(run)) else {
        return false;
    };
    if github_event(run) != "push" {
        return true;
    }
    let (kind, name) = match run {
        Run::Release => ("tags", "v1.2.3"),
        Run::FeatureBranch => ("branches", "feature/login"),
        _ => ("branches", default_branch),
    };
    match filters.get(kind).and_then(Value::as_array) {
        Some(patterns) => patterns
            .iter()
            .any(|pattern| glob(pattern.as_str().unwrap(), name)),
        None => filters.get("branches").is_none() && filters.get("tags").is_none(),
    }
}

/// Whether an `if:` holds on `event`; the workflows use only
/// `github.event_name` comparisons, joined by `&&` and `||`.
fn holds(condition: &str, event: &str) -> bool {
    condition.split("||").any(|either| {
        either.split("&&").all(|term| {
            let term = term.trim();
            let quoted = |value: &str| value.trim().trim_matches('\'').to_string();
            if let Some(value) = term.strip_prefix("github.event_name == ") {
                quoted(value) == event
            } else if let Some(value) = term.strip_prefix("github.event_name != ") {
                quoted(value) != event
            } else {
                panic!("this test reads only github.event_name conditions, not `{term}`")
            }
        })
    })
}

/// The `run:` steps `workflow` runs on `event`, in order.
pub(crate) fn steps_for(workflow: &Value, event: &str) -> Vec<String> {
    let mut commands = Vec::new();
    for job in workflow["jobs"].as_object().unwrap().values() {
        for step in job["steps"].as_array().unwrap() {
            if let Some(condition) = step["if"].as_str()
                && !holds(condition, event)
            {
                continue;
            }
            if let Some(command) = step["run"].as_str() {
                // Secrets reach commands through `env:`, never spliced in.
                assert!(!command.contains("${{"), "{command}");
                commands.push(command.to_string());
            }
        }
    }
    commands
}

/// Whether a GitLab `rules: - if:` holds under `environment`: the jobs use
/// only `$NAME == "text"` and `$NAME == $OTHER` (an unset variable equals
/// nothing).
fn gitlab_rule_holds(condition: &str, environment: &[(String, String)]) -> bool {
    let value = |side: &str| -> Option<String> {
        let side = side.trim();
        match side.strip_prefix('$') {
            Some(name) => environment
                .iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone()),
            None => {
                assert!(
                    side.starts_with('"'),
                    "this test reads only `==`, not `{condition}`"
                );
                Some(side.trim_matches('"').to_string())
            }
        }
    };
    let (left, right) = condition
        .split_once("==")
        .unwrap_or_else(|| panic!("this test reads only `==`, not `{condition}`"));
    let (left, right) = (value(left), value(right));
    left.is_some() && left == right
}

/// The commands of a GitLab CI file's jobs that run under `environment`
/// (by their `rules:`), `before_script` then `script`, in order.
fn gitlab_commands(file: &Value, environment: &[(String, String)]) -> Vec<String> {
    let mut commands = Vec::new();
    for job in file.as_object().unwrap().values() {
        if let Some(rules) = job["rules"].as_array() {
            let runs = rules
                .iter()
                .any(|rule| gitlab_rule_holds(rule["if"].as_str().unwrap(), environment));
            if !runs {
                continue;
            }
        }
        for part in ["before_script", "script"] {
            let lines = job[part].as_array().into_iter().flatten();
            commands.extend(lines.map(|line| line.as_str().unwrap().to_string()));
        }
    }
    commands
}

/// A checkout of a pipeline's project: its spec with the registry names
/// rewritten to the local registry, a file in each directory a layer takes,
/// and the repositories the spec pushes to (without the host).
pub(crate) struct Project {
    _temporary: tempfile::TempDir,
    pub work: PathBuf,
    pub directory: PathBuf,
    pub repositories: Vec<String>,
}

pub(crate) fn project(spec: &str, registry: &TestRegistry) -> Project {
    let temporary = tempfile::tempdir().unwrap();
    let work = temporary.path().to_path_buf();
    let directory = work.join("project");
    let spec = rewrite(spec, &registry.host());
    let parsed: toml::Value = toml::from_str(&spec).unwrap();
    let mut repositories = Vec::new();
    for image in parsed["image"].as_array().unwrap() {
        let repository = image["repository"].as_str().unwrap();
        let prefix = format!("{}/", registry.host());
        repositories.push(repository.strip_prefix(&prefix).unwrap().to_string());
        for layer in image["layer"].as_array().unwrap() {
            let source = directory.join(layer["source"].as_str().unwrap());
            std::fs::create_dir_all(&source).unwrap();
            std::fs::write(source.join("main.txt"), source.to_str().unwrap()).unwrap();
        }
    }
    std::fs::write(directory.join("hoist.toml"), spec).unwrap();
    Project {
        _temporary: temporary,
        work,
        directory,
        repositories,
    }
}

/// The environment of a run: the CI variables of the event, the secrets
/// the workflows read, and places of the run's own for credentials, the
/// layer cache and GitHub's output files.
pub(crate) fn environment(
    pipeline: &str,
    provider: Provider,
    run: Run,
    work: &Path,
) -> Vec<(String, String)> {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_hoist"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let place = |name: &str| work.join(name).display().to_string();
    let mut environment: Vec<(String, String)> = [
        ("PATH", path),
        ("HOME", place("home")),
        ("DOCKER_CONFIG", place("docker")),
        ("HOIST_CACHE", place("cache")),
        ("GITHUB_ACTOR", "acme".to_string()),
        ("GITHUB_TOKEN", "github-token".to_string()),
        ("DOCKERHUB_TOKEN", "dockerhub-token".to_string()),
        ("ECR_PASSWORD", "ecr-password".to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    if provider == Provider::GitHub {
        environment.push(("GITHUB_REPOSITORY".into(), "acme/project".into()));
        environment.push(("GITHUB_OUTPUT".into(), place("github-output")));
        environment.push(("GITHUB_STEP_SUMMARY".into(), place("summary.md")));
    }
    environment.extend(variables(pipeline, provider, run, work));
    environment
}

/// Runs `command` as a workflow step does, in `directory`, with nothing of
/// this process's environment but what `environment` gives; returns stdout.
pub(crate) fn step(command: &str, directory: &Path, environment: &[(String, String)]) -> String {
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(directory)
        .env_clear()
        .envs(environment.iter().map(|(name, value)| (name, value)))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "`{command}` failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `hoist tags --json`: stdout must be one JSON document; each image's
/// repository (without the host) and tags.
fn computed_tags(
    project: &Project,
    environment: &[(String, String)],
    host: &str,
) -> BTreeMap<String, BTreeSet<String>> {
    let stdout = step("hoist tags --json", &project.directory, environment);
    let document: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("stdout is not one JSON document ({error}): {stdout}"));
    document
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let repository = entry["repository"].as_str().unwrap();
            let tags = entry["tags"].as_array().unwrap().iter();
            (
                repository[host.len() + 1..].to_string(),
                tags.map(|tag| tag.as_str().unwrap().to_string()).collect(),
            )
        })
        .collect()
}

/// The tags a repository of the local registry has (none when it was never
/// pushed to).
pub(crate) fn registry_tags(registry: &TestRegistry, repository: &str) -> BTreeSet<String> {
    let output = Command::new("curl")
        .arg("-s")
        .arg(format!(
            "http://{}/v2/{repository}/tags/list",
            registry.host()
        ))
        .output()
        .unwrap();
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    value["tags"]
        .as_array()
        .map(|tags| {
            let tags = tags.iter().map(|tag| tag.as_str().unwrap().to_string());
            tags.collect()
        })
        .unwrap_or_default()
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The pipelines whose pull request runs push nothing.
fn pushes(pipeline: &str, run: Run) -> bool {
    run != Run::PullRequest || !["api", "services", "command-line"].contains(&pipeline)
}

/// A workflow of the page by pipeline name, parsed.
pub(crate) fn pipeline_workflows() -> BTreeMap<String, Value> {
    marked_blocks(&docs(), "pipeline-workflow")
        .into_iter()
        .map(|block| (block.name, parse_yaml(&block.body)))
        .collect()
}

/// A pipeline's GitLab CI file, where the page gives one, parsed.
fn pipeline_gitlab_files() -> BTreeMap<String, Value> {
    marked_blocks(&docs(), "pipeline-gitlab")
        .into_iter()
        .map(|block| (block.name, parse_yaml(&block.body)))
        .collect()
}

/// The commands a pipeline runs on `run`: its GitLab job's under GitLab
/// where the page has one, else the GitHub workflow's steps for the event.
fn commands_of(
    pipeline: &str,
    provider: Provider,
    run: Run,
    environment: &[(String, String)],
) -> Vec<String> {
    if provider == Provider::GitLab
        && let Some(file) = pipeline_gitlab_files().get(pipeline)
    {
        return gitlab_commands(file, environment);
    }
    steps_for(&pipeline_workflows()[pipeline], github_event(run))
}

/// What went wrong in one case, or nothing.
fn run_case(
    pipeline: &str,
    provider: Provider,
    run: Run,
    expected: &[&str],
    workflow: &Value,
) -> Vec<String> {
    let label = format!("{pipeline} {provider:?} {run:?}");
    let default_branch = if pipeline == "api" { "master" } else { "main" };
    let mut failures = Vec::new();
    if provider == Provider::GitHub && !triggered(workflow, run, default_branch) {
        failures.push(format!("{label}: the workflow's `on:` does not start it"));
    }
    let registry = TestRegistry::start();
    let project = project(&pipeline_specs()[pipeline], &registry);
    let environment = environment(pipeline, provider, run, &project.work);
    let started = now();
    let computed = computed_tags(&project, &environment, &registry.host());
    for command in commands_of(pipeline, provider, run, &environment) {
        step(
            &rewrite(&command, &registry.host()),
            &project.directory,
            &environment,
        );
    }
    let finished = now();
    let matches = |tags: &BTreeSet<String>, expected: &[&str]| {
        (started..=finished).any(|time| *tags == expand(expected, time))
    };
    for repository in &project.repositories {
        if !matches(&computed[repository], expected) {
            let got = &computed[repository];
            failures.push(format!(
                "{label}: {repository} tags {got:?}, expected {expected:?}"
            ));
        }
        let pushed = registry_tags(&registry, repository);
        let wanted: &[&str] = if pushes(pipeline, run) { expected } else { &[] };
        if !matches(&pushed, wanted) {
            failures.push(format!(
                "{label}: {repository} has {pushed:?}, expected {wanted:?}"
            ));
        }
    }
    failures
}

#[test]
fn each_pipeline_workflow_pushes_exactly_its_tags_on_each_event() {
    let workflows = pipeline_workflows();
    let mut failures = Vec::new();
    for (pipeline, provider, run, expected) in CASES {
        failures.extend(run_case(
            pipeline,
            *provider,
            *run,
            expected,
            &workflows[*pipeline],
        ));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn workflow_filters_and_conditions_read_as_github_reads_them() {
    assert!(glob("**", "feature/login"));
    assert!(!glob("*", "feature/login"));
    assert!(glob("v*", "v1.2.3"));
    assert!(!glob("main", "master"));
    let workflow = parse_yaml("on:\n  push:\n    tags: [\"v*\"]\n  pull_request:\njobs: {}\n");
    assert!(triggered(&workflow, Run::Release, "main"));
    assert!(!triggered(&workflow, Run::DefaultBranch, "main"));
    assert!(triggered(&workflow, Run::PullRequest, "main"));
    assert!(!triggered(&workflow, Run::Schedule, "main"));
    assert!(holds("github.event_name != 'pull_request'", "push"));
    assert!(!holds("github.event_name == 'pull_request'", "push"));
    assert!(holds(
        "github.event_name == 'schedule' || github.event_name == 'push'",
        "push"
    ));
    let environment = [
        ("CI_COMMIT_BRANCH".to_string(), "main".to_string()),
        ("CI_DEFAULT_BRANCH".to_string(), "main".to_string()),
    ];
    assert!(gitlab_rule_holds(
        "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH",
        &environment
    ));
    assert!(!gitlab_rule_holds(
        "$CI_PIPELINE_SOURCE == \"merge_request_event\"",
        &environment
    ));
    assert!(!gitlab_rule_holds(
        "$CI_COMMIT_TAG == $CI_MERGE_REQUEST_IID",
        &environment
    ));
}
