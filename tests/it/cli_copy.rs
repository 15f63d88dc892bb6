//! `hoist copy` between every pair of transports (layout, OCI archive,
//! registry; docker archive for one platform), checked with skopeo, tar and
//! umoci: digests unchanged, every platform and the attestation manifest kept.

use crate::common;

use crate::common::hoist::{
    Layout, MEDIA_MANIFEST, expected_hello, fixture, hoist, sha256_hex, tool, unpack,
};
use crate::common::registry::TestRegistry;
use crate::common::run;
use crate::common::tree::assert_same_tree;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes `bytes` as a blob of the layout; returns its descriptor.
fn write_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let hex = sha256_hex(bytes);
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
    json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()})
}

/// Builds the hello fixture into `work/source` (tag `hello`) and adds to its
/// index an attestation manifest for linux/amd64, the way BuildKit lists
/// one: platform unknown/unknown, an in-toto layer. Returns the layout.
fn source_with_attestation(work: &Path) -> Layout {
    let directory = work.join("source");
    hoist(["build", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("oci:{}:hello", directory.display()))
        .env("HOIST_CACHE", work.join("cache"))
        .run()
        .success();
    let layout = Layout::open(&directory);
    let index_descriptor = layout.tagged("hello");
    let mut index = layout.json(index_descriptor["digest"].as_str().unwrap());
    let amd64 = layout
        .platform_manifests("hello")
        .into_iter()
        .find(|(platform, _)| platform == "linux/amd64")
        .expect("an amd64 manifest")
        .1;

    let statement = serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [{"name": "hello", "digest": {"sha256": amd64.trim_start_matches("sha256:")}}],
        "predicate": {"spdxVersion": "SPDX-2.3"},
    }))
    .unwrap();
    let mut layer = write_blob(&directory, "application/vnd.in-toto+json", &statement);
    layer["annotations"] = json!({"in-toto.io/predicate-type": "https://spdx.dev/Document"});
    let config = serde_json::to_vec(&json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    }))
    .unwrap();
    let config = write_blob(
        &directory,
        "application/vnd.oci.image.config.v1+json",
        &config,
    );
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config,
        "layers": [layer],
    }))
    .unwrap();
    let mut attestation = write_blob(&directory, MEDIA_MANIFEST, &manifest);
    attestation["platform"] = json!({"architecture": "unknown", "os": "unknown"});
    attestation["annotations"] = json!({
        "vnd.docker.reference.digest": amd64,
        "vnd.docker.reference.type": "attestation-manifest",
    });
    index["manifests"].as_array_mut().unwrap().push(attestation);
    let index_bytes = serde_json::to_vec(&index).unwrap();
    let new_index = write_blob(&directory, common::hoist::MEDIA_INDEX, &index_bytes);

    let mut top = layout.index_json();
    for descriptor in top["manifests"].as_array_mut().unwrap() {
        if descriptor["annotations"]["org.opencontainers.image.ref.name"] == "hello" {
            descriptor["digest"] = new_index["digest"].clone();
            descriptor["size"] = new_index["size"].clone();
        }
    }
    std::fs::write(
        directory.join("index.json"),
        serde_json::to_vec(&top).unwrap(),
    )
    .unwrap();
    layout
}

/// Every digest reachable from the tag, each blob checked on the way.
fn reachable(layout: &Layout, tag: &str) -> BTreeSet<String> {
    layout
        .walk(tag)
        .into_iter()
        .map(|node| node.digest)
        .collect()
}

/// What a destination must hold: the same top digest, the same blobs, both
/// platforms and the attestation.
struct Expected {
    digest: String,
    blobs: BTreeSet<String>,
}

fn check_layout(layout: &Layout, tag: &str, expected: &Expected, what: &str) {
    assert_eq!(layout.tagged_digest(tag), expected.digest, "{what}");
    assert_eq!(reachable(layout, tag), expected.blobs, "{what}");
    let platforms: BTreeSet<String> = layout
        .platform_manifests(tag)
        .into_iter()
        .map(|(platform, _)| platform)
        .collect();
    assert_eq!(
        platforms,
        ["linux/amd64", "linux/arm64", "unknown/unknown"]
            .into_iter()
            .map(str::to_string)
            .collect(),
        "{what}"
    );
}

