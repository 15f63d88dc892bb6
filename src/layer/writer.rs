//! Turns a [`Plan`] into the normalized tar stream: owner, mode and mtime per
//! the recipe's policies, hardlinks by (device, inode), symlink targets as
//! they are, the file-capability xattr and nothing else, contents read with
//! large buffers and checked against what the walk saw.

use super::FileKind;
use super::tar_header::{EntryHeader, TarKind, write_end, write_header, write_padding};
use super::tracked::Tracked;
use super::walk::{DiskEntry, Plan, PlannedEntry};
use super::{LayerError, LayerRecipe, Permissions};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use xattr::FileExt as _;

/// Read size for file contents.
pub(crate) const READ_BUFFER: usize = 1 << 20;

const CAPABILITY_XATTR: &str = "security.capability";

/// The first regular entry seen for a (device, inode), which later paths
/// of the same file link to.
struct LinkTarget {
    path: Vec<u8>,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

/// Writes every entry of `plan` and the end marker to `out`; returns the
/// number of entries. Write failures are reported against `blob_path`.
pub(crate) fn write_tar(
    plan: &Plan,
    recipe: &LayerRecipe,
    out: &mut impl Write,
    blob_path: &Path,
) -> Result<u64, LayerError> {
    let write_error = |error: io::Error| LayerError::WriteBlob {
        path: blob_path.to_path_buf(),
        source: error,
    };
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut links: HashMap<(u64, u64), LinkTarget> = HashMap::new();
    let mut entries = 0u64;
    for (key, planned) in plan {
        match planned {
            PlannedEntry::ParentDirectory => {
                let (uid, gid) = recipe.owner.synthesized_owner();
                let path = directory_path(key);
                let header = EntryHeader {
                    path: &path,
                    kind: TarKind::Directory,
                    link_name: b"",
                    mode: 0o755,
                    uid,
                    gid,
                    mtime: synthesized_mtime(recipe.epoch),
                    size: 0,
                    device_major: 0,
                    device_minor: 0,
                    capability: None,
                };
                write_header(out, &header).map_err(write_error)?;
            }
            PlannedEntry::Whiteout => {
                let (uid, gid) = recipe.owner.synthesized_owner();
                let header = EntryHeader {
                    path: key,
                    kind: TarKind::Regular,
                    link_name: b"",
                    mode: 0o644,
                    uid,
                    gid,
                    mtime: synthesized_mtime(recipe.epoch),
                    size: 0,
                    device_major: 0,
                    device_minor: 0,
                    capability: None,
                };
                write_header(out, &header).map_err(write_error)?;
            }
            PlannedEntry::Disk(entry) => {
                write_disk_entry(key, entry, recipe, out, &mut buffer, &mut links, blob_path)?;
            }
        }
        entries += 1;
    }
    write_end(out).map_err(write_error)?;
    Ok(entries)
}

fn write_disk_entry(
    key: &[u8],
    entry: &DiskEntry,
    recipe: &LayerRecipe,
    out: &mut impl Write,
    buffer: &mut [u8],
    links: &mut HashMap<(u64, u64), LinkTarget>,
    blob_path: &Path,
) -> Result<(), LayerError> {
    let write_error = |error: io::Error| LayerError::WriteBlob {
        path: blob_path.to_path_buf(),
        source: error,
    };
    let read_error = |error: io::Error| LayerError::Read {
        path: entry.source.clone(),
        source: error,
    };
    let facts = &entry.facts;
    let (uid, gid) = recipe.owner.owner_of(facts.uid, facts.gid);
    let mode = entry_mode(recipe.permissions, entry);
    let mtime = entry_mtime(facts.mtime, recipe.epoch);
    let mut header = EntryHeader {
        path: key,
        kind: TarKind::Regular,
        link_name: b"",
        mode,
        uid,
        gid,
        mtime,
        size: 0,
        device_major: 0,
        device_minor: 0,
        capability: None,
    };
    match facts.kind {
        FileKind::Regular => {
            if facts.links > 1 {
                let identity = (facts.device, facts.inode);
                match links.entry(identity) {
                    Entry::Occupied(occupied) => {
                        let target = occupied.into_mut();
                        // A link shares the inode, so only link when the
                        // headers agree; otherwise this path is its own file.
                        if (target.mode, target.uid, target.gid, target.mtime)
                            == (mode, uid, gid, mtime)
                        {
                            header.kind = TarKind::HardLink;
                            header.link_name = &target.path;
                            return write_header(out, &header).map_err(write_error);
                        }
                    }
                    Entry::Vacant(vacant) => {
                        vacant.insert(LinkTarget {
                            path: key.to_vec(),
                            mode,
                            uid,
                            gid,
                            mtime,
                        });
                    }
                }
            }
            // O_NOFOLLOW: a file swapped for a symlink since the walk is
            // not followed. Its xattr is read through the open file, not by
            // looking the path up again.
            let mut file = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&entry.source)
                .map_err(read_error)?;
            let capability = read_capability(&file).map_err(read_error)?;
            header.capability = capability.as_deref();
            header.size = facts.size;
            write_header(out, &header).map_err(write_error)?;
            copy_contents(entry, &mut file, out, buffer, blob_path)?;
            write_padding(out, facts.size).map_err(write_error)
        }
        FileKind::Directory => {
            let path = directory_path(key);
            header.path = &path;
            header.kind = TarKind::Directory;
            write_header(out, &header).map_err(write_error)
        }
        FileKind::Symlink => {
            let target = std::fs::read_link(&entry.source).map_err(read_error)?;
            header.kind = TarKind::Symlink;
            header.link_name = target.as_os_str().as_bytes();
            write_header(out, &header).map_err(write_error)
        }
        FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo => {
            header.kind = match facts.kind {
                FileKind::CharDevice => TarKind::CharDevice,
                FileKind::BlockDevice => TarKind::BlockDevice,
                _ => TarKind::Fifo,
            };
            if header.kind != TarKind::Fifo {
                header.device_major = u64::from(libc::major(facts.rdev as libc::dev_t));
                header.device_minor = u64::from(libc::minor(facts.rdev as libc::dev_t));
            }
            write_header(out, &header).map_err(write_error)
        }
    }
}

