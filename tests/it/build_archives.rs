//! `hoist build` into oci-archive and docker-archive files, read back by
//! skopeo (inspect and copy), GNU tar and umoci.
use crate::common;

use crate::common::hoist::{
    Layout, MEDIA_INDEX, expected_hello, fixture, hoist, read_digest_file, unpack, unpack_platform,
};
use crate::common::tree::{Tree, report};
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::Command;

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn skopeo_json(args: &[&str], image: &str) -> Value {
    let stdout = common::run(
        Command::new("skopeo")
            .arg("--insecure-policy")
            .args(args)
            .arg(image),
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("skopeo {args:?} {image} printed no JSON: {error}"))
}

fn untar(archive: &Path, destination: &Path) {
    fs::create_dir_all(destination).unwrap();
    common::run(
        Command::new("tar")
            .arg("-xf")
            .arg(archive)
            .arg("-C")
            .arg(destination),
    );
}

fn diff_ids(config: &Value) -> Vec<String> {
    config["rootfs"]["diff_ids"]
        .as_array()
        .expect("config has rootfs.diff_ids")
        .iter()
        .map(|id| id.as_str().expect("diff_id is a string").to_string())
        .collect()
}

#[test]
fn oci_archive_is_a_layout_in_a_tar_that_skopeo_reads() {
    let work = temp();
    let archive = work.path().join("hello.tar");
    let digest_file = work.path().join("digest");
    let output = hoist(["build", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("oci-archive:{}", archive.display()))
        .arg("--digest-file")
        .arg(&digest_file)
        .current_dir(work.path())
        .run()
        .success();
    let digest = output.last_line_digest();
    assert_eq!(read_digest_file(&digest_file), digest);

    // Inside: an OCI layout whose index.json tags the printed index.
    let extracted = work.path().join("extracted");
    untar(&archive, &extracted);
    let layout = Layout::open(&extracted);
    assert_eq!(layout.tagged_digest("hello"), digest);
    assert_eq!(layout.tagged("hello")["mediaType"], MEDIA_INDEX);
    common::assert_valid_json(
        "oci/image-index-schema.json",
        &[&extracted.join("index.json")],
    );
    let manifests = layout.platform_manifests("hello");
    assert_eq!(manifests.len(), 2, "{manifests:?}");
    for (_, manifest_digest) in &manifests {
        assert_eq!(layout.verify_diff_ids(manifest_digest), 2);
    }

    // skopeo inspects each platform, and copies all of it unchanged.
    let image = format!("oci-archive:{}:hello", archive.display());
    for architecture in ["amd64", "arm64"] {
        let inspect = skopeo_json(&["--override-arch", architecture, "inspect"], &image);
        assert_eq!(inspect["Architecture"], architecture);
        assert_eq!(inspect["Os"], "linux");
    }
    let copy = work.path().join("copy");
    common::run(
        Command::new("skopeo")
            .args(["--insecure-policy", "copy", "--all"])
            .arg(&image)
            .arg(format!("oci:{}:copied", copy.display())),
    );
    assert_eq!(
        Layout::open(&copy).tagged_digest("copied"),
        digest,
        "skopeo copy --all keeps the index byte for byte"
    );
    let bundle = unpack_platform(&image, "arm64", work.path());
    let differences = expected_hello("arm64").differences(&Tree::scan(&bundle.join("rootfs")));
    assert!(differences.is_empty(), "{}", report(&differences));
}

#[test]
fn oci_archive_tag_comes_from_the_location() {
    let work = temp();
    let archive = work.path().join("tagged.tar");
    let output = hoist(["build", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("oci-archive:{}:v2", archive.display()))
        .current_dir(work.path())
        .run()
        .success();
    let extracted = work.path().join("extracted");
    untar(&archive, &extracted);
    let layout = Layout::open(&extracted);
    assert_eq!(layout.tags(), ["v2"]);
    assert_eq!(layout.tagged_digest("v2"), output.last_line_digest());
}

#[test]
fn docker_archive_with_a_platform_loads_in_skopeo() {
    let work = temp();
    let archive = work.path().join("hello-docker.tar");
    let digest_file = work.path().join("digest");
    let output = hoist(["build", "--platform", "linux/amd64", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("docker-archive:{}", archive.display()))
        .arg("--digest-file")
        .arg(&digest_file)
        .current_dir(work.path())
        .run()
        .success();
    let digest = output.last_line_digest();
    assert_eq!(read_digest_file(&digest_file), digest);
    let lines = output.image_lines();
    assert_eq!(lines.len(), 1, "{}", output.stdout);
    assert_eq!(lines[0].platform, "linux/amd64");
    assert_eq!(
        lines[0].digest, digest,
        "the manifest digest is the top digest"
    );

    // docker's format: manifest.json naming NAME:latest.
    let extracted = work.path().join("extracted");
    untar(&archive, &extracted);
    let manifest = common::hoist::read_json(&extracted.join("manifest.json"));
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["hello:latest"]));
    assert_eq!(manifest[0]["Layers"].as_array().map(Vec::len), Some(2));

    let image = format!("docker-archive:{}", archive.display());
    let inspect = skopeo_json(&["inspect"], &image);
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(2));
    let environment = inspect["Env"].to_string();
    assert!(environment.contains("GREETING=hello"), "{environment}");

    // The same layers as the layout build of the same spec.
    let config = skopeo_json(&["inspect", "--config"], &image);
    let layout_dir = work.path().join("layout");
    hoist(["build", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("oci:{}", layout_dir.display()))
        .current_dir(work.path())
        .run()
        .success();
    let layout = Layout::open(&layout_dir);
    let (_, amd64) = layout
        .platform_manifests("hello")
        .into_iter()
        .find(|(platform, _)| platform == "linux/amd64")
        .expect("layout has linux/amd64");
    let layout_config = layout.json(layout.json(&amd64)["config"]["digest"].as_str().unwrap());
    assert_eq!(diff_ids(&config), diff_ids(&layout_config));

    // skopeo copies it out, and it unpacks to the sources.
    let copy = work.path().join("copy");
    common::run(
        Command::new("skopeo")
            .args(["--insecure-policy", "copy"])
            .arg(&image)
            .arg(format!("oci:{}:image", copy.display())),
    );
    let bundle = work.path().join("bundle");
    unpack(&format!("{}:image", copy.display()), &bundle);
    let differences = expected_hello("amd64").differences(&Tree::scan(&bundle.join("rootfs")));
    assert!(differences.is_empty(), "{}", report(&differences));
}

#[test]
fn docker_archive_reference_comes_from_the_location() {
    let work = temp();
    let archive = work.path().join("named.tar");
    hoist(["build", "--platform", "linux/arm64", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!(
            "docker-archive:{}:registry.example:5000/team/hello:1.0",
            archive.display()
        ))
        .current_dir(work.path())
        .run()
        .success();
    let extracted = work.path().join("extracted");
    untar(&archive, &extracted);
    let manifest = common::hoist::read_json(&extracted.join("manifest.json"));
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["registry.example:5000/team/hello:1.0"])
    );
    let inspect = skopeo_json(
        &["inspect"],
        &format!("docker-archive:{}", archive.display()),
    );
    assert_eq!(inspect["Architecture"], "arm64");
}

#[test]
fn docker_archive_of_two_platforms_needs_a_platform() {
    let work = temp();
    let archive = work.path().join("both.tar");
    let before = common::tree::snapshot(work.path());
    hoist(["build", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("docker-archive:{}", archive.display()))
        .current_dir(work.path())
        .run()
        .failure(1)
        .stderr_mentions(&["--platform", "docker-archive"]);
    assert!(!archive.exists(), "no output file after an error");
    common::tree::assert_unchanged(work.path(), &before);
}
