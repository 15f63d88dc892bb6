//! A cache of built layers, in front of [`super::build_layer`]: the key is a
//! sha256 over everything that decides a layer's bytes (hoist's layer format
//! version, the recipe, and what `lstat` says about every file), so a hit
//! costs one walk and no reads of file contents.
//!
//! Layout: `<dir>/blobs/<hex>` holds layer blobs, `<dir>/entries/<key>.json`
//! says which blob a key built. Both are written to a temporary file and
//! renamed, so several builds can share one cache; an entry appears only
//! after its blob. Every open cache holds a shared lock on `<dir>/lock`;
//! `prune` takes it exclusively, so it never removes a blob a running build
//! has just found or written.

use super::FileKind;
use super::tracked::{Tracked, TrackedFiles};
use super::walk::{Plan, PlannedEntry};
use super::{
    BuiltLayer, Compression, FORMAT_VERSION, LayerError, LayerRecipe, OwnerPolicy, Permissions,
};
use crate::image::{FileBlob, Layer};
use crate::oci::digest::parse_sha256;
use crate::progress::Observer;
use oci_spec::image::{Descriptor, MediaType};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Temporary files younger than this may belong to a build in progress and
/// survive a prune.
const TEMPORARY_GRACE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("layer cache {path}: {source}; check the cache directory's permissions and free space")]
    Io { path: PathBuf, source: io::Error },
}

/// A layer from [`LayerCache::build_layer`], and whether it was a hit.
#[derive(Clone)]
pub struct CachedLayer {
    pub layer: BuiltLayer,
    pub cached: bool,
}

/// What [`LayerCache::prune`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub removed_entries: u64,
    pub removed_bytes: u64,
    pub remaining_bytes: u64,
}

/// A directory of built layers, shareable between concurrent builds.
#[derive(Clone, Debug)]
pub struct LayerCache {
    blob_dir: PathBuf,
    entry_dir: PathBuf,
    /// `<dir>/lock`, held shared for as long as the cache is open.
    lock: Arc<std::fs::File>,
}

