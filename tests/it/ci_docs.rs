//! docs/ci.md cannot rot: every block marked `<!-- ci-example: ... -->` has
//! its `hoist` commands extracted and run, with the CI variables GitHub
//! Actions or GitLab CI would set, against a local docker-registry that
//! stands in for GHCR, GitLab's registry, ECR and Docker Hub.
use crate::common;

use crate::common::registry::TestRegistry;
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

const SHA: &str = "3f2a9c1d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";

/// Registry hosts the examples name, all served by the local registry.
const HOSTS: &[&str] = &[
    "ghcr.io",
    "registry.gitlab.com",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    "docker.io",
];

pub(crate) struct Example {
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    pub body: String,
}

/// The fenced block after each `<!-- KIND: NAME key=value... -->` line.
pub(crate) fn marked_blocks(text: &str, kind: &str) -> Vec<Example> {
    let lines: Vec<&str> = text.lines().collect();
    let marker = format!("<!-- {kind}: ");
    let mut examples = Vec::new();
    for (position, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix(&marker) else {
            continue;
        };
        let mut words = rest.trim_end_matches("-->").split_whitespace();
        let name = words.next().expect("a marked block has a name").to_string();
        let attributes = words
            .filter_map(|word| word.split_once('='))
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        assert!(
            lines[position + 1].starts_with("```"),
            "the line after {line:?} opens a fenced block"
        );
        let body: Vec<&str> = lines[position + 2..]
            .iter()
            .take_while(|line| !line.starts_with("```"))
            .copied()
            .collect();
        examples.push(Example {
            name,
            attributes,
            body: body.join("\n"),
        });
    }
    examples
}

/// The shell commands of a workflow that run hoist: `run:` values and
/// script list items, with `\` continuations joined.
fn hoist_commands(workflow: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut pending = String::new();
    for line in workflow.lines() {
        let mut text = line.trim();
        text = text.strip_prefix("- ").unwrap_or(text);
        text = text.strip_prefix("run: ").unwrap_or(text);
        if !pending.is_empty() {
            pending.push(' ');
            pending.push_str(text.trim_end_matches('\\').trim());
            if !text.ends_with('\\') {
                commands.push(std::mem::take(&mut pending));
            }
            continue;
        }
        if text.starts_with("hoist ") || text.contains("| hoist ") {
            if text.ends_with('\\') {
                pending = text.trim_end_matches('\\').trim().to_string();
            } else {
                commands.push(text.to_string());
            }
        }
    }
    commands
}

pub(crate) fn rewrite(text: &str, host: &str) -> String {
    let mut text = text.to_string();
    for name in HOSTS {
        text = text.replace(name, host);
    }
    // No AWS here: the password comes from the environment instead.
    text.replace(
        "aws ecr get-login-password --region eu-west-1",
        "printf %s \"$ECR_PASSWORD\"",
    )
}

/// Drops flags of `hoist build` this binary does not have yet, saying so.
fn known_flags(command: &str, build_help: &str) -> String {
    if !command.contains("hoist build ") {
        return command.to_string();
    }
    command
        .split(' ')
        .filter(|word| {
            let unknown = word.starts_with("--") && !build_help.contains(word);
            if unknown {
                eprintln!("note: `{word}` is not a hoist build flag here; left out");
            }
            !unknown
        })
        .collect::<Vec<_>>()
        .join(" ")
}

struct Run {
    /// Removed when the run is dropped.
    _temporary: tempfile::TempDir,
    work: PathBuf,
    environment: Vec<(String, String)>,
}

fn run_example(example: &Example, spec: &str, registry: &TestRegistry, build_help: &str) -> Run {
    let temporary = tempfile::tempdir().unwrap();
    let work = temporary.path().to_path_buf();
    let project = work.join("project");
    for directory in ["app", "services/api", "services/worker"] {
        fs::create_dir_all(project.join(directory)).unwrap();
        fs::write(project.join(directory).join("main.txt"), directory).unwrap();
    }
    fs::write(project.join("hoist.toml"), rewrite(spec, &registry.host())).unwrap();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_hoist"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let git_ref = example.attributes["ref"].clone();
    let mut environment: Vec<(String, String)> = vec![
        ("PATH".into(), path),
        (
            "DOCKER_CONFIG".into(),
            work.join("docker").display().to_string(),
        ),
        (
            "HOIST_CACHE".into(),
            work.join("cache").display().to_string(),
        ),
        ("ECR_PASSWORD".into(), "ecr-password".into()),
        ("DOCKERHUB_TOKEN".into(), "dockerhub-token".into()),
    ];
    match example.attributes["ci"].as_str() {
        "github" => environment.extend(
            [
                ("GITHUB_ACTIONS", "true".to_string()),
                ("GITHUB_REF", git_ref.clone()),
                ("GITHUB_SHA", SHA.to_string()),
                ("GITHUB_EVENT_NAME", example.attributes["event"].clone()),
                ("GITHUB_REPOSITORY", "acme/web".to_string()),
                ("GITHUB_ACTOR", "acme".to_string()),
                ("GITHUB_TOKEN", "github-token".to_string()),
                ("GITHUB_RUN_NUMBER", "7".to_string()),
                (
                    "GITHUB_OUTPUT",
                    work.join("github-output").display().to_string(),
                ),
                (
                    "GITHUB_STEP_SUMMARY",
                    work.join("summary.md").display().to_string(),
                ),
            ]
            .map(|(key, value)| (key.to_string(), value)),
        ),
        "gitlab" => {
            let branch = git_ref.strip_prefix("refs/heads/").unwrap().to_string();
            environment.extend(
                [
                    ("GITLAB_CI", "true".to_string()),
                    ("CI_COMMIT_BRANCH", branch.clone()),
                    ("CI_COMMIT_REF_NAME", branch.clone()),
                    ("CI_COMMIT_REF_SLUG", branch),
                    ("CI_COMMIT_SHA", SHA.to_string()),
                    ("CI_DEFAULT_BRANCH", "main".to_string()),
                    ("CI_PIPELINE_IID", "7".to_string()),
                    ("CI_PROJECT_URL", "https://gitlab.com/acme/web".to_string()),
                    ("CI_REGISTRY", registry.host()),
                    ("CI_REGISTRY_USER", "gitlab-ci-token".to_string()),
                    ("CI_REGISTRY_PASSWORD", "job-token".to_string()),
                ]
                .map(|(key, value)| (key.to_string(), value)),
            )
        }
        other => panic!("example {} names an unknown CI `{other}`", example.name),
    }
    let commands = hoist_commands(&example.body);
    assert!(
        !commands.is_empty(),
        "example {} runs no hoist command",
        example.name
    );
    for command in commands {
        let command = known_flags(&rewrite(&command, &registry.host()), build_help);
        let output = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .current_dir(&project)
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .env_remove("SOURCE_DATE_EPOCH")
            .envs(environment.iter().map(|(key, value)| (key, value)))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "example {}: `{command}` failed:\n{text}\n{}",
            example.name,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Run {
        _temporary: temporary,
        work: project,
        environment,
    }
}

fn catalog(registry: &TestRegistry) -> Vec<String> {
    let text = common::run(
        Command::new("curl")
            .arg("-sf")
            .arg(format!("http://{}/v2/_catalog", registry.host())),
    );
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap().to_string())
        .collect()
}

