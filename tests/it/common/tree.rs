//! Compares a source tree with an unpacked image root filesystem: what hoist
//! put in its layers, as a real unpacker (umoci, tar) wrote it back to disk.
//!
//! A `Tree` is a map from relative path to what the end-to-end tests can see
//! of an entry: type, mode, owner, size, content hash, link target, device
//! numbers, mtime, file capability and hardlink siblings. `Tree::scan` reads
//! one as it is on disk; `Tree::expected` reads a source directory and applies
//! what the spec's policies promise (modes, owners, mtimes later than the
//! epoch at one second past 1970, sockets left out), and `add_file`/`remove` model the other layer
//! kinds. `differences` lists every mismatch in readable lines.

use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// The capability xattr is the one extended attribute layers keep.
const CAPABILITY_XATTR: &str = "security.capability";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

impl Kind {
    fn of(file_type: fs::FileType) -> Kind {
        if file_type.is_symlink() {
            Kind::Symlink
        } else if file_type.is_dir() {
            Kind::Directory
        } else if file_type.is_char_device() {
            Kind::CharDevice
        } else if file_type.is_block_device() {
            Kind::BlockDevice
        } else if file_type.is_fifo() {
            Kind::Fifo
        } else if file_type.is_socket() {
            Kind::Socket
        } else {
            Kind::File
        }
    }
}

/// What can be compared of one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Regular files only; 0 otherwise (directory sizes depend on the filesystem).
    pub size: u64,
    /// sha256 of a regular file's content.
    pub content: Option<String>,
    pub link_target: Option<PathBuf>,
    /// (major, minor) of a device.
    pub device: Option<(u32, u32)>,
    /// Seconds since the Unix epoch.
    pub mtime: i64,
    pub capability: Option<Vec<u8>>,
    /// Other paths in the tree that are the same inode (hardlinks), sorted.
    pub hardlinks: Vec<PathBuf>,
}

/// How a layer is expected to have changed what was on disk.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// The mode in the image, given the kind and the mode bits on disk.
    pub mode: fn(Kind, u32) -> u32,
    /// `Some((uid, gid))` for a fixed owner, `None` to keep the owner on disk.
    pub owner: Option<(u32, u32)>,
    /// mtimes up to this are kept; later ones become 1 (`1970-01-01T00:00:01Z`).
    pub epoch: i64,
}

impl Policy {
    /// The defaults: normalized modes, owned by 0:0.
    pub fn normalized(epoch: i64) -> Policy {
        Policy {
            mode: normalized_mode,
            owner: Some((0, 0)),
            epoch,
        }
    }

    /// `owner = "preserve"`, `permissions = "preserve"`: a root filesystem.
    pub fn preserved(epoch: i64) -> Policy {
        Policy {
            mode: preserved_mode,
            owner: None,
            epoch,
        }
    }
}

/// `permissions = "normalize"`: 0755 for directories and owner-executable
/// files, else 0644, with setuid, setgid and sticky kept; devices and FIFOs
/// as they are, sticky world-writable directories 1777, and setuid or setgid
/// files with group or other execute only where the disk had it.
pub fn normalized_mode(kind: Kind, mode: u32) -> u32 {
    let special = mode & 0o7000;
    match kind {
        Kind::CharDevice | Kind::BlockDevice | Kind::Fifo => mode & 0o7777,
        Kind::Directory if special & 0o1000 != 0 && mode & 0o002 != 0 => special | 0o777,
        Kind::Directory => special | 0o755,
        _ if mode & 0o100 == 0 => special | 0o644,
        _ if special & 0o6000 != 0 => special | 0o744 | (mode & 0o011),
        _ => special | 0o755,
    }
}

/// `permissions = "preserve"`: the mode on disk.
pub fn preserved_mode(_kind: Kind, mode: u32) -> u32 {
    mode & 0o7777
}

/// One mismatch between the expected and the actual tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub path: PathBuf,
    pub what: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "/{}: {}", self.path.display(), self.what)
    }
}

