//! CI output files written to temporary files and read back the way their
//! consumers read them: `jq` for JSON, `bash` for the GitLab dotenv, and
//! GitHub's documented `key<<DELIMITER` syntax for `GITHUB_OUTPUT`.
use crate::common;

use hoist::ci::{
    BuildMetadata, CiEnvironment, GitHubOutputs, GitLabDotenv, ImageMetadata, ImageStatus,
    Revision, RollbackRecord, RunMetadata, TagEvent, step_summary, write_rollback_file,
};
use hoist::image::model::{ChildEntry, Index};
use hoist::image::{Blob, BytesBlob, Image, Manifest};
use hoist::oci::{Platform, sha256_digest};
use oci_spec::image::MediaType;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const REPOSITORY: &str = "registry.example:5000/org/web";

fn image(layers: &[&[u8]]) -> Manifest {
    let layers = layers
        .iter()
        .map(|bytes| {
            Arc::new(BytesBlob::new(MediaType::ImageLayerGzip, bytes.to_vec())) as Arc<dyn Blob>
        })
        .collect();
    let config = BytesBlob::new(
        MediaType::ImageConfig,
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":{"org.opencontainers.image.version":"1.2.3","team":"core"}}}"#
            .to_vec(),
    );
    Manifest::Image(Image::from_parts(config, layers, &BTreeMap::new(), None, None).unwrap())
}

/// Two platforms and an attestation manifest for the first, BuildKit style.
fn multi_platform() -> Manifest {
    let amd64 = image(&[b"base layer", b"app layer"]);
    let arm64 = image(&[b"arm layer"]);
    let mut statement = BytesBlob::new("application/vnd.in-toto+json", b"{}".to_vec());
    statement
        .descriptor_mut()
        .set_annotations(Some(HashMap::from([(
            "in-toto.io/predicate-type".to_string(),
            "https://slsa.dev/provenance/v1".to_string(),
        )])));
    let attestation = Manifest::Image(
        Image::from_parts(
            BytesBlob::new(MediaType::ImageConfig, b"{}".to_vec()),
            vec![Arc::new(statement)],
            &BTreeMap::new(),
            None,
            None,
        )
        .unwrap(),
    );
    let attestation_entry = ChildEntry {
        platform: Some(Platform::unknown()),
        annotations: BTreeMap::from([
            (
                "vnd.docker.reference.type".to_string(),
                "attestation-manifest".to_string(),
            ),
            (
                "vnd.docker.reference.digest".to_string(),
                amd64.digest().to_string(),
            ),
        ]),
    };
    let entry = |platform: &str| ChildEntry {
        platform: Some(platform.parse().unwrap()),
        ..Default::default()
    };
    Manifest::Index(
        Index::from_children(
            vec![
                (amd64, entry("linux/amd64")),
                (arm64, entry("linux/arm64/v8")),
                (attestation, attestation_entry),
            ],
            &BTreeMap::new(),
        )
        .unwrap(),
    )
}

fn metadata() -> BuildMetadata {
    let mut web = ImageMetadata::from_manifest(
        "web",
        Some(REPOSITORY),
        &multi_platform(),
        &["main".to_string(), "sha-3f2a9c1".to_string()],
    )
    .unwrap();
    web.status = ImageStatus::Pushed;
    let mut worker = ImageMetadata::from_manifest(
        "worker",
        Some("registry.example:5000/org/worker"),
        &image(&[b"worker"]),
        &["main".to_string()],
    )
    .unwrap();
    worker.status = ImageStatus::Skipped;
    BuildMetadata {
        dry_run: false,
        run: run(),
        images: vec![web, worker],
        timings_ms: BTreeMap::from([("layers".to_string(), 1520), ("push".to_string(), 310)]),
        scan: None,
    }
}

/// A push to `main` on GitHub Actions, run 9001, that took 42 seconds.
fn run() -> RunMetadata {
    let variables = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_REF", "refs/heads/main"),
        ("GITHUB_SHA", "3f2a9c1d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"),
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REPOSITORY", "org/web"),
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
    RunMetadata::new(
        &environment,
        &revision,
        lookup,
        1_700_000_000,
        1_700_000_042,
    )
}

/// The same build as a pull request's dry run: nothing pushed.
fn dry_run_metadata() -> BuildMetadata {
    let mut metadata = metadata();
    metadata.dry_run = true;
    for image in &mut metadata.images {
        image.status = ImageStatus::DryRun;
    }
    metadata
}

fn jq(filter: &str, file: &Path) -> String {
    common::run(Command::new("jq").arg("-r").arg(filter).arg(file))
        .trim()
        .to_string()
}

