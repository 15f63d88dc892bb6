//! Shared test support: the hoist binary, schema validation, real tools.
#![allow(dead_code)]

pub mod hoist;
pub mod tree;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Validates JSON files against one of the official schemas in `tests/schemas`
/// (e.g. `oci/image-manifest-schema.json`), panicking with the errors.
pub fn assert_valid_json(schema: &str, documents: &[&Path]) {
    let output = Command::new("python3")
        .arg(root().join("tests/validate_schema.py"))
        .arg(schema)
        .args(documents)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "schema {schema} rejects {documents:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Validates JSON bytes (written to a temporary file) against a schema.
pub fn assert_valid_json_bytes(schema: &str, bytes: &[u8]) {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), bytes).expect("write temp file");
    assert_valid_json(schema, &[file.path()]);
}

/// Runs a command, panicking with its output if it fails; returns stdout.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("running {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `args` in an unpacked bundle with runc (no terminal, its state
/// under `work`, at most two minutes); returns what it printed.
pub fn run_in_bundle(bundle: &Path, work: &Path, name: &str, args: &[&str]) -> String {
    let config_path = bundle.join("config.json");
    let mut config = hoist::read_json(&config_path);
    config["process"]["args"] = serde_json::json!(args);
    config["process"]["terminal"] = serde_json::json!(false);
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let state = work.join("runc-state");
    std::fs::create_dir_all(&state).unwrap();
    run(Command::new("timeout")
        .arg("120")
        .arg("runc")
        .arg("--root")
        .arg(&state)
        .arg("run")
        .arg("--bundle")
        .arg(bundle)
        .arg(format!("{name}-{}", std::process::id())))
}

/// Makes `directory` a git repository with every file in it staged, as a
/// checkout is: git then records each file's mode (0644 or 0755), which
/// hoist takes instead of the mode on disk. Nothing is committed, so no
/// revision reaches the image's labels.
pub fn stage_with_git(directory: &Path) {
    run(Command::new("git")
        .arg("-C")
        .arg(directory)
        .args(["init", "--quiet"]));
    run(Command::new("git")
        .arg("-C")
        .arg(directory)
        .args(["add", "--all"]));
}

/// Runs git in `directory` with a clean configuration, a fixed identity and
/// commit time `time` (seconds since 1970), so commits are the same on every
/// machine; returns its trimmed output.
pub fn git_at(directory: &Path, arguments: &[&str], time: i64) -> String {
    let date = format!("@{time} +0000");
    run(Command::new("git")
        .arg("-C")
        .arg(directory)
        .args(arguments)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date))
    .trim()
    .to_string()
}

/// The warnings an observer was told, in order.
pub fn warnings(recorder: &::hoist::progress::Recorder) -> Vec<String> {
    recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|event| match event {
            ::hoist::progress::Event::Warning { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// Fails listing every disagreement with a reference implementation, one a
/// line, when there is any.
pub fn assert_agrees(disagreements: &[String]) {
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

pub mod certificates;
pub mod ecr;
pub mod github_api;
pub mod hostile;
pub mod http;
pub mod hub_api;
pub mod images;
pub mod proxy;
pub mod raw_http;
pub mod referrers_api;
pub mod registry;
pub mod registry_images;
pub mod release;
pub mod tunnel;

/// What each installed Debian package's purl `upstream` qualifier must be,
/// by package name, from dpkg-query's own source fields (of the database
/// under `admin_directory`, else this machine's): the source package, and
/// `source@version` when the source's version differs, as syft writes it.
pub fn dpkg_upstreams(
    admin_directory: Option<&std::path::Path>,
) -> std::collections::BTreeMap<String, Option<String>> {
    let mut command = Command::new("dpkg-query");
    if let Some(directory) = admin_directory {
        command.arg(format!("--admindir={}", directory.display()));
    }
    command.args([
        "-W",
        "-f",
        "${Package}\t${Version}\t${source:Package}\t${source:Version}\n",
    ]);
    run(&mut command)
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let upstream = if fields[1] != fields[3] {
                Some(format!("{}@{}", fields[2], fields[3]))
            } else if fields[0] != fields[2] {
                Some(fields[2].to_string())
            } else {
                None
            };
            (fields[0].to_string(), upstream)
        })
        .collect()
}

/// One qualifier of a purl, percent-decoded.
pub fn purl_qualifier(purl: &str, key: &str) -> Option<String> {
    let parsed: packageurl::PackageUrl = purl
        .parse()
        .unwrap_or_else(|error| panic!("{purl}: {error}"));
    parsed.qualifiers().get(key).map(|value| value.to_string())
}
