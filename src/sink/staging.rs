//! Staging shared by the sinks: hidden directories that hold a publish until
//! it is committed, blobs copied into them with their digests checked, stale
//! directories from killed runs swept away, and the deterministic tar writer
//! both archives use.

use super::OutputError;
use crate::image::Blob;
use crate::oci::DigestWriter;
use crate::oci::digest::DigestError;
use std::fs::{self, File, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tempfile::TempDir;

/// Every staging directory and temporary file hoist makes has this in its
/// name, so a later run can recognise and remove what a killed one left.
pub(crate) const STAGING_MARKER: &str = ".hoist-staging-";

/// Staging entries older than this belong to a run that is no longer alive.
const STALE_AFTER: Duration = Duration::from_secs(6 * 60 * 60);

/// The parent directory of `path`, `.` for a bare name.
pub(crate) fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The prefix for staging entries next to `path` (in its parent directory).
pub(crate) fn sibling_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_string());
    format!(".{name}{STAGING_MARKER}")
}

/// Makes a hidden staging directory in `parent`, removed when dropped.
pub(crate) fn staging_dir(parent: &Path, prefix: &str) -> Result<TempDir, OutputError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .map_err(|source| OutputError::io("creating a staging directory in", parent, source))
}

/// Removes entries of `directory` named with `prefix` that nobody touched for
/// hours: what a killed run left. Failures only warn; they never stop a build.
pub(crate) fn remove_stale(directory: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(directory) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let Ok(metadata) = entry.path().symlink_metadata() else {
            continue;
        };
        let stale = metadata
            .modified()
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age > STALE_AFTER);
        if !stale {
            continue;
        }
        let result = if metadata.is_dir() {
            fs::remove_dir_all(entry.path())
        } else {
            fs::remove_file(entry.path())
        };
        if let Err(error) = result {
            tracing::warn!(
                "could not remove stale staging entry {}: {error}",
                entry.path().display()
            );
        }
    }
}

/// Where a blob lives under a layout root: `blobs/<algorithm>/<encoded>`.
pub(crate) fn blob_path(root: &Path, digest: &crate::oci::Digest) -> PathBuf {
    root.join("blobs")
        .join(digest.algorithm().to_string())
        .join(digest.digest())
}

/// Puts `blob` at `target`: hard-linked from its local file where it has one
/// and the link works, else streamed through a temporary file in the same
/// directory, with its digest and size checked, and renamed into place.
pub(crate) fn stage_blob(blob: &dyn Blob, target: &Path) -> Result<(), OutputError> {
    let directory = parent_of(target);
    fs::create_dir_all(&directory)
        .map_err(|source| OutputError::io("creating directory", &directory, source))?;
    if let Some(local) = blob.local_path()
        && fs::hard_link(local, target).is_ok()
    {
        return Ok(());
    }
    let mut file = temporary_file(&directory)?;
    let mut reader = blob
        .open()
        .map_err(|source| OutputError::io("reading blob for", target, source))?;
    let mut writer = DigestWriter::new(BufWriter::new(file.as_file_mut()));
    io::copy(&mut reader, &mut writer)
        .map_err(|source| OutputError::io("copying blob to", target, source))?;
    let (mut buffered, digest, size) = writer.finish();
    buffered
        .flush()
        .map_err(|source| OutputError::io("writing", target, source))?;
    drop(buffered);
    if size != blob.size() {
        return Err(OutputError::Content {
            digest: blob.digest().clone(),
            source: Box::new(DigestError::SizeMismatch {
                expected: blob.size(),
                actual: size,
            }),
        });
    }
    if &digest != blob.digest() {
        return Err(OutputError::Content {
            digest: blob.digest().clone(),
            source: Box::new(DigestError::Mismatch {
                expected: blob.digest().clone(),
                actual: digest,
            }),
        });
    }
    persist(file, target)
}

/// A temporary file in `directory`, readable like any other output file.
pub(crate) fn temporary_file(directory: &Path) -> Result<tempfile::NamedTempFile, OutputError> {
    tempfile::Builder::new()
        .prefix(STAGING_MARKER)
        .permissions(Permissions::from_mode(0o644))
        .tempfile_in(directory)
        .map_err(|source| OutputError::io("creating a temporary file in", directory, source))
}

