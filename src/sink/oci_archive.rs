//! `oci-archive:FILE[:TAG]`: a tar of an OCI image layout. The layout is
//! staged in a hidden directory next to FILE and, on `finish`, written as a
//! deterministic tar to a temporary file that is renamed onto FILE.

use super::OutputError;
use super::layout::LayoutSink;
use super::staging::{check_archive_output, parent_of, sibling_prefix, staging_dir, write_tar};
use crate::image::publish::{BlobOutcome, ManifestRole};
use crate::image::{Blob, BytesBlob, Sink, SinkError};
use oci_spec::image::Descriptor;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tempfile::TempDir;

/// An OCI archive being written; an existing FILE is replaced on finish.
pub struct OciArchiveSink {
    path: PathBuf,
    layout: LayoutSink,
    /// Holds the staged layout; removed when the sink is dropped.
    work: Mutex<Option<TempDir>>,
}

impl OciArchiveSink {
    pub fn create(path: &Path) -> Result<OciArchiveSink, SinkError> {
        let describe = format!("oci-archive:{}", path.display());
        let fail = |error: OutputError| SinkError::new(&describe, "opening", "", error);
        check_archive_output(path).map_err(fail)?;
        let work = staging_dir(&parent_of(path), &sibling_prefix(path)).map_err(fail)?;
        let layout = LayoutSink::open_as(&work.path().join("layout"), describe.clone())?;
        Ok(OciArchiveSink {
            path: path.to_path_buf(),
            layout,
            work: Mutex::new(Some(work)),
        })
    }

    fn write_archive(&self) -> Result<(), OutputError> {
        let root = self.layout.directory();
        let mut entries = Vec::new();
        for entry in walkdir::WalkDir::new(root).min_depth(1) {
            let entry = entry.map_err(|error| {
                let path = error.path().unwrap_or(root).to_path_buf();
                OutputError::io("listing", path, error.into())
            })?;
            let relative = entry
                .path()
                .strip_prefix(root)
                .unwrap_or(entry.path())
                .to_string_lossy()
                .into_owned();
            let content = (!entry.file_type().is_dir()).then(|| entry.path().to_path_buf());
            entries.push((relative, content));
        }
        write_tar(&self.path, entries)
    }
}

impl Sink for OciArchiveSink {
    fn describe(&self) -> String {
        format!("oci-archive:{}", self.path.display())
    }

    fn has_blob(&self, descriptor: &Descriptor) -> Result<bool, SinkError> {
        self.layout.has_blob(descriptor)
    }

    fn put_blob(&self, blob: &dyn Blob) -> Result<BlobOutcome, SinkError> {
        self.layout.put_blob(blob)
    }

    fn has_manifest(&self, descriptor: &Descriptor) -> Result<bool, SinkError> {
        self.layout.has_manifest(descriptor)
    }

    fn put_manifest(&self, manifest: &BytesBlob, role: ManifestRole<'_>) -> Result<(), SinkError> {
        self.layout.put_manifest(manifest, role)
    }

    fn name_tags(&self, names: &[(String, String)]) {
        self.layout.name_tags(names);
    }

    fn finish(&self) -> Result<(), SinkError> {
        self.layout.finish()?;
        let result = self.write_archive();
        let work = self
            .work
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(work) = work {
            let path = work.path().to_path_buf();
            if let Err(error) = work.close() {
                tracing::warn!(
                    "could not remove staging directory {}: {error}",
                    path.display()
                );
            }
        }
        result
            .map_err(|error| SinkError::new(self.describe(), "writing", self.path.display(), error))
    }
}
