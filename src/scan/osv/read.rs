//! Reading OSV records from the export's files: zip archives (OSV's
//! `all.zip`), single JSON records, and directories of both, walked in
//! byte order so the index is the same on every machine.

use super::DatabaseError;
use super::record::Record;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The most one record may hold: the largest OSV records (kernel advisories
/// with every version listed) are a few MiB.
const RECORD_LIMIT: u64 = 64 * 1024 * 1024;

/// The zip and JSON files of an export, sorted.
pub(super) fn export_files(path: &Path) -> Result<Vec<PathBuf>, DatabaseError> {
    let io = |source| DatabaseError::Io {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
        let entry = entry.map_err(|error| DatabaseError::Io {
            path: error.path().unwrap_or(path).to_path_buf(),
            source: error.into(),
        })?;
        let name = entry.file_name().to_string_lossy();
        if entry.file_type().is_file() && (name.ends_with(".json") || name.ends_with(".zip")) {
            files.push(entry.into_path());
        }
    }
    if files.is_empty() {
        return Err(DatabaseError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(files)
}

/// Reads at most [`RECORD_LIMIT`] bytes, counting what arrives.
fn read_limited(reader: impl Read, path: &Path, entry: &str) -> Result<Vec<u8>, DatabaseError> {
    let mut bytes = Vec::new();
    reader
        .take(RECORD_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| DatabaseError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > RECORD_LIMIT {
        return Err(DatabaseError::TooLarge {
            path: path.to_path_buf(),
            entry: entry.to_string(),
            limit: RECORD_LIMIT,
        });
    }
    Ok(bytes)
}

fn parse(bytes: &[u8], path: &Path, entry: &str) -> Result<Record, DatabaseError> {
    serde_json::from_slice(bytes).map_err(|source| DatabaseError::Record {
        path: path.to_path_buf(),
        entry: entry.to_string(),
        source,
    })
}

/// Every record in one file, given to `take` one at a time.
pub(super) fn records(path: &Path, take: &mut dyn FnMut(Record)) -> Result<(), DatabaseError> {
    let io = |source| DatabaseError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let is_zip = path.extension().is_some_and(|extension| extension == "zip");
    if !is_zip {
        let bytes = read_limited(file, path, "the record")?;
        take(parse(&bytes, path, "the record")?);
        return Ok(());
    }
    let zip_error = |source| DatabaseError::Zip {
        path: path.to_path_buf(),
        source,
    };
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(zip_error)?;
    for index in 0..archive.len() {
        let entry = archive.by_index(index).map_err(zip_error)?;
        let name = entry.name().map_err(zip_error)?.to_string();
        if !entry.is_file() || !name.ends_with(".json") {
            continue;
        }
        let bytes = read_limited(entry, path, &name)?;
        take(parse(&bytes, path, &name)?);
    }
    Ok(())
}
