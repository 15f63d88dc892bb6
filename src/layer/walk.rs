//! The first step of a layer: walk every input (symlinks never followed),
//! apply excludes, and merge everything into one map keyed by in-image path,
//! sorted by bytes, with the later input winning, parent directories added
//! where a target needs them and whiteouts for removed paths. Only `lstat`
//! happens here; contents are read when the tar is written.

use super::{LayerError, LayerInput, LayerRecipe};
use crate::progress::{Event, Observer};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What kind of file a disk entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
}

/// What `lstat` said about a file, kept so the tar and the cache key agree
/// on one observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileFacts {
    pub kind: FileKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub mtime_nanoseconds: i64,
    pub ctime: i64,
    pub ctime_nanoseconds: i64,
    pub size: u64,
    pub device: u64,
    pub inode: u64,
    pub links: u64,
    pub rdev: u64,
}

/// A file on disk and how its header differs from what `lstat` says.
#[derive(Clone, Debug)]
pub(crate) struct DiskEntry {
    pub source: PathBuf,
    pub facts: FileFacts,
    /// The input's explicit `mode`, for a file input.
    pub mode_override: Option<u32>,
}

#[derive(Clone, Debug)]
pub(crate) enum PlannedEntry {
    Disk(DiskEntry),
    /// A parent directory no input provides.
    ParentDirectory,
    /// `.wh.<name>`: hides a path of the layers below.
    Whiteout,
}

/// Everything the layer holds, keyed by in-image path without the leading
/// `/` (and without a trailing one), in byte order.
pub(crate) type Plan = BTreeMap<Vec<u8>, PlannedEntry>;

/// Walks the recipe's inputs into a [`Plan`].
pub(crate) fn plan(recipe: &LayerRecipe, observer: &dyn Observer) -> Result<Plan, LayerError> {
    let mut plan = Plan::new();
    for input in &recipe.inputs {
        add_input(&mut plan, input, observer)?;
    }
    add_parents(&mut plan)?;
    for removed in &recipe.remove {
        let key = whiteout_key(removed)?;
        plan.insert(key, PlannedEntry::Whiteout);
    }
    Ok(plan)
}

fn add_input(
    plan: &mut Plan,
    input: &LayerInput,
    observer: &dyn Observer,
) -> Result<(), LayerError> {
    let target = image_path_key(&input.target).map_err(|reason| LayerError::InvalidTarget {
        source_path: input.source.clone(),
        target: input.target.clone(),
        reason,
    })?;
    let metadata = std::fs::symlink_metadata(&input.source).map_err(|error| LayerError::Read {
        path: input.source.clone(),
        source: error,
    })?;
    if !metadata.is_dir() {
        if target.is_empty() {
            return Err(LayerError::InvalidTarget {
                source_path: input.source.clone(),
                target: input.target.clone(),
                reason:
                    "a file cannot be the image root; give the path it should have, like /app/run"
                        .to_string(),
            });
        }
        if let Some(facts) = facts_or_warn(&input.source, &metadata, observer) {
            check_name(&target, &input.source)?;
            plan.insert(
                target,
                PlannedEntry::Disk(DiskEntry {
                    source: input.source.clone(),
                    facts,
                    mode_override: input.mode,
                }),
            );
        }
        return Ok(());
    }

    let excludes = build_excludes(&input.exclude)?;
    let walker = walkdir::WalkDir::new(&input.source)
        .follow_links(false)
        .sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()))
        .into_iter()
        .filter_entry(|entry| {
            entry.depth() == 0
                || !excludes.is_match(
                    entry
                        .path()
                        .strip_prefix(&input.source)
                        .unwrap_or(entry.path()),
                )
        });
    for entry in walker {
        let entry = entry.map_err(|error| {
            let path = error
                .path()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| input.source.clone());
            LayerError::Walk {
                path,
                source: error,
            }
        })?;
        if entry.depth() == 0 && target.is_empty() {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(&input.source)
            .unwrap_or(entry.path());
        let key = join_key(&target, relative.as_os_str());
        let metadata = entry.metadata().map_err(|error| LayerError::Walk {
            path: entry.path().to_path_buf(),
            source: error,
        })?;
        if let Some(facts) = facts_or_warn(entry.path(), &metadata, observer) {
            check_name(&key, entry.path())?;
            plan.insert(
                key,
                PlannedEntry::Disk(DiskEntry {
                    source: entry.path().to_path_buf(),
                    facts,
                    mode_override: None,
                }),
            );
        }
    }
    Ok(())
}

/// The facts of a file, or `None` (with a warning) for sockets, which a tar
/// cannot hold.
fn facts_or_warn(path: &Path, metadata: &Metadata, observer: &dyn Observer) -> Option<FileFacts> {
    let file_type = metadata.file_type();
    let kind = if file_type.is_dir() {
        FileKind::Directory
    } else if file_type.is_symlink() {
        FileKind::Symlink
    } else if file_type.is_file() {
        FileKind::Regular
    } else if file_type.is_char_device() {
        FileKind::CharDevice
    } else if file_type.is_block_device() {
        FileKind::BlockDevice
    } else if file_type.is_fifo() {
        FileKind::Fifo
    } else {
        observer.event(Event::Warning {
            message: format!(
                "skipping socket {}: a layer cannot hold sockets; the program creates them at run time",
                path.display()
            ),
        });
        return None;
    };
    Some(FileFacts {
        kind,
        mode: metadata.mode() & 0o7777,
        uid: u64::from(metadata.uid()),
        gid: u64::from(metadata.gid()),
        mtime: metadata.mtime(),
        mtime_nanoseconds: metadata.mtime_nsec(),
        ctime: metadata.ctime(),
        ctime_nanoseconds: metadata.ctime_nsec(),
        size: if kind == FileKind::Regular {
            metadata.size()
        } else {
            0
        },
        device: metadata.dev(),
        inode: metadata.ino(),
        links: metadata.nlink(),
        rdev: metadata.rdev(),
    })
}

