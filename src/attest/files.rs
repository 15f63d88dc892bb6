//! The image's final file system as catalogers see it, read straight from the
//! layer streams without unpacking anything to disk.
//!
//! Two passes: [`image_files`] walks every layer once for paths and metadata,
//! applying whiteouts the way an overlay mount would; [`FileTree::read_files`]
//! then opens only the layers that hold the final version of a wanted file and
//! streams just those entries, stopping each layer after its last wanted entry.
//! Nothing holds a whole layer in memory.

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

/// Reads the file tree of an image from its layers, lowest first.
pub fn image_files(layers: &[Arc<dyn Blob>]) -> Result<FileTree, AttestError> {
    let mut entries: BTreeMap<String, FileEntry> = BTreeMap::new();
    for (layer_position, blob) in layers.iter().enumerate() {
        let layer_error = |source: io::Error| AttestError::LayerRead {
            digest: blob.digest().clone(),
            source,
        };
        let reader = open_layer(blob.as_ref())?;
        let mut archive = tar::Archive::new(reader);
        for (ordinal, entry) in archive.entries().map_err(layer_error)?.enumerate() {
            let entry = entry.map_err(layer_error)?;
            let Some(path) = normalize(&String::from_utf8_lossy(&entry.path_bytes())) else {
                continue;
            };
            let (parent, name) = split_parent(&path);
            if name == ".wh..wh..opq" {
                remove_below(&mut entries, parent, layer_position);
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.") {
                let hidden_path = join(parent, hidden);
                if entries
                    .get(&hidden_path)
                    .is_some_and(|old| old.layer < layer_position)
                {
                    entries.remove(&hidden_path);
                }
                remove_below(&mut entries, &hidden_path, layer_position);
                continue;
            }
            let header = entry.header();
            let mode = header.mode().unwrap_or(0) & 0o7777;
            let link_text = || {
                entry
                    .link_name_bytes()
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_default()
            };
            let ordinal = ordinal as u64;
            let file = match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => FileEntry {
                    kind: FileKind::Regular,
                    size: entry.size(),
                    mode,
                    content: Some(ContentLocation {
                        layer: layer_position,
                        ordinal,
                    }),
                    layer: layer_position,
                },
                tar::EntryType::Directory => FileEntry {
                    kind: FileKind::Directory,
                    size: 0,
                    mode,
                    content: None,
                    layer: layer_position,
                },
                tar::EntryType::Symlink => FileEntry {
                    kind: FileKind::Symlink {
                        target: link_text(),
                    },
                    size: 0,
                    mode,
                    content: None,
                    layer: layer_position,
                },
                tar::EntryType::Link => {
                    let target = normalize(&link_text()).unwrap_or_default();
                    // The link shares its target's bytes, wherever they are.
                    let (content, size) = match entries.get(&target) {
                        Some(found) => (found.content, found.size),
                        None => (None, 0),
                    };
                    FileEntry {
                        kind: FileKind::Hardlink { target },
                        size,
                        mode,
                        content,
                        layer: layer_position,
                    }
                }
                _ => FileEntry {
                    kind: FileKind::Other,
                    size: 0,
                    mode,
                    content: None,
                    layer: layer_position,
                },
            };
            let replaces_directory = entries
                .get(&path)
                .is_some_and(|old| old.kind == FileKind::Directory);
            if replaces_directory && file.kind != FileKind::Directory {
                // A file over a directory hides everything the directory held.
                remove_below(&mut entries, &path, layer_position);
            }
            entries.insert(path, file);
        }
    }
    Ok(FileTree {
        entries,
        source: TreeSource::Layers(layers.to_vec()),
    })
}

