//! `oci:DIR[:TAG]`: an OCI image layout directory. A publish stages its blobs
//! in a hidden directory; `finish` moves them in and writes `index.json` last,
//! under an exclusive lock on the layout, re-reading it inside the lock so two
//! builds into one layout both land. A layout that did not exist appears
//! whole, by renaming the staged directory into place.

use super::OutputError;
use super::staging::{
    STAGING_MARKER, blob_path, parent_of, remove_stale, sibling_prefix, stage_blob, staging_dir,
    sync_to_disk, write_atomically,
};
use crate::image::publish::{BlobOutcome, ManifestRole};
use crate::image::{Blob, BytesBlob, Sink, SinkError};
use crate::oci::{Digest, media_type, to_canonical_json};
use oci_spec::image::{Descriptor, MediaType};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tempfile::TempDir;

/// The annotation an OCI layout's `index.json` names its images by.
pub const REF_NAME: &str = oci_spec::image::ANNOTATION_REF_NAME;
/// The annotation containerd names an imported image by (BuildKit writes it
/// too); outside every digest, since `index.json` is not hashed.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

const LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";
const LAYOUT_VERSION: &str = "1.0.0";

/// An OCI image layout being written.
pub struct LayoutSink {
    directory: PathBuf,
    /// What messages call it: `oci:DIR`, or the archive it is staged for.
    name: String,
    /// Where blobs are staged: the future layout itself when it is new,
    /// else a hidden directory inside the existing one.
    staging_root: PathBuf,
    mode: Mode,
    state: Mutex<State>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The layout does not exist: the staging directory becomes it.
    Create,
    /// The directory exists (a layout, or empty): blobs move into it.
    Merge,
}

struct State {
    staging: Option<TempDir>,
    /// Staged blobs and their sizes.
    staged: HashMap<Digest, u64>,
    /// Blobs the layout already had, which this publish's manifests use.
    relied_upon: HashSet<Digest>,
    tops: Vec<(Descriptor, Option<String>)>,
    /// The full reference of each tag, where the caller told one.
    full_names: HashMap<String, String>,
    finished: bool,
}

impl LayoutSink {
    /// Opens `directory` for writing: an existing layout (added to), an empty
    /// directory or a path that does not exist yet. Anything else is refused.
    pub fn open(directory: &Path) -> Result<LayoutSink, SinkError> {
        Self::open_as(directory, format!("oci:{}", directory.display()))
    }

    /// Opens a layout that messages call `name` (an archive staged through it).
    pub(crate) fn open_as(directory: &Path, name: String) -> Result<LayoutSink, SinkError> {
        let describe = name.clone();
        let fail = |error: OutputError| SinkError::new(&describe, "opening", "", error);
        let mode = match fs::symlink_metadata(directory) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Mode::Create,
            Err(error) => return Err(fail(OutputError::io("inspecting", directory, error))),
            Ok(_) => {
                check_existing(directory).map_err(fail)?;
                Mode::Merge
            }
        };
        let staging = match mode {
            Mode::Create => {
                let parent = parent_of(directory);
                fs::create_dir_all(&parent)
                    .map_err(|error| fail(OutputError::io("creating directory", &parent, error)))?;
                let prefix = sibling_prefix(directory);
                remove_stale(&parent, &prefix);
                staging_dir(&parent, &prefix).map_err(fail)?
            }
            Mode::Merge => {
                remove_stale(directory, STAGING_MARKER);
                staging_dir(directory, STAGING_MARKER).map_err(fail)?
            }
        };
        Ok(LayoutSink {
            directory: directory.to_path_buf(),
            name,
            staging_root: staging.path().to_path_buf(),
            mode,
            state: Mutex::new(State {
                staging: Some(staging),
                staged: HashMap::new(),
                relied_upon: HashSet::new(),
                tops: Vec::new(),
                full_names: HashMap::new(),
                finished: false,
            }),
        })
    }

    /// The layout directory.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    fn error(
        &self,
        operation: &'static str,
        target: impl ToString,
        error: OutputError,
    ) -> SinkError {
        SinkError::new(self.describe(), operation, target, error)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the state half-updated in a way
        // that matters: every update is a single insert or push.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn has(&self, descriptor: &Descriptor) -> bool {
        let digest = descriptor.digest();
        let mut state = self.state();
        if state.staged.contains_key(digest) {
            return true;
        }
        if self.mode == Mode::Merge {
            let path = blob_path(&self.directory, digest);
            if fs::metadata(&path).is_ok_and(|metadata| metadata.len() == descriptor.size()) {
                state.relied_upon.insert(digest.clone());
                return true;
            }
        }
        false
    }

    fn stage(&self, blob: &dyn Blob) -> Result<(), OutputError> {
        if self.state().finished {
            return Err(OutputError::AlreadyFinished);
        }
        let path = blob_path(&self.staging_root, blob.digest());
        stage_blob(blob, &path)?;
        // A hard-linked spool file was never flushed, a copy not yet.
        sync_to_disk(&path)?;
        self.state()
            .staged
            .insert(blob.digest().clone(), blob.size());
        Ok(())
    }

    fn commit(&self, state: &mut State) -> Result<(), OutputError> {
        let entries: Vec<Value> = state
            .tops
            .iter()
            .map(|(descriptor, tag)| {
                let full_name = tag.as_ref().and_then(|tag| state.full_names.get(tag));
                index_entry(descriptor, tag.as_deref(), full_name.map(String::as_str))
            })
            .collect();
        match self.mode {
            Mode::Create => {
                let index = merge_index(None, &entries);
                sync_blob_directories(&self.staging_root, state)?;
                write_layout_file(&self.staging_root)?;
                write_index(&self.staging_root, &index)?;
                fs::set_permissions(
                    &self.staging_root,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )
                .map_err(|source| {
                    OutputError::io("setting permissions of", &self.staging_root, source)
                })?;
                match fs::rename(&self.staging_root, &self.directory) {
                    Ok(()) => {
                        if let Some(staging) = state.staging.take() {
                            // The directory is the layout now; do not remove it.
                            let _ = staging.keep();
                        }
                        sync_to_disk(&parent_of(&self.directory))
                    }
                    // Another build created the layout meanwhile: add to it.
                    Err(error)
                        if matches!(
                            error.kind(),
                            io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty
                        ) =>
                    {
                        check_existing(&self.directory)?;
                        merge_into(&self.directory, &self.staging_root, state, &entries)
                    }
                    Err(error) => Err(OutputError::io(
                        "moving the staged layout to",
                        &self.directory,
                        error,
                    )),
                }
            }
            Mode::Merge => merge_into(&self.directory, &self.staging_root, state, &entries),
        }
    }
}

