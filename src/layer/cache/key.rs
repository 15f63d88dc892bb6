//! The local cache's key: everything that decides a layer's bytes, with
//! what `lstat` says of each file standing in for its contents.

use crate::layer::FileKind;
use crate::layer::key_hasher::KeyHasher;
use crate::layer::tracked::Tracked;
use crate::layer::walk::{Plan, PlannedEntry};
use crate::layer::{FORMAT_VERSION, LayerRecipe, OwnerPolicy, Permissions};
use sha2::{Digest as _, Sha256};
use std::os::unix::ffi::OsStrExt;

/// Hex sha256 of everything that decides the layer's bytes. The recipe's
/// name is left out: it only labels messages.
pub(super) fn cache_key(recipe: &LayerRecipe, plan: &Plan) -> String {
    let mut key = KeyHasher(Sha256::new());
    key.bytes(b"hoist layer cache");
    key.number(u64::from(FORMAT_VERSION));
    key.number(recipe.inputs.len() as u64);
    for input in &recipe.inputs {
        key.bytes(input.source.as_os_str().as_bytes());
        key.bytes(input.target.as_bytes());
        key.number(input.mode.map_or(u64::MAX, u64::from));
        key.number(input.exclude.len() as u64);
        for pattern in &input.exclude {
            key.bytes(pattern.as_bytes());
        }
    }
    match recipe.owner {
        OwnerPolicy::Fixed { uid, gid } => {
            key.number(0);
            key.number(uid);
            key.number(gid);
        }
        OwnerPolicy::Preserve => key.number(1),
        // The running user decides which owners become root.
        OwnerPolicy::RunningUserAsRoot { uid, gid } => {
            key.number(2);
            key.number(uid);
            key.number(gid);
        }
    }
    key.number(match recipe.permissions {
        Permissions::Normalize => 0,
        Permissions::Preserve => 1,
        Permissions::GitOrDisk => 2,
    });
    key.number(recipe.remove.len() as u64);
    for removed in &recipe.remove {
        key.bytes(removed.as_bytes());
    }
    key.number(recipe.epoch);
    key.compression(recipe.compression);
    key.number(plan.len() as u64);
    for (path, planned) in plan {
        key.bytes(path);
        match planned {
            PlannedEntry::ParentDirectory => key.number(0),
            PlannedEntry::Whiteout => key.number(1),
            PlannedEntry::Disk(entry) => {
                key.number(2);
                let facts = &entry.facts;
                key.bytes(entry.source.as_os_str().as_bytes());
                key.number(facts.kind as u64);
                key.number(facts.size);
                key.signed(facts.mtime);
                key.signed(facts.mtime_nanoseconds);
                // ctime moves on every content, mode, owner or xattr change,
                // even when a tool restores the mtime.
                key.signed(facts.ctime);
                key.signed(facts.ctime_nanoseconds);
                key.number(facts.device);
                key.number(facts.inode);
                key.number(facts.links);
                key.number(u64::from(facts.mode));
                key.number(facts.uid);
                key.number(facts.gid);
                key.number(
                    if matches!(facts.kind, FileKind::CharDevice | FileKind::BlockDevice) {
                        facts.rdev
                    } else {
                        0
                    },
                );
                key.number(entry.mode_override.map_or(u64::MAX, u64::from));
                // Staging a mode change touches no file on disk.
                key.number(match entry.tracked {
                    Tracked::No => 0,
                    Tracked::File { executable: false } => 1,
                    Tracked::File { executable: true } => 2,
                    Tracked::Directory => 3,
                });
            }
        }
    }
    hex::encode(key.0.finalize())
}
