//! The image's final file system as catalogers see it, read straight from the
//! layer streams without unpacking anything to disk.
//!
//! Two passes: [`image_files`] walks every layer once for paths and metadata,
//! applying whiteouts the way an overlay mount would; [`FileTree::read_files`]
//! then opens only the layers that hold the final version of a wanted file and
//! streams just those entries, stopping each layer after its last wanted entry.
//! Nothing holds a whole layer in memory.

mod overlay;

pub use overlay::image_files;
use overlay::{join, normalize, open_layer, split_parent};

use super::AttestError;
use crate::image::Blob;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a path is in the final file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    /// The link text as stored, relative or absolute.
    Symlink {
        target: String,
    },
    /// Another path of the image with the same content.
    Hardlink {
        target: String,
    },
    /// Devices, fifos, sockets.
    Other,
}

/// Where the bytes of a regular file (or of a hardlink's target) are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ContentLocation {
    layer: usize,
    /// Position of the entry in its layer's tar stream.
    ordinal: u64,
}

/// One path of the final file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub kind: FileKind,
    pub size: u64,
    pub mode: u32,
    content: Option<ContentLocation>,
    /// The layer that put the entry here.
    layer: usize,
}

impl FileEntry {
    /// True when the entry has bytes that [`FileTree::read_files`] can stream.
    pub fn has_content(&self) -> bool {
        matches!(self.kind, FileKind::Regular | FileKind::Hardlink { .. }) && self.content.is_some()
    }

    pub fn is_executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

enum TreeSource {
    Layers(Vec<Arc<dyn Blob>>),
    Directory(PathBuf),
}

/// The merged view of an image's layers (or of a directory on disk), keyed by
/// absolute normalized path (`/usr/bin/env`).
pub struct FileTree {
    entries: BTreeMap<String, FileEntry>,
    source: TreeSource,
}

impl FileTree {
    /// The tree of a root file system on disk. Symlinks are recorded, never followed.
    pub fn from_directory(root: impl AsRef<Path>) -> Result<FileTree, AttestError> {
        use std::os::unix::fs::MetadataExt;
        let root = root.as_ref();
        let mut entries = BTreeMap::new();
        for item in walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
            .min_depth(1)
        {
            let item = item.map_err(|error| AttestError::DirectoryRead {
                path: error.path().unwrap_or(root).to_path_buf(),
                source: error.into(),
            })?;
            let relative = item.path().strip_prefix(root).unwrap_or(item.path());
            let Some(path) = normalize(&relative.to_string_lossy()) else {
                continue;
            };
            let metadata =
                item.path()
                    .symlink_metadata()
                    .map_err(|source| AttestError::DirectoryRead {
                        path: item.path().to_path_buf(),
                        source,
                    })?;
            let file_type = metadata.file_type();
            let kind = if file_type.is_symlink() {
                let target = std::fs::read_link(item.path()).map_err(|source| {
                    AttestError::DirectoryRead {
                        path: item.path().to_path_buf(),
                        source,
                    }
                })?;
                FileKind::Symlink {
                    target: target.to_string_lossy().into_owned(),
                }
            } else if file_type.is_dir() {
                FileKind::Directory
            } else if file_type.is_file() {
                FileKind::Regular
            } else {
                FileKind::Other
            };
            let is_regular = kind == FileKind::Regular;
            entries.insert(
                path,
                FileEntry {
                    kind,
                    size: if is_regular { metadata.len() } else { 0 },
                    mode: metadata.mode() & 0o7777,
                    content: is_regular.then_some(ContentLocation {
                        layer: 0,
                        ordinal: 0,
                    }),
                    layer: 0,
                },
            );
        }
        Ok(FileTree {
            entries,
            source: TreeSource::Directory(root.to_path_buf()),
        })
    }

    pub fn get(&self, path: &str) -> Option<&FileEntry> {
        self.entries.get(path)
    }