/// Parses a `GITHUB_OUTPUT` file as the runner does: `key=value` lines and
/// `key<<DELIMITER` blocks ending at a line equal to the delimiter.
fn parse_github_output(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let heredoc = line.find("<<");
        let equals = line.find('=');
        match (heredoc, equals) {
            (Some(position), equals) if equals.is_none_or(|equals| position < equals) => {
                let key = &line[..position];
                let delimiter = &line[position + 2..];
                let mut value = Vec::new();
                loop {
                    let next = lines.next().expect("delimiter line before end of file");
                    if next == delimiter {
                        break;
                    }
                    value.push(next);
                }
                out.push((key.to_string(), value.join("\n")));
            }
            (_, Some(position)) => {
                out.push((
                    line[..position].to_string(),
                    line[position + 1..].to_string(),
                ));
            }
            _ => panic!("malformed output line {line:?}"),
        }
    }
    out
}

#[test]
fn metadata_file_round_trips_and_jq_reads_it() {
    let metadata = metadata();
    let web = &metadata.images[0];
    assert_eq!(web.platforms.len(), 2);
    assert_eq!(web.platforms[0].layers, 2);
    assert_eq!(web.platforms[1].platform, "linux/arm64/v8");
    assert_eq!(web.attestations.len(), 1);
    assert_eq!(
        web.attestations[0].subject.as_ref(),
        Some(&web.platforms[0].digest)
    );

    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("metadata.json");
    metadata.write(&path).unwrap();
    let read: BuildMetadata = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(read, metadata);

    assert_eq!(jq(".images[0].digest", &path), web.digest.to_string());
    assert_eq!(jq(".images[0].platforms[0].layers", &path), "2");
    assert_eq!(
        jq(".images[0].attestations[0].predicate_types[0]", &path),
        "https://slsa.dev/provenance/v1"
    );
    assert_eq!(jq(".images[1].platforms[0].platform", &path), "linux/amd64");
    assert_eq!(jq(".timings_ms.layers", &path), "1520");

    // Writing again replaces the file rather than appending.
    metadata.write(&path).unwrap();
    let again: BuildMetadata = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(again, metadata);
}

#[test]
fn github_outputs_append_and_parse_back() {
    let metadata = metadata();
    let outputs = GitHubOutputs::from_metadata(&metadata).unwrap().unwrap();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("github_output");
    // Another step wrote before us; its output must survive.
    std::fs::write(&path, "earlier=1\n").unwrap();
    outputs.write(&path).unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let parsed = parse_github_output(&text);
    let keys: Vec<&str> = parsed.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "earlier", "digest", "image", "tags", "version", "labels", "images", "dry-run",
            "metadata"
        ]
    );
    let value = |key: &str| {
        parsed
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
            .unwrap()
    };
    let web = &metadata.images[0];
    assert_eq!(value("digest"), web.digest.to_string());
    assert_eq!(value("image"), format!("{REPOSITORY}@{}", web.digest));
    assert_eq!(
        value("tags").lines().collect::<Vec<_>>(),
        [
            format!("{REPOSITORY}:main"),
            format!("{REPOSITORY}:sha-3f2a9c1"),
            "registry.example:5000/org/worker:main".to_string(),
        ]
    );
    let embedded: BuildMetadata = serde_json::from_str(&value("metadata")).unwrap();
    assert_eq!(embedded, metadata);

    // Same outputs, same bytes: the delimiter is not random.
    let second = directory.path().join("second");
    outputs.write(&second).unwrap();
    assert!(text.ends_with(&std::fs::read_to_string(&second).unwrap()));
}

#[test]
fn no_images_no_outputs() {
    assert!(
        GitHubOutputs::from_metadata(&BuildMetadata::default())
            .unwrap()
            .is_none()
    );
    assert!(GitLabDotenv::from_metadata(&BuildMetadata::default()).is_none());
}

#[test]
fn step_summary_has_a_table_per_image_and_a_pull_line() {
    let metadata = metadata();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("summary.md");
    step_summary(&path, &metadata).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let web = &metadata.images[0];

    assert!(text.contains("### web\n"), "{text}");
    assert!(text.contains("### worker\n"), "{text}");
    let rows: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("| linux/"))
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    for row in &rows {
        assert_eq!(row.matches('|').count(), 5, "four cells: {row}");
    }
    let amd64 = &web.platforms[0];
    assert!(
        rows[0].contains(&amd64.digest.to_string()) && rows[0].ends_with(" 2 |"),
        "{}",
        rows[0]
    );
    assert!(rows[1].starts_with("| linux/arm64/v8 |"), "{}", rows[1]);
    assert!(text.contains(&format!("docker pull {REPOSITORY}@{}", web.digest)));
    assert!(text.contains(&format!("`{REPOSITORY}:sha-3f2a9c1`")));
    assert!(text.contains("https://slsa.dev/provenance/v1"));

    // The summary is appended, like every step's.
    let worker_only = BuildMetadata {
        images: metadata.images[1..].to_vec(),
        ..metadata.clone()
    };
    step_summary(&path, &worker_only).unwrap();
    let appended = std::fs::read_to_string(&path).unwrap();
    assert!(appended.starts_with(&text));
    assert_eq!(appended.matches("### worker").count(), 2);
}