/// What a cache entry records about the layer a key built.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EntryRecord {
    format_version: u32,
    media_type: String,
    digest: String,
    size: u64,
    diff_id: String,
    uncompressed_size: u64,
    entries: u64,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl LayerCache {
    /// Opens (creating if needed) a cache in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<LayerCache, CacheError> {
        let dir = dir.as_ref();
        let blob_dir = dir.join("blobs");
        let entry_dir = dir.join("entries");
        std::fs::create_dir_all(&blob_dir).map_err(io_error(&blob_dir))?;
        std::fs::create_dir_all(&entry_dir).map_err(io_error(&entry_dir))?;
        let lock_path = dir.join("lock");
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        lock.lock_shared().map_err(io_error(&lock_path))?;
        Ok(LayerCache {
            blob_dir,
            entry_dir,
            lock: Arc::new(lock),
        })
    }

    /// Where the cache keeps layer blobs, named by their hex digest.
    pub fn blob_dir(&self) -> &Path {
        &self.blob_dir
    }

    /// The cached layer for `recipe` when the files are as they were, else a
    /// newly built one that is then cached.
    pub fn build_layer(
        &self,
        recipe: &LayerRecipe,
        threads: usize,
        observer: &dyn Observer,
    ) -> Result<CachedLayer, CacheError> {
        self.build_layer_streamed(recipe, threads, observer, None, &TrackedFiles::new())
    }

    /// [`LayerCache::build_layer`] with what git tracks from `tracked`; a
    /// layer that is built (not a hit) is also sent to `stream` while it is
    /// compressed.
    pub fn build_layer_streamed(
        &self,
        recipe: &LayerRecipe,
        threads: usize,
        observer: &dyn Observer,
        stream: Option<&dyn super::BlobStream>,
        tracked: &TrackedFiles,
    ) -> Result<CachedLayer, CacheError> {
        let plan = super::plan_layer(recipe, tracked, observer)?;
        if let Some(layer) = self.lookup_planned(recipe, &plan) {
            return Ok(CachedLayer {
                layer,
                cached: true,
            });
        }
        let layer = self.build_planned(recipe, &plan, threads, stream)?;
        Ok(CachedLayer {
            layer,
            cached: false,
        })
    }

    /// The cached layer for a walked recipe, when its files are as they were.
    pub fn lookup_planned(
        &self,
        recipe: &LayerRecipe,
        plan: &super::LayerPlan,
    ) -> Option<BuiltLayer> {
        self.lookup(&self.entry_path(recipe, &plan.entries))
    }

    /// Builds a walked recipe into the cache and records it.
    pub fn build_planned(
        &self,
        recipe: &LayerRecipe,
        plan: &super::LayerPlan,
        threads: usize,
        stream: Option<&dyn super::BlobStream>,
    ) -> Result<BuiltLayer, CacheError> {
        let layer = super::write_layer(&plan.entries, recipe, &self.blob_dir, threads, stream)?;
        let entry_path = self.entry_path(recipe, &plan.entries);
        self.record(&entry_path, recipe.compression, &layer)?;
        Ok(layer)
    }

    fn entry_path(&self, recipe: &LayerRecipe, plan: &Plan) -> PathBuf {
        self.entry_dir
            .join(format!("{}.json", cache_key(recipe, plan)))
    }

    /// The layer an entry names, if the entry is readable and its blob is
    /// still there with the right size. Anything else is a miss.
    fn lookup(&self, entry_path: &Path) -> Option<BuiltLayer> {
        let bytes = std::fs::read(entry_path).ok()?;
        let record: EntryRecord = serde_json::from_slice(&bytes).ok()?;
        if record.format_version != FORMAT_VERSION {
            return None;
        }
        let digest = parse_sha256(&record.digest).ok()?;
        let diff_id = parse_sha256(&record.diff_id).ok()?;
        let blob_path = self.blob_dir.join(digest.digest());
        if std::fs::metadata(&blob_path).ok()?.len() != record.size {
            return None;
        }
        // Marks the entry as recently used, for `prune`; failing to is harmless.
        if let Ok(file) = std::fs::File::options().write(true).open(entry_path) {
            let _ = file.set_modified(SystemTime::now());
        }
        let descriptor = Descriptor::new(
            MediaType::from(record.media_type.as_str()),
            record.size,
            digest,
        );
        Some(BuiltLayer {
            layer: Layer {
                blob: Arc::new(FileBlob::new(descriptor, blob_path.clone())),
                diff_id,
            },
            blob_path,
            uncompressed_size: record.uncompressed_size,
            entries: record.entries,
        })
    }

    fn record(
        &self,
        entry_path: &Path,
        compression: Compression,
        layer: &BuiltLayer,
    ) -> Result<(), CacheError> {
        let record = EntryRecord {
            format_version: FORMAT_VERSION,
            media_type: compression.media_type().to_string(),
            digest: layer.layer.blob.digest().to_string(),
            size: layer.layer.blob.size(),
            diff_id: layer.layer.diff_id.to_string(),
            uncompressed_size: layer.uncompressed_size,
            entries: layer.entries,
        };
        let bytes = serde_json::to_vec(&record).map_err(|error| CacheError::Io {
            path: entry_path.to_path_buf(),
            source: io::Error::other(error),
        })?;
        let mut temporary = tempfile::Builder::new()
            .prefix(".entry-")
            .tempfile_in(&self.entry_dir)
            .map_err(io_error(&self.entry_dir))?;
        temporary.write_all(&bytes).map_err(io_error(entry_path))?;
        // Replacing an entry another build just wrote is fine: same key,
        // same bytes.
        temporary
            .persist(entry_path)
            .map_err(|error| io_error(entry_path)(error.error))?;
        Ok(())
    }

    /// Removes the least recently used entries, and blobs no entry names,
    /// until the blobs take at most `max_size` bytes. Waits until no build
    /// in another process has the cache open.
    pub fn prune(&self, max_size: u64) -> Result<PruneReport, CacheError> {
        let directory = self.entry_dir.parent().unwrap_or(&self.entry_dir);
        let lock_path = directory.join("lock");
        match self.lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::warn!(
                    "waiting for the builds using the layer cache {} to finish",
                    directory.display()
                );
                self.lock.lock().map_err(io_error(&lock_path))?;
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(io_error(&lock_path)(error)),
        }
        let pruned = self.prune_locked(max_size);
        // Back to sharing, as every open cache does.
        self.lock.lock_shared().map_err(io_error(&lock_path))?;
        pruned
    }

    fn prune_locked(&self, max_size: u64) -> Result<PruneReport, CacheError> {
        let mut entries = Vec::new();
        for item in std::fs::read_dir(&self.entry_dir).map_err(io_error(&self.entry_dir))? {
            let item = item.map_err(io_error(&self.entry_dir))?;
            let path = item.path();
            let Ok(metadata) = item.metadata() else {
                continue;
            };
            if is_stale_temporary(&path, &metadata) {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if path.extension().is_none_or(|extension| extension != "json") {
                continue;
            }
            let used = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let blob = std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<EntryRecord>(&bytes).ok())
                .and_then(|record| parse_sha256(&record.digest).ok())
                .map(|digest| digest.digest().to_string());
            entries.push((used, path, blob));
        }
        // Oldest first; the path breaks ties so the order is stable.
        entries.sort();

        let mut blobs: std::collections::BTreeMap<String, u64> = Default::default();
        for item in std::fs::read_dir(&self.blob_dir).map_err(io_error(&self.blob_dir))? {
            let item = item.map_err(io_error(&self.blob_dir))?;
            let path = item.path();
            let Ok(metadata) = item.metadata() else {
                continue;
            };
            if is_stale_temporary(&path, &metadata) {
                let _ = std::fs::remove_file(&path);
            } else if let Some(name) = path.file_name().and_then(|name| name.to_str())
                && !name.starts_with('.')
            {
                blobs.insert(name.to_string(), metadata.len());
            }
        }

        let mut report = PruneReport::default();
        let mut total: u64 = blobs.values().sum();
        let mut references: std::collections::BTreeMap<String, usize> = Default::default();
        for (_, _, blob) in &entries {
            if let Some(blob) = blob {
                *references.entry(blob.clone()).or_default() += 1;
            }
        }
        // Blobs no entry names can never be hit.
        for (name, size) in blobs.clone() {
            if !references.contains_key(&name) {
                self.remove_blob(&name, size, &mut total, &mut report)?;
                blobs.remove(&name);
            }
        }
        for (_, path, blob) in &entries {
            let unreadable = blob.as_ref().is_none_or(|blob| !blobs.contains_key(blob));
            if total <= max_size && !unreadable {
                continue;
            }
            remove_if_present(path)?;
            report.removed_entries += 1;
            if let Some(blob) = blob
                && let Some(count) = references.get_mut(blob)
            {
                *count -= 1;
                if *count == 0
                    && let Some(size) = blobs.remove(blob)
                {
                    self.remove_blob(blob, size, &mut total, &mut report)?;
                }
            }
        }
        report.remaining_bytes = total;
        Ok(report)
    }

    fn remove_blob(
        &self,
        name: &str,
        size: u64,
        total: &mut u64,
        report: &mut PruneReport,
    ) -> Result<(), CacheError> {
        remove_if_present(&self.blob_dir.join(name))?;
        *total -= size;
        report.removed_bytes += size;
        Ok(())
    }
}

