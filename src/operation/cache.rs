//! `hoist cache` as operations: where the cache lives (from the
//! environment, for `build` and `scan` as well), keeping its layers within a
//! size and its scan indexes to the ones scans still use.

use crate::layer::{CacheError, LayerCache, PruneReport};
use crate::progress::{Event, Observer};
use crate::scan::osv;
use std::path::PathBuf;
use std::time::Duration;

/// Prune the layers of the cache at `directory` down to `max_size` bytes,
/// and its scan indexes to those a scan used within `scan_unused_for`.
pub struct CachePruneRequest {
    pub directory: PathBuf,
    pub max_size: u64,
    pub scan_unused_for: Duration,
}

/// What a prune removed: layers, then scan indexes.
#[derive(Debug)]
pub struct CachePruneOutcome {
    pub layers: PruneReport,
    pub scan: osv::PruneReport,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheOperationError {
    #[error("no cache directory: set HOIST_CACHE (or HOME), or pass --no-cache")]
    NoDirectory,
    #[error("opening the layer cache {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: CacheError,
    },
    #[error("pruning the layer cache {path}")]
    Prune {
        path: PathBuf,
        #[source]
        source: CacheError,
    },
    #[error(transparent)]
    PruneScan(#[from] osv::PruneError),
}

/// The layer cache: `HOIST_CACHE`, else `$XDG_CACHE_HOME/hoist`, else `~/.cache/hoist`.
pub fn cache_directory() -> Result<PathBuf, CacheOperationError> {
    if let Some(directory) = std::env::var_os("HOIST_CACHE").filter(|value| !value.is_empty()) {
        return Ok(directory.into());
    }
    if let Some(directory) = std::env::var_os("XDG_CACHE_HOME").filter(|value| !value.is_empty()) {
        return Ok(PathBuf::from(directory).join("hoist"));
    }
    let home = std::env::var_os("HOME")
        .filter(|value| !value.is_empty())
        .ok_or(CacheOperationError::NoDirectory)?;
    Ok(PathBuf::from(home).join(".cache").join("hoist"))
}

/// Removes the least recently used layers until the cache holds at most
/// `request.max_size`, then the scan indexes no scan used within
/// `request.scan_unused_for` and those of older formats; reports
/// [`Event::CachePruned`] and [`Event::ScanCachePruned`].
pub fn prune_cache(
    request: &CachePruneRequest,
    observer: &dyn Observer,
) -> Result<CachePruneOutcome, CacheOperationError> {
    let path = &request.directory;
    let cache = LayerCache::open(path).map_err(|source| CacheOperationError::Open {
        path: path.clone(),
        source,
    })?;
    let report = cache
        .prune(request.max_size)
        .map_err(|source| CacheOperationError::Prune {
            path: path.clone(),
            source,
        })?;
    observer.event(Event::CachePruned {
        directory: path.display().to_string(),
        removed_entries: report.removed_entries,
        removed_bytes: report.removed_bytes,
        remaining_bytes: report.remaining_bytes,
    });
    let scan = osv::prune_cache(path, request.scan_unused_for)?;
    observer.event(Event::ScanCachePruned {
        directory: path.join("scan").display().to_string(),
        removed_files: scan.removed_files,
        removed_bytes: scan.removed_bytes,
        remaining_files: scan.remaining_files,
        remaining_bytes: scan.remaining_bytes,
    });
    Ok(CachePruneOutcome {
        layers: report,
        scan,
    })
}