/// Unpacks an OCI archive with tar and checks the layout inside.
fn check_archive(archive: &Path, tag: &str, expected: &Expected, work: &Path) {
    let directory = work.join(format!(
        "unpacked-{}",
        archive.file_name().unwrap().to_string_lossy()
    ));
    std::fs::create_dir_all(&directory).unwrap();
    tool(
        "tar",
        &[
            "-xf".as_ref(),
            archive.as_os_str(),
            "-C".as_ref(),
            directory.as_os_str(),
        ],
    );
    check_layout(
        &Layout::open(&directory),
        tag,
        expected,
        &archive.display().to_string(),
    );
}

/// Reads a registry tag back with skopeo (every blob checked) and checks it.
fn check_registry(reference: &str, expected: &Expected, work: &Path) {
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]));
    assert_eq!(
        format!("sha256:{}", sha256_hex(raw.as_bytes())),
        expected.digest,
        "{reference}"
    );
    let directory = work.join(format!("read-{}", reference.replace(['/', ':'], "_")));
    run(Command::new("skopeo").args([
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:read", directory.display()),
    ]));
    check_layout(&Layout::open(directory), "read", expected, reference);
}

fn copy(work: &Path, source: &str, destination: &str) -> common::hoist::HoistOutput {
    let output = hoist(["copy", source, destination])
        .env("HOIST_CACHE", work.join("cache"))
        .env("DOCKER_CONFIG", work.join("docker"))
        .run()
        .success();
    assert!(
        output
            .stdout
            .contains(&format!("copied {source} to {destination}")),
        "{}",
        output.stdout
    );
    output
}

#[test]
fn copy_between_layouts_archives_and_registries_keeps_everything() {
    let registry = TestRegistry::start();
    let host = registry.host();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let source = source_with_attestation(work);
    let expected = Expected {
        digest: source.tagged_digest("hello"),
        blobs: reachable(&source, "hello"),
    };
    let at = |name: &str| work.join(name).display().to_string();
    let steps: Vec<(String, String)> = vec![
        // layout → registry → layout → archive → registry → archive → layout
        (
            format!("oci:{}:hello", at("source")),
            format!("docker://{host}/copy/a:1"),
        ),
        (
            format!("docker://{host}/copy/a:1"),
            format!("oci:{}:t", at("l2")),
        ),
        (
            format!("oci:{}:t", at("l2")),
            format!("oci-archive:{}:t", at("a3.tar")),
        ),
        (
            format!("oci-archive:{}:t", at("a3.tar")),
            format!("docker://{host}/copy/b:1"),
        ),
        (
            format!("docker://{host}/copy/b:1"),
            format!("oci-archive:{}:t", at("a5.tar")),
        ),
        (
            format!("oci-archive:{}:t", at("a5.tar")),
            format!("oci:{}:t", at("l6")),
        ),
        // and each transport to itself
        (format!("oci:{}:t", at("l6")), format!("oci:{}:t", at("l7"))),
        (
            format!("oci-archive:{}:t", at("a3.tar")),
            format!("oci-archive:{}:t", at("a8.tar")),
        ),
        (
            format!("docker://{host}/copy/a:1"),
            format!("docker://{host}/mirror/c:1"),
        ),
    ];
    for (from, to) in &steps {
        let output = copy(work, from, to);
        assert_eq!(output.last_line_digest(), expected.digest, "{from} → {to}");
        if let Some(reference) = to.strip_prefix("docker://") {
            check_registry(reference, &expected, work);
        } else if let Some(rest) = to.strip_prefix("oci-archive:") {
            check_archive(Path::new(rest.trim_end_matches(":t")), "t", &expected, work);
        } else if let Some(rest) = to.strip_prefix("oci:") {
            check_layout(
                &Layout::open(rest.trim_end_matches(":t")),
                "t",
                &expected,
                to,
            );
        }
    }

    // A copy to where the image already is sends no blob.
    let again = copy(
        work,
        &format!("oci:{}:hello", at("source")),
        &format!("docker://{host}/copy/a:1"),
    );
    assert!(
        again.stdout.contains(": 0 blobs uploaded"),
        "{}",
        again.stdout
    );
}