/// Renames a finished temporary file to `target`.
pub(crate) fn persist(file: tempfile::NamedTempFile, target: &Path) -> Result<(), OutputError> {
    file.persist(target)
        .map_err(|error| OutputError::io("renaming a temporary file to", target, error.error))?;
    Ok(())
}

/// Writes `bytes` to `target` through a temporary file and a rename.
pub(crate) fn write_atomically(target: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let mut file = temporary_file(&parent_of(target))?;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .map_err(|source| OutputError::io("writing", target, source))?;
    persist(file, target)
}

/// Writes a tar of `entries` (archive path and the file holding its content,
/// or `None` for a directory) to a temporary file next to `output`, then
/// renames it onto `output`. Entries are sorted by path bytes and their
/// headers carry no time, owner or mode from the disk, so the same content
/// always gives the same archive.
pub(crate) fn write_tar(
    output: &Path,
    mut entries: Vec<(String, Option<PathBuf>)>,
) -> Result<(), OutputError> {
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let directory = parent_of(output);
    let prefix = sibling_prefix(output);
    let file = tempfile::Builder::new()
        .prefix(&prefix)
        .permissions(Permissions::from_mode(0o644))
        .tempfile_in(&directory)
        .map_err(|source| OutputError::io("creating a temporary file in", &directory, source))?;
    let mut builder = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
    for (name, content) in &entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match content {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, format!("{name}/"), io::empty())
                    .map_err(|source| OutputError::io("writing archive", output, source))?;
            }
            Some(path) => {
                let source_file = File::open(path)
                    .map_err(|source| OutputError::io("opening staged file", path, source))?;
                let size = source_file
                    .metadata()
                    .map_err(|source| OutputError::io("reading staged file", path, source))?
                    .len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(size);
                builder
                    .append_data(&mut header, name, source_file)
                    .map_err(|source| OutputError::io("writing archive", output, source))?;
            }
        }
    }
    let buffered = builder
        .into_inner()
        .map_err(|source| OutputError::io("writing archive", output, source))?;
    let file = buffered
        .into_inner()
        .map_err(|error| OutputError::io("writing archive", output, error.into_error()))?;
    file.as_file()
        .sync_all()
        .map_err(|source| OutputError::io("writing archive", output, source))?;
    persist(file, output)
}

/// Refuses an archive output path that is a directory.
pub(crate) fn check_archive_output(path: &Path) -> Result<(), OutputError> {
    if path.is_dir() {
        return Err(OutputError::DirectoryInTheWay {
            path: path.to_path_buf(),
        });
    }
    let directory = parent_of(path);
    fs::create_dir_all(&directory)
        .map_err(|source| OutputError::io("creating directory", &directory, source))?;
    remove_stale(&directory, &sibling_prefix(path));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn tar_is_sorted_and_carries_nothing_from_the_disk() {
        let work = tempfile::tempdir().unwrap();
        let first = work.path().join("b");
        fs::write(&first, b"bee").unwrap();
        let second = work.path().join("a");
        fs::write(&second, b"a").unwrap();
        let output = work.path().join("out.tar");
        write_tar(
            &output,
            vec![
                ("z".to_string(), Some(first)),
                ("dir".to_string(), None),
                ("dir/a".to_string(), Some(second)),
            ],
        )
        .unwrap();
        let mut archive = tar::Archive::new(File::open(&output).unwrap());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            assert_eq!(entry.header().mtime().unwrap(), 0);
            assert_eq!(entry.header().uid().unwrap(), 0);
            names.push(entry.path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(names, ["dir/", "dir/a", "z"]);
        let leftovers: Vec<_> = fs::read_dir(work.path())
            .unwrap()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().contains(STAGING_MARKER))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn stale_entries_go_and_fresh_ones_stay() {
        let work = tempfile::tempdir().unwrap();
        let stale = work.path().join(".x.hoist-staging-old");
        let fresh = work.path().join(".x.hoist-staging-new");
        fs::create_dir(&stale).unwrap();
        fs::create_dir(&fresh).unwrap();
        File::open(&stale)
            .unwrap()
            .set_modified(UNIX_EPOCH + Duration::from_secs(1000))
            .unwrap();
        remove_stale(work.path(), ".x.hoist-staging-");
        assert!(!stale.exists());
        assert!(fresh.exists());
    }
}
