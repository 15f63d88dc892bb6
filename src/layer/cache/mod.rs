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

mod key;
mod prune;

use key::cache_key;

use super::tracked::TrackedFiles;
use super::walk::Plan;
use super::{BuiltLayer, Compression, FORMAT_VERSION, LayerError, LayerRecipe};
use crate::image::{FileBlob, Layer};
use crate::oci::digest::parse_sha256;
use crate::progress::Observer;
use oci_spec::image::{Descriptor, MediaType};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

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
}

#[cfg(test)]
mod tests;