/// Accepts an existing path only if it is a layout or an empty directory.
fn check_existing(directory: &Path) -> Result<(), OutputError> {
    let not_a_layout = || OutputError::NotALayout {
        path: directory.to_path_buf(),
    };
    if !directory.is_dir() {
        return Err(not_a_layout());
    }
    let layout_file = directory.join(LAYOUT_FILE);
    match fs::read(&layout_file) {
        Ok(bytes) => {
            let value: Value =
                serde_json::from_slice(&bytes).map_err(|source| OutputError::Json {
                    path: layout_file.clone(),
                    source,
                })?;
            let version = value
                .get("imageLayoutVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if version != LAYOUT_VERSION {
                return Err(OutputError::LayoutVersion {
                    path: layout_file,
                    version: version.to_string(),
                });
            }
            Ok(())
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let mut entries = fs::read_dir(directory)
                .map_err(|source| OutputError::io("listing", directory, source))?;
            // Only staging directories of other runs may be there already.
            let other = entries.find(|entry| {
                entry.as_ref().map_or(true, |entry| {
                    !entry
                        .file_name()
                        .to_string_lossy()
                        .starts_with(STAGING_MARKER)
                })
            });
            if other.is_some() {
                return Err(not_a_layout());
            }
            Ok(())
        }
        Err(error) => Err(OutputError::io("reading", &layout_file, error)),
    }
}

/// The `index.json` entry for a top manifest stored under `tag`.
/// The `artifactType` a manifest declares, if any.
fn artifact_type(manifest: &[u8]) -> Option<String> {
    let parsed: Value = serde_json::from_slice(manifest).ok()?;
    Some(parsed.get("artifactType")?.as_str()?.to_string())
}

fn index_entry(descriptor: &Descriptor, tag: Option<&str>, full_name: Option<&str>) -> Value {
    let mut entry = json!({
        "mediaType": descriptor.media_type().to_string(),
        "digest": descriptor.digest().to_string(),
        "size": descriptor.size(),
    });
    if let Some(artifact_type) = descriptor.artifact_type() {
        entry["artifactType"] = json!(artifact_type.to_string());
    }
    match (tag, full_name) {
        (Some(tag), Some(full_name)) => {
            entry["annotations"] = json!({ REF_NAME: tag, CONTAINERD_NAME: full_name });
        }
        (Some(tag), None) => entry["annotations"] = json!({ REF_NAME: tag }),
        (None, _) => {}
    }
    entry
}

fn entry_tag(entry: &Value) -> Option<&str> {
    entry.get("annotations")?.get(REF_NAME)?.as_str()
}

