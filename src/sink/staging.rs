//! Staging shared by the sinks: hidden directories that hold a publish until
//! it is committed, blobs copied into them with their digests checked, stale
//! directories from killed runs swept away, and the deterministic tar writer
//! both archives use.

use super::OutputError;
use crate::image::Blob;
use crate::oci::digest::DigestError;
use crate::oci::{Digest, DigestWriter};
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
/// directory, and renamed into place. Either way the content is checked
/// against the blob's digest and size (a link only when hoist did not write
/// the file itself), so a layout whose blob was swapped, truncated or made a
/// symlink is refused whatever filesystem the output is on.
pub(crate) fn stage_blob(blob: &dyn Blob, target: &Path) -> Result<(), OutputError> {
    let directory = parent_of(target);
    fs::create_dir_all(&directory)
        .map_err(|source| OutputError::io("creating directory", &directory, source))?;
    if let Some(local) = blob.local_path()
        && fs::hard_link(local, target).is_ok()
    {
        if blob.local_path_trusted() {
            return readable_by_all(target);
        }
        // The link shares the source's inode, so what is checked here is
        // what the output holds. A symlink linked this way stays a symlink,
        // which `check_linked` refuses.
        return check_linked(blob, target).inspect_err(|_| {
            let _ = fs::remove_file(target);
        });
    }
    let mut file = temporary_file(&directory)?;
    let mut reader = blob
        .open()
        .map_err(|source| OutputError::io("reading blob for", target, source))?;
    let mut writer = DigestWriter::new(BufWriter::new(file.as_file_mut()));
    io::copy(&mut reader, &mut writer)
        .map_err(|source| content_error(blob, "copying blob to", target, source))?;
    let (mut buffered, digest, size) = writer.finish();
    buffered
        .flush()
        .map_err(|source| OutputError::io("writing", target, source))?;
    drop(buffered);
    check_content(blob, &digest, size)?;
    persist(file, target)
}

/// Makes a blob of hoist's own that an older version spooled as 0600 (and
/// that a hard link shares) readable like every other blob.
fn readable_by_all(target: &Path) -> Result<(), OutputError> {
    let metadata =
        fs::metadata(target).map_err(|source| OutputError::io("inspecting", target, source))?;
    if metadata.permissions().mode() & 0o044 == 0o044 {
        return Ok(());
    }
    fs::set_permissions(target, Permissions::from_mode(0o644))
        .map_err(|source| OutputError::io("setting permissions of", target, source))
}

/// Hashes the file hard-linked at `target` and compares it with `blob`.
fn check_linked(blob: &dyn Blob, target: &Path) -> Result<(), OutputError> {
    let mut file = crate::image::open_regular_file(target)
        .map_err(|source| OutputError::io("checking linked blob", target, source))?;
    let mut writer = DigestWriter::new(io::sink());
    io::copy(&mut file, &mut writer)
        .map_err(|source| OutputError::io("checking linked blob", target, source))?;
    let (_, digest, size) = writer.finish();
    check_content(blob, &digest, size)
}

/// A read that failed because the content does not match the descriptor (a
/// checking reader says so with `InvalidData`) is a content error naming the
/// blob; anything else is an I/O error.
pub(crate) fn content_error(
    blob: &dyn Blob,
    action: &'static str,
    target: &Path,
    source: io::Error,
) -> OutputError {
    let mismatch = source
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<DigestError>())
        .cloned();
    match mismatch {
        Some(mismatch) => OutputError::Content {
            digest: blob.digest().clone(),
            source: Box::new(mismatch),
        },
        None => OutputError::io(action, target, source),
    }
}

/// Compares what was read with the blob's descriptor.
fn check_content(blob: &dyn Blob, digest: &Digest, size: u64) -> Result<(), OutputError> {
    if size != blob.size() {
        return Err(OutputError::Content {
            digest: blob.digest().clone(),
            source: Box::new(DigestError::SizeMismatch {
                expected: blob.size(),
                actual: size,
            }),
        });
    }
    if digest != blob.digest() {
        return Err(OutputError::Content {
            digest: blob.digest().clone(),
            source: Box::new(DigestError::Mismatch {
                expected: blob.digest().clone(),
                actual: digest.clone(),
            }),
        });
    }
    Ok(())
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

/// Flushes a file's content, or a directory's entries, to the disk: blobs
/// must be there before an `index.json` that names them, or a crash could
/// leave an index pointing at empty or missing files.
pub(crate) fn sync_to_disk(path: &Path) -> Result<(), OutputError> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|source| OutputError::io("flushing to disk", path, source))
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

    fn descriptor_of(bytes: &[u8]) -> oci_spec::image::Descriptor {
        oci_spec::image::Descriptor::new(
            oci_spec::image::MediaType::ImageLayerGzip,
            bytes.len() as u64,
            crate::oci::sha256_digest(bytes),
        )
    }

    #[test]
    fn a_foreign_blob_is_checked_when_linked_and_when_copied() {
        let work = tempfile::tempdir().unwrap();
        let source = work.path().join("blob");
        fs::write(&source, b"other bytes").unwrap();
        let blob = crate::image::FileBlob::foreign(descriptor_of(b"the bytes!!"), &source);
        let linked = work.path().join("out/linked");
        let error = stage_blob(&blob, &linked).unwrap_err();
        assert!(matches!(error, OutputError::Content { .. }), "{error}");
        assert!(!linked.exists(), "the refused link is removed");

        // A symlink is refused even when it points at the right bytes.
        let right = work.path().join("right");
        fs::write(&right, b"the bytes!!").unwrap();
        let symlink = work.path().join("symlink");
        std::os::unix::fs::symlink(&right, &symlink).unwrap();
        let blob = crate::image::FileBlob::foreign(descriptor_of(b"the bytes!!"), &symlink);
        let target = work.path().join("out/symlinked");
        let error = stage_blob(&blob, &target).unwrap_err();
        assert!(
            error.to_string().contains("checking linked blob"),
            "{error}"
        );
        assert!(fs::symlink_metadata(&target).is_err());

        // hoist's own files are trusted on the link path.
        let own = crate::image::FileBlob::new(descriptor_of(b"the bytes!!"), &right);
        stage_blob(&own, &work.path().join("out/own")).unwrap();
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