fn config_digest(layout: &Layout, manifest: &str) -> String {
    layout.json(manifest)["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A docker archive holds one platform and no manifest: the config and the
/// layers' contents survive, checked by digest and by unpacking.
#[test]
fn docker_archive_holds_one_platform_and_keeps_config_and_layers() {
    let registry = TestRegistry::start();
    let host = registry.host();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let source = source_with_attestation(work);
    let manifests = source.platform_manifests("hello");
    let manifest_of = |platform: &str| {
        manifests
            .iter()
            .find(|(candidate, _)| candidate == platform)
            .unwrap()
            .1
            .clone()
    };
    let archive = work.join("hello.tar");
    let source_location = format!("oci:{}:hello", source.dir.display());
    let archive_location = format!("docker-archive:{}:hello:amd64", archive.display());

    // The whole index does not fit; the error says what to do.
    hoist(["copy", &source_location, &archive_location])
        .run()
        .failure(1)
        .stderr_mentions(&["--platform"]);

    hoist([
        "copy",
        "--platform",
        "linux/amd64",
        &source_location,
        &archive_location,
    ])
    .run()
    .success();
    let inspected: Value =
        serde_json::from_str(&run(Command::new("skopeo")
            .args(["inspect", &format!("docker-archive:{}", archive.display())])))
        .unwrap();
    assert_eq!(inspected["Architecture"], "amd64");

    // Back into a layout: the config digest and the unpacked tree are the source's.
    let back = work.join("back");
    hoist(["copy", &archive_location])
        .arg(format!("oci:{}:back", back.display()))
        .run()
        .success();
    let back = Layout::open(back);
    let back_manifest = back.tagged_digest("back");
    assert_eq!(
        config_digest(&back, &back_manifest),
        config_digest(&source, &manifest_of("linux/amd64"))
    );
    assert_eq!(back.verify_diff_ids(&back_manifest), 2);
    assert_eq!(back.tagged("back")["mediaType"], MEDIA_MANIFEST);
    let bundle = work.join("bundle-back");
    unpack(&format!("{}:back", back.dir.display()), &bundle);
    assert_same_tree(&expected_hello("amd64"), &bundle.join("rootfs"));

    // Into a registry, and from a registry into a docker archive.
    let target = format!("{host}/from-archive:1");
    let pushed = hoist(["copy", &archive_location, &format!("docker://{target}")])
        .run()
        .success()
        .last_line_digest();
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]));
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), pushed);
    hoist([
        "copy",
        &source_location,
        &format!("docker://{host}/multi:1"),
    ])
    .run()
    .success();
    let arm_archive: PathBuf = work.join("arm.tar");
    hoist([
        "copy",
        "--platform",
        "linux/arm64",
        &format!("docker://{host}/multi:1"),
        &format!("docker-archive:{}:hello:arm64", arm_archive.display()),
    ])
    .run()
    .success();
    // skopeo reads it (and would rewrite the config on conversion, so the
    // config is checked in the archive itself).
    let inspected: Value = serde_json::from_str(&run(Command::new("skopeo").args([
        "inspect",
        &format!("docker-archive:{}", arm_archive.display()),
    ])))
    .unwrap();
    assert_eq!(inspected["Architecture"], "arm64");
    let unpacked = work.join("arm");
    std::fs::create_dir_all(&unpacked).unwrap();
    tool(
        "tar",
        &[
            "-xf".as_ref(),
            arm_archive.as_os_str(),
            "-C".as_ref(),
            unpacked.as_os_str(),
        ],
    );
    let listing: Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).unwrap()).unwrap();
    let arm_config = config_digest(&source, &manifest_of("linux/arm64"));
    assert_eq!(
        listing[0]["Config"],
        format!("{}.json", arm_config.trim_start_matches("sha256:"))
    );
    assert_eq!(listing[0]["RepoTags"], json!(["hello:arm64"]));
}
