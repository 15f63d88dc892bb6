//! Layers across commits: two commits that change one file of one layer,
//! each built and pushed from a fresh clone with the default settings (the
//! epoch is each commit's time). Every other layer, git-tracked or a build
//! output made after the clone, keeps its digest, and the second push
//! uploads only the changed layer and the config.
use crate::common;

use crate::common::hoist::{decompress, hoist_in};
use crate::common::registry::{TestRegistry, skopeo_raw};
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::Command;

/// A time older than both commits: a build output file keeps it.
const OLD_TIME: u64 = 1_500_000_000;

fn git(directory: &Path, arguments: &[&str], time: u64) {
    common::git_at(directory, arguments, time as i64);
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A repository with three layers' sources: `static` and `app` tracked,
/// `dist` ignored (a build step makes it after the clone).
fn origin(repository: &str) -> tempfile::TempDir {
    let origin = tempfile::tempdir().unwrap();
    let root = origin.path();
    git(root, &["init", "--quiet", "--initial-branch=main"], 0);
    write(
        &root.join("hoist.toml"),
        &format!(
            "[[image]]\nname = \"web\"\nrepository = \"{repository}\"\n\
             [[image.layer]]\nname = \"static\"\nsource = \"static\"\ntarget = \"/srv/static\"\n\
             [[image.layer]]\nname = \"dist\"\nsource = \"dist\"\ntarget = \"/srv/dist\"\n\
             [[image.layer]]\nname = \"app\"\nsource = \"app\"\ntarget = \"/srv/app\"\n"
        ),
    );
    write(&root.join(".gitignore"), "dist/\n");
    write(&root.join("static/index.html"), "<h1>hello</h1>\n");
    write(&root.join("static/css/site.css"), "body {}\n");
    write(&root.join("app/main.txt"), "version one\n");
    git(root, &["add", "-A"], 0);
    git(root, &["commit", "--quiet", "-m", "first"], 1_700_000_000);
    origin
}

/// A fresh clone of `origin` at its HEAD, with the build output made now
/// and one output file dated before either commit.
fn clone(origin: &Path, parent: &Path, name: &str) -> std::path::PathBuf {
    let clone = parent.join(name);
    common::run(
        Command::new("git")
            .args(["clone", "--quiet"])
            .arg(origin)
            .arg(&clone)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null"),
    );
    write(&clone.join("dist/bundle.js"), "console.log('built');\n");
    write(&clone.join("dist/vendor/lib.js"), "/* vendored */\n");
    common::run(
        Command::new("touch")
            .arg("-d")
            .arg(format!("@{OLD_TIME}"))
            .arg(clone.join("dist/vendor/lib.js")),
    );
    clone
}

/// Pushes the clone's image; returns the platform manifest and the digests
/// of the blobs this push uploaded, from its `--json` events.
fn push(clone: &Path, work: &Path, repository: &str) -> (Value, Vec<String>) {
    let output = hoist_in(work, ["build", "--push", "--no-cache", "--json"])
        .current_dir(clone)
        .run()
        .success();
    let events: Vec<Value> = output
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let uploaded = events
        .iter()
        .filter(|event| event["event"] == "blob" && event["outcome"] == "uploaded")
        .map(|event| event["digest"].as_str().unwrap().to_string())
        .collect();
    let done = events
        .iter()
        .find(|event| event["event"] == "done")
        .expect("a done event");
    let top = done["digest"].as_str().unwrap();
    let tls = ["--tls-verify=false"];
    // One platform and no attestations: the manifest itself is at the top.
    let manifest: Value =
        serde_json::from_slice(&skopeo_raw(&format!("{repository}@{top}"), &tls)).unwrap();
    assert!(manifest["layers"].is_array(), "{manifest}");
    (manifest, uploaded)
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Each entry's path and mtime in the layer blob the registry stored.
fn entry_times(registry: &TestRegistry, layer: &Value) -> Vec<(String, u64)> {
    let digest: oci_spec::image::Digest = layer["digest"].as_str().unwrap().parse().unwrap();
    let bytes = fs::read(registry.blob_path(&digest)).unwrap();
    let tar = decompress(layer["mediaType"].as_str().unwrap(), &bytes);
    let mut archive = tar::Archive::new(tar.as_slice());
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            (path, entry.header().mtime().unwrap())
        })
        .collect()
}

#[test]
fn layers_whose_files_did_not_change_keep_their_digests_across_commits() {
    let registry = TestRegistry::start();
    let repository = format!("{}/org/web", registry.host());
    let work = tempfile::tempdir().unwrap();
    let origin = origin(&repository);

    let first_clone = clone(origin.path(), work.path(), "first");
    let (first, _) = push(&first_clone, work.path(), &repository);

    write(&origin.path().join("app/main.txt"), "version two\n");
    git(
        origin.path(),
        &["commit", "--quiet", "-am", "second"],
        1_700_086_400,
    );
    let second_clone = clone(origin.path(), work.path(), "second");
    let uploads_before = registry.count_requests("POST", "/blobs/uploads/");
    let (second, uploaded) = push(&second_clone, work.path(), &repository);

    let (before, after) = (layer_digests(&first), layer_digests(&second));
    assert_eq!(before.len(), 3);
    assert_eq!(
        before[..2],
        after[..2],
        "static (tracked) and dist (a build output) did not change"
    );
    assert_ne!(before[2], after[2], "app/main.txt changed");
    // The epoch is still each commit's time, in the config.
    assert_ne!(first["config"]["digest"], second["config"]["digest"]);

    // Only the changed layer and the config went up; the manifests are PUTs.
    let config = second["config"]["digest"].as_str().unwrap().to_string();
    let mut expected = vec![after[2].clone(), config];
    expected.sort();
    let mut uploaded = uploaded;
    uploaded.sort();
    assert_eq!(uploaded, expected);
    assert_eq!(
        registry.count_requests("POST", "/blobs/uploads/") - uploads_before,
        2,
        "the registry saw two uploads: the layer and the config"
    );

    // Times newer than the epoch are one second past 1970; the vendored
    // file, older than the epoch, keeps its time.
    let times = entry_times(&registry, &second["layers"][1]);
    assert!(
        times.contains(&("srv/dist/vendor/lib.js".to_string(), OLD_TIME)),
        "{times:?}"
    );
    assert!(
        times.contains(&("srv/dist/bundle.js".to_string(), 1)),
        "{times:?}"
    );
    assert!(
        times
            .iter()
            .all(|(path, time)| *time == 1 || path == "srv/dist/vendor/lib.js"),
        "{times:?}"
    );
}
