//! The offline OSV database: OSV's own export as users download it (one
//! `all.zip` per ecosystem, or directories of OSV JSON records), read into
//! an index by ecosystem family and package name, withdrawn records left
//! out, and cached under hoist's cache directory so later scans read the
//! index and parse only the records their packages reach.

mod cache;
pub mod ecosystem;
mod read;
pub mod record;

pub use cache::{PruneError, PruneReport, prune as prune_cache};
use record::Record;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("cannot read the OSV database at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a readable zip archive: {source}; download OSV's all.zip again")]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{path}: {entry} is not an OSV record: {source}")]
    Record {
        path: PathBuf,
        entry: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {entry} cannot be read ({reason}); download OSV's all.zip again")]
    Entry {
        path: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("{path}: {entry} is larger than {limit} bytes, more than any OSV record")]
    TooLarge {
        path: PathBuf,
        entry: String,
        limit: u64,
    },
    #[error("{path} holds no OSV records (*.json files or *.zip exports)")]
    Empty { path: PathBuf },
}

/// Records indexed by (ecosystem family, package name as the ecosystem
/// compares names) and by identifier.
///
/// Read from the export, every record is parsed; opened from the cache, a
/// record is parsed when a lookup first reaches it: a scan asks about a few
/// hundred packages, and parsing the whole export again would be most of
/// its time.
#[derive(Debug, Default)]
pub struct Database {
    records: Vec<Slot>,
    /// The cache file's records, which the slots' spans point into (empty
    /// when the export was read).
    stored: Vec<u8>,
    /// Positions of the records naming each (family, normalized name).
    index: HashMap<(String, String), Vec<u32>>,
    /// Positions of the records by their id and each of their aliases.
    identifiers: HashMap<String, Vec<u32>>,
    /// The newest `modified` time among the records, as written (RFC 3339).
    pub newest_modified: Option<String>,
    /// Records left out because they are withdrawn.
    pub withdrawn: usize,
    /// Whether the index came from the cache rather than the export.
    pub from_cache: bool,
    /// Cached records that did not parse (the cache was checked against its
    /// digest, so only a cache written by another format could hold one).
    unreadable: AtomicUsize,
}

/// One record: parsed, or where its bytes are in `Database::stored`.
#[derive(Debug, Default)]
struct Slot {
    span: std::ops::Range<usize>,
    record: OnceLock<Option<Box<Record>>>,
}

impl Database {
    /// Reads the export at `path` (a zip, a JSON record, or a directory of
    /// either), or its cached index from `cache` when the files are unchanged.
    pub fn open(path: &Path, cache: Option<&Path>) -> Result<Database, DatabaseError> {
        let files = read::export_files(path)?;
        let key = cache::key(&files)?;
        if let Some(database) = cache.and_then(|directory| cache::load(directory, &key)) {
            return Ok(database);
        }
        let mut records = Vec::new();
        let mut withdrawn = 0;
        for file in &files {
            read::records(file, &mut |record: Record| {
                if record.withdrawn.is_some() {
                    withdrawn += 1;
                } else {
                    records.push(record);
                }
            })?;
        }
        if records.is_empty() && withdrawn == 0 {
            return Err(DatabaseError::Empty {
                path: path.to_path_buf(),
            });
        }
        let mut database = Database::from_records(records);
        database.withdrawn = withdrawn;
        if let Some(directory) = cache {
            // A cache that cannot be written only costs the next scan the parsing.
            let _ = cache::store(directory, &key, &database);
        }
        Ok(database)
    }

    pub fn from_records(records: Vec<Record>) -> Database {
        let mut index: HashMap<(String, String), Vec<u32>> = HashMap::new();
        let mut identifiers: HashMap<String, Vec<u32>> = HashMap::new();
        let mut newest_modified: Option<String> = None;
        for (position, record) in (0..).zip(&records) {
            if let Some(modified) = &record.modified
                && newest_modified
                    .as_ref()
                    .is_none_or(|newest| modified > newest)
            {
                newest_modified = Some(modified.clone());
            }
            for identifier in std::iter::once(&record.id).chain(&record.aliases) {
                identifiers
                    .entry(identifier.clone())
                    .or_default()
                    .push(position);
            }
            let mut keys: Vec<(String, String)> = record
                .affected
                .iter()
                .filter_map(|affected| affected.package.as_ref())
                .map(|package| {
                    let family = ecosystem::split(&package.ecosystem).0;
                    (
                        family.to_string(),
                        ecosystem::normalize_name(family, &package.name),
                    )
                })
                .collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                index.entry(key).or_default().push(position);
            }
        }
        Database {
            records: records
                .into_iter()
                .map(|record| Slot {
                    span: 0..0,
                    record: OnceLock::from(Some(Box::new(record))),
                })
                .collect(),
            index,
            identifiers,
            newest_modified,
            ..Database::default()
        }
    }

    /// The record at `position`, parsed from the cache on first use.
    fn record(&self, position: u32) -> Option<&Record> {
        let slot = self.records.get(position as usize)?;
        let parsed = slot.record.get_or_init(|| {
            let parsed = self
                .stored
                .get(slot.span.clone())
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .map(Box::new);
            if parsed.is_none() {
                self.unreadable.fetch_add(1, Ordering::Relaxed);
            }
            parsed
        });
        parsed.as_deref()
    }

    fn records_at<'a>(
        &'a self,
        positions: Option<&'a Vec<u32>>,
    ) -> impl Iterator<Item = &'a Record> {
        positions
            .into_iter()
            .flatten()
            .filter_map(|position| self.record(*position))
    }

    /// The records that name a package of this family (`Debian`, `PyPI`).
    pub fn records_for(&self, family: &str, name: &str) -> impl Iterator<Item = &Record> {
        let key = (family.to_string(), ecosystem::normalize_name(family, name));
        self.records_at(self.index.get(&key))
    }

    /// The records with this id or alias (a CVE's GHSA and PYSEC records).
    pub fn records_named(&self, identifier: &str) -> impl Iterator<Item = &Record> {
        self.records_at(self.identifiers.get(identifier))
    }

    /// How many cached records lookups found unreadable so far.
    pub fn unreadable(&self) -> usize {
        self.unreadable.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}
