use super::*;
use crate::layer::LayerInput;
use crate::layer::{OwnerPolicy, Permissions};
use crate::progress::Silent;
use std::time::Duration;

fn recipe(source: &Path) -> LayerRecipe {
    LayerRecipe {
        name: "cached".to_string(),
        inputs: vec![LayerInput {
            source: source.to_path_buf(),
            target: "/".to_string(),
            mode: None,
            exclude: Vec::new(),
        }],
        owner: OwnerPolicy::Fixed { uid: 0, gid: 0 },
        permissions: Permissions::Normalize,
        remove: Vec::new(),
        epoch: 0,
        compression: Compression::Gzip { level: 6 },
    }
}

fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/a"), b"first").unwrap();
    std::fs::write(root.join("b"), b"second").unwrap();
}

#[test]
fn hit_after_build_and_miss_after_touching_a_file() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("src");
    tree(&source);
    let cache = LayerCache::open(work.path().join("cache")).unwrap();
    let recipe = recipe(&source);
    let first = cache.build_layer(&recipe, 2, &Silent).unwrap();
    assert!(!first.cached);
    let second = cache.build_layer(&recipe, 2, &Silent).unwrap();
    assert!(second.cached);
    assert_eq!(
        second.layer.layer.blob.digest(),
        first.layer.layer.blob.digest()
    );
    assert_eq!(second.layer.layer.diff_id, first.layer.layer.diff_id);
    assert_eq!(second.layer.entries, first.layer.entries);
    assert_eq!(
        second.layer.layer.blob.descriptor().media_type(),
        first.layer.layer.blob.descriptor().media_type()
    );
    assert!(second.layer.blob_path.starts_with(cache.blob_dir()));

    // Same content, new write: ctime moves, so the cache must not trust it.
    std::fs::write(source.join("b"), b"second").unwrap();
    let third = cache.build_layer(&recipe, 2, &Silent).unwrap();
    assert!(!third.cached);
    assert_eq!(
        third.layer.layer.blob.digest(),
        first.layer.layer.blob.digest()
    );

    std::fs::write(source.join("b"), b"changed").unwrap();
    let fourth = cache.build_layer(&recipe, 2, &Silent).unwrap();
    assert!(!fourth.cached);
    assert_ne!(
        fourth.layer.layer.blob.digest(),
        first.layer.layer.blob.digest()
    );

    // Another compression is another key.
    let mut zstd = recipe.clone();
    zstd.compression = Compression::Zstd { level: 3 };
    assert!(!cache.build_layer(&zstd, 2, &Silent).unwrap().cached);
}

#[test]
fn a_mode_staged_in_git_is_part_of_the_key() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("src");
    tree(&source);
    let git = |arguments: &[&str]| {
        let status = std::process::Command::new("git")
            .arg("-C")
            .arg(&source)
            .args(arguments)
            .status()
            .unwrap();
        assert!(status.success(), "git {arguments:?}");
    };
    git(&["init", "--quiet"]);
    git(&["add", "--all"]);
    let cache = LayerCache::open(work.path().join("cache")).unwrap();
    let mut recipe = recipe(&source);
    recipe.permissions = Permissions::GitOrDisk;
    let first = cache.build_layer(&recipe, 1, &Silent).unwrap();
    assert!(cache.build_layer(&recipe, 1, &Silent).unwrap().cached);
    // Only the index changes: no file on disk is touched.
    git(&["update-index", "--chmod=+x", "b"]);
    let executable = cache.build_layer(&recipe, 1, &Silent).unwrap();
    assert!(!executable.cached);
    assert_ne!(
        executable.layer.layer.blob.digest(),
        first.layer.layer.blob.digest()
    );
}

#[test]
fn a_missing_blob_is_a_miss_not_an_error() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("src");
    tree(&source);
    let cache = LayerCache::open(work.path().join("cache")).unwrap();
    let first = cache.build_layer(&recipe(&source), 1, &Silent).unwrap();
    std::fs::remove_file(&first.layer.blob_path).unwrap();
    let again = cache.build_layer(&recipe(&source), 1, &Silent).unwrap();
    assert!(!again.cached);
    assert!(again.layer.blob_path.exists());
}