#[test]
fn gitlab_dotenv_is_read_by_a_shell() {
    let metadata = metadata();
    let dotenv = GitLabDotenv::from_metadata(&metadata).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("build.env");
    std::fs::write(&path, "STALE=1\n").unwrap();
    dotenv.write(&path).unwrap();
    let output = common::run(
        Command::new("bash")
            .arg("-c")
            .arg(r#"set -eu -a; . "$1"; printf '%s\n' "$HOIST_DIGEST" "$HOIST_IMAGE" "$HOIST_TAGS" "${STALE:-gone}""#)
            .arg("bash")
            .arg(&path),
    );
    let web = &metadata.images[0];
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines[0], web.digest.to_string());
    assert_eq!(lines[1], format!("{REPOSITORY}@{}", web.digest));
    assert_eq!(
        lines[2],
        format!("{REPOSITORY}:main,{REPOSITORY}:sha-3f2a9c1,registry.example:5000/org/worker:main")
    );
    assert_eq!(lines[3], "gone", "the report replaces the file");

    let mut broken = dotenv.clone();
    broken.tags = vec!["a\nb".to_string()];
    let error = broken.write(&path).unwrap_err();
    assert!(error.to_string().contains("HOIST_TAGS"), "{error}");
}

#[test]
fn rollback_file_round_trips() {
    let previous = sha256_digest(b"previous manifest");
    let new = sha256_digest(b"new manifest");
    let records = vec![
        RollbackRecord::new(REPOSITORY, "main", Some(previous.clone()), new.clone()),
        RollbackRecord::new(REPOSITORY, "v2", None, new.clone()),
    ];
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("rollback.json");
    write_rollback_file(&path, &records).unwrap();
    let read: Vec<RollbackRecord> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(read, records);
    assert_eq!(
        jq(".[0].restore_command", &path),
        format!("hoist tag {REPOSITORY}@{previous} main")
    );
    assert_eq!(jq(".[1].restore_command", &path), "null");
    assert_eq!(jq(".[1].previous_digest", &path), "null");
    assert_eq!(jq(".[0].new_digest", &path), new.to_string());

    let missing = directory.path().join("no/such/dir/rollback.json");
    let error = write_rollback_file(&missing, &records).unwrap_err();
    assert!(error.to_string().contains("no/such/dir"), "{error}");
}

/// The value of `key` in a `GITHUB_OUTPUT` file.
fn github_output(path: &Path, key: &str) -> String {
    parse_github_output(&std::fs::read_to_string(path).unwrap())
        .into_iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
        .unwrap_or_else(|| panic!("no output {key}"))
}

#[test]
fn images_output_carries_every_image_with_its_status() {
    let metadata = metadata();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("github_output");
    GitHubOutputs::from_metadata(&metadata)
        .unwrap()
        .unwrap()
        .write(&path)
        .unwrap();

    let images_path = directory.path().join("images.json");
    std::fs::write(&images_path, github_output(&path, "images")).unwrap();
    assert_eq!(jq("keys | join(\",\")", &images_path), "web,worker");
    let web = &metadata.images[0];
    assert_eq!(jq(".web.digest", &images_path), web.digest.to_string());
    assert_eq!(
        jq(".web.image", &images_path),
        format!("{REPOSITORY}@{}", web.digest)
    );
    assert_eq!(
        jq(".web.tags | join(\" \")", &images_path),
        format!("{REPOSITORY}:main {REPOSITORY}:sha-3f2a9c1")
    );
    assert_eq!(jq(".web.status", &images_path), "pushed");
    assert_eq!(jq(".web.version", &images_path), "1.2.3");
    assert_eq!(jq(".web.labels.team", &images_path), "core");
    assert_eq!(jq(".worker.status", &images_path), "skipped");
    assert_eq!(
        jq(".worker.image", &images_path),
        format!(
            "registry.example:5000/org/worker@{}",
            metadata.images[1].digest
        )
    );

    // The first image's version and labels, as metadata-action gives them.
    assert_eq!(github_output(&path, "version"), "1.2.3");
    assert_eq!(
        github_output(&path, "labels"),
        "org.opencontainers.image.version=1.2.3\nteam=core"
    );
    assert_eq!(github_output(&path, "dry-run"), "false");
}

