//! The layer cache that lives in a registry (`--cache-repo`, `--cache-from`,
//! `--cache-to`), against real docker-registry instances: a fresh copy of a
//! project (new inodes and mtimes, an empty `$HOIST_CACHE`) takes every
//! layer from the cache repository and uploads only its config; one changed
//! file rebuilds only its layer; an entry whose blob the target registry
//! does not have, or whose claimed size is wrong, is not used; a read-only
//! cache is never written.

use crate::common::hoist::{Layout, hoist_in};
use crate::common::registry::TestRegistry;
use crate::common::registry_images::noise;
use crate::common::run;
use hoist::image::BytesBlob;
use hoist::registry::{Access, ClientOptions, RegistryClient};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A project of three layers: 3 MiB of data, a library tree, an app tree.
fn project(root: &Path) -> PathBuf {
    fs::create_dir_all(root.join("data")).unwrap();
    fs::write(root.join("data/blob.bin"), noise(11, 3 << 20)).unwrap();
    for (layer, count) in [("lib", 12), ("app", 6)] {
        fs::create_dir_all(root.join(layer).join("etc")).unwrap();
        for index in 0..count {
            fs::write(
                root.join(layer).join("etc").join(format!("{index}.conf")),
                format!("{layer} setting {index}\n").repeat(index + 1),
            )
            .unwrap();
        }
    }
    fs::write(
        root.join("hoist.toml"),
        r#"[[image]]
name = "cached"
source-date-epoch = 1700000000

[[image.layer]]
name = "data"
source = "data"
target = "/data"

[[image.layer]]
name = "lib"
source = "lib"
target = "/lib"

[[image.layer]]
name = "app"
source = "app"
target = "/app"
"#,
    )
    .unwrap();
    root.join("hoist.toml")
}

/// A copy as a fresh checkout makes it: new inodes, new mtimes.
fn fresh_copy(source: &Path, destination: &Path) -> PathBuf {
    let parent = destination.parent().unwrap();
    fs::create_dir_all(parent).unwrap();
    run(Command::new("cp").arg("-r").arg(source).arg(destination));
    destination.join("hoist.toml")
}

fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

/// Builds `spec` with `arguments`, a layer cache of its own under `work`,
/// and `--json`; the events.
fn build(work: &Path, spec: &Path, arguments: &[&str]) -> (Vec<Value>, String) {
    let output = hoist_in(work, ["build", "--json", "-f"])
        .arg(spec)
        .args(arguments)
        .run()
        .success();
    (events(&output.stdout), output.stderr)
}

/// Layer name → (`from_registry`, `cached`).
fn layer_sources(events: &[Value]) -> Vec<(String, bool, bool)> {
    let mut layers: Vec<(String, bool, bool)> = events
        .iter()
        .filter(|event| event["event"] == "layer-done")
        .map(|event| {
            (
                event["layer"].as_str().unwrap().to_string(),
                event["from_registry"].as_bool().unwrap(),
                event["cached"].as_bool().unwrap(),
            )
        })
        .collect();
    layers.sort();
    layers
}

fn uploaded_blobs(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|event| event["event"] == "blob" && event["outcome"] == "uploaded")
        .map(|event| event["digest"].as_str().unwrap().to_string())
        .collect()
}

fn recorded(events: &[Value]) -> usize {
    events
        .iter()
        .filter(|event| event["event"] == "layer-cache-recorded")
        .count()
}

fn done_digest(events: &[Value]) -> String {
    events
        .iter()
        .find(|event| event["event"] == "done")
        .and_then(|event| event["digest"].as_str())
        .expect("a done event")
        .to_string()
}

