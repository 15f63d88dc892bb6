//! The five-services pipeline of docs/ci.md over two commits of a real git
//! checkout, with the workflow's own steps: the second push to `main`
//! builds and pushes only the service whose files changed, the four others
//! are skipped and get this run's tags by a manifest copy (no blob moves),
//! recorded in the rollback file; a pull request then pushes nothing and
//! every output says it was a dry run.

use crate::ci_docs::rewrite;
use crate::ci_pipelines::{Provider, Run, pipeline_specs};
use crate::ci_workflows::{
    Project, environment, github_event, pipeline_workflows, project, registry_tags, step, steps_for,
};
use crate::common::git_at;
use crate::common::registry::TestRegistry;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

const UNCHANGED: [&str; 4] = ["payments", "users", "catalog", "shipping"];

/// Runs the workflow's steps for `run` at `commit`; returns their stdout.
fn run_workflow(
    project: &Project,
    registry: &TestRegistry,
    run: Run,
    commit: &str,
    run_number: &str,
) -> String {
    let mut environment = environment("services", Provider::GitHub, run, &project.work);
    environment.retain(|(name, _)| name != "GITHUB_SHA" && name != "GITHUB_RUN_NUMBER");
    environment.push(("GITHUB_SHA".into(), commit.into()));
    environment.push(("GITHUB_RUN_NUMBER".into(), run_number.into()));
    let workflow = &pipeline_workflows()["services"];
    let mut stdout = String::new();
    for command in steps_for(workflow, github_event(run)) {
        let command = rewrite(&command, &registry.host());
        stdout.push_str(&step(&command, &project.directory, &environment));
    }
    stdout
}

/// The manifest digest `repository:tag` names in the registry.
fn digest_of(registry: &TestRegistry, repository: &str, tag: &str) -> String {
    let output = Command::new("curl")
        .args([
            "-sfI",
            "-H",
            // A single platform is pushed as its manifest, several as an index.
            "Accept: application/vnd.oci.image.index.v1+json, \
             application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!(
            "http://{}/v2/{repository}/manifests/{tag}",
            registry.host()
        ))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&output.stdout).to_lowercase();
    let line = headers
        .lines()
        .find_map(|line| line.strip_prefix("docker-content-digest: "))
        .unwrap_or_else(|| panic!("no digest for {repository}:{tag}: {headers}"));
    line.trim().to_string()
}

/// Each image of the metadata file by name: (status, digest).
fn statuses(project: &Project) -> (bool, BTreeMap<String, (String, String)>) {
    let text = std::fs::read_to_string(project.directory.join("metadata.json")).unwrap();
    let metadata: Value = serde_json::from_str(&text).unwrap();
    let images = metadata["images"].as_array().unwrap().iter().map(|image| {
        let field = |name: &str| image[name].as_str().unwrap().to_string();
        (field("name"), (field("status"), field("digest")))
    });
    (metadata["dry_run"].as_bool().unwrap(), images.collect())
}

fn commit(project: &Project, message: &str, time: i64) -> String {
    let directory = &project.directory;
    git_at(directory, &["add", "--all"], time);
    git_at(directory, &["commit", "--quiet", "-m", message], time);
    git_at(directory, &["rev-parse", "HEAD"], time)
}

#[test]
fn services_build_only_what_changed_and_pull_requests_push_nothing() {
    let registry = TestRegistry::start();
    let project = project(&pipeline_specs()["services"], &registry);
    let time = 1_700_000_000;
    git_at(&project.directory, &["init", "--quiet", "-b", "main"], time);
    let first = commit(&project, "five services", time);
    run_workflow(&project, &registry, Run::DefaultBranch, &first, "1");
    let (_, built) = statuses(&project);
    assert!(
        built.values().all(|(status, _)| status == "pushed"),
        "{built:?}"
    );
    assert_eq!(built.len(), 5);

    let orders = project.directory.join("services/orders/main.txt");
    std::fs::write(&orders, "orders, changed").unwrap();
    let second = commit(&project, "change orders", time + 60);
    let uploads = |service: &str| {
        registry.count_requests("POST", &format!("/v2/acme/{service}/blobs/uploads"))
    };
    let uploads_before: Vec<usize> = UNCHANGED.iter().map(|service| uploads(service)).collect();
    let stdout = run_workflow(&project, &registry, Run::DefaultBranch, &second, "2");
    let (dry_run, after) = statuses(&project);
    assert!(!dry_run);
    assert_eq!(after["orders"].0, "pushed", "{stdout}");
    assert_ne!(after["orders"].1, built["orders"].1);
    let short = &second[..7];
    for (service, before) in UNCHANGED.iter().zip(uploads_before) {
        assert!(stdout.contains(&format!("{service} unchanged")), "{stdout}");
        assert_eq!(
            after[*service],
            ("retagged".to_string(), built[*service].1.clone())
        );
        let repository = format!("acme/{service}");
        assert_eq!(digest_of(&registry, &repository, short), built[*service].1);
        assert!(registry_tags(&registry, &repository).contains(&first[..7]));
        assert_eq!(uploads(service), before, "{service}: a retag moves no blob");
    }
    assert_eq!(
        digest_of(&registry, "acme/orders", "latest"),
        after["orders"].1
    );
    assert_rollback(&project, &built, &after, short);

    // A pull request: every service built, nothing pushed, marked dry run.
    let tags_before: Vec<_> = project
        .repositories
        .iter()
        .map(|repository| registry_tags(&registry, repository))
        .collect();
    run_workflow(&project, &registry, Run::PullRequest, &second, "3");
    let tags_after: Vec<_> = project
        .repositories
        .iter()
        .map(|repository| registry_tags(&registry, repository))
        .collect();
    assert_eq!(tags_after, tags_before, "a pull request pushes nothing");
    let (dry_run, checked) = statuses(&project);
    assert!(dry_run);
    assert!(
        checked.values().all(|(status, _)| status == "dry-run"),
        "{checked:?}"
    );
    let outputs = std::fs::read_to_string(project.work.join("github-output")).unwrap();
    let last = outputs.rsplit("dry-run<<").next().unwrap();
    assert!(last.lines().nth(1) == Some("true"), "{outputs}");
}

/// The rollback file of the second run: each tag a retag moved (new, so
/// nothing to restore) and `orders`'s moved `latest` with the command that
/// points it back.
fn assert_rollback(
    project: &Project,
    built: &BTreeMap<String, (String, String)>,
    after: &BTreeMap<String, (String, String)>,
    short: &str,
) {
    let text = std::fs::read_to_string(project.directory.join("rollback.json")).unwrap();
    let records: Vec<Value> = serde_json::from_str(&text).unwrap();
    let find = |repository: &str, tag: &str| {
        records
            .iter()
            .find(|record| {
                record["repository"].as_str().unwrap().ends_with(repository) && record["tag"] == tag
            })
            .unwrap_or_else(|| panic!("no record of {repository}:{tag} in {text}"))
    };
    for service in UNCHANGED {
        let record = find(&format!("/acme/{service}"), short);
        assert_eq!(record["previous_digest"], Value::Null);
        assert_eq!(record["new_digest"], built[service].1.as_str());
    }
    let latest = find("/acme/orders", "latest");
    assert_eq!(latest["previous_digest"], built["orders"].1.as_str());
    assert_eq!(latest["new_digest"], after["orders"].1.as_str());
    let command = latest["restore_command"].as_str().unwrap();
    assert!(
        command.ends_with(&format!("@{} latest", built["orders"].1)),
        "{command}"
    );
}