fn open_layer(blob: &dyn Blob) -> Result<Box<dyn Read + Send + '_>, AttestError> {
    let media_type = blob.descriptor().media_type().to_string();
    let reader = blob.open().map_err(|source| AttestError::LayerRead {
        digest: blob.digest().clone(),
        source,
    })?;
    // Suffixes cover OCI, Docker and the non-distributable variants alike.
    if media_type.ends_with(".tar") {
        Ok(reader)
    } else if media_type.ends_with(".tar+gzip") || media_type.ends_with(".tar.gzip") {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(reader)))
    } else if media_type.ends_with(".tar+zstd") {
        let decoder =
            zstd::stream::read::Decoder::new(reader).map_err(|source| AttestError::LayerRead {
                digest: blob.digest().clone(),
                source,
            })?;
        Ok(Box::new(decoder))
    } else {
        Err(AttestError::UnsupportedLayer {
            digest: blob.digest().clone(),
            media_type,
        })
    }
}

/// `./a//b/../c/` → `/a/c`; `None` for the root itself.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!("/{}", parts.join("/")))
}

fn split_parent(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((parent, name)) => (parent, name),
        None => ("", path),
    }
}

fn join(parent: &str, name: &str) -> String {
    format!("{parent}/{name}")
}

/// Removes what lower layers put below `directory` (not `directory` itself).
fn remove_below(entries: &mut BTreeMap<String, FileEntry>, directory: &str, layer: usize) {
    let prefix = format!("{directory}/");
    let doomed: Vec<String> = entries
        .range(prefix.clone()..)
        .take_while(|(path, _)| path.starts_with(&prefix))
        .filter(|(_, entry)| entry.layer < layer)
        .map(|(path, _)| path.clone())
        .collect();
    for path in doomed {
        entries.remove(&path);
    }
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
mod tests {
    use super::*;
    use crate::image::BytesBlob;
    use crate::oci::media_type;
    use oci_spec::image::MediaType;
    use std::collections::HashMap;

    fn kinds(tree: &FileTree) -> HashMap<String, FileKind> {
        tree.iter()
            .map(|(path, entry)| (path.to_string(), entry.kind.clone()))
            .collect()
    }

    enum Item<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
        Hardlink(&'a str, &'a str),
    }

    fn tar_bytes(items: &[Item]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for item in items {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o755);
            match item {
                Item::File(path, content) => {
                    header.set_size(content.len() as u64);
                    header.set_entry_type(tar::EntryType::Regular);
                    builder.append_data(&mut header, path, *content).unwrap();
                }
                Item::Dir(path) => {
                    header.set_size(0);
                    header.set_entry_type(tar::EntryType::Directory);
                    builder.append_data(&mut header, path, &[][..]).unwrap();
                }
                Item::Symlink(path, target) => {
                    header.set_size(0);
                    header.set_entry_type(tar::EntryType::Symlink);
                    builder.append_link(&mut header, path, target).unwrap();
                }
                Item::Hardlink(path, target) => {
                    header.set_size(0);
                    header.set_entry_type(tar::EntryType::Link);
                    builder.append_link(&mut header, path, target).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn layer(media_type: MediaType, bytes: Vec<u8>) -> Arc<dyn Blob> {
        Arc::new(BytesBlob::new(media_type, bytes))
    }

    fn contents(
        tree: &FileTree,
        wanted: &dyn Fn(&str, &FileEntry) -> bool,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        tree.read_files(
            wanted,
            &mut |path, _, reader| {
                let mut text = String::new();
                reader.read_to_string(&mut text).unwrap();
                out.push((path.to_string(), text));
            },
            &mut |path, _, first| panic!("{path} (a link to {first}) was not read"),
        )
        .unwrap();
        out.sort();
        out
    }

    #[test]
    fn whiteouts_and_opaque_directories_apply_to_lower_layers() {
        let base = tar_bytes(&[
            Item::Dir("etc/"),
            Item::File("etc/keep", b"keep"),
            Item::File("etc/gone", b"gone"),
            Item::Dir("opt/"),
            Item::File("opt/old", b"old"),
            Item::Dir("var/lib/"),
            Item::File("var/lib/a", b"a"),
        ]);
        let top = tar_bytes(&[
            Item::File("etc/.wh.gone", b""),
            Item::File("opt/new", b"new"),
            Item::File("opt/.wh..wh..opq", b""),
            Item::File("./etc/keep", b"changed"),
            Item::File("var/.wh.lib", b""),
        ]);
        let layers = vec![
            layer(MediaType::ImageLayerGzip, gzip(&base)),
            layer(MediaType::Other(media_type::DOCKER_LAYER.to_string()), top),
        ];
        let tree = image_files(&layers).unwrap();
        let kinds = kinds(&tree);
        assert!(!kinds.contains_key("/etc/gone"));
        assert!(
            !kinds.contains_key("/opt/old"),
            "opaque dir hides lower files"
        );
        assert!(
            kinds.contains_key("/opt/new"),
            "opaque dir keeps its own layer"
        );
        assert!(!kinds.contains_key("/var/lib"));
        assert!(!kinds.contains_key("/var/lib/a"));
        assert_eq!(
            contents(&tree, &|path, _| path.starts_with("/etc/")),
            vec![("/etc/keep".to_string(), "changed".to_string())]
        );
    }

    #[test]
    fn zstd_layers_symlinks_and_hardlinks() {
        let bytes = tar_bytes(&[
            Item::Dir("usr/lib/"),
            Item::File("usr/lib/os-release", b"ID=test\n"),
            Item::Dir("etc/"),
            Item::Symlink("etc/os-release", "../usr/lib/os-release"),
            Item::Symlink("lib", "usr/lib"),
            Item::Hardlink("usr/lib/copy", "usr/lib/os-release"),
        ]);
        let compressed = zstd::encode_all(&bytes[..], 3).unwrap();
        let tree = image_files(&[layer(MediaType::ImageLayerZstd, compressed)]).unwrap();
        assert_eq!(
            tree.resolve("/etc/os-release").as_deref(),
            Some("/usr/lib/os-release")
        );
        assert_eq!(
            tree.resolve("/lib/os-release").as_deref(),
            Some("/usr/lib/os-release")
        );
        assert_eq!(tree.resolve("/etc/missing"), None);
        assert_eq!(tree.get("/usr/lib/copy").unwrap().size, 8);
        assert_eq!(
            contents(&tree, &|path, _| path.starts_with("/usr/lib/")),
            vec![
                ("/usr/lib/copy".to_string(), "ID=test\n".to_string()),
                ("/usr/lib/os-release".to_string(), "ID=test\n".to_string()),
            ]
        );
    }

    #[test]
    fn only_the_final_version_is_read() {
        let first = tar_bytes(&[Item::File("a", b"one"), Item::File("b", b"bee")]);
        let second = tar_bytes(&[Item::File("a", b"two"), Item::File("a", b"three")]);
        let tree = image_files(&[
            layer(MediaType::ImageLayer, first),
            layer(MediaType::ImageLayer, second),
        ])
        .unwrap();
        assert_eq!(
            contents(&tree, &|_, _| true),
            vec![
                ("/a".to_string(), "three".to_string()),
                ("/b".to_string(), "bee".to_string())
            ]
        );
    }

    #[test]
    fn unknown_media_types_and_corrupt_layers_are_errors() {
        let error = image_files(&[layer(MediaType::ImageConfig, b"{}".to_vec())]).err();
        assert!(matches!(error, Some(AttestError::UnsupportedLayer { .. })));
        let error = image_files(&[layer(MediaType::ImageLayerGzip, b"not gzip".to_vec())]).err();
        assert!(matches!(error, Some(AttestError::LayerRead { .. })));
    }

    #[test]
    fn directory_tree_reads_from_disk() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(directory.path().join("etc")).unwrap();
        std::fs::write(directory.path().join("etc/hostname"), b"box").unwrap();
        std::os::unix::fs::symlink("hostname", directory.path().join("etc/name")).unwrap();
        let tree = FileTree::from_directory(directory.path()).unwrap();
        assert_eq!(tree.resolve("/etc/name").as_deref(), Some("/etc/hostname"));
        assert_eq!(
            contents(&tree, &|_, _| true),
            vec![("/etc/hostname".to_string(), "box".to_string())]
        );
    }
}