/// Fails, listing every difference, unless `rootfs` holds exactly `expected`.
pub fn assert_same_tree(expected: &Tree, rootfs: &Path) {
    let differences = expected.differences(&Tree::scan(rootfs));
    assert!(
        differences.is_empty(),
        "{} differs from its sources:\n{}",
        rootfs.display(),
        report(&differences)
    );
}

/// Formats differences one per line, for assertion messages.
pub fn report(differences: &[Difference]) -> String {
    let mut lines: Vec<String> = differences.iter().map(ToString::to_string).collect();
    const SHOWN: usize = 60;
    if lines.len() > SHOWN {
        let more = lines.len() - SHOWN;
        lines.truncate(SHOWN);
        lines.push(format!("... and {more} more"));
    }
    lines.join("\n")
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    /// Paths relative to the tree's root, which itself is not an entry.
    pub entries: BTreeMap<PathBuf, Entry>,
}

impl Tree {
    /// Reads a directory as it is on disk. Symlinks are never followed.
    pub fn scan(root: &Path) -> Tree {
        let mut entries = BTreeMap::new();
        let mut inodes: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
        for item in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
            let item = item.unwrap_or_else(|error| panic!("walking {}: {error}", root.display()));
            let relative = item
                .path()
                .strip_prefix(root)
                .expect("walkdir stays under its root")
                .to_path_buf();
            let metadata = fs::symlink_metadata(item.path())
                .unwrap_or_else(|error| panic!("stat {}: {error}", item.path().display()));
            let entry = read_entry(item.path(), &metadata);
            if entry.kind == Kind::File && metadata.nlink() > 1 {
                inodes
                    .entry((metadata.dev(), metadata.ino()))
                    .or_default()
                    .push(relative.clone());
            }
            entries.insert(relative, entry);
        }
        let mut tree = Tree { entries };
        for group in inodes.values() {
            tree.link_group(group);
        }
        tree
    }

    /// What an image layer made from `source` at `target` holds under
    /// `policy`, as it unpacks: the source scanned, modes and owners per the
    /// policy, mtimes later than the epoch at 1, sockets left out (a tar
    /// cannot hold them), and the parents `target` needs as directories 0755
    /// at 1.
    pub fn expected(source: &Path, target: &str, policy: &Policy) -> Tree {
        let mut tree = Tree::default();
        tree.add_directory(source, target, policy);
        tree
    }

    /// Adds a directory source at `target` (a later layer or input: its
    /// entries replace existing ones at the same paths).
    pub fn add_directory(&mut self, source: &Path, target: &str, policy: &Policy) {
        let prefix = image_path(target);
        self.add_parents(&prefix, policy);
        let scanned = Tree::scan(source);
        if !prefix.as_os_str().is_empty() {
            let metadata = fs::symlink_metadata(source)
                .unwrap_or_else(|error| panic!("stat {}: {error}", source.display()));
            let entry = apply(read_entry(source, &metadata), policy);
            self.entries.insert(prefix.clone(), entry);
        }
        for (path, entry) in scanned.entries {
            if entry.kind == Kind::Socket {
                continue;
            }
            let mut entry = apply(entry, policy);
            entry.hardlinks = entry
                .hardlinks
                .iter()
                .map(|link| prefix.join(link))
                .collect();
            self.entries.insert(prefix.join(path), entry);
        }
    }

    /// Adds one file (a `files = [...]` input) at `target`, with `mode` when
    /// the spec gives one.
    pub fn add_file(&mut self, source: &Path, target: &str, mode: Option<u32>, policy: &Policy) {
        let path = image_path(target);
        self.add_parents(&path, policy);
        let metadata = fs::symlink_metadata(source)
            .unwrap_or_else(|error| panic!("stat {}: {error}", source.display()));
        let mut entry = apply(read_entry(source, &metadata), policy);
        if let Some(mode) = mode {
            entry.mode = mode & 0o7777;
        }
        entry.hardlinks.clear();
        self.entries.insert(path, entry);
    }

    /// A whiteout: `target` and everything under it disappear.
    pub fn remove(&mut self, target: &str) {
        let path = image_path(target);
        self.entries
            .retain(|existing, _| !(existing == &path || existing.starts_with(&path)));
        for entry in self.entries.values_mut() {
            entry
                .hardlinks
                .retain(|link| !(link == &path || link.starts_with(&path)));
        }
    }

    /// Sets the mtime of one entry (e.g. a directory a whiteout rewrote).
    pub fn set_mtime(&mut self, target: &str, mtime: i64) {
        let path = image_path(target);
        match self.entries.get_mut(&path) {
            Some(entry) => entry.mtime = mtime,
            None => panic!("no entry /{} in the expected tree", path.display()),
        }
    }

    /// Every difference between `self` (expected) and `actual`, in path order.
    pub fn differences(&self, actual: &Tree) -> Vec<Difference> {
        let mut differences = Vec::new();
        for (path, expected) in &self.entries {
            match actual.entries.get(path) {
                None => differences.push(Difference {
                    path: path.clone(),
                    what: format!("missing ({:?} expected)", expected.kind),
                }),
                Some(found) => compare(path, expected, found, &mut differences),
            }
        }
        for (path, found) in &actual.entries {
            if !self.entries.contains_key(path) {
                differences.push(Difference {
                    path: path.clone(),
                    what: format!("unexpected {:?}", found.kind),
                });
            }
        }
        differences.sort_by(|left, right| left.path.cmp(&right.path));
        differences
    }

    fn add_parents(&mut self, path: &Path, policy: &Policy) {
        let (uid, gid) = policy.owner.unwrap_or((0, 0));
        let mut parent = PathBuf::new();
        let components: Vec<_> = path.components().collect();
        for component in components.iter().take(components.len().saturating_sub(1)) {
            parent.push(component);
            self.entries.entry(parent.clone()).or_insert(Entry {
                kind: Kind::Directory,
                mode: 0o755,
                uid,
                gid,
                size: 0,
                content: None,
                link_target: None,
                device: None,
                mtime: policy.epoch.min(1),
                capability: None,
                hardlinks: Vec::new(),
            });
        }
    }

    fn link_group(&mut self, group: &[PathBuf]) {
        for path in group {
            let siblings: Vec<PathBuf> = group
                .iter()
                .filter(|other| *other != path)
                .cloned()
                .collect();
            if let Some(entry) = self.entries.get_mut(path) {
                entry.hardlinks = siblings;
            }
        }
    }
}