fn remove_if_present(path: &Path) -> Result<(), CacheError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        // Another prune got there first.
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io_error(path)(error)),
    }
}

fn is_stale_temporary(path: &Path, metadata: &std::fs::Metadata) -> bool {
    let temporary = path
        .file_name()
        .is_some_and(|name| name.as_bytes().starts_with(b"."));
    temporary
        && metadata
            .modified()
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > TEMPORARY_GRACE)
}

/// Length-prefixed fields into sha256, so no two field sequences collide.
struct KeyHasher(Sha256);

impl KeyHasher {
    fn bytes(&mut self, value: &[u8]) {
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value);
    }

    fn number(&mut self, value: u64) {
        self.0.update(value.to_le_bytes());
    }

    fn signed(&mut self, value: i64) {
        self.0.update(value.to_le_bytes());
    }
}

/// Hex sha256 of everything that decides the layer's bytes. The recipe's
/// name is left out: it only labels messages.
fn cache_key(recipe: &LayerRecipe, plan: &Plan) -> String {
    let mut key = KeyHasher(Sha256::new());
    key.bytes(b"hoist layer cache");
    key.number(u64::from(FORMAT_VERSION));
    key.number(recipe.inputs.len() as u64);
    for input in &recipe.inputs {
        key.bytes(input.source.as_os_str().as_bytes());
        key.bytes(input.target.as_bytes());
        key.number(input.mode.map_or(u64::MAX, u64::from));
        key.number(input.exclude.len() as u64);
        for pattern in &input.exclude {
            key.bytes(pattern.as_bytes());
        }
    }
    match recipe.owner {
        OwnerPolicy::Fixed { uid, gid } => {
            key.number(0);
            key.number(uid);
            key.number(gid);
        }
        OwnerPolicy::Preserve => key.number(1),
        // The running user decides which owners become root.
        OwnerPolicy::RunningUserAsRoot { uid, gid } => {
            key.number(2);
            key.number(uid);
            key.number(gid);
        }
    }
    key.number(match recipe.permissions {
        Permissions::Normalize => 0,
        Permissions::Preserve => 1,
        Permissions::GitOrDisk => 2,
    });
    key.number(recipe.remove.len() as u64);
    for removed in &recipe.remove {
        key.bytes(removed.as_bytes());
    }
    key.number(recipe.epoch);
    match recipe.compression {
        Compression::None => key.number(0),
        Compression::Gzip { level } => {
            key.number(1);
            key.number(u64::from(level));
        }
        Compression::Zstd { level } => {
            key.number(2);
            key.signed(i64::from(level));
        }
    }
    key.number(plan.len() as u64);
    for (path, planned) in plan {
        key.bytes(path);
        match planned {
            PlannedEntry::ParentDirectory => key.number(0),
            PlannedEntry::Whiteout => key.number(1),
            PlannedEntry::Disk(entry) => {
                key.number(2);
                let facts = &entry.facts;
                key.bytes(entry.source.as_os_str().as_bytes());
                key.number(facts.kind as u64);
                key.number(facts.size);
                key.signed(facts.mtime);
                key.signed(facts.mtime_nanoseconds);
                // ctime moves on every content, mode, owner or xattr change,
                // even when a tool restores the mtime.
                key.signed(facts.ctime);
                key.signed(facts.ctime_nanoseconds);
                key.number(facts.device);
                key.number(facts.inode);
                key.number(facts.links);
                key.number(u64::from(facts.mode));
                key.number(facts.uid);
                key.number(facts.gid);
                key.number(
                    if matches!(facts.kind, FileKind::CharDevice | FileKind::BlockDevice) {
                        facts.rdev
                    } else {
                        0
                    },
                );
                key.number(entry.mode_override.map_or(u64::MAX, u64::from));
                // Staging a mode change touches no file on disk.
                key.number(match entry.tracked {
                    Tracked::No => 0,
                    Tracked::File { executable: false } => 1,
                    Tracked::File { executable: true } => 2,
                    Tracked::Directory => 3,
                });
            }
        }
    }
    hex::encode(key.0.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::LayerInput;
    use crate::progress::Silent;

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
}
