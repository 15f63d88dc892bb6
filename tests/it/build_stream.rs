//! `hoist build` with a registry as its only output pushes each layer while
//! it is compressed. Checked against a real docker-registry: the pushed
//! image is the one a layout build writes, byte for byte (pulled back with
//! skopeo), the large layer went up in chunks during the build, a layer
//! smaller than one streamed piece is left to publish (which finds it when
//! the registry has it), and a cached layer (nothing to stream) is still
//! pushed by the publish that follows.

use crate::common::hoist::{Layout, hoist, sha256_hex};
use crate::common::registry::TestRegistry;
use crate::common::run;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bytes a compressor cannot shrink, from a fixed seed: the layer is bigger
/// than a 5 MiB upload chunk, so the stream PATCHes before its PUT.
fn noise(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(size);
    while bytes.len() < size {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        bytes.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    bytes.truncate(size);
    bytes
}

/// A spec with two layers: 20 MB of noise, and a few text files.
fn project(root: &Path) -> PathBuf {
    let data = root.join("data");
    let app = root.join("app");
    fs::create_dir_all(&data).unwrap();
    fs::create_dir_all(app.join("etc")).unwrap();
    fs::write(data.join("noise.bin"), noise(20 << 20, 7)).unwrap();
    for index in 0..20 {
        fs::write(
            app.join("etc").join(format!("file-{index}.conf")),
            format!("setting = {index}\n").repeat(index + 1),
        )
        .unwrap();
    }
    let spec = root.join("hoist.toml");
    fs::write(
        &spec,
        r#"[[image]]
name = "streamed"
source-date-epoch = 1700000000

[[image.layer]]
name = "data"
source = "data"
target = "/data"

[[image.layer]]
name = "app"
source = "app"
target = "/app"
"#,
    )
    .unwrap();
    spec
}

fn json_events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

fn output_event(events: &[Value]) -> &Value {
    events
        .iter()
        .find(|event| event["event"] == "output")
        .expect("an output event")
}

fn done_digest(events: &[Value]) -> String {
    events
        .iter()
        .find(|event| event["event"] == "done")
        .and_then(|event| event["digest"].as_str())
        .expect("a done event with the digest")
        .to_string()
}

#[test]
fn streamed_push_is_the_image_a_layout_build_writes() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let spec = project(work.path());
    let destination = format!("docker://{}/stream/app:v1", registry.host());

    let pushed = hoist(["build", "--no-cache", "--json", "-f"])
        .arg(&spec)
        .args(["-o", &destination])
        .run()
        .success();
    let events = json_events(&pushed.stdout);
    let output = output_event(&events);
    // The 20 MB layer went up while it was built; publish counts it as
    // uploaded without sending it again. The small layer was done before a
    // stream could help: publish sends it, and the config.
    assert_eq!(output["streamed"], 1, "{}", pushed.stdout);
    assert_eq!(output["existed"], 0, "{}", pushed.stdout);
    assert_eq!(
        output["uploaded"], 3,
        "a streamed layer, a small layer and the config: {}",
        pushed.stdout
    );
    let layer_puts = registry.count_requests("PUT", "/blobs/uploads");
    assert_eq!(
        layer_puts,
        3,
        "one closing PUT per blob, none sent twice:\n{}",
        registry.log()
    );
    let uploads_opened = registry.count_requests("POST", "/blobs/uploads");
    assert_eq!(
        uploads_opened,
        3,
        "one upload per blob:\n{}",
        registry.log()
    );
    assert!(
        registry.count_requests("PATCH", "/blobs/uploads") >= 1,
        "the 20 MB layer is sent in chunks:\n{}",
        registry.log()
    );

    // Built again without the cache: the large layer streams again (its
    // digest is known only once it is compressed), the small layer and the
    // config are found in the registry and not sent.
    let again = hoist(["build", "--no-cache", "--json", "-f"])
        .arg(&spec)
        .args(["-o", &destination])
        .run()
        .success();
    let again_events = json_events(&again.stdout);
    let again_output = output_event(&again_events);
    assert_eq!(again_output["streamed"], 1, "{}", again.stdout);
    assert_eq!(again_output["existed"], 2, "{}", again.stdout);
    assert_eq!(
        registry.count_requests("POST", "/blobs/uploads"),
        uploads_opened + 1,
        "only the large layer is uploaded again:\n{}",
        registry.log()
    );
    assert_eq!(done_digest(&again_events), done_digest(&events));

    let layout_dir = work.path().join("layout");
    let local = hoist(["build", "--no-cache", "--json", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}:v1", layout_dir.display()))
        .run()
        .success();
    let index_digest = done_digest(&json_events(&local.stdout));
    assert_eq!(done_digest(&events), index_digest);
    let layout = Layout::open(&layout_dir);
    assert_eq!(layout.tagged_digest("v1"), index_digest);

    // What the registry holds, pulled back by skopeo, is the layout's image
    // blob for blob.
    let pulled_dir = work.path().join("pulled");
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--multi-arch",
        "all",
        "--src-tls-verify=false",
        &destination,
        &format!("oci:{}:v1", pulled_dir.display()),
    ]));
    let pulled = Layout::open(&pulled_dir);
    assert_eq!(pulled.tagged_digest("v1"), index_digest);
    let manifests = layout.platform_manifests("v1");
    assert_eq!(manifests.len(), 1);
    let manifest = layout.json(&manifests[0].1);
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2);
    for layer in layers {
        let digest = layer["digest"].as_str().unwrap();
        assert!(
            pulled.blob(digest) == layout.blob(digest),
            "layer {digest} differs in the registry"
        );
    }
}

#[test]
fn a_cached_layer_is_pushed_by_publish_instead() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let spec = project(work.path());
    let cache = work.path().join("cache");
    let layout_dir = work.path().join("layout");

    // Fill the cache with a local build.
    hoist(["build", "-q", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}:v1", layout_dir.display()))
        .env("HOIST_CACHE", &cache)
        .run()
        .success();

    let destination = format!("docker://{}/cached/app:v1", registry.host());
    let pushed = hoist(["build", "--json", "-f"])
        .arg(&spec)
        .args(["-o", &destination])
        .env("HOIST_CACHE", &cache)
        .run()
        .success();
    let events = json_events(&pushed.stdout);
    let cached = events
        .iter()
        .filter(|event| event["event"] == "layer-done" && event["cached"] == true)
        .count();
    assert_eq!(cached, 2, "{}", pushed.stdout);
    let output = output_event(&events);
    assert_eq!(output["streamed"], 0, "{}", pushed.stdout);
    assert_eq!(output["uploaded"], 3, "{}", pushed.stdout);
    assert_eq!(
        done_digest(&events),
        Layout::open(&layout_dir).tagged_digest("v1")
    );
    // The registry serves it: skopeo reads by tag the manifest the build
    // named (one platform, no attestations: the image manifest itself).
    let raw =
        run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &destination]));
    assert_eq!(
        format!("sha256:{}", sha256_hex(raw.as_bytes())),
        done_digest(&events),
        "{raw}"
    );
    assert!(
        raw.contains("application/vnd.oci.image.manifest.v1+json"),
        "{raw}"
    );
}
