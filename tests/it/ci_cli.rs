//! CI through the binary: `hoist tags` for each kind of GitHub and GitLab
//! event, labels in the built config, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY,
//! metadata and rollback files against a real registry, `--changed` and
//! `--dry-run`.
use crate::common;

use crate::common::hoist::{Hoist, Layout, hoist};
use crate::common::registry::TestRegistry;
use serde_json::Value;
use std::fs;
use std::path::Path;

const SHA: &str = "3f2a9c1d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";

/// A spec with one small image (outside any git repository), pushing to
/// `repository`.
fn project(repository: &str) -> tempfile::TempDir {
    let directory = tempfile::tempdir().unwrap();
    fs::create_dir_all(directory.path().join("app")).unwrap();
    fs::write(directory.path().join("app/message.txt"), "hello\n").unwrap();
    fs::write(
        directory.path().join("hoist.toml"),
        format!(
            "[[image]]\nname = \"web\"\nrepository = \"{repository}\"\nsource-date-epoch = 1700000000\n\
             [image.config]\ncmd = [\"/app/message.txt\"]\n\
             [[image.layer]]\nsource = \"app\"\ntarget = \"/app\"\n"
        ),
    )
    .unwrap();
    directory
}

/// `hoist ARGS` in `directory` as a GitHub Actions job runs it.
fn github(directory: &Path, git_ref: &str, event: &str, args: &[&str]) -> Hoist {
    hoist(args)
        .current_dir(directory)
        .env("HOIST_CACHE", directory.join(".cache"))
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REF", git_ref)
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_EVENT_NAME", event)
        .env("GITHUB_REPOSITORY", "org/repo")
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_RUN_NUMBER", "17")
}

fn tags_json(output: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(output.trim()).unwrap();
    value[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn tags_for_each_kind_of_event() {
    let project = project("registry.example/org/web");
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "refs/heads/feature/Cool_Thing",
            "push",
            &["feature-Cool_Thing", "sha-3f2a9c1"],
        ),
        (
            "refs/tags/v1.2.3",
            "push",
            &["1.2.3", "1.2", "1", "sha-3f2a9c1", "latest"],
        ),
        (
            "refs/pull/42/merge",
            "pull_request",
            &["pr-42", "sha-3f2a9c1"],
        ),
        (
            "refs/tags/v2.0.0-rc.1",
            "push",
            &["2.0.0-rc.1", "sha-3f2a9c1"],
        ),
    ];
    for (git_ref, event, expected) in cases {
        let output = github(project.path(), git_ref, event, &["tags", "--json"])
            .run()
            .success();
        assert_eq!(tags_json(&output.stdout), *expected, "{git_ref}");
    }

    // People read the plain form: name, repository, tags.
    let plain = github(
        project.path(),
        "refs/heads/main",
        "push",
        &["tags", "--tag", "extra"],
    )
    .run()
    .success();
    assert_eq!(
        plain.stdout.trim(),
        "web registry.example/org/web main sha-3f2a9c1 extra"
    );

    // GitLab names the same things differently.
    let gitlab = hoist(["tags", "--json"])
        .current_dir(project.path())
        .env("GITLAB_CI", "true")
        .env("CI_COMMIT_TAG", "v3.1.0")
        .env("CI_COMMIT_SHA", SHA)
        .run()
        .success();
    assert_eq!(
        tags_json(&gitlab.stdout),
        ["3.1.0", "3.1", "3", "sha-3f2a9c1", "latest"]
    );
}

#[test]
fn a_bad_tag_template_is_a_spec_error_with_its_position() {
    let project = project("registry.example/org/web");
    let spec = project.path().join("hoist.toml");
    let text = fs::read_to_string(&spec).unwrap();
    fs::write(
        &spec,
        text.replace(
            "source-date-epoch",
            "tags = [\"stable-{shortsha}\"]\nsource-date-epoch",
        ),
    )
    .unwrap();
    let output = hoist(["tags"]).current_dir(project.path()).run().failure(1);
    assert!(
        output.stderr.contains("hoist.toml:4:8: `tags`") && output.stderr.contains("shortsha"),
        "{}",
        output.stderr
    );
}