/// Streams exactly the size the walk saw; a file that shrank or grew since
/// is an error rather than a tar whose header lies.
fn copy_contents(
    entry: &DiskEntry,
    file: &mut File,
    out: &mut impl Write,
    buffer: &mut [u8],
    blob_path: &Path,
) -> Result<(), LayerError> {
    let read_error = |error: io::Error| LayerError::Read {
        path: entry.source.clone(),
        source: error,
    };
    let expected = entry.facts.size;
    let mut remaining = expected;
    while remaining > 0 {
        let wanted = remaining.min(buffer.len() as u64) as usize;
        let count = match file.read(&mut buffer[..wanted]) {
            Ok(0) => {
                return Err(changed(&entry.source, expected, expected - remaining));
            }
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(read_error(error)),
        };
        out.write_all(&buffer[..count])
            .map_err(|error| LayerError::WriteBlob {
                path: blob_path.to_path_buf(),
                source: error,
            })?;
        remaining -= count as u64;
    }
    let mut probe = [0u8; 1];
    match file.read(&mut probe) {
        Ok(0) => Ok(()),
        Ok(_) => Err(changed(&entry.source, expected, expected + 1)),
        Err(error) => Err(read_error(error)),
    }
}

fn changed(path: &Path, expected: u64, actual: u64) -> LayerError {
    LayerError::FileChanged {
        path: path.to_path_buf(),
        expected,
        actual,
    }
}

