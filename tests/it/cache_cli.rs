//! `hoist cache dir` and `hoist cache prune --max-size`, through the binary:
//! where the cache is, that a prune within the limit keeps every layer, that
//! a prune below it empties the cache, and that the next build misses; that
//! a prune removes the scan indexes of replaced downloads and older formats
//! and keeps the one scans use.

use crate::common::hoist::hoist;
use crate::common::root;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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

/// Scans an empty root filesystem against `database`; returns whether the
/// database's index came from the cache.
fn scan(rootfs: &Path, database: &Path, cache: &Path) -> bool {
    let output = hoist(["scan", "--json"])
        .arg(rootfs)
        .arg("--db")
        .arg(database)
        .env("HOIST_CACHE", cache)
        .run()
        .success();
    let report: Value = serde_json::from_str(&output.stdout).expect("a JSON report");
    report["database"]["cached"]
        .as_bool()
        .unwrap_or_else(|| panic!("{report}"))
}

fn scan_indexes(cache: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(cache.join("scan"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

fn set_modified(path: &Path, time: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

#[test]
fn prune_removes_the_scan_indexes_no_scan_uses() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let rootfs = work.path().join("rootfs");
    fs::create_dir_all(&rootfs).unwrap();
    let download = work.path().join("Debian.json");
    let record = root().join("tests/data/scan/osv/hand-written/DEBIAN-CVE-2024-3651.json");
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();

    // Yesterday's download, scanned ten days ago.
    fs::copy(&record, &download).unwrap();
    set_modified(&download, now - 11 * day);
    assert!(!scan(&rootfs, &download, &cache), "a new download is read");
    let [stale] = &scan_indexes(&cache)[..] else {
        panic!("one index: {:?}", scan_indexes(&cache))
    };
    let stale = stale.clone();
    set_modified(&stale, now - 10 * day);

    // Today's download replaces it (another size and time); scanned, and
    // its index last used ten days ago as well until a scan reads it again.
    let mut text = fs::read_to_string(&record).unwrap();
    text.push('\n');
    fs::write(&download, text).unwrap();
    assert!(
        !scan(&rootfs, &download, &cache),
        "the new download is read"
    );
    let current: Vec<PathBuf> = scan_indexes(&cache)
        .into_iter()
        .filter(|path| *path != stale)
        .collect();
    let [current] = &current[..] else {
        panic!("a second index: {current:?}")
    };
    set_modified(current, now - 10 * day);
    assert!(
        scan(&rootfs, &download, &cache),
        "an unchanged download is cached"
    );

    let old_format = cache
        .join("scan")
        .join(format!("osv-{}.json", "0".repeat(64)));
    fs::write(&old_format, "{}").unwrap();
    let removed_bytes = fs::metadata(&stale).unwrap().len() + 2;
    let kept_bytes = fs::metadata(current).unwrap().len();

    let output = hoist(["cache", "prune", "--json", "--max-size", "2G"])
        .env("HOIST_CACHE", &cache)
        .run()
        .success();
    let events: Vec<Value> = output
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON event"))
        .collect();
    let report = events
        .iter()
        .find(|event| event["event"] == "scan-cache-pruned")
        .unwrap_or_else(|| panic!("{}", output.stdout));
    let counts = [
        "removed_files",
        "removed_bytes",
        "remaining_files",
        "remaining_bytes",
    ]
    .map(|field| report[field].as_u64());
    assert_eq!(
        counts,
        [Some(2), Some(removed_bytes), Some(1), Some(kept_bytes)],
        "{report}"
    );
    assert_eq!(scan_indexes(&cache), std::slice::from_ref(current));
    assert!(
        scan(&rootfs, &download, &cache),
        "the index scans use stays"
    );

    // A shorter age removes it too; the next scan reads the download again.
    set_modified(current, now - 2 * day);
    let output = hoist([
        "cache",
        "prune",
        "--max-size",
        "2G",
        "--scan-unused-for",
        "1d",
    ])
    .env("HOIST_CACHE", &cache)
    .run()
    .success();
    assert!(
        output.stderr.contains("removed 1 scan indexes")
            || output.stdout.contains("removed 1 scan indexes"),
        "{}\n{}",
        output.stdout,
        output.stderr
    );
    assert!(
        !scan(&rootfs, &download, &cache),
        "the pruned index is rebuilt"
    );
}

#[test]
fn prune_refuses_a_size_or_age_it_cannot_read() {
    let work = tempfile::tempdir().unwrap();
    for (arguments, message) in [
        (
            ["--max-size", "lots", "--scan-unused-for", "7d"],
            "500M or 2G",
        ),
        (
            ["--max-size", "2G", "--scan-unused-for", "7"],
            "--scan-unused-for 7",
        ),
    ] {
        let output = hoist(["cache", "prune"])
            .args(arguments)
            .env("HOIST_CACHE", work.path())
            .run();
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        assert!(output.stderr.contains(message), "{}", output.stderr);
    }
}