fn config_labels(layout: &Path, tag: &str) -> Value {
    let layout = Layout::open(layout);
    let (_, manifest) = layout.platform_manifests(tag).remove(0);
    let config = layout.json(layout.json(&manifest)["config"]["digest"].as_str().unwrap());
    config["config"]["Labels"].clone()
}

#[test]
fn labels_and_github_outputs() {
    let registry = TestRegistry::start();
    let repository = format!("{}/org/web", registry.host());
    let project = project(&repository);
    let output_file = project.path().join("github-output");
    let summary_file = project.path().join("summary.md");
    let metadata_file = project.path().join("metadata.json");
    let layout = project.path().join("layout");
    let output = github(
        project.path(),
        "refs/tags/v1.2.3",
        "push",
        &["build", "--push", "--metadata-file"],
    )
    .arg(&metadata_file)
    .arg("-o")
    .arg(format!("oci:{}", layout.display()))
    .env("GITHUB_OUTPUT", &output_file)
    .env("GITHUB_STEP_SUMMARY", &summary_file)
    .run()
    .success();
    let digest = output.last_line_digest();

    let labels = config_labels(&layout, "web");
    let label = |key: &str| labels[format!("org.opencontainers.image.{key}")].clone();
    assert_eq!(label("revision"), SHA);
    assert_eq!(label("source"), "https://github.com/org/repo");
    assert_eq!(label("url"), "https://github.com/org/repo");
    assert_eq!(label("version"), "1.2.3");
    assert_eq!(label("title"), "web");
    assert_eq!(label("ref.name"), "1.2.3");
    assert_eq!(label("created"), "2023-11-14T22:13:20Z");
    // The index carries them as annotations too.
    let layout_reader = Layout::open(&layout);
    let index = layout_reader.json(&layout_reader.tagged_digest("web"));
    assert_eq!(
        index["annotations"]["org.opencontainers.image.revision"],
        SHA
    );

    let outputs = fs::read_to_string(&output_file).unwrap();
    let value = |key: &str| -> String {
        let start = outputs
            .find(&format!("{key}<<"))
            .unwrap_or_else(|| panic!("no {key} in {outputs}"));
        let rest = &outputs[start..];
        let (header, body) = rest.split_once('\n').unwrap();
        let delimiter = header.split_once("<<").unwrap().1;
        body.split(&format!("\n{delimiter}\n"))
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(value("digest"), digest);
    assert_eq!(value("image"), format!("{repository}@{digest}"));
    let tags: Vec<String> = ["1.2.3", "1.2", "1", "sha-3f2a9c1", "latest"]
        .iter()
        .map(|tag| format!("{repository}:{tag}"))
        .collect();
    assert_eq!(value("tags"), tags.join("\n"));
    let metadata: Value = serde_json::from_str(&value("metadata")).unwrap();
    assert_eq!(metadata["images"][0]["digest"], digest.as_str());

    let summary = fs::read_to_string(&summary_file).unwrap();
    assert!(summary.contains("### web"), "{summary}");
    assert!(summary.contains("| linux/amd64 | `sha256:"), "{summary}");
    assert!(
        summary.contains(&format!("docker pull {repository}@{digest}")),
        "{summary}"
    );

    let file: Value = serde_json::from_slice(&fs::read(&metadata_file).unwrap()).unwrap();
    let image = &file["images"][0];
    assert_eq!(image["name"], "web");
    assert_eq!(image["repository"], repository.as_str());
    assert_eq!(image["digest"], digest.as_str());
    assert_eq!(image["platforms"][0]["layers"], 1);
    assert_eq!(image["tags"].as_array().unwrap().len(), 5);
    for phase in ["build", "publish", "total"] {
        assert!(file["timings_ms"][phase].is_u64(), "{file}");
    }
}

/// What `repository:tag` points to in the registry, through `hoist copy`.
fn registry_digest(project: &Path, reference: &str) -> String {
    let out = project.join(format!("check-{}", reference.replace(['/', ':'], "_")));
    let _ = fs::remove_dir_all(&out);
    hoist(["copy"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:x", out.display()))
        .run()
        .success();
    Layout::open(&out).tagged_digest("x")
}

#[test]
fn rollback_file_names_the_previous_digest_and_its_command_restores_it() {
    let registry = TestRegistry::start();
    let repository = format!("{}/org/web", registry.host());
    let project = project(&repository);
    let rollback_file = project.path().join("rollback.json");
    let push = |project: &Path| {
        github(project, "refs/heads/main", "push", &["build", "--push"])
            .arg("--rollback-file")
            .arg(&rollback_file)
            .run()
            .success()
            .last_line_digest()
    };
    let first = push(project.path());
    let records: Value = serde_json::from_slice(&fs::read(&rollback_file).unwrap()).unwrap();
    assert_eq!(records.as_array().unwrap().len(), 2, "{records}");
    assert_eq!(records[0]["tag"], "main");
    assert_eq!(records[0]["previous_digest"], Value::Null);
    assert_eq!(records[0]["restore_command"], Value::Null);
    assert_eq!(records[0]["new_digest"], first.as_str());

    fs::write(project.path().join("app/message.txt"), "changed\n").unwrap();
    let second = push(project.path());
    assert_ne!(first, second);
    assert_eq!(
        registry_digest(project.path(), &format!("{repository}:main")),
        second
    );
    let records: Value = serde_json::from_slice(&fs::read(&rollback_file).unwrap()).unwrap();
    let main = records
        .as_array()
        .unwrap()
        .iter()
        .find(|record| record["tag"] == "main")
        .unwrap();
    assert_eq!(main["previous_digest"], first.as_str());
    assert_eq!(main["new_digest"], second.as_str());
    let command = main["restore_command"].as_str().unwrap();
    let words: Vec<&str> = command.split(' ').collect();
    assert_eq!(&words[..2], ["hoist", "tag"], "{command}");
    hoist(&words[1..]).run().success();
    assert_eq!(
        registry_digest(project.path(), &format!("{repository}:main")),
        first,
        "the restore command puts the tag back"
    );
}

#[test]
fn changed_skips_an_unchanged_image_and_rebuilds_a_changed_one() {
    let registry = TestRegistry::start();
    let repository = format!("{}/org/web", registry.host());
    let project = project(&repository);
    let build = |project: &Path| {
        github(
            project,
            "refs/heads/main",
            "push",
            &["build", "--push", "--changed"],
        )
        .run()
        .success()
    };
    let first = build(project.path());
    // Nothing there yet: it says where it looked (the branch tag, not the
    // sha tag, which no earlier commit can have pushed) and builds.
    assert!(
        first.stderr.contains(&format!(
            "nothing to compare with at docker://{repository}:main,"
        )),
        "{}",
        first.stderr
    );
    assert!(!first.stderr.contains("sha-"), "{}", first.stderr);
    let pushes = registry.count_requests("PUT", "/manifests/");
    assert!(pushes > 0);

    // A new checkout of the same files: other mtimes, same inputs.
    let later = build(project.path());
    assert!(later.stdout.contains("web unchanged"), "{}", later.stdout);
    assert_eq!(later.last_line_digest(), first.last_line_digest());
    assert_eq!(
        registry.count_requests("PUT", "/manifests/"),
        pushes,
        "nothing pushed for an unchanged image"
    );
    // With --json the decision is an event naming the image, the target
    // compared with and the digest found there.
    let json = github(
        project.path(),
        "refs/heads/main",
        "push",
        &["build", "--push", "--changed", "--json"],
    )
    .run()
    .success();
    let skipped: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["event"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 1, "{}", json.stdout);
    assert_eq!(skipped[0]["image"], "web");
    assert!(
        skipped[0]["target"]
            .as_str()
            .is_some_and(|target| target.starts_with(&format!("docker://{repository}:"))),
        "{}",
        json.stdout
    );
    assert_eq!(
        skipped[0]["digest"].as_str(),
        Some(first.last_line_digest().as_str())
    );

    fs::write(project.path().join("app/message.txt"), "changed\n").unwrap();
    let changed = build(project.path());
    assert!(
        changed.stdout.contains("web changed since"),
        "{}",
        changed.stdout
    );
    assert_ne!(changed.last_line_digest(), first.last_line_digest());
    assert!(registry.count_requests("PUT", "/manifests/") > pushes);

    // The same for a local layout, through the spec key.
    let spec = project.path().join("hoist.toml");
    let text = fs::read_to_string(&spec).unwrap();
    fs::write(
        &spec,
        text.replace(
            "source-date-epoch",
            "skip-unchanged = true\nsource-date-epoch",
        ),
    )
    .unwrap();
    let layout = project.path().join("layout");
    let local = |project: &Path| {
        hoist(["build", "--no-cache", "-o"])
            .arg(format!("oci:{}", layout.display()))
            .current_dir(project)
            .run()
            .success()
    };
    let built = local(project.path());
    assert!(
        built.stderr.contains("nothing to compare with at oci:"),
        "{}",
        built.stderr
    );
    let again = local(project.path());
    assert!(again.stdout.contains("web unchanged"), "{}", again.stdout);
}

/// `hoist build --push` as a GitHub push to main runs it, at `commit` and
/// run `run`.
fn push_at(project: &Path, commit: &str, run: &str, args: &[&str]) -> common::hoist::HoistOutput {
    let mut arguments = vec!["build", "--push"];
    arguments.extend_from_slice(args);
    github(project, "refs/heads/main", "push", &arguments)
        .env("GITHUB_SHA", commit)
        .env("GITHUB_RUN_NUMBER", run)
        .run()
        .success()
}

#[test]
fn the_image_bytes_do_not_depend_on_changed_and_an_earlier_push_is_found() {
    let registry = TestRegistry::start();
    let project = project(&format!("{}/org/web", registry.host()));
    let with_flag = push_at(project.path(), SHA, "1", &["--dry-run", "--changed"]);
    assert!(
        with_flag.stderr.contains("nothing to compare with"),
        "{}",
        with_flag.stderr
    );
    let plain = push_at(project.path(), SHA, "1", &[]).last_line_digest();
    assert_eq!(
        with_flag.last_line_digest(),
        plain,
        "--changed adds nothing to the image"
    );

    // An image pushed without --changed is found by a later run with it.
    let later = "0123456789abcdef0123456789abcdef01234567";
    let skipped = push_at(project.path(), later, "2", &["--changed"]);
    assert!(
        skipped.stdout.contains("web unchanged"),
        "{}",
        skipped.stdout
    );
    assert_eq!(skipped.last_line_digest(), plain);
}

#[test]
fn a_skipped_image_is_found_under_a_lasting_tag_and_gets_this_runs_tags() {
    let registry = TestRegistry::start();
    let repository = format!("{}/org/web", registry.host());
    let project = project(&repository);
    // The first computed tag changes with every run; `stable` lasts.
    let spec = project.path().join("hoist.toml");
    let text = fs::read_to_string(&spec).unwrap();
    fs::write(
        &spec,
        text.replace(
            "source-date-epoch",
            "tags = [\"run-{run_number}\", \"sha-{short_sha}\", \"stable\"]\nsource-date-epoch",
        ),
    )
    .unwrap();
    let first = push_at(project.path(), SHA, "17", &["--changed"]);
    assert!(
        first.stderr.contains(&format!(
            "nothing to compare with at docker://{repository}:stable,"
        )),
        "{}",
        first.stderr
    );
    let digest = first.last_line_digest();
    let blobs = registry.count_requests("POST", "/blobs/uploads/");

    let next = "0123456789abcdef0123456789abcdef01234567";
    let rollback_file = project.path().join("rollback.json");
    let second = push_at(
        project.path(),
        next,
        "18",
        &["--changed", "--json", "--rollback-file", "rollback.json"],
    );
    let events: Vec<Value> = second
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let skipped = events
        .iter()
        .find(|event| event["event"] == "skipped")
        .unwrap();
    assert_eq!(skipped["target"], format!("docker://{repository}:stable"));
    let retagged = events
        .iter()
        .find(|event| event["event"] == "retagged")
        .unwrap();
    assert_eq!(
        retagged["tags"],
        serde_json::json!(["run-18", "sha-0123456"])
    );
    assert_eq!(retagged["digest"], digest.as_str());
    // The tags the retag moved can be rolled back like pushed ones.
    let records: Value =
        serde_json::from_str(&fs::read_to_string(&rollback_file).unwrap()).unwrap();
    let moved: Vec<(&str, &Value, &str)> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|record| {
            (
                record["tag"].as_str().unwrap(),
                &record["previous_digest"],
                record["new_digest"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        moved,
        [
            ("run-18", &Value::Null, digest.as_str()),
            ("sha-0123456", &Value::Null, digest.as_str())
        ]
    );
    for tag in ["run-18", "sha-0123456", "stable", "run-17"] {
        assert_eq!(
            registry_digest(project.path(), &format!("{repository}:{tag}")),
            digest,
            "{tag}"
        );
    }
    assert_eq!(
        registry.count_requests("POST", "/blobs/uploads/"),
        blobs,
        "a retag moves no blob"
    );

    // no-retag: the run's own tags are not pushed.
    let third = "89abcdef0123456789abcdef0123456789abcdef";
    let kept = push_at(project.path(), third, "19", &["--changed=no-retag"]);
    assert!(kept.stdout.contains("web unchanged"), "{}", kept.stdout);
    assert!(!kept.stdout.contains("tagged web"), "{}", kept.stdout);
    let listed = hoist(["ls", "--json", &repository]).run().success();
    assert!(!listed.stdout.contains("run-19"), "{}", listed.stdout);
    assert!(listed.stdout.contains("run-18"), "{}", listed.stdout);
}

#[test]
fn dry_run_pushes_nothing() {
    let registry = TestRegistry::start();
    let repository = format!("{}/org/web", registry.host());
    let project = project(&repository);
    let metadata_file = project.path().join("metadata.json");
    let output_file = project.path().join("github-output");
    let output = github(
        project.path(),
        "refs/pull/7/merge",
        "pull_request",
        &["build", "--dry-run", "--metadata-file"],
    )
    .arg(&metadata_file)
    .env("GITHUB_OUTPUT", &output_file)
    .env("GITHUB_RUN_ID", "555")
    .env("HOIST_CREDS", "nobody:wrong")
    .run()
    .success();
    // The metadata file and the step outputs say nothing was pushed, and
    // record the run.
    let metadata: Value = serde_json::from_slice(&fs::read(&metadata_file).unwrap()).unwrap();
    assert_eq!(metadata["dry_run"], true, "{metadata}");
    assert_eq!(metadata["images"][0]["status"], "dry-run", "{metadata}");
    assert_eq!(metadata["run"]["ref"], "refs/pull/7/merge", "{metadata}");
    assert_eq!(metadata["run"]["event"], "pull_request", "{metadata}");
    assert_eq!(metadata["run"]["events"], serde_json::json!(["pr"]));
    assert_eq!(metadata["run"]["revision"], SHA);
    assert_eq!(
        metadata["run"]["run_url"],
        "https://github.com/org/repo/actions/runs/555"
    );
    for time in ["started", "finished"] {
        assert!(
            metadata["run"][time]
                .as_str()
                .is_some_and(|time| time.ends_with('Z')),
            "{metadata}"
        );
    }
    let outputs = fs::read_to_string(&output_file).unwrap();
    assert!(outputs.contains("\ndry-run<<"), "{outputs}");
    assert!(outputs.contains("\"status\":\"dry-run\""), "{outputs}");
    let digest = output.last_line_digest();
    assert!(
        output.stdout.contains(&format!(
            "would push web to {repository} (pr-7, sha-3f2a9c1): {digest}"
        )),
        "{}",
        output.stdout
    );
    assert_eq!(registry.count_requests("PUT", ""), 0, "{}", registry.log());
    assert_eq!(registry.count_requests("POST", ""), 0, "{}", registry.log());
    let catalog = common::run(
        std::process::Command::new("curl")
            .arg("-sf")
            .arg(format!("http://{}/v2/_catalog", registry.host())),
    );
    let catalog: Value = serde_json::from_str(&catalog).unwrap();
    assert_eq!(catalog["repositories"], serde_json::json!([]));
    assert!(!project.path().join("hoist-out").exists());
}

/// The `images` step output of a run, from a fresh `GITHUB_OUTPUT` file.
fn images_output(path: &Path) -> Value {
    let outputs = fs::read_to_string(path).unwrap();
    let start = outputs.find("images<<").expect("an images output");
    let (header, body) = outputs[start..].split_once('\n').unwrap();
    let delimiter = header.split_once("<<").unwrap().1;
    let value = body.split(&format!("\n{delimiter}\n")).next().unwrap();
    serde_json::from_str(value).unwrap()
}

#[test]
fn images_output_gives_each_image_its_status() {
    let registry = TestRegistry::start();
    let project = tempfile::tempdir().unwrap();
    for service in ["web", "worker"] {
        fs::create_dir_all(project.path().join(service)).unwrap();
        fs::write(project.path().join(service).join("file"), service).unwrap();
    }
    let host = registry.host();
    fs::write(
        project.path().join("hoist.toml"),
        format!(
            "[defaults]\nskip-unchanged = true\nsource-date-epoch = 1700000000\ntags = [\"main\"]\n\n\
             [[image]]\nname = \"web\"\nrepository = \"{host}/org/web\"\n[[image.layer]]\nsource = \"web\"\n\n\
             [[image]]\nname = \"worker\"\nrepository = \"{host}/org/worker\"\n[[image.layer]]\nsource = \"worker\"\n"
        ),
    )
    .unwrap();
    let run = |name: &str| {
        let output_file = project.path().join(name);
        github(
            project.path(),
            "refs/heads/main",
            "push",
            &["build", "--push"],
        )
        .env("GITHUB_OUTPUT", &output_file)
        .run()
        .success();
        images_output(&output_file)
    };
    let first = run("first");
    assert_eq!(first["web"]["status"], "pushed", "{first}");
    assert_eq!(first["worker"]["status"], "pushed", "{first}");
    assert_eq!(
        first["worker"]["tags"],
        serde_json::json!([format!("{host}/org/worker:main")])
    );

    fs::write(project.path().join("worker/file"), "changed").unwrap();
    let second = run("second");
    assert_eq!(second["web"]["status"], "skipped", "{second}");
    assert_eq!(second["web"]["digest"], first["web"]["digest"]);
    assert_eq!(second["worker"]["status"], "pushed", "{second}");
    assert_ne!(second["worker"]["digest"], first["worker"]["digest"]);
    assert!(
        second["worker"]["image"]
            .as_str()
            .is_some_and(|image| image.starts_with(&format!("{host}/org/worker@sha256:"))),
        "{second}"
    );
}