/// Adds `entries` to an existing index (kept as JSON values so fields this
/// version does not know survive): an entry with the same tag is replaced,
/// and an untagged entry replaces an untagged one of the same digest.
fn merge_index(existing: Option<Value>, entries: &[Value]) -> Value {
    let mut index = existing
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"schemaVersion": 2, "mediaType": media_type::OCI_INDEX}));
    let mut manifests = match index.get_mut("manifests").map(Value::take) {
        Some(Value::Array(manifests)) => manifests,
        _ => Vec::new(),
    };
    for entry in entries {
        let tag = entry_tag(entry);
        manifests.retain(|old| match tag {
            Some(tag) => entry_tag(old) != Some(tag),
            None => entry_tag(old).is_some() || old.get("digest") != entry.get("digest"),
        });
        manifests.push(entry.clone());
    }
    index["manifests"] = Value::Array(manifests);
    index
}

fn write_layout_file(root: &Path) -> Result<(), OutputError> {
    let bytes =
        to_canonical_json(&json!({ "imageLayoutVersion": LAYOUT_VERSION })).map_err(|source| {
            OutputError::Encode {
                what: "oci-layout",
                source,
            }
        })?;
    write_atomically(&root.join(LAYOUT_FILE), &bytes)
}

fn write_index(root: &Path, index: &Value) -> Result<(), OutputError> {
    let bytes = to_canonical_json(index).map_err(|source| OutputError::Encode {
        what: "index.json",
        source,
    })?;
    write_atomically(&root.join(INDEX_FILE), &bytes)
}

/// Moves the staged blobs into `directory` and rewrites its `index.json`,
/// all under an exclusive lock on the directory. On failure every blob and
/// file this added is removed again, so the layout is as it was.
fn merge_into(
    directory: &Path,
    staging_root: &Path,
    state: &mut State,
    entries: &[Value],
) -> Result<(), OutputError> {
    let lock =
        File::open(directory).map_err(|source| OutputError::io("opening", directory, source))?;
    lock.lock()
        .map_err(|source| OutputError::io("locking", directory, source))?;
    let mut added: Vec<PathBuf> = Vec::new();
    let result = merge_locked(directory, staging_root, state, entries, &mut added);
    if result.is_err() {
        // Undo in reverse: blobs before the directories that hold them.
        for path in added.iter().rev() {
            let _ = fs::remove_file(path).or_else(|_| fs::remove_dir(path));
        }
    }
    drop(lock);
    result
}

fn merge_locked(
    directory: &Path,
    staging_root: &Path,
    state: &State,
    entries: &[Value],
    added: &mut Vec<PathBuf>,
) -> Result<(), OutputError> {
    // Re-check inside the lock: the directory may have changed since open.
    check_existing(directory)?;
    let layout_file = directory.join(LAYOUT_FILE);
    if !layout_file.exists() {
        write_layout_file(directory)?;
        added.push(layout_file);
    }
    let mut staged: Vec<(&Digest, &u64)> = state.staged.iter().collect();
    staged.sort_by_key(|(digest, _)| digest.to_string());
    for (digest, size) in staged {
        let target = blob_path(directory, digest);
        if let Ok(existing) = fs::metadata(&target) {
            if existing.len() != *size {
                // A truncated blob (a copy cut short): replace it, and keep
                // the good copy even if this publish fails later.
                let source = blob_path(staging_root, digest);
                fs::rename(&source, &target).map_err(|error| {
                    OutputError::io("replacing a truncated blob", &target, error)
                })?;
            }
            continue;
        }
        let target_directory = parent_of(&target);
        for ancestor in [directory.join("blobs"), target_directory.clone()] {
            if !ancestor.exists() {
                fs::create_dir(&ancestor)
                    .map_err(|source| OutputError::io("creating directory", &ancestor, source))?;
                added.push(ancestor);
            }
        }
        let source = blob_path(staging_root, digest);
        fs::rename(&source, &target)
            .map_err(|error| OutputError::io("moving a staged blob to", &target, error))?;
        added.push(target);
    }
    sync_blob_directories(directory, state)?;
    for digest in &state.relied_upon {
        if !blob_path(directory, digest).exists() {
            return Err(OutputError::BlobVanished {
                digest: digest.clone(),
            });
        }
    }
    let index_path = directory.join(INDEX_FILE);
    let existing = match fs::read(&index_path) {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes).map_err(|source| OutputError::Json {
                path: index_path.clone(),
                source,
            })?,
        ),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(OutputError::io("reading", &index_path, error)),
    };
    write_index(directory, &merge_index(existing, entries))?;
    sync_to_disk(directory)
}