/// `/usr/bin/x` → `usr/bin/x`; `/` → empty. Panics on `..` (a test bug).
fn image_path(target: &str) -> PathBuf {
    let mut path = PathBuf::new();
    for component in Path::new(target).components() {
        match component {
            Component::Normal(name) => path.push(name),
            Component::RootDir | Component::CurDir => {}
            other => panic!("target {target} has {other:?}"),
        }
    }
    path
}

fn read_entry(path: &Path, metadata: &fs::Metadata) -> Entry {
    let kind = Kind::of(metadata.file_type());
    let (size, content) = if kind == Kind::File {
        (metadata.len(), Some(hash_file(path)))
    } else {
        (0, None)
    };
    let link_target = if kind == Kind::Symlink {
        Some(
            fs::read_link(path)
                .unwrap_or_else(|error| panic!("readlink {}: {error}", path.display())),
        )
    } else {
        None
    };
    let device = if matches!(kind, Kind::CharDevice | Kind::BlockDevice) {
        let rdev = metadata.rdev();
        Some((libc::major(rdev), libc::minor(rdev)))
    } else {
        None
    };
    let capability = if kind == Kind::File {
        xattr::get(path, CAPABILITY_XATTR)
            .unwrap_or_else(|error| panic!("reading xattrs of {}: {error}", path.display()))
    } else {
        None
    };
    Entry {
        kind,
        mode: metadata.mode() & 0o7777,
        uid: metadata.uid(),
        gid: metadata.gid(),
        size,
        content,
        link_target,
        device,
        mtime: metadata.mtime(),
        capability,
        hardlinks: Vec::new(),
    }
}

fn apply(mut entry: Entry, policy: &Policy) -> Entry {
    entry.mode = (policy.mode)(entry.kind, entry.mode);
    if let Some((uid, gid)) = policy.owner {
        entry.uid = uid;
        entry.gid = gid;
    }
    // hoist keeps a time up to the epoch and writes a later one as one
    // second past 1970 (or the epoch, when that is earlier still).
    if entry.mtime > policy.epoch {
        entry.mtime = policy.epoch.min(1);
    }
    entry
}