/// A file named `.wh.*` would read as a whiteout to every runtime.
fn check_name(key: &[u8], source: &Path) -> Result<(), LayerError> {
    let name = key.rsplit(|&byte| byte == b'/').next().unwrap_or(key);
    if name.starts_with(b".wh.") {
        return Err(LayerError::ReservedName {
            path: source.to_path_buf(),
        });
    }
    Ok(())
}

fn build_excludes(patterns: &[String]) -> Result<GlobSet, LayerError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        // `*` stays within one path component, as in .dockerignore; `**`
        // crosses directories.
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|error| LayerError::Exclude {
                pattern: pattern.clone(),
                source: error,
            })?;
        builder.add(glob);
    }
    builder.build().map_err(|error| LayerError::Exclude {
        pattern: patterns.join(", "),
        source: error,
    })
}

/// Every ancestor of every entry must be a directory: missing ones are
/// added, a non-directory in the way is an error.
fn add_parents(plan: &mut Plan) -> Result<(), LayerError> {
    let mut missing: Vec<Vec<u8>> = Vec::new();
    for key in plan.keys() {
        for (index, _) in key.iter().enumerate().filter(|(_, byte)| **byte == b'/') {
            let parent = &key[..index];
            match plan.get(parent) {
                None => missing.push(parent.to_vec()),
                Some(PlannedEntry::Disk(entry)) if entry.facts.kind != FileKind::Directory => {
                    return Err(LayerError::ParentNotDirectory {
                        path: format!("/{}", String::from_utf8_lossy(key)),
                        parent: entry.source.clone(),
                    });
                }
                Some(_) => {}
            }
        }
    }
    for parent in missing {
        plan.insert(parent, PlannedEntry::ParentDirectory);
    }
    Ok(())
}

/// `/a/b` → `a/b`; `/` → empty. Refuses relative paths and `.`, `..` or
/// empty components, which would make the tar mean something else.
pub(crate) fn image_path_key(path: &str) -> Result<Vec<u8>, String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("in-image paths are absolute, like /app/bin".to_string());
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    if rest
        .split('/')
        .any(|component| component.is_empty() || component == "." || component == "..")
    {
        return Err("use a normalized path without `.`, `..` or `//`, like /app/bin".to_string());
    }
    Ok(rest.as_bytes().to_vec())
}

fn join_key(target: &[u8], relative: &OsStr) -> Vec<u8> {
    let relative = relative.as_bytes();
    if relative.is_empty() {
        return target.to_vec();
    }
    if target.is_empty() {
        return relative.to_vec();
    }
    let mut key = Vec::with_capacity(target.len() + 1 + relative.len());
    key.extend_from_slice(target);
    key.push(b'/');
    key.extend_from_slice(relative);
    key
}

/// `/etc/motd` → `etc/.wh.motd`.
fn whiteout_key(removed: &str) -> Result<Vec<u8>, LayerError> {
    let key = image_path_key(removed).map_err(|reason| LayerError::InvalidRemove {
        path: removed.to_string(),
        reason,
    })?;
    if key.is_empty() {
        return Err(LayerError::InvalidRemove {
            path: removed.to_string(),
            reason: "the image root cannot be removed; remove the paths under it".to_string(),
        });
    }
    let split = key.iter().rposition(|&byte| byte == b'/');
    let (directory, name) = match split {
        Some(index) => (&key[..=index], &key[index + 1..]),
        None => (&b""[..], &key[..]),
    };
    let mut whiteout = directory.to_vec();
    whiteout.extend_from_slice(b".wh.");
    whiteout.extend_from_slice(name);
    Ok(whiteout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_are_normalized_or_refused() {
        assert_eq!(image_path_key("/").unwrap(), b"");
        assert_eq!(image_path_key("/app/bin/").unwrap(), b"app/bin");
        assert!(image_path_key("app").is_err());
        assert!(image_path_key("/app/../etc").is_err());
        assert!(image_path_key("/app//bin").is_err());
        assert!(image_path_key("/./app").is_err());
    }

    #[test]
    fn whiteouts_sit_beside_the_removed_path() {
        assert_eq!(whiteout_key("/etc/motd").unwrap(), b"etc/.wh.motd");
        assert_eq!(whiteout_key("/opt").unwrap(), b".wh.opt");
        assert!(whiteout_key("/").is_err());
        assert!(whiteout_key("etc").is_err());
    }

    #[test]
    fn excludes_keep_star_within_a_component() {
        let set = build_excludes(&["*.pyc".to_string(), "**/__pycache__".to_string()]).unwrap();
        assert!(set.is_match("a.pyc"));
        assert!(!set.is_match("lib/a.pyc"));
        assert!(set.is_match("__pycache__"));
        assert!(set.is_match("lib/x/__pycache__"));
        assert!(build_excludes(&["[".to_string()]).is_err());
    }
}