/// Flushes the entries of `root/blobs/<algorithm>` (the staged blobs' names,
/// their files were flushed when staged), `root/blobs` and `root`, so every
/// blob is on disk before the `index.json` written next.
fn sync_blob_directories(root: &Path, state: &State) -> Result<(), OutputError> {
    let algorithms: std::collections::BTreeSet<String> = state
        .staged
        .keys()
        .map(|digest| digest.algorithm().to_string())
        .collect();
    for algorithm in &algorithms {
        sync_to_disk(&root.join("blobs").join(algorithm))?;
    }
    if !algorithms.is_empty() {
        sync_to_disk(&root.join("blobs"))?;
        sync_to_disk(root)?;
    }
    Ok(())
}

impl Sink for LayoutSink {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn has_blob(&self, descriptor: &Descriptor) -> Result<bool, SinkError> {
        Ok(self.has(descriptor))
    }

    fn put_blob(&self, blob: &dyn Blob) -> Result<BlobOutcome, SinkError> {
        self.stage(blob)
            .map_err(|error| self.error("storing blob", blob.digest(), error))?;
        Ok(BlobOutcome::Uploaded)
    }

    fn has_manifest(&self, descriptor: &Descriptor) -> Result<bool, SinkError> {
        Ok(self.has(descriptor))
    }

    fn put_manifest(&self, manifest: &BytesBlob, role: ManifestRole<'_>) -> Result<(), SinkError> {
        if !self.has(manifest.descriptor()) {
            self.stage(manifest)
                .map_err(|error| self.error("storing manifest", manifest.digest(), error))?;
        }
        if let ManifestRole::Top { tag } = role {
            let source = manifest.descriptor();
            let mut descriptor = Descriptor::new(
                source.media_type().clone(),
                source.size(),
                source.digest().clone(),
            );
            // An artifact (a referrer: SBOM, provenance, signature) is listed
            // with its type, as the image spec asks of descriptors to one.
            descriptor.set_artifact_type(
                artifact_type(manifest.bytes()).map(|found| MediaType::from(found.as_str())),
            );
            self.state()
                .tops
                .push((descriptor, tag.map(str::to_string)));
        }
        Ok(())
    }

    fn name_tags(&self, names: &[(String, String)]) {
        self.state().full_names.extend(names.iter().cloned());
    }

    fn finish(&self) -> Result<(), SinkError> {
        let mut state = self.state();
        if state.finished {
            return Err(self.error("finishing", "", OutputError::AlreadyFinished));
        }
        state.finished = true;
        let result = self.commit(&mut state);
        // Whatever happened, the staging directory goes (unless it became
        // the layout, in which case it was taken above).
        if let Some(staging) = state.staging.take() {
            let path = staging.path().to_path_buf();
            if let Err(error) = staging.close() {
                tracing::warn!(
                    "could not remove staging directory {}: {error}",
                    path.display()
                );
            }
        }
        result.map_err(|error| self.error("writing", "index.json", error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_replaces_same_tag_and_keeps_others() {
        let existing = json!({
            "schemaVersion": 2,
            "manifests": [
                {"digest": "sha256:aa", "annotations": {REF_NAME: "one"}, "x-unknown": 1},
                {"digest": "sha256:bb", "annotations": {REF_NAME: "two"}},
                {"digest": "sha256:cc"},
            ]
        });
        let merged = merge_index(
            Some(existing),
            &[
                json!({"digest": "sha256:dd", "annotations": {REF_NAME: "two"}}),
                json!({"digest": "sha256:cc"}),
            ],
        );
        let manifests = merged["manifests"].as_array().unwrap();
        let digests: Vec<&str> = manifests
            .iter()
            .map(|entry| entry["digest"].as_str().unwrap())
            .collect();
        assert_eq!(digests, ["sha256:aa", "sha256:dd", "sha256:cc"]);
        assert_eq!(manifests[0]["x-unknown"], 1);
        assert!(merged.get("mediaType").is_none());
    }

    #[test]
    fn a_file_or_a_full_directory_is_not_a_layout() {
        let work = tempfile::tempdir().unwrap();
        let file = work.path().join("file");
        fs::write(&file, b"x").unwrap();
        assert!(matches!(
            check_existing(&file),
            Err(OutputError::NotALayout { .. })
        ));
        let full = work.path().join("full");
        fs::create_dir(&full).unwrap();
        fs::write(full.join("readme"), b"x").unwrap();
        assert!(matches!(
            check_existing(&full),
            Err(OutputError::NotALayout { .. })
        ));
        let empty = work.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert!(check_existing(&empty).is_ok());
    }
}
