//! `[defaults]` through the binary: two images share platforms, config and
//! `skip-unchanged` from the defaults, each keeping what it sets itself, and
//! a changed default rebuilds only the image that uses it.
use crate::common::hoist::{Layout, hoist};
use serde_json::Value;
use std::fs;
use std::path::Path;

fn spec(default_user: &str) -> String {
    format!(
        r#"[defaults]
platforms = ["linux/amd64", "linux/arm64"]
source-date-epoch = 1700000000
skip-unchanged = true

[defaults.config]
user = "{default_user}"
env = {{ LANG = "C.UTF-8", MODE = "prod" }}
labels = {{ team = "core" }}

[[image]]
name = "web"
[image.config]
env = {{ MODE = "web" }}
[[image.layer]]
source = "app"
target = "/app"

[[image]]
name = "worker"
platforms = ["linux/arm64"]
[image.config]
user = "1000:1000"
labels = {{ role = "worker" }}
[[image.layer]]
source = "app"
target = "/srv"
"#
    )
}

/// The configs of every platform of `tag`, by platform.
fn configs(layout: &Layout, tag: &str) -> Vec<(String, Value)> {
    layout
        .platform_manifests(tag)
        .into_iter()
        .map(|(platform, manifest)| {
            let config = layout.json(layout.json(&manifest)["config"]["digest"].as_str().unwrap());
            (platform, config["config"].clone())
        })
        .collect()
}

fn build(project: &Path, layout: &Path) -> String {
    hoist(["build", "--no-cache", "-o"])
        .arg(format!("oci:{}", layout.display()))
        .current_dir(project)
        .run()
        .success()
        .stdout
}

#[test]
fn two_images_share_defaults_and_each_keeps_its_own_keys() {
    let project = tempfile::tempdir().unwrap();
    fs::create_dir_all(project.path().join("app")).unwrap();
    fs::write(project.path().join("app/message.txt"), "hello\n").unwrap();
    fs::write(project.path().join("hoist.toml"), spec("65532:65532")).unwrap();
    let layout_path = project.path().join("layout");

    let first = build(project.path(), &layout_path);
    // Nothing is published yet: both are built.
    assert!(first.contains("web linux/amd64 sha256:"), "{first}");
    assert!(first.contains("worker linux/arm64 sha256:"), "{first}");
    let layout = Layout::open(&layout_path);

    let web = configs(&layout, "web");
    let platforms: Vec<&str> = web.iter().map(|(platform, _)| platform.as_str()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    for (_, config) in &web {
        assert_eq!(config["User"], "65532:65532");
        let env: Vec<&str> = config["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry.as_str().unwrap())
            .collect();
        assert!(env.contains(&"LANG=C.UTF-8"), "{env:?}");
        assert!(env.contains(&"MODE=web"), "the image's entry wins: {env:?}");
        assert_eq!(config["Labels"]["team"], "core");
    }

    let worker = configs(&layout, "worker");
    assert_eq!(worker.len(), 1, "its own platforms replace the defaults'");
    let (platform, config) = &worker[0];
    assert_eq!(platform, "linux/arm64");
    assert_eq!(config["User"], "1000:1000");
    assert_eq!(config["Labels"]["team"], "core", "labels merge");
    assert_eq!(config["Labels"]["role"], "worker");
    assert!(
        config["Env"]
            .as_array()
            .unwrap()
            .contains(&Value::from("MODE=prod"))
    );

    // Nothing changed: both are skipped, as the shared `skip-unchanged` asks.
    let again = build(project.path(), &layout_path);
    assert!(again.contains("web unchanged"), "{again}");
    assert!(again.contains("worker unchanged"), "{again}");

    // A default only `web` uses changes: `web` is rebuilt, `worker`, which
    // sets its own `user`, is not.
    fs::write(project.path().join("hoist.toml"), spec("65534:65534")).unwrap();
    let changed = build(project.path(), &layout_path);
    assert!(changed.contains("web changed since"), "{changed}");
    assert!(changed.contains("worker unchanged"), "{changed}");
    let layout = Layout::open(&layout_path);
    assert_eq!(configs(&layout, "web")[0].1["User"], "65534:65534");
}

#[test]
fn a_bad_default_fails_with_its_position_in_the_spec() {
    let project = tempfile::tempdir().unwrap();
    fs::create_dir_all(project.path().join("app")).unwrap();
    fs::write(
        project.path().join("hoist.toml"),
        "[defaults]\ncompression = \"brotli\"\n\n[[image]]\nname = \"a\"\n[[image.layer]]\nsource = \"app\"\n",
    )
    .unwrap();
    hoist(["build", "--dry-run"])
        .current_dir(project.path())
        .run()
        .failure(1)
        .stderr_mentions(&["hoist.toml:2:15", "`compression`", "gzip, zstd or none"]);
}