fn hash_file(path: &Path) -> String {
    let mut file =
        fs::File::open(path).unwrap_or_else(|error| panic!("open {}: {error}", path.display()));
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file
            .read(&mut buffer)
            .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    hex::encode(hasher.finalize())
}

fn compare(path: &Path, expected: &Entry, found: &Entry, differences: &mut Vec<Difference>) {
    let mut differ = |what: String| {
        differences.push(Difference {
            path: path.to_path_buf(),
            what,
        })
    };
    if expected.kind != found.kind {
        differ(format!(
            "is a {:?}, expected a {:?}",
            found.kind, expected.kind
        ));
        return;
    }
    // A symlink's own mode is always 0777 on Linux: nothing to compare.
    if expected.kind != Kind::Symlink && expected.mode != found.mode {
        differ(format!(
            "mode {:04o}, expected {:04o}",
            found.mode, expected.mode
        ));
    }
    if (expected.uid, expected.gid) != (found.uid, found.gid) {
        differ(format!(
            "owner {}:{}, expected {}:{}",
            found.uid, found.gid, expected.uid, expected.gid
        ));
    }
    if expected.size != found.size {
        differ(format!("size {}, expected {}", found.size, expected.size));
    }
    if expected.content != found.content {
        differ(format!(
            "content sha256 {}, expected {}",
            found.content.as_deref().unwrap_or("-"),
            expected.content.as_deref().unwrap_or("-")
        ));
    }
    if expected.link_target != found.link_target {
        differ(format!(
            "link target {:?}, expected {:?}",
            found.link_target.as_deref().map(bytes_of),
            expected.link_target.as_deref().map(bytes_of)
        ));
    }
    if expected.device != found.device {
        differ(format!(
            "device {:?}, expected {:?}",
            found.device, expected.device
        ));
    }
    if expected.mtime != found.mtime {
        differ(format!(
            "mtime {}, expected {}",
            found.mtime, expected.mtime
        ));
    }
    if expected.capability != found.capability {
        differ(format!(
            "{CAPABILITY_XATTR} {:?}, expected {:?}",
            found.capability.as_deref().map(hex::encode),
            expected.capability.as_deref().map(hex::encode)
        ));
    }
    if expected.hardlinks != found.hardlinks {
        differ(format!(
            "hardlinked with {:?}, expected {:?}",
            found.hardlinks, expected.hardlinks
        ));
    }
}

fn bytes_of(path: &Path) -> String {
    String::from_utf8_lossy(path.as_os_str().as_bytes()).into_owned()
}

/// Every file under `root` with what `Tree::scan` sees except mtimes (an
/// untouched directory must still compare equal after a failed build that
/// created and removed a temp file in it): for "nothing changed" checks.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    Tree::scan(root)
        .entries
        .into_iter()
        .map(|(path, entry)| {
            let description = format!(
                "{:?} {:04o} {}:{} {} {} {:?} {:?}",
                entry.kind,
                entry.mode,
                entry.uid,
                entry.gid,
                entry.size,
                entry.content.unwrap_or_default(),
                entry.link_target,
                entry.device
            );
            (path, description)
        })
        .collect()
}

/// Asserts a directory is as a `snapshot` saw it, naming every change.
pub fn assert_unchanged(root: &Path, before: &BTreeMap<PathBuf, String>) {
    let after = snapshot(root);
    let mut changes = Vec::new();
    for (path, description) in before {
        match after.get(path) {
            None => changes.push(format!("removed: {}", path.display())),
            Some(now) if now != description => changes.push(format!(
                "changed: {}: {description} -> {now}",
                path.display()
            )),
            Some(_) => {}
        }
    }
    for path in after.keys() {
        if !before.contains_key(path) {
            changes.push(format!("new: {}", path.display()));
        }
    }
    assert!(
        changes.is_empty(),
        "{} changed:\n{}",
        root.display(),
        changes.join("\n")
    );
}
