//! CI output files written to temporary files and read back the way their
//! consumers read them: `jq` for JSON, `bash` for the GitLab dotenv, and
//! GitHub's documented `key<<DELIMITER` syntax for `GITHUB_OUTPUT`.
use crate::common;

use hoist::ci::{
    BuildMetadata, GitHubOutputs, GitLabDotenv, ImageMetadata, RollbackRecord, step_summary,
    write_rollback_file,
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
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
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
    let web = ImageMetadata::from_manifest(
        "web",
        Some(REPOSITORY),
        &multi_platform(),
        &["main".to_string(), "sha-3f2a9c1".to_string()],
    )
    .unwrap();
    let worker = ImageMetadata::from_manifest(
        "worker",
        Some("registry.example:5000/org/worker"),
        &image(&[b"worker"]),
        &["main".to_string()],
    )
    .unwrap();
    BuildMetadata {
        images: vec![web, worker],
        timings_ms: BTreeMap::from([("layers".to_string(), 1520), ("push".to_string(), 310)]),
    }
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
    assert_eq!(keys, ["earlier", "digest", "image", "tags", "metadata"]);
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
    step_summary(&path, &metadata.images).unwrap();
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
    step_summary(&path, &metadata.images[1..]).unwrap();
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