/// The file's capability xattr; filesystems without xattrs have none.
pub(crate) fn read_capability(file: &File) -> io::Result<Option<Vec<u8>>> {
    match file.get_xattr(CAPABILITY_XATTR) {
        Ok(value) => Ok(value),
        Err(error)
            if error.raw_os_error() == Some(libc::ENOTSUP)
                || error.raw_os_error() == Some(libc::ENODATA) =>
        {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

fn directory_path(key: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(key.len() + 1);
    path.extend_from_slice(key);
    path.push(b'/');
    path
}

/// The mode bits the header of a disk entry gets; see [`Permissions`].
pub(crate) fn entry_mode(permissions: Permissions, entry: &DiskEntry) -> u32 {
    mode_of(
        permissions,
        entry.facts.kind,
        entry.facts.mode,
        entry.mode_override,
        entry.tracked,
    )
}

fn mode_of(
    permissions: Permissions,
    kind: FileKind,
    disk_mode: u32,
    mode_override: Option<u32>,
    tracked: Tracked,
) -> u32 {
    if kind == FileKind::Symlink {
        return 0o777;
    }
    if let Some(mode) = mode_override
        && kind != FileKind::Directory
    {
        return mode & 0o7777;
    }
    match (permissions, tracked) {
        (Permissions::Preserve, _) => disk_mode & 0o7777,
        (Permissions::Normalize, _) => normalized_mode(kind, disk_mode),
        // A checkout makes these: git's mode, whatever the umask gave them.
        (Permissions::GitOrDisk, Tracked::File { executable: true }) => 0o755,
        (Permissions::GitOrDisk, Tracked::File { executable: false }) => 0o644,
        (Permissions::GitOrDisk, Tracked::Directory) => 0o755,
        (Permissions::GitOrDisk, Tracked::No) => disk_mode & 0o7777,
    }
}

/// git's view of a mode (0755 when the owner may execute, else 0644;
/// directories 0755), without taking away what the special bits need:
/// device nodes and FIFOs keep their mode (who may open `/dev/loop0` is the
/// point of it), a sticky world-writable directory stays world-writable
/// (`/tmp` is 1777 so anyone may create files in it), and a setuid or setgid
/// file gets group or other execute only where it had it (a 4754 helper
/// meant for one group must not become runnable by everyone).
pub(crate) fn normalized_mode(kind: FileKind, disk_mode: u32) -> u32 {
    let special = disk_mode & 0o7000;
    match kind {
        FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo => disk_mode & 0o7777,
        FileKind::Symlink => 0o777,
        FileKind::Directory if special & 0o1000 != 0 && disk_mode & 0o002 != 0 => special | 0o777,
        FileKind::Directory => special | 0o755,
        FileKind::Regular if disk_mode & 0o100 == 0 => special | 0o644,
        FileKind::Regular if special & 0o6000 != 0 => {
            // Execute for group and other only as far as the disk gave it.
            special | 0o744 | (disk_mode & 0o011)
        }
        FileKind::Regular => special | 0o755,
    }
}

/// The time every entry newer than the epoch gets: 1970-01-01T00:00:01Z,
/// as jib writes. Not the epoch itself: that is the commit time, so a layer
/// whose files did not change would still change with every commit (a fresh
/// checkout makes every file newer than any commit). Not 0 either, which
/// some tools read as "no time".
pub const NEWER_THAN_EPOCH_TIME: u64 = 1;

/// An entry's mtime: its own when it is no later than the epoch (a root
/// filesystem's package times are kept), else [`NEWER_THAN_EPOCH_TIME`]
/// (or the epoch, when that is earlier still); times before 1970 as 0.
pub(crate) fn entry_mtime(mtime: i64, epoch: u64) -> u64 {
    let mtime = u64::try_from(mtime).unwrap_or(0);
    if mtime <= epoch {
        mtime
    } else {
        synthesized_mtime(epoch)
    }
}

/// The mtime of entries no disk has (parents, whiteouts): the time of
/// entries newer than the epoch, so that they do not move with it either.
pub(crate) fn synthesized_mtime(epoch: u64) -> u64 {
    NEWER_THAN_EPOCH_TIME.min(epoch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::OwnerPolicy;

    #[test]
    fn normalized_modes_follow_the_owner_execute_bit() {
        let mode = |kind, disk| mode_of(Permissions::Normalize, kind, disk, None, Tracked::No);
        assert_eq!(mode(FileKind::Regular, 0o600), 0o644);
        assert_eq!(mode(FileKind::Regular, 0o700), 0o755);
        assert_eq!(mode(FileKind::Regular, 0o4711), 0o4755);
        assert_eq!(mode(FileKind::Directory, 0o700), 0o755);
        assert_eq!(mode(FileKind::Symlink, 0o777), 0o777);
        assert_eq!(
            mode_of(
                Permissions::Preserve,
                FileKind::Regular,
                0o2640,
                None,
                Tracked::No
            ),
            0o2640
        );
        assert_eq!(
            mode_of(
                Permissions::Normalize,
                FileKind::Regular,
                0o644,
                Some(0o700),
                Tracked::No
            ),
            0o700
        );
    }

    #[test]
    fn by_default_git_decides_what_it_tracks_and_the_disk_the_rest() {
        let mode = |kind, disk, tracked| mode_of(Permissions::GitOrDisk, kind, disk, None, tracked);
        let file = |executable| Tracked::File { executable };
        // Whatever the umask or a chmod did since the checkout.
        assert_eq!(mode(FileKind::Regular, 0o600, file(false)), 0o644);
        assert_eq!(mode(FileKind::Regular, 0o664, file(false)), 0o644);
        assert_eq!(mode(FileKind::Regular, 0o700, file(true)), 0o755);
        assert_eq!(mode(FileKind::Regular, 0o644, file(true)), 0o755);
        assert_eq!(mode(FileKind::Directory, 0o700, Tracked::Directory), 0o755);
        // Untracked: exactly as on disk.
        for (kind, disk) in [
            (FileKind::Regular, 0o640),
            (FileKind::Regular, 0o600),
            (FileKind::Regular, 0o4754),
            (FileKind::Directory, 0o1777),
            (FileKind::Directory, 0o700),
            (FileKind::CharDevice, 0o640),
            (FileKind::Fifo, 0o620),
        ] {
            assert_eq!(mode(kind, disk, Tracked::No), disk, "{kind:?} {disk:o}");
        }
        assert_eq!(mode(FileKind::Symlink, 0o777, Tracked::No), 0o777);
        // An explicit file mode still wins.
        assert_eq!(
            mode_of(
                Permissions::GitOrDisk,
                FileKind::Regular,
                0o644,
                Some(0o700),
                file(false)
            ),
            0o700
        );
    }

    #[test]
    fn normalizing_keeps_sticky_world_writable_directories_writable() {
        let mode = |disk| {
            mode_of(
                Permissions::Normalize,
                FileKind::Directory,
                disk,
                None,
                Tracked::No,
            )
        };
        assert_eq!(mode(0o1777), 0o1777);
        assert_eq!(mode(0o1773), 0o1777);
        // Sticky but not world-writable: nothing to keep open.
        assert_eq!(mode(0o1700), 0o1755);
        // World-writable without the sticky bit is not kept: that is the
        // umask of whoever made it, not a deliberate /tmp.
        assert_eq!(mode(0o777), 0o755);
    }

    #[test]
    fn normalizing_never_adds_execute_to_setuid_or_setgid_files() {
        let mode = |disk| {
            mode_of(
                Permissions::Normalize,
                FileKind::Regular,
                disk,
                None,
                Tracked::No,
            )
        };
        assert_eq!(mode(0o4754), 0o4754);
        assert_eq!(mode(0o4750), 0o4754);
        assert_eq!(mode(0o4700), 0o4744);
        assert_eq!(mode(0o2710), 0o2754);
        assert_eq!(mode(0o6711), 0o6755);
        assert_eq!(mode(0o4755), 0o4755);
        // Not executable at all: the usual 0644, special bits kept.
        assert_eq!(mode(0o4600), 0o4644);
    }

    #[test]
    fn normalizing_leaves_device_nodes_and_fifos_alone() {
        for kind in [FileKind::CharDevice, FileKind::BlockDevice, FileKind::Fifo] {
            for disk in [0o640, 0o600, 0o666, 0o620] {
                assert_eq!(
                    mode_of(Permissions::Normalize, kind, disk, None, Tracked::No),
                    disk,
                    "{kind:?} {disk:o}"
                );
            }
        }
    }

    #[test]
    fn the_running_user_is_recorded_as_root_and_other_owners_are_kept() {
        let policy = OwnerPolicy::RunningUserAsRoot {
            uid: 1001,
            gid: 1002,
        };
        assert_eq!(policy.owner_of(1001, 1002), (0, 0));
        assert_eq!(policy.owner_of(0, 42), (0, 42));
        assert_eq!(policy.owner_of(100, 65534), (100, 65534));
        // Each id on its own: the user's file in another group keeps the group.
        assert_eq!(policy.owner_of(1001, 118), (0, 118));
        assert_eq!(policy.synthesized_owner(), (0, 0));
        // Run by root, nothing moves: root:shadow stays root:shadow.
        let as_root = OwnerPolicy::RunningUserAsRoot { uid: 0, gid: 0 };
        assert_eq!(as_root.owner_of(0, 42), (0, 42));
        assert_eq!(as_root.owner_of(1000, 1000), (1000, 1000));
        assert_eq!(
            OwnerPolicy::Fixed { uid: 7, gid: 8 }.owner_of(1001, 1002),
            (7, 8)
        );
        assert_eq!(OwnerPolicy::Preserve.owner_of(1001, 1002), (1001, 1002));
    }

    #[test]
    fn times_newer_than_the_epoch_become_one_second_past_1970() {
        // Newer than the epoch: the same time whatever the epoch, so a
        // fresh checkout of a later commit gives the same entry.
        assert_eq!(entry_mtime(2_000_000_000, 1_000), 1);
        assert_eq!(entry_mtime(2_000_000_000, 1_500_000_000), 1);
        assert_eq!(entry_mtime(1_000, 999), 1);
        // No later than the epoch: kept, as a root filesystem's times are.
        assert_eq!(entry_mtime(500, 1_000), 500);
        assert_eq!(entry_mtime(1_000, 1_000), 1_000);
        assert_eq!(entry_mtime(-5, 1_000), 0);
        // An epoch of 0 puts everything at 0, as it always did.
        assert_eq!(entry_mtime(2_000_000_000, 0), 0);
        assert_eq!(synthesized_mtime(0), 0);
        assert_eq!(synthesized_mtime(1_700_000_000), 1);
    }
}
