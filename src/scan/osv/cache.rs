//! The database cached under hoist's cache directory
//! (`scan/osv-<key>.cache`), keyed by each export file's path, size and
//! modification time and the format hoist keeps, so a new download (which
//! changes them) is read again and an unchanged one is not.
//!
//! A cache file is one line of JSON, the index (package and identifier
//! lookups, where each record lies, the digest of the rest), then every
//! record's JSON one after another; a scan reads the line and parses only
//! the records its lookups reach.
//!
//! A scan marks the file it reads as used (its modification time), so
//! `hoist cache prune` keeps the indexes of the downloads scans still use
//! and removes those of replaced downloads and of older formats.

use super::{Database, DatabaseError, Slot};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// Temporary files younger than this may be a scan's cache being written
/// and survive a prune.
const TEMPORARY_GRACE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("cannot prune the scan cache {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a prune of `scan/` removed and left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub removed_files: u64,
    pub removed_bytes: u64,
    pub remaining_files: u64,
    pub remaining_bytes: u64,
}

/// Bumped when the cache file's layout or [`super::Record`]'s cached form
/// changes.
const CACHE_FORMAT: u32 = 2;

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

fn scan_directory(directory: &Path) -> PathBuf {
    directory.join("scan")
}

fn file(directory: &Path, key: &str) -> PathBuf {
    scan_directory(directory).join(format!("osv-{key}.cache"))
}