#[test]
fn a_dry_run_is_marked_in_every_output() {
    let metadata = dry_run_metadata();
    let directory = tempfile::tempdir().unwrap();

    let output = directory.path().join("github_output");
    GitHubOutputs::from_metadata(&metadata)
        .unwrap()
        .unwrap()
        .write(&output)
        .unwrap();
    assert_eq!(github_output(&output, "dry-run"), "true");
    let images: serde_json::Value =
        serde_json::from_str(&github_output(&output, "images")).unwrap();
    assert_eq!(images["web"]["status"], "dry-run");
    assert_eq!(images["worker"]["status"], "dry-run");

    let summary = directory.path().join("summary.md");
    step_summary(&summary, &metadata).unwrap();
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.starts_with("**Dry run: nothing was pushed.**"),
        "{text}"
    );
    assert_eq!(text.matches("Status: dry-run").count(), 2, "{text}");
    assert!(!text.contains("docker pull"), "nothing to pull: {text}");

    let file = directory.path().join("metadata.json");
    metadata.write(&file).unwrap();
    assert_eq!(jq(".dry_run", &file), "true");
    assert_eq!(
        jq("[.images[].status] | unique | join(\",\")", &file),
        "dry-run"
    );

    let dotenv = directory.path().join("build.env");
    GitLabDotenv::from_metadata(&metadata)
        .unwrap()
        .write(&dotenv)
        .unwrap();
    let lines = common::run(
        Command::new("bash")
            .arg("-c")
            .arg(r#"set -eu -a; . "$1"; printf '%s\n' "$HOIST_DRY_RUN" "$HOIST_WEB_STATUS""#)
            .arg("bash")
            .arg(&dotenv),
    );
    assert_eq!(lines, "true\ndry-run\n");
}

#[test]
fn metadata_file_records_the_run() {
    let metadata = metadata();
    assert_eq!(metadata.run.events, [TagEvent::Branch]);
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("metadata.json");
    metadata.write(&path).unwrap();
    assert_eq!(
        jq(".run.revision", &path),
        "3f2a9c1d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
    );
    assert_eq!(jq(".run.ref", &path), "refs/heads/main");
    assert_eq!(jq(".run.event", &path), "push");
    assert_eq!(jq(".run.events | join(\",\")", &path), "branch");
    assert_eq!(jq(".run.provider", &path), "github-actions");
    assert_eq!(jq(".run.run_id", &path), "9001");
    assert_eq!(
        jq(".run.run_url", &path),
        "https://github.com/org/web/actions/runs/9001"
    );
    assert_eq!(jq(".run.started", &path), "2023-11-14T22:13:20Z");
    assert_eq!(jq(".run.finished", &path), "2023-11-14T22:14:02Z");
    assert_eq!(jq(".dry_run", &path), "false");
    // Per image: status, digest, tags, sizes and platforms.
    assert_eq!(jq(".images[0].status", &path), "pushed");
    assert_eq!(jq(".images[1].status", &path), "skipped");
    assert_eq!(
        jq(".images[0].platforms | map(.platform) | join(\",\")", &path),
        "linux/amd64,linux/arm64/v8"
    );
    let sizes: Vec<u64> = jq(".images[0].platforms | map(.size) | join(\",\")", &path)
        .split(',')
        .map(|size| size.parse().unwrap())
        .collect();
    assert!(sizes.iter().all(|size| *size > 0), "{sizes:?}");
    assert_eq!(jq(".images[0].version", &path), "1.2.3");
}

#[test]
fn gitlab_dotenv_lists_every_image() {
    let metadata = metadata();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("build.env");
    GitLabDotenv::from_metadata(&metadata)
        .unwrap()
        .write(&path)
        .unwrap();
    let output = common::run(
        Command::new("bash")
            .arg("-c")
            .arg(
                r#"set -eu -a; . "$1"; printf '%s\n' "$HOIST_IMAGES" "$HOIST_WEB_DIGEST" "$HOIST_WEB_TAGS" "$HOIST_WEB_VERSION" "$HOIST_WORKER_IMAGE" "$HOIST_WORKER_STATUS" "$HOIST_DRY_RUN""#,
            )
            .arg("bash")
            .arg(&path),
    );
    let (web, worker) = (&metadata.images[0], &metadata.images[1]);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines[0], "web,worker");
    assert_eq!(lines[1], web.digest.to_string());
    assert_eq!(
        lines[2],
        format!("{REPOSITORY}:main,{REPOSITORY}:sha-3f2a9c1")
    );
    assert_eq!(lines[3], "1.2.3");
    assert_eq!(
        lines[4],
        format!("registry.example:5000/org/worker@{}", worker.digest)
    );
    assert_eq!(lines[5], "skipped");
    assert_eq!(lines[6], "false");
}
