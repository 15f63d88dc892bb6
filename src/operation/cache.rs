//! `hoist cache` as operations: where the layer cache lives (from the
//! environment, for `build` as well) and keeping it within a size.

use crate::layer::{CacheError, LayerCache, PruneReport};
use crate::progress::{Event, Observer};
use std::path::PathBuf;

/// Prune the cache at `directory` down to `max_size` bytes.
pub struct CachePruneRequest {
    pub directory: PathBuf,
    pub max_size: u64,
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
/// `request.max_size`; reports [`Event::CachePruned`].
pub fn prune_cache(
    request: &CachePruneRequest,
    observer: &dyn Observer,
) -> Result<PruneReport, CacheOperationError> {
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
    Ok(report)
}
