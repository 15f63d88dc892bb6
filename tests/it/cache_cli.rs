//! `hoist cache dir` and `hoist cache prune --max-size`, through the binary:
//! where the cache is, that a prune within the limit keeps every layer, that
//! a prune below it empties the cache, and that the next build misses.

use crate::common::hoist::hoist;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

fn project(root: &Path) -> PathBuf {
    let files = root.join("files");
    fs::create_dir_all(&files).unwrap();
    for index in 0..10 {
        fs::write(
            files.join(format!("{index}.txt")),
            format!("line {index}\n").repeat(1000 * (index + 1)),
        )
        .unwrap();
    }
    let spec = root.join("hoist.toml");
    fs::write(
        &spec,
        "[[image]]\nname = \"cached\"\nsource-date-epoch = 1700000000\n\n\
         [[image.layer]]\nsource = \"files\"\ntarget = \"/files\"\n",
    )
    .unwrap();
    spec
}

/// Builds into a fresh layout; returns whether the one layer was a cache hit.
fn build(spec: &Path, cache: &Path, out: &Path) -> bool {
    let _ = fs::remove_dir_all(out);
    let output = hoist(["build", "--json", "-f"])
        .arg(spec)
        .arg("-o")
        .arg(format!("oci:{}", out.display()))
        .env("HOIST_CACHE", cache)
        .run()
        .success();
    let layers: Vec<bool> = output
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["event"] == "layer-done")
        .map(|event| event["cached"].as_bool().expect("cached flag"))
        .collect();
    assert_eq!(layers.len(), 1, "{}", output.stdout);
    layers[0]
}

fn blob_count(cache: &Path) -> usize {
    fs::read_dir(cache.join("blobs"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .count()
}

fn prune(cache: &Path, size: &str) -> Value {
    let output = hoist(["cache", "prune", "--json", "--max-size", size])
        .env("HOIST_CACHE", cache)
        .run()
        .success();
    serde_json::from_str(output.lines()[0]).expect("a JSON report")
}

#[test]
fn cache_dir_follows_hoist_cache_then_xdg() {
    let work = tempfile::tempdir().unwrap();
    let explicit = work.path().join("explicit");
    let output = hoist(["cache", "dir"])
        .env("HOIST_CACHE", &explicit)
        .run()
        .success();
    assert_eq!(output.stdout.trim(), explicit.display().to_string());

    let xdg = work.path().join("xdg");
    let output = hoist(["cache", "dir"])
        .env("HOIST_CACHE", "")
        .env("XDG_CACHE_HOME", &xdg)
        .run()
        .success();
    assert_eq!(
        output.stdout.trim(),
        xdg.join("hoist").display().to_string()
    );
}

#[test]
fn prune_keeps_what_fits_and_removes_what_does_not() {
    let work = tempfile::tempdir().unwrap();
    let spec = project(work.path());
    let cache = work.path().join("cache");
    let out = work.path().join("out");

    assert!(!build(&spec, &cache, &out), "a fresh cache misses");
    assert!(build(&spec, &cache, &out), "the same files hit");
    assert_eq!(blob_count(&cache), 1);

    let report = prune(&cache, "2G");
    assert_eq!(report["removed_entries"], 0, "{report}");
    assert_eq!(report["removed_bytes"], 0, "{report}");
    let remaining = report["remaining_bytes"].as_u64().unwrap();
    assert!(remaining > 0, "{report}");
    assert!(
        build(&spec, &cache, &out),
        "a prune within the limit keeps the layer"
    );

    let report = prune(&cache, "0");
    assert_eq!(report["removed_entries"], 1, "{report}");
    assert_eq!(
        report["removed_bytes"].as_u64(),
        Some(remaining),
        "{report}"
    );
    assert_eq!(report["remaining_bytes"], 0, "{report}");
    assert_eq!(blob_count(&cache), 0);
    assert!(
        !build(&spec, &cache, &out),
        "after the prune the layer is built again"
    );
}

#[test]
fn prune_refuses_a_size_it_cannot_read() {
    let work = tempfile::tempdir().unwrap();
    let output = hoist(["cache", "prune", "--max-size", "lots"])
        .env("HOIST_CACHE", work.path())
        .run();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stderr.contains("500M or 2G"), "{}", output.stderr);
}
