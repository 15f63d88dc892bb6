//! The content key of a layer: a sha256 over exactly what decides its
//! bytes, for a cache shared between machines (the registry cache). Where
//! the local cache ([`super::cache`]) keys on what `lstat` says (inodes,
//! ctimes, the checkout's path), which a fresh checkout changes, this key
//! holds what reaches the tar after hoist's rules: each entry's in-image
//! path, kind, mode, owner and time as written, every regular file's
//! content hash, symlink targets, device numbers, hard links by the path
//! they link to, the codec, its level and the layer format version. Two
//! checkouts of one commit in different directories, at different times,
//! give the same key; the commit's epoch enters only through the times it
//! clamps. Computed after the walk, before anything is compressed; file
//! contents are hashed in parallel.

use super::FileKind;
use super::key_hasher::KeyHasher;
use super::walk::{DiskEntry, Plan, PlannedEntry};
use super::writer::{entry_mode, entry_mtime, read_capability, synthesized_mtime};
use super::{FORMAT_VERSION, LayerError, LayerRecipe};
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

/// Read size when hashing file contents.
const READ_BUFFER: usize = 1 << 20;

/// A walked layer, ready to be keyed or written: the recipe's inputs as
/// [`super::build_layer`] would write them.
pub struct LayerPlan {
    pub(crate) entries: Plan,
}

