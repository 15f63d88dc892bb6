//! The first pass over an image: every layer read once for paths and
//! metadata, with whiteouts applied the way an overlay mount applies them.

use super::{ContentLocation, FileEntry, FileKind, FileTree, TreeSource};
use crate::attest::AttestError;
use crate::image::Blob;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;

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

pub(super) fn open_layer(blob: &dyn Blob) -> Result<Box<dyn Read + Send + '_>, AttestError> {
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
pub(super) fn normalize(path: &str) -> Option<String> {
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

pub(super) fn split_parent(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((parent, name)) => (parent, name),
        None => ("", path),
    }
}

pub(super) fn join(parent: &str, name: &str) -> String {
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