fn is_current_format(name: &str) -> bool {
    name.strip_prefix("osv-")
        .and_then(|rest| rest.strip_suffix(".cache"))
        .is_some_and(|key| key.len() == 64 && key.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

/// The first line of a cache file.
#[derive(Deserialize, Serialize)]
struct Header {
    withdrawn: usize,
    newest_modified: Option<String>,
    /// Where each record's JSON lies after the header line: (start, length).
    records: Vec<(usize, usize)>,
    /// The records naming each (family, normalized package name).
    packages: Vec<(String, String, Vec<u32>)>,
    /// The records with each id or alias.
    identifiers: Vec<(String, Vec<u32>)>,
    /// SHA-256 of everything after the header line, in hex.
    sha256: String,
}

/// The cached database, or `None` when there is none, or it does not
/// parse or match its digest (then the export is read again and the cache
/// rewritten).
pub(super) fn load(directory: &Path, key: &str) -> Option<Database> {
    let bytes = std::fs::read(file(directory, key)).ok()?;
    let newline = bytes.iter().position(|byte| *byte == b'\n')?;
    let header: Header = serde_json::from_slice(&bytes[..newline]).ok()?;
    let body = newline + 1;
    if hex::encode(Sha256::digest(&bytes[body..])) != header.sha256 {
        return None;
    }
    // Marks the index as used, for `prune`; failing to is harmless.
    if let Ok(opened) = std::fs::File::options()
        .write(true)
        .open(file(directory, key))
    {
        let _ = opened.set_modified(SystemTime::now());
    }
    let records = header
        .records
        .iter()
        .map(|(start, length)| Slot {
            span: body + start..body + start + length,
            record: OnceLock::new(),
        })
        .collect();
    Some(Database {
        records,
        stored: bytes,
        index: header
            .packages
            .into_iter()
            .map(|(family, name, positions)| ((family, name), positions))
            .collect(),
        identifiers: header.identifiers.into_iter().collect(),
        newest_modified: header.newest_modified,
        withdrawn: header.withdrawn,
        from_cache: true,
        unreadable: Default::default(),
    })
}

/// Writes the database through a temporary file renamed into place, so a
/// concurrent scan never reads half a cache.
pub(super) fn store(directory: &Path, key: &str, database: &Database) -> std::io::Result<()> {
    let mut body = Vec::new();
    let mut records = Vec::with_capacity(database.len());
    for position in 0..database.len() {
        let record = u32::try_from(position)
            .ok()
            .and_then(|position| database.record(position))
            .ok_or_else(|| std::io::Error::other("a record cannot be cached"))?;
        let start = body.len();
        serde_json::to_writer(&mut body, record)?;
        records.push((start, body.len() - start));
    }
    let mut packages: Vec<(String, String, Vec<u32>)> = database
        .index
        .iter()
        .map(|((family, name), positions)| (family.clone(), name.clone(), positions.clone()))
        .collect();
    packages.sort_unstable();
    let mut identifiers: Vec<(String, Vec<u32>)> = database
        .identifiers
        .iter()
        .map(|(identifier, positions)| (identifier.clone(), positions.clone()))
        .collect();
    identifiers.sort_unstable();
    let header = Header {
        withdrawn: database.withdrawn,
        newest_modified: database.newest_modified.clone(),
        records,
        packages,
        identifiers,
        sha256: hex::encode(Sha256::digest(&body)),
    };
    let target = file(directory, key);
    let parent = target.parent().unwrap_or(directory);
    std::fs::create_dir_all(parent)?;
    let mut temporary = tempfile::NamedTempFile::new_in(parent)?;
    {
        let mut writer = std::io::BufWriter::new(temporary.as_file_mut());
        serde_json::to_writer(&mut writer, &header)?;
        writer.write_all(b"\n")?;
        writer.write_all(&body)?;
        writer.flush()?;
    }
    temporary.persist(&target).map_err(|error| error.error)?;
    Ok(())
}

/// Removes from `scan/` under `directory` the indexes no scan used within
/// `unused_for`, every file of another format (`osv-*.json`, which no
/// scan reads any more), and temporaries left by a scan that died.
pub fn prune(directory: &Path, unused_for: Duration) -> Result<PruneReport, PruneError> {
    let scan = scan_directory(directory);
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PruneError::Io { path, source }
    };
    let mut report = PruneReport::default();
    let entries = match std::fs::read_dir(&scan) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(error) => return Err(failed(&scan)(error)),
    };
    let now = SystemTime::now();
    let age = |metadata: &std::fs::Metadata| {
        let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        now.duration_since(modified).unwrap_or_default()
    };
    for entry in entries {
        let entry = entry.map_err(failed(&scan))?;
        let path = entry.path();
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        if !metadata.is_file() {
            continue;
        }
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stays = if name.starts_with('.') {
            age(&metadata) < TEMPORARY_GRACE
        } else {
            is_current_format(&name) && age(&metadata) < unused_for
        };
        if stays {
            report.remaining_files += 1;
            report.remaining_bytes += metadata.len();
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            // Another prune got there first.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(failed(&path)(error)),
        }
        report.removed_files += 1;
        report.removed_bytes += metadata.len();
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::osv::record::Record;

    fn records() -> Vec<Record> {
        [
            r#"{"id": "GHSA-one", "aliases": ["CVE-2026-0001"], "modified": "2026-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "PyPI", "name": "Foo_Bar"}}]}"#,
            r#"{"id": "DEBIAN-CVE-2026-0001", "upstream": ["CVE-2026-0001"], "modified": "2026-02-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"}}]}"#,
        ]
        .iter()
        .map(|text| serde_json::from_str(text).expect("record parses"))
        .collect()
    }

    fn ids<'a>(found: impl Iterator<Item = &'a Record>) -> Vec<&'a str> {
        found.map(|record| record.id.as_str()).collect()
    }

    #[test]
    fn a_cached_database_answers_as_the_read_one() {
        let directory = tempfile::tempdir().expect("tempdir");
        let mut read = Database::from_records(records());
        read.withdrawn = 3;
        store(directory.path(), "key", &read).expect("stored");
        let cached = load(directory.path(), "key").expect("loaded");
        assert!(cached.from_cache);
        assert_eq!((cached.len(), cached.withdrawn), (2, 3));
        assert_eq!(
            cached.newest_modified.as_deref(),
            Some("2026-02-01T00:00:00Z")
        );
        assert_eq!(ids(cached.records_for("PyPI", "foo.bar")), ["GHSA-one"]);
        assert_eq!(
            ids(cached.records_for("Debian", "glibc")),
            ["DEBIAN-CVE-2026-0001"]
        );
        assert_eq!(ids(cached.records_named("CVE-2026-0001")), ["GHSA-one"]);
        let parsed = |database: &Database| -> Vec<Record> {
            (0..2)
                .filter_map(|position| database.record(position).cloned())
                .collect()
        };
        assert_eq!(parsed(&cached), parsed(&read));
        assert_eq!(cached.unreadable(), 0);
    }

    #[test]
    fn a_damaged_cache_is_not_used() {
        let directory = tempfile::tempdir().expect("tempdir");
        store(directory.path(), "key", &Database::from_records(records())).expect("stored");
        let path = file(directory.path(), "key");
        let mut bytes = std::fs::read(&path).expect("cache reads");
        let last = bytes.len() - 2;
        bytes[last] ^= 0x20;
        std::fs::write(&path, &bytes).expect("cache writes");
        assert!(load(directory.path(), "key").is_none());
        std::fs::write(&path, b"{\"withdrawn\": 1}\n").expect("cache writes");
        assert!(load(directory.path(), "key").is_none());
    }

    fn backdate(path: &Path, age: Duration) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .expect("file opens")
            .set_modified(SystemTime::now() - age)
            .expect("mtime set");
    }

    fn age(path: &Path) -> Duration {
        let modified = std::fs::metadata(path)
            .and_then(|metadata| metadata.modified())
            .expect("mtime");
        SystemTime::now()
            .duration_since(modified)
            .unwrap_or_default()
    }

    #[test]
    fn loading_marks_the_index_used() {
        let directory = tempfile::tempdir().expect("tempdir");
        store(directory.path(), "key", &Database::from_records(records())).expect("stored");
        let path = file(directory.path(), "key");
        backdate(&path, Duration::from_secs(30 * 86_400));
        assert!(load(directory.path(), "key").is_some());
        assert!(age(&path) < Duration::from_secs(3600), "{:?}", age(&path));
    }

    #[test]
    fn prune_keeps_recently_used_indexes_only() {
        let directory = tempfile::tempdir().expect("tempdir");
        let database = Database::from_records(records());
        let used = "a".repeat(64);
        let unused = "b".repeat(64);
        store(directory.path(), &used, &database).expect("stored");
        store(directory.path(), &unused, &database).expect("stored");
        backdate(
            &file(directory.path(), &unused),
            Duration::from_secs(8 * 86_400),
        );
        let scan = scan_directory(directory.path());
        let old_format = scan.join(format!("osv-{}.json", "c".repeat(64)));
        std::fs::write(&old_format, b"{}").expect("written");
        let writing = scan.join(".tmpwriting");
        let abandoned = scan.join(".tmpabandoned");
        std::fs::write(&writing, b"half").expect("written");
        std::fs::write(&abandoned, b"half").expect("written");
        backdate(&abandoned, Duration::from_secs(2 * 3600));
        let kept = std::fs::metadata(file(directory.path(), &used))
            .expect("stored")
            .len();
        let removed: u64 = [&file(directory.path(), &unused), &old_format, &abandoned]
            .iter()
            .map(|path| std::fs::metadata(path).expect("present").len())
            .sum();

        let report = prune(directory.path(), Duration::from_secs(7 * 86_400)).expect("pruned");

        assert_eq!(
            report,
            PruneReport {
                removed_files: 3,
                removed_bytes: removed,
                remaining_files: 2,
                remaining_bytes: kept + 4,
            }
        );
        assert!(load(directory.path(), &used).is_some());
        assert!(load(directory.path(), &unused).is_none());
        assert!(!old_format.exists() && !abandoned.exists() && writing.exists());
        assert_eq!(
            prune(directory.path(), Duration::ZERO)
                .expect("pruned")
                .remaining_files,
            1
        );
    }

    #[test]
    fn prune_without_a_scan_cache_removes_nothing() {
        let directory = tempfile::tempdir().expect("tempdir");
        let report = prune(directory.path(), Duration::ZERO).expect("pruned");
        assert_eq!(report, PruneReport::default());
    }
}