impl LayerPlan {
    /// How many entries the layer holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What one entry contributes besides its header.
enum Body {
    None,
    /// A regular file written in full: its content hash and capability.
    Contents {
        index: usize,
    },
    /// A regular file written as a hard link to an earlier path.
    Link(Vec<u8>),
}

/// Hex sha256 of everything that decides the bytes of `recipe`'s layer as
/// `plan` lists it. Reads every regular file once (in parallel); a file
/// that changed since the walk is an error, as it is for the tar.
pub fn content_key(recipe: &LayerRecipe, plan: &LayerPlan) -> Result<String, LayerError> {
    let bodies = bodies(recipe, &plan.entries);
    let files: Vec<&DiskEntry> = plan
        .entries
        .values()
        .filter_map(|planned| match planned {
            PlannedEntry::Disk(entry) => Some(entry),
            _ => None,
        })
        .collect();
    let wanted: Vec<&DiskEntry> = bodies
        .iter()
        .filter_map(|body| match body {
            Body::Contents { index } => Some(files[*index]),
            _ => None,
        })
        .collect();
    let hashes: Vec<FileHash> = wanted
        .par_iter()
        .map_init(
            || vec![0u8; READ_BUFFER],
            |buffer, entry| hash_file(entry, buffer),
        )
        .collect::<Result<_, _>>()?;

    let mut key = KeyHasher(Sha256::new());
    key.bytes(b"hoist layer content key");
    key.number(u64::from(FORMAT_VERSION));
    key.compression(recipe.compression);
    key.number(plan.entries.len() as u64);
    let mut hashes = hashes.iter();
    for ((path, planned), body) in plan.entries.iter().zip(&bodies) {
        key.bytes(path);
        header_fields(&mut key, recipe, planned)?;
        match body {
            Body::None => key.number(0),
            Body::Link(target) => {
                key.number(1);
                key.bytes(target);
            }
            Body::Contents { .. } => {
                let Some(hash) = hashes.next() else {
                    return Err(missing_hash());
                };
                key.number(2);
                key.number(hash.size);
                key.bytes(&hash.content);
                key.bytes(hash.capability.as_deref().unwrap_or_default());
                key.number(u64::from(hash.capability.is_some()));
            }
        }
    }
    Ok(hex::encode(key.0.finalize()))
}

/// Never happens: one hash was made per [`Body::Contents`]. An error rather
/// than a panic all the same.
fn missing_hash() -> LayerError {
    LayerError::Read {
        path: "content key".into(),
        source: io::Error::other("fewer file hashes than files"),
    }
}

/// The fields of an entry's tar header as the writer decides them.
fn header_fields(
    key: &mut KeyHasher,
    recipe: &LayerRecipe,
    planned: &PlannedEntry,
) -> Result<(), LayerError> {
    match planned {
        PlannedEntry::ParentDirectory | PlannedEntry::Whiteout => {
            key.number(if matches!(planned, PlannedEntry::Whiteout) {
                1
            } else {
                0
            });
            let (uid, gid) = recipe.owner.synthesized_owner();
            key.number(uid);
            key.number(gid);
            key.number(synthesized_mtime(recipe.epoch));
        }
        PlannedEntry::Disk(entry) => {
            let facts = &entry.facts;
            key.number(2 + facts.kind as u64);
            key.number(u64::from(entry_mode(recipe.permissions, entry)));
            let (uid, gid) = recipe.owner.owner_of(facts.uid, facts.gid);
            key.number(uid);
            key.number(gid);
            key.number(entry_mtime(facts.mtime, recipe.epoch));
            match facts.kind {
                FileKind::Symlink => {
                    let target =
                        std::fs::read_link(&entry.source).map_err(|source| LayerError::Read {
                            path: entry.source.clone(),
                            source,
                        })?;
                    key.bytes(target.as_os_str().as_bytes());
                }
                FileKind::CharDevice | FileKind::BlockDevice => {
                    key.number(u64::from(libc::major(facts.rdev as libc::dev_t)));
                    key.number(u64::from(libc::minor(facts.rdev as libc::dev_t)));
                }
                FileKind::Regular | FileKind::Directory | FileKind::Fifo => {}
            }
        }
    }
    Ok(())
}

/// Which regular files are written whole and which as hard links, decided
/// as the writer decides it: a later path of the same (device, inode)
/// links to the first one when their headers agree. The inode numbers
/// decide only the grouping, never the key.
fn bodies(recipe: &LayerRecipe, plan: &Plan) -> Vec<Body> {
    let mut first_of: HashMap<(u64, u64), (Vec<u8>, LinkHeader)> = HashMap::new();
    let mut bodies = Vec::with_capacity(plan.len());
    let mut index = 0;
    for (path, planned) in plan {
        let PlannedEntry::Disk(entry) = planned else {
            bodies.push(Body::None);
            continue;
        };
        let this = index;
        index += 1;
        let facts = &entry.facts;
        if facts.kind != FileKind::Regular {
            bodies.push(Body::None);
            continue;
        }
        if facts.links > 1 {
            let (uid, gid) = recipe.owner.owner_of(facts.uid, facts.gid);
            let header = (
                entry_mode(recipe.permissions, entry),
                uid,
                gid,
                entry_mtime(facts.mtime, recipe.epoch),
            );
            match first_of.get(&(facts.device, facts.inode)) {
                Some((target, first)) if *first == header => {
                    bodies.push(Body::Link(target.clone()));
                    continue;
                }
                Some(_) => {}
                None => {
                    first_of.insert((facts.device, facts.inode), (path.clone(), header));
                }
            }
        }
        bodies.push(Body::Contents { index: this });
    }
    bodies
}

/// The header fields two paths of one inode must share to be written as a
/// link: mode, uid, gid, mtime.
type LinkHeader = (u32, u64, u64, u64);

/// What a regular file contributes: its size, content hash and capability.
struct FileHash {
    size: u64,
    content: Vec<u8>,
    capability: Option<Vec<u8>>,
}

/// Hashes the file the walk saw: opened without following a symlink, read
/// to the size the walk saw, and refused when it changed since.
fn hash_file(entry: &DiskEntry, buffer: &mut [u8]) -> Result<FileHash, LayerError> {
    let read_error = |source: io::Error| LayerError::Read {
        path: entry.source.clone(),
        source,
    };
    let mut file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&entry.source)
        .map_err(read_error)?;
    let capability = read_capability(&file).map_err(read_error)?;
    let expected = entry.facts.size;
    let mut hasher = Sha256::new();
    let mut read: u64 = 0;
    loop {
        let count = match file.read(buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(read_error(error)),
        };
        hasher.update(&buffer[..count]);
        read += count as u64;
        if read > expected {
            break;
        }
    }
    let metadata = file.metadata().map_err(read_error)?;
    // Same size but new content shows in the times: the key must describe
    // the bytes the walk saw, or a cache entry would lie.
    let unchanged = metadata.mtime() == entry.facts.mtime
        && metadata.mtime_nsec() == entry.facts.mtime_nanoseconds
        && metadata.len() == expected;
    if read != expected || !unchanged {
        return Err(LayerError::FileChanged {
            path: entry.source.clone(),
            expected,
            actual: read,
        });
    }
    Ok(FileHash {
        size: expected,
        content: hasher.finalize().to_vec(),
        capability,
    })
}

#[cfg(test)]
mod tests;
