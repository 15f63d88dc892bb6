//! The first step of a layer: walk every input (symlinks never followed),
//! apply excludes, and merge everything into one map keyed by in-image path,
//! sorted by bytes, with the later input winning, parent directories added
//! where a target needs them and whiteouts for removed paths. Only `lstat`
//! happens here; contents are read when the tar is written.

use super::tracked::{Tracked, TrackedFiles, TrackedView};
use super::{FileKind, LayerError, LayerInput, LayerRecipe, Permissions};
use crate::progress::{Event, Observer};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

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
    /// What git says about it, when the permissions ask.
    pub tracked: Tracked,
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

/// Walks the recipe's inputs into a [`Plan`]; `tracked` says what git
/// tracks, where the recipe's permissions depend on it.
pub(crate) fn plan(
    recipe: &LayerRecipe,
    tracked: &TrackedFiles,
    observer: &dyn Observer,
) -> Result<Plan, LayerError> {
    let mut plan = Plan::new();
    for input in &recipe.inputs {
        let view = match recipe.permissions {
            Permissions::GitOrDisk => tracked.view(&input.source, observer),
            Permissions::Normalize | Permissions::Preserve => None,
        };
        add_input(&mut plan, input, view.as_ref(), observer)?;
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
    view: Option<&TrackedView>,
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
        if let Some(facts) = facts_or_socket(&metadata) {
            check_name(&target, &input.source)?;
            let tracked = tracked_state(view, b"", facts.kind);
            plan.insert(
                target,
                PlannedEntry::Disk(DiskEntry {
                    source: input.source.clone(),
                    facts,
                    mode_override: input.mode,
                    tracked,
                }),
            );
        } else {
            warn_socket(&input.source, observer);
        }
        return Ok(());
    }

    let excludes = build_excludes(&input.exclude)?;
    let walk = DirectoryWalk {
        target: &target,
        excludes: (!excludes.is_empty()).then_some(&excludes),
        view,
    };
    let mut entries = Vec::new();
    if !target.is_empty() {
        // The directory itself, at its target; its facts were read above.
        if let Some(facts) = facts_or_socket(&metadata) {
            check_name(&target, &input.source)?;
            let tracked = tracked_state(view, b"", facts.kind);
            entries.push((
                target.clone(),
                DiskEntry {
                    source: input.source.clone(),
                    facts,
                    mode_override: None,
                    tracked,
                },
            ));
        }
    }
    let found = std::sync::Mutex::new(Vec::new());
    walk.directory(&input.source, &[], &found)?;
    let mut sockets = Vec::new();
    for batch in found
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
    {
        for item in batch {
            match item {
                Found::Entry(key, entry) => entries.push((key, *entry)),
                Found::Socket(path) => sockets.push(path),
            }
        }
    }
    sockets.sort();
    for path in sockets {
        warn_socket(&path, observer);
    }
    // Rayon's threads found the entries in no particular order; sorted, they
    // go into the map in one bulk build rather than one search each.
    entries.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let entries = entries
        .into_iter()
        .map(|(key, entry)| (key, PlannedEntry::Disk(entry)));
    if plan.is_empty() {
        *plan = entries.collect();
    } else {
        // A later input wins where both give the same path.
        plan.extend(entries);
    }
    Ok(())
}

/// What the walk of one directory found.
enum Found {
    Entry(Vec<u8>, Box<DiskEntry>),
    Socket(PathBuf),
}

/// A walk of one directory input on rayon's threads: each directory is read
/// once, its entries `lstat`ed relative to it (no path lookup from the root),
/// and its subdirectories walked in parallel. Trees of tens of thousands of
/// entries spend as long here as in compressing the first megabytes, so the
/// walk uses every core the build has.
struct DirectoryWalk<'a> {
    target: &'a [u8],
    /// `None` when the input excludes nothing, which skips the matching.
    excludes: Option<&'a GlobSet>,
    /// The input's place in its repository, when git's modes count.
    view: Option<&'a TrackedView>,
}

impl DirectoryWalk<'_> {
    /// Walks the directory at `path`, `relative` below the input's source,
    /// adding one batch per directory to `found`.
    fn directory(
        &self,
        path: &Path,
        relative: &[u8],
        found: &std::sync::Mutex<Vec<Vec<Found>>>,
    ) -> Result<(), LayerError> {
        let walk_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LayerError::Walk { path, source }
        };
        let mut batch = Vec::new();
        let mut directories = Vec::new();
        for entry in std::fs::read_dir(path).map_err(walk_error(path))? {
            let entry = entry.map_err(walk_error(path))?;
            let name = entry.file_name();
            let entry_relative = join_key(relative, &name);
            if let Some(excludes) = self.excludes
                && excludes.is_match(Path::new(OsStr::from_bytes(&entry_relative)))
            {
                continue;
            }
            let entry_path = entry.path();
            // std reads these with fstatat on the open directory.
            let metadata = entry.metadata().map_err(walk_error(&entry_path))?;
            let Some(facts) = facts_or_socket(&metadata) else {
                batch.push(Found::Socket(entry_path));
                continue;
            };
            let key = join_key(self.target, OsStr::from_bytes(&entry_relative));
            check_name(&key, &entry_path)?;
            let tracked = tracked_state(self.view, &entry_relative, facts.kind);
            if facts.kind == FileKind::Directory {
                directories.push((entry_path.clone(), entry_relative));
            }
            batch.push(Found::Entry(
                key,
                Box::new(DiskEntry {
                    source: entry_path,
                    facts,
                    mode_override: None,
                    tracked,
                }),
            ));
        }
        found
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(batch);
        directories
            .into_par_iter()
            .try_for_each(|(path, relative)| self.directory(&path, &relative, found))
    }
}

fn tracked_state(view: Option<&TrackedView>, relative: &[u8], kind: FileKind) -> Tracked {
    view.map_or(Tracked::No, |view| view.lookup(relative, kind))
}

fn warn_socket(path: &Path, observer: &dyn Observer) {
    observer.event(Event::Warning {
        message: format!(
            "skipping socket {}: a layer cannot hold sockets; the program creates them at run time",
            path.display()
        ),
    });
}

/// The facts of a file, or `None` for a socket, which a tar cannot hold.
fn facts_or_socket(metadata: &Metadata) -> Option<FileFacts> {
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
/// added, a non-directory in the way is an error. Each key looks only as far
/// up as the first ancestor already known: that one's own ancestors are
/// checked where it is visited.
fn add_parents(plan: &mut Plan) -> Result<(), LayerError> {
    let mut missing: BTreeSet<Vec<u8>> = BTreeSet::new();
    for key in plan.keys() {
        let mut current: &[u8] = key;
        while let Some(index) = current.iter().rposition(|&byte| byte == b'/') {
            let parent = &current[..index];
            match plan.get(parent) {
                Some(PlannedEntry::Disk(entry)) if entry.facts.kind != FileKind::Directory => {
                    return Err(LayerError::ParentNotDirectory {
                        path: format!("/{}", String::from_utf8_lossy(key)),
                        parent: entry.source.clone(),
                    });
                }
                Some(_) => break,
                None if !missing.insert(parent.to_vec()) => break,
                None => current = parent,
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
