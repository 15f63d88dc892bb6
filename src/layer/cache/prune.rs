//! Keeping the layer cache under a size: least recently used entries go
//! first, then blobs no entry names; a prune waits for the builds of other
//! processes to let go of the cache.

use super::{CacheError, EntryRecord, LayerCache, PruneReport, io_error};
use crate::oci::digest::parse_sha256;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Temporary files younger than this may belong to a build in progress and
/// survive a prune.
const TEMPORARY_GRACE: Duration = Duration::from_secs(3600);

impl LayerCache {
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
