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
    // One inflater and two buffers serve every entry: the zip reader's own,
    // made and freed per entry between the records that stay, fragmented
    // glibc's heap until 100,000 records took 2 GB.
    let mut entries = Entries {
        path,
        inflater: flate2::Decompress::new(false),
        compressed: Vec::new(),
        content: Vec::new(),
    };
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(zip_error)?;
        let name = entry.name().map_err(zip_error)?.to_string();
        if !entry.is_file() || !name.ends_with(".json") {
            continue;
        }
        let content = entries.read(entry, &name)?;
        take(parse(content, path, &name)?);
    }
    Ok(())
}

/// Reads a zip's entries through one inflater and two buffers.
struct Entries<'a> {
    path: &'a Path,
    inflater: flate2::Decompress,
    compressed: Vec<u8>,
    content: Vec<u8>,
}

impl Entries<'_> {
    /// An entry's content, inflated, its size and CRC-32 checked against
    /// the archive's.
    fn read(
        &mut self,
        entry: zip::read::ZipFile<'_, impl Read>,
        name: &str,
    ) -> Result<&[u8], DatabaseError> {
        let damaged = |reason: String| DatabaseError::Entry {
            path: self.path.to_path_buf(),
            entry: name.to_string(),
            reason,
        };
        let (size, crc, method) = (entry.size(), entry.crc32(), entry.compression());
        if size > RECORD_LIMIT {
            return Err(DatabaseError::TooLarge {
                path: self.path.to_path_buf(),
                entry: name.to_string(),
                limit: RECORD_LIMIT,
            });
        }
        self.compressed.clear();
        entry
            .take(RECORD_LIMIT + 1)
            .read_to_end(&mut self.compressed)
            .map_err(|source| DatabaseError::Io {
                path: self.path.to_path_buf(),
                source,
            })?;
        let content = match method {
            zip::CompressionMethod::Stored => &self.compressed,
            zip::CompressionMethod::Deflated => {
                self.inflater.reset(false);
                self.content.clear();
                // One byte more than the header says, so a longer stream shows.
                self.content.reserve_exact(size as usize + 1);
                let status = self
                    .inflater
                    .decompress_vec(
                        &self.compressed,
                        &mut self.content,
                        flate2::FlushDecompress::Finish,
                    )
                    .map_err(|error| damaged(error.to_string()))?;
                if status != flate2::Status::StreamEnd {
                    return Err(damaged("its deflate stream is longer than its size".into()));
                }
                &self.content
            }
            other => {
                return Err(damaged(format!(
                    "compression {other:?}, which OSV does not use"
                )));
            }
        };
        let mut checksum = flate2::Crc::new();
        checksum.update(content);
        if content.len() as u64 != size || checksum.sum() != crc {
            return Err(damaged(
                "its size or CRC-32 differs from the archive's".into(),
            ));
        }
        Ok(content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const RECORD: &str = r#"{"id": "GHSA-test", "summary": "a marker to find", "affected": []}"#;

    fn zip_with(directory: &Path, method: zip::CompressionMethod) -> PathBuf {
        let path = directory.join("all.zip");
        let mut writer = zip::ZipWriter::new(std::fs::File::create(&path).expect("zip"));
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        for name in ["GHSA-test.json", "second/GHSA-test.json"] {
            writer.start_file(name, options).expect("entry");
            writer.write_all(RECORD.as_bytes()).expect("entry bytes");
        }
        writer.start_file("README", options).expect("entry");
        writer.finish().expect("zip finish");
        path
    }

    fn ids(path: &Path) -> Result<Vec<String>, DatabaseError> {
        let mut ids = Vec::new();
        records(path, &mut |record| ids.push(record.id))?;
        Ok(ids)
    }

    #[test]
    fn stored_and_deflated_entries_read_alike() {
        let directory = tempfile::tempdir().expect("tempdir");
        for method in [
            zip::CompressionMethod::Stored,
            zip::CompressionMethod::Deflated,
        ] {
            let path = zip_with(directory.path(), method);
            assert_eq!(ids(&path).expect("zip reads"), ["GHSA-test", "GHSA-test"]);
        }
    }

    #[test]
    fn an_entry_that_differs_from_its_crc_is_refused() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = zip_with(directory.path(), zip::CompressionMethod::Stored);
        let mut bytes = std::fs::read(&path).expect("zip reads");
        let marker = bytes
            .windows(6)
            .position(|window| window == b"marker")
            .expect("stored content");
        bytes[marker] = b'M';
        std::fs::write(&path, &bytes).expect("zip writes");
        let error = ids(&path).expect_err("damaged entry").to_string();
        assert!(
            error.contains("GHSA-test.json") && error.contains("CRC-32"),
            "{error}"
        );
    }
}