fn tags(registry: &TestRegistry, repository: &str) -> Vec<String> {
    let text = common::run(Command::new("curl").arg("-sf").arg(format!(
        "http://{}/v2/{repository}/tags/list",
        registry.host()
    )));
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut tags: Vec<String> = value["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    tags
}

#[test]
fn every_example_in_docs_ci_runs() {
    let text = fs::read_to_string(common::root().join("docs/ci.md")).unwrap();
    let specs: BTreeMap<String, String> = marked_blocks(&text, "ci-spec")
        .into_iter()
        .map(|block| (block.name, block.body))
        .collect();
    let examples = marked_blocks(&text, "ci-example");
    let names: Vec<&str> = examples
        .iter()
        .map(|example| example.name.as_str())
        .collect();
    assert_eq!(names, ["ghcr", "gitlab", "ecr", "dockerhub", "monorepo"]);
    let build_help =
        common::run(Command::new(env!("CARGO_BIN_EXE_hoist")).args(["build", "--help"]));

    for example in &examples {
        let registry = TestRegistry::start();
        let spec = &specs[&example.attributes["spec"]];
        let run = run_example(example, spec, &registry, &build_help);
        match example.name.as_str() {
            "ghcr" => {
                // The dry-run step is for pull requests; on a tag push the
                // push step ran, and the outputs went where GitHub reads them.
                let pushed = tags(&registry, "acme/web");
                for tag in ["1.2.3", "1.2", "1", "sha-3f2a9c1", "latest"] {
                    assert!(pushed.contains(&tag.to_string()), "{pushed:?}");
                }
                let outputs =
                    fs::read_to_string(run.work.parent().unwrap().join("github-output")).unwrap();
                assert!(outputs.contains("digest<<"), "{outputs}");
                let summary =
                    fs::read_to_string(run.work.parent().unwrap().join("summary.md")).unwrap();
                assert!(summary.contains("| linux/arm64 |"), "{summary}");
                assert!(run.work.join("metadata.json").exists());
                assert!(run.work.join("rollback.json").exists());
            }
            "gitlab" => {
                assert_eq!(tags(&registry, "acme/web"), ["main", "sha-3f2a9c1"]);
                let dotenv = fs::read_to_string(run.work.join("image.env")).unwrap();
                assert!(dotenv.contains("HOIST_DIGEST=sha256:"), "{dotenv}");
            }
            "ecr" => assert_eq!(tags(&registry, "acme/web"), ["main", "sha-3f2a9c1"]),
            "dockerhub" => {
                assert_eq!(tags(&registry, "acme/web"), ["2.0.0-rc.1", "sha-3f2a9c1"])
            }
            "monorepo" => {
                assert_eq!(catalog(&registry), ["acme/api", "acme/worker"]);
                // Again, after a change to one service: only it is pushed.
                fs::write(run.work.join("services/api/main.txt"), "changed").unwrap();
                let again = run_again(example, &run, &registry, &build_help);
                assert!(again.contains("worker unchanged"), "{again}");
                assert!(again.contains("api changed since"), "{again}");
            }
            other => panic!("no check for example {other}"),
        }
    }
}

/// Runs the example's commands once more in the same project.
fn run_again(example: &Example, first: &Run, registry: &TestRegistry, build_help: &str) -> String {
    let mut stdout = String::new();
    for command in hoist_commands(&example.body) {
        let command = known_flags(&rewrite(&command, &registry.host()), build_help);
        let output = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .current_dir(&first.work)
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .env_remove("SOURCE_DATE_EPOCH")
            .envs(first.environment.iter().map(|(key, value)| (key, value)))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "`{command}` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout.push_str(&String::from_utf8_lossy(&output.stdout));
    }
    stdout
}