fn config_digests(registry: &TestRegistry, repository: &str, tag: &str) -> Vec<String> {
    let reference = format!("{}/{repository}:{tag}", registry.host());
    let raw = crate::common::registry::skopeo_raw(&reference, &["--tls-verify=false"]);
    let top: Value = serde_json::from_slice(&raw).unwrap();
    // A single platform is pushed as its manifest, not an index over it.
    let Some(children) = top["manifests"].as_array() else {
        return vec![top["config"]["digest"].as_str().unwrap().to_string()];
    };
    children
        .iter()
        .map(|child| {
            let digest = child["digest"].as_str().unwrap();
            let manifest = crate::common::registry::skopeo_raw(
                &format!("{}/{repository}@{digest}", registry.host()),
                &["--tls-verify=false"],
            );
            let manifest: Value = serde_json::from_slice(&manifest).unwrap();
            manifest["config"]["digest"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_fresh_checkout_takes_its_layers_from_the_cache_repository() {
    let registry = TestRegistry::start();
    let host = registry.host();
    let cache = format!("{host}/team/cache");
    let work = tempfile::tempdir().unwrap();
    let spec = project(&work.path().join("laptop/project"));

    let (first, _) = build(
        &work.path().join("laptop"),
        &spec,
        &[
            "-o",
            &format!("docker://{host}/team/app:1"),
            "--cache-repo",
            &cache,
        ],
    );
    assert!(
        layer_sources(&first)
            .iter()
            .all(|(_, registry, _)| !registry)
    );
    assert_eq!(recorded(&first), 3, "every layer is recorded");

    // Another runner: another directory, new mtimes and inodes, an empty
    // local cache; the cache repository named by the environment. The image
    // goes to another repository, so the layers are mounted.
    let runner = work.path().join("runner");
    let fresh = fresh_copy(
        &work.path().join("laptop/project"),
        &runner.join("checkout"),
    );
    let output = hoist_in(&runner, ["build", "--json", "-f"])
        .arg(&fresh)
        .args(["-o", &format!("docker://{host}/team/app-pr:1")])
        .env("HOIST_CACHE_REPO", &cache)
        .run()
        .success();
    let second = events(&output.stdout);
    assert!(
        layer_sources(&second)
            .iter()
            .all(|(_, registry, cached)| *registry && *cached),
        "{}",
        output.stdout
    );
    assert_eq!(done_digest(&second), done_digest(&first));
    assert_eq!(
        uploaded_blobs(&second),
        config_digests(&registry, "team/app-pr", "1"),
        "only the config is uploaded: {}",
        output.stdout
    );
    assert_eq!(recorded(&second), 0, "nothing new to record");

    // One file changes: only its layer is built and uploaded.
    fs::write(runner.join("checkout/app/etc/0.conf"), "changed\n").unwrap();
    let (third, _) = build(
        &runner,
        &fresh,
        &[
            "-o",
            &format!("docker://{host}/team/app-pr:2"),
            "--cache-repo",
            &cache,
        ],
    );
    let sources = layer_sources(&third);
    assert_eq!(
        sources,
        vec![
            ("app".to_string(), false, false),
            ("data".to_string(), true, true),
            ("lib".to_string(), true, true),
        ]
    );
    let uploaded = uploaded_blobs(&third);
    assert_eq!(uploaded.len(), 2, "the app layer and the config: {third:?}");
    assert_eq!(recorded(&third), 1);

    // Read-only, as a fork's pull request: another change is built, and
    // nothing is written to the cache repository.
    fs::write(runner.join("checkout/app/etc/1.conf"), "changed too\n").unwrap();
    let cache_writes = |registry: &TestRegistry| {
        registry.count_requests("PUT", "/v2/team/cache/")
            + registry.count_requests("POST", "/v2/team/cache/")
    };
    let writes_before = cache_writes(&registry);
    let (fourth, _) = build(
        &work.path().join("fork"),
        &fresh,
        &[
            "-o",
            &format!("docker://{host}/team/app-pr:3"),
            "--cache-from",
            &cache,
        ],
    );
    assert_eq!(recorded(&fourth), 0);
    assert_eq!(cache_writes(&registry), writes_before, "{}", registry.log());
    assert_eq!(
        layer_sources(&fourth)
            .iter()
            .filter(|(_, registry, _)| *registry)
            .count(),
        2
    );

    // A team bounds the cache with hoist prune over the entries' tags; the
    // entries carry the time they were recorded, so it works on a plain
    // distribution registry too.
    let entries = crate::common::registry::skopeo_tags(&cache);
    assert_eq!(entries.len(), 4, "{entries:?}");
    hoist_in(
        &runner,
        ["prune", &cache, "--match", "hoist-layer-*", "--keep", "1"],
    )
    .run()
    .success();
    let kept = crate::common::registry::skopeo_tags(&cache);
    assert!(!kept.is_empty() && kept.len() < 4, "{kept:?}");
}

#[test]
fn a_local_output_fetches_cached_layers_and_checks_them() {
    let registry = TestRegistry::start();
    let host = registry.host();
    let cache = format!("{host}/cache");
    let work = tempfile::tempdir().unwrap();
    let spec = project(&work.path().join("one/project"));
    let layout_one = work.path().join("one/layout");
    let (first, _) = build(
        &work.path().join("one"),
        &spec,
        &[
            "-o",
            &format!("oci:{}:v1", layout_one.display()),
            "--cache-to",
            &cache,
        ],
    );
    assert_eq!(recorded(&first), 3);

    let fresh = fresh_copy(
        &work.path().join("one/project"),
        &work.path().join("two/project"),
    );
    let layout_two = work.path().join("two/layout");
    let (second, _) = build(
        &work.path().join("two"),
        &fresh,
        &[
            "-o",
            &format!("oci:{}:v1", layout_two.display()),
            "--cache-from",
            &cache,
        ],
    );
    assert!(
        layer_sources(&second)
            .iter()
            .all(|(_, registry, _)| *registry)
    );
    assert_eq!(done_digest(&second), done_digest(&first));
    let layout = Layout::open(&layout_two);
    let manifests = layout.platform_manifests("v1");
    // Every blob was downloaded, checked against its digest, and the diff_ids
    // the entries claimed are those of the bytes.
    assert_eq!(layout.verify_diff_ids(&manifests[0].1), 3);
}

/// The tag and manifest of the cache entry whose layer is `digest`.
fn entry_for(registry: &TestRegistry, repository: &str, digest: &str) -> (String, Value) {
    let tags = crate::common::registry::skopeo_tags(&format!("{}/{repository}", registry.host()));
    for tag in tags {
        let raw = crate::common::registry::skopeo_raw(
            &format!("{}/{repository}:{tag}", registry.host()),
            &["--tls-verify=false"],
        );
        let manifest: Value = serde_json::from_slice(&raw).unwrap();
        if manifest["layers"][0]["digest"] == digest {
            return (tag, manifest);
        }
    }
    panic!("no cache entry for {digest}");
}

fn put_entry(registry: &TestRegistry, repository: &str, tag: &str, manifest: &Value) {
    let client = RegistryClient::new(ClientOptions::default()).unwrap();
    let reference = format!("{}/{repository}", registry.host()).parse().unwrap();
    let bytes = serde_json::to_vec(manifest).unwrap();
    client
        .repository(&reference, Access::PUSH)
        .put_manifest(
            &BytesBlob::new("application/vnd.oci.image.manifest.v1+json", bytes),
            tag,
        )
        .unwrap();
}

#[test]
fn a_cache_entry_is_a_claim_the_build_checks() {
    let cache_registry = TestRegistry::start();
    let other_registry = TestRegistry::start();
    let cache = format!("{}/cache", cache_registry.host());
    let work = tempfile::tempdir().unwrap();
    let spec = project(&work.path().join("one/project"));
    let (first, _) = build(
        &work.path().join("one"),
        &spec,
        &[
            "-o",
            &format!("docker://{}/app:1", cache_registry.host()),
            "--cache-repo",
            &cache,
        ],
    );

    // The target registry has none of the blobs and cannot mount from
    // another registry: every layer is built.
    let fresh = fresh_copy(
        &work.path().join("one/project"),
        &work.path().join("two/project"),
    );
    let (elsewhere, _) = build(
        &work.path().join("two"),
        &fresh,
        &[
            "-o",
            &format!("docker://{}/app:1", other_registry.host()),
            "--cache-from",
            &cache,
        ],
    );
    assert!(
        layer_sources(&elsewhere)
            .iter()
            .all(|(_, registry, _)| !registry)
    );
    assert_eq!(done_digest(&elsewhere), done_digest(&first));

    // A hostile entry: the data layer's entry claims another size. It is
    // refused with a warning and the layer built; the image is right.
    let data_digest = first
        .iter()
        .find(|event| event["event"] == "layer-done" && event["layer"] == "data")
        .and_then(|event| event["digest"].as_str())
        .unwrap()
        .to_string();
    let (tag, mut manifest) = entry_for(&cache_registry, "cache", &data_digest);
    let size = manifest["layers"][0]["size"].as_u64().unwrap();
    manifest["layers"][0]["size"] = Value::from(size + 1);
    put_entry(&cache_registry, "cache", &tag, &manifest);
    let third = fresh_copy(
        &work.path().join("one/project"),
        &work.path().join("three/project"),
    );
    let output = hoist_in(&work.path().join("three"), ["build", "--json", "-f"])
        .arg(&third)
        .args(["-o", &format!("docker://{}/app:2", cache_registry.host())])
        .args(["--cache-from", &cache])
        .run()
        .success();
    let hostile = events(&output.stdout);
    let sources = layer_sources(&hostile);
    assert_eq!(sources[0], ("app".to_string(), true, true));
    assert_eq!(sources[1], ("data".to_string(), false, false));
    assert!(
        hostile.iter().any(|event| event["event"] == "warning"
            && event["message"]
                .as_str()
                .is_some_and(|message| message.contains(&data_digest)
                    && message.contains(&format!("{} bytes", size + 1)))),
        "{}",
        output.stdout
    );
    assert_eq!(done_digest(&hostile), done_digest(&first));

    // An entry that is not hoist's artifact is refused too.
    manifest["layers"][0]["size"] = Value::from(size);
    manifest["artifactType"] = Value::from("application/vnd.example.other");
    put_entry(&cache_registry, "cache", &tag, &manifest);
    let (other_type, _) = build(
        &work.path().join("four"),
        &fresh_copy(
            &work.path().join("one/project"),
            &work.path().join("four/project"),
        ),
        &[
            "-o",
            &format!("docker://{}/app:3", cache_registry.host()),
            "--cache-from",
            &cache,
        ],
    );
    assert!(other_type.iter().any(|event| {
        event["event"] == "warning"
            && event["message"]
                .as_str()
                .is_some_and(|message| message.contains("artifact type"))
    }));
    assert_eq!(done_digest(&other_type), done_digest(&first));
}