#[test]
fn prune_drops_least_recently_used_first() {
    let work = tempfile::tempdir().unwrap();
    let cache = LayerCache::open(work.path().join("cache")).unwrap();
    let mut built = Vec::new();
    for index in 0..3 {
        let source = work.path().join(format!("src{index}"));
        std::fs::create_dir_all(&source).unwrap();
        std::fs::write(source.join("file"), format!("content {index}")).unwrap();
        let layer = cache.build_layer(&recipe(&source), 1, &Silent).unwrap();
        // Distinct, ordered use times without waiting.
        let entry = std::fs::read_dir(&cache.entry_dir)
            .unwrap()
            .map(|item| item.unwrap().path())
            .find(|path| {
                let record: EntryRecord =
                    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
                record.digest == layer.layer.layer.blob.digest().to_string()
            })
            .unwrap();
        std::fs::File::options()
            .write(true)
            .open(&entry)
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1000 + index))
            .unwrap();
        built.push((source, layer.layer));
    }
    let sizes: Vec<u64> = built
        .iter()
        .map(|(_, layer)| layer.layer.blob.size())
        .collect();
    let total: u64 = sizes.iter().sum();

    assert_eq!(cache.prune(total).unwrap().removed_entries, 0);
    let report = cache.prune(total - 1).unwrap();
    assert_eq!(report.removed_entries, 1);
    assert_eq!(report.removed_bytes, sizes[0]);
    assert_eq!(report.remaining_bytes, sizes[1] + sizes[2]);
    assert!(!built[0].1.blob_path.exists());
    assert!(built[2].1.blob_path.exists());
    assert!(
        cache
            .build_layer(&recipe(&built[2].0), 1, &Silent)
            .unwrap()
            .cached
    );
    assert!(
        !cache
            .build_layer(&recipe(&built[0].0), 1, &Silent)
            .unwrap()
            .cached
    );
    let report = cache.prune(0).unwrap();
    assert_eq!(report.remaining_bytes, 0);
    assert_eq!(std::fs::read_dir(cache.blob_dir()).unwrap().count(), 0);
}

#[test]
fn prune_waits_for_builds_holding_the_cache() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source");
    tree(&source);
    let cache_dir = work.path().join("cache");
    // A build in progress: it has the cache open and a layer in it.
    let building = LayerCache::open(&cache_dir).unwrap();
    let built = building.build_layer(&recipe(&source), 2, &Silent).unwrap();
    let pruner = LayerCache::open(&cache_dir).unwrap();
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prune = {
        let finished = Arc::clone(&finished);
        std::thread::spawn(move || {
            let report = pruner.prune(0).unwrap();
            finished.store(true, std::sync::atomic::Ordering::SeqCst);
            report
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !finished.load(std::sync::atomic::Ordering::SeqCst),
        "prune ran while a build had the cache open"
    );
    assert!(built.layer.blob_path.exists());
    drop(building);
    let report = prune.join().unwrap();
    assert_eq!(report.removed_entries, 1);
    assert!(!built.layer.blob_path.exists());
}

#[test]
fn concurrent_builds_share_one_cache() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("src");
    tree(&source);
    let cache_dir = work.path().join("cache");
    let recipe = recipe(&source);
    // Each thread opens the cache on its own, as separate builds would.
    let digests: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let cache = LayerCache::open(&cache_dir).unwrap();
                    let built = cache.build_layer(&recipe, 2, &Silent).unwrap();
                    std::fs::read(&built.layer.blob_path).unwrap();
                    built.layer.layer.blob.digest().to_string()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    assert!(digests.iter().all(|digest| digest == &digests[0]));
    let cache = LayerCache::open(&cache_dir).unwrap();
    assert!(cache.build_layer(&recipe, 1, &Silent).unwrap().cached);
    // One blob, one entry, no temporary files left behind.
    assert_eq!(std::fs::read_dir(cache.blob_dir()).unwrap().count(), 1);
    assert_eq!(std::fs::read_dir(&cache.entry_dir).unwrap().count(), 1);
}
