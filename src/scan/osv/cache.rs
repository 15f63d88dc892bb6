//! The parsed export cached under hoist's cache directory
//! (`scan/osv-<key>.json`), keyed by each export file's path, size and
//! modification time and the record format hoist keeps, so a new download
//! (which changes them) is read again and an unchanged one is not.

use super::DatabaseError;
use super::record::Record;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Bumped when [`Record`]'s cached form changes.
const CACHE_FORMAT: u32 = 1;

pub(super) fn key(files: &[PathBuf]) -> Result<String, DatabaseError> {
    let mut hasher = Sha256::new();
    hasher.update(CACHE_FORMAT.to_le_bytes());
    for file in files {
        let metadata = std::fs::metadata(file).map_err(|source| DatabaseError::Io {
            path: file.clone(),
            source,
        })?;
        let modified = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|duration| duration.as_nanos())
            .unwrap_or_default();
        let absolute = std::path::absolute(file).unwrap_or_else(|_| file.clone());
        hasher.update(absolute.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        hasher.update(metadata.len().to_le_bytes());
        hasher.update(modified.to_le_bytes());
    }
    Ok(hex::encode(hasher.finalize()))
}

fn file(directory: &Path, key: &str) -> PathBuf {
    directory.join("scan").join(format!("osv-{key}.json"))
}

/// What a cache file holds: the records kept and how many were withdrawn.
#[derive(Deserialize, Serialize)]
pub(super) struct Cached {
    pub withdrawn: usize,
    pub records: Vec<Record>,
}

/// The cached records, or `None` when there are none or they do not parse
/// (then the export is read again and the cache rewritten).
pub(super) fn load(directory: &Path, key: &str) -> Option<Cached> {
    let bytes = std::fs::read(file(directory, key)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes the records through a temporary file renamed into place, so a
/// concurrent scan never reads half a cache.
pub(super) fn store(directory: &Path, key: &str, cached: &Cached) -> std::io::Result<()> {
    let target = file(directory, key);
    let parent = target.parent().unwrap_or(directory);
    std::fs::create_dir_all(parent)?;
    let mut temporary = tempfile::NamedTempFile::new_in(parent)?;
    serde_json::to_writer(std::io::BufWriter::new(temporary.as_file_mut()), cached)?;
    temporary.persist(&target).map_err(|error| error.error)?;
    Ok(())
}