    /// Every path and entry, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FileEntry)> {
        self.entries
            .iter()
            .map(|(path, entry)| (path.as_str(), entry))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Follows symlinks (in every component, as the kernel would, with the
    /// image root as `/`) to the path that holds the content, if it exists.
    pub fn resolve(&self, path: &str) -> Option<String> {
        let mut pending: Vec<String> = path
            .split('/')
            .filter(|part| !part.is_empty())
            .rev()
            .map(str::to_string)
            .collect();
        let mut resolved = String::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "." => continue,
                ".." => {
                    let (parent, _) = split_parent(&resolved);
                    resolved = parent.to_string();
                    continue;
                }
                _ => {}
            }
            let candidate = join(&resolved, &part);
            let Some(entry) = self.entries.get(&candidate) else {
                // Tars need not list every parent directory; only the last
                // component has to exist.
                if pending.is_empty() {
                    return None;
                }
                resolved = candidate;
                continue;
            };
            match &entry.kind {
                FileKind::Symlink { target } => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    if target.starts_with('/') {
                        resolved.clear();
                    }
                    pending.extend(
                        target
                            .split('/')
                            .filter(|piece| !piece.is_empty())
                            .rev()
                            .map(str::to_string),
                    );
                }
                _ => resolved = candidate,
            }
        }
        (!resolved.is_empty()).then_some(resolved)
    }

    /// Streams the content of every file `wanted` selects to `visit`, in path
    /// order per layer. Only layers holding a wanted file are opened, and each
    /// is read only up to its last wanted entry.
    ///
    /// Paths that share one tar entry (hard links) are read once: the bytes
    /// are held for the other paths only up to [`SHARED_BUFFER_LIMIT`]; past
    /// that only the first path is visited and each other one is passed to
    /// `unread` with the path that was, so the caller can say it was skipped.
    pub fn read_files(
        &self,
        wanted: &dyn Fn(&str, &FileEntry) -> bool,
        visit: &mut dyn FnMut(&str, &FileEntry, &mut dyn Read),
        unread: &mut dyn FnMut(&str, &FileEntry, &str),
    ) -> Result<(), AttestError> {
        match &self.source {
            TreeSource::Directory(root) => {
                for (path, entry) in &self.entries {
                    if !entry.has_content() || !wanted(path, entry) {
                        continue;
                    }
                    let disk_path = root.join(path.trim_start_matches('/'));
                    let file = std::fs::File::open(&disk_path).map_err(|source| {
                        AttestError::DirectoryRead {
                            path: disk_path.clone(),
                            source,
                        }
                    })?;
                    // Never more than the walk saw: a file that grew since is
                    // not read past the size its limits were checked against.
                    visit(path, entry, &mut file.take(entry.size));
                }
                Ok(())
            }
            TreeSource::Layers(layers) => {
                // layer → ordinal → paths sharing those bytes (hardlinks).
                let mut plan: BTreeMap<usize, BTreeMap<u64, Vec<&str>>> = BTreeMap::new();
                for (path, entry) in &self.entries {
                    if let Some(location) = entry.content
                        && entry.has_content()
                        && wanted(path, entry)
                    {
                        plan.entry(location.layer)
                            .or_default()
                            .entry(location.ordinal)
                            .or_default()
                            .push(path);
                    }
                }
                for (layer_position, wanted_here) in plan {
                    let Some(blob) = layers.get(layer_position) else {
                        continue;
                    };
                    read_layer_entries(blob.as_ref(), &wanted_here, &self.entries, visit, unread)?;
                }
                Ok(())
            }
        }
    }
}

/// The most bytes of one tar entry held in memory to hand to each of the
/// paths hard-linked to it; a larger shared entry is read for one path only.
pub const SHARED_BUFFER_LIMIT: u64 = 64 << 20;

fn read_layer_entries(
    blob: &dyn Blob,
    wanted: &BTreeMap<u64, Vec<&str>>,
    entries: &BTreeMap<String, FileEntry>,
    visit: &mut dyn FnMut(&str, &FileEntry, &mut dyn Read),
    unread: &mut dyn FnMut(&str, &FileEntry, &str),
) -> Result<(), AttestError> {
    let layer_error = |source: io::Error| AttestError::LayerRead {
        digest: blob.digest().clone(),
        source,
    };
    let last = wanted.keys().next_back().copied().unwrap_or(0);
    let mut archive = tar::Archive::new(open_layer(blob)?);
    for (ordinal, entry) in archive.entries().map_err(layer_error)?.enumerate() {
        let ordinal = ordinal as u64;
        if ordinal > last {
            break;
        }
        let mut entry = entry.map_err(layer_error)?;
        let Some(paths) = wanted.get(&ordinal) else {
            continue;
        };
        let found = |path: &str| entries.get(path).cloned();
        if let [path] = paths.as_slice() {
            if let Some(file) = found(path) {
                visit(path, &file, &mut entry);
            }
        } else if entry.size() > SHARED_BUFFER_LIMIT {
            // The size is the header's, checked before a byte is held.
            let (first, others) = paths.split_first().unwrap_or((&"", &[]));
            if let Some(file) = found(first) {
                visit(first, &file, &mut entry);
            }
            for path in others {
                if let Some(file) = found(path) {
                    unread(path, &file, first);
                }
            }
        } else {
            // Hardlinks to one entry, small enough to hold once for all.
            let mut bytes = Vec::new();
            (&mut entry)
                .take(SHARED_BUFFER_LIMIT)
                .read_to_end(&mut bytes)
                .map_err(layer_error)?;
            for path in paths {
                if let Some(file) = found(path) {
                    visit(path, &file, &mut &bytes[..]);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
