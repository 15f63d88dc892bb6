//! Which files git tracks, for the default permissions
//! ([`super::Permissions::GitOrDisk`]): a tracked file gets the mode git
//! records, so a checkout builds to the same bytes under any umask, and
//! everything else (a root filesystem, build outputs) keeps its mode on
//! disk. The walk asks here once per input; git is asked once per
//! repository for as long as one [`TrackedFiles`] lives (a build), with one
//! `git ls-files -s -z`, never per file.

use super::FileKind;
use crate::progress::{Event, Observer};
use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// git's mode for an executable file.
const GIT_EXECUTABLE: u32 = 0o100_755;
/// git's mode for a submodule (a gitlink): a directory the checkout made.
const GIT_LINK: u32 = 0o160_000;

/// What git tracks in each repository the layers' sources lie in, asked
/// for the first time a source needs it. Share one across a build.
#[derive(Default)]
pub struct TrackedFiles {
    /// By repository root: what git tracks there, or `None` where git
    /// could not say (then nothing there counts as tracked).
    repositories: Mutex<HashMap<PathBuf, Option<Arc<Repository>>>>,
}

/// The tracked files of one repository, by path relative to its root.
struct Repository {
    /// Whether git records the file as executable (100755).
    files: HashMap<Vec<u8>, bool>,
    /// Every directory that holds a tracked file at any depth (the root as
    /// the empty path), and submodules.
    directories: HashSet<Vec<u8>>,
}

/// What git says about one entry of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Tracked {
    /// Not tracked, or not asked (explicit permissions, no repository).
    No,
    /// A regular file git tracks, with the mode git records.
    File { executable: bool },
    /// A directory holding tracked files: the checkout made it.
    Directory,
}

/// An input source's place in its repository.
pub(crate) struct TrackedView {
    repository: Arc<Repository>,
    /// The source's path relative to the repository root.
    prefix: Vec<u8>,
}

impl TrackedFiles {
    pub fn new() -> TrackedFiles {
        TrackedFiles::default()
    }

    /// Where `source` lies in a git repository, asking git for the
    /// repository's tracked files the first time; `None` outside any
    /// repository or when git cannot list it (said in a warning).
    pub(crate) fn view(&self, source: &Path, observer: &dyn Observer) -> Option<TrackedView> {
        // Canonical, so `..` and symlinked parents give the path git uses.
        let source = std::fs::canonicalize(source).ok()?;
        let root = source
            .ancestors()
            .find(|directory| std::fs::symlink_metadata(directory.join(".git")).is_ok())?
            .to_path_buf();
        let prefix = source.strip_prefix(&root).ok()?.as_os_str().as_bytes();
        let repository = {
            let mut repositories = self
                .repositories
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            repositories
                .entry(root.clone())
                .or_insert_with(|| list_tracked(&root, observer).map(Arc::new))
                .clone()?
        };
        Some(TrackedView {
            repository,
            prefix: prefix.to_vec(),
        })
    }
}

impl TrackedView {
    /// What git says about the entry at `relative` below the source (empty:
    /// the source itself), which the walk found to be of `kind`. An entry
    /// whose kind on disk is not the one git tracks counts as untracked.
    pub(crate) fn lookup(&self, relative: &[u8], kind: FileKind) -> Tracked {
        let path = if self.prefix.is_empty() {
            relative.to_vec()
        } else if relative.is_empty() {
            self.prefix.clone()
        } else {
            [&self.prefix[..], b"/", relative].concat()
        };
        match kind {
            FileKind::Regular => match self.repository.files.get(&path) {
                Some(&executable) => Tracked::File { executable },
                None => Tracked::No,
            },
            FileKind::Directory if self.repository.directories.contains(&path) => {
                Tracked::Directory
            }
            _ => Tracked::No,
        }
    }
}

/// `git ls-files -s -z` in `root`, submodules included; `None` (with a
/// warning) when git is missing or refuses.
fn list_tracked(root: &Path, observer: &dyn Observer) -> Option<Repository> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "--stage", "-z", "--recurse-submodules"])
        // The repository is the one the files are in, not one a hook or
        // the environment points at.
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(Stdio::null())
        .output();
    let failure = match output {
        Ok(output) if output.status.success() => return Some(parse_ls_files(&output.stdout)),
        Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_string(),
        Err(error) => error.to_string(),
    };
    observer.event(Event::Warning {
        message: format!(
            "git cannot list the files tracked in {} ({failure}): their modes are taken as they \
             are on disk, so the layer depends on the umask of the checkout; check that git is \
             installed and trusts the repository (safe.directory)",
            root.display()
        ),
    });
    None
}

/// Parses `<mode> <object> <stage>\t<path>\0` records.
fn parse_ls_files(output: &[u8]) -> Repository {
    let mut repository = Repository {
        files: HashMap::new(),
        directories: HashSet::new(),
    };
    for record in output.split(|&byte| byte == 0) {
        let Some(tab) = record.iter().position(|&byte| byte == b'\t') else {
            continue;
        };
        let (fields, path) = (&record[..tab], &record[tab + 1..]);
        let Some(mode) = fields
            .split(|&byte| byte == b' ')
            .next()
            .and_then(|mode| std::str::from_utf8(mode).ok())
            .and_then(|mode| u32::from_str_radix(mode, 8).ok())
        else {
            continue;
        };
        if mode == GIT_LINK {
            repository.directories.insert(path.to_vec());
        } else {
            repository
                .files
                .insert(path.to_vec(), mode == GIT_EXECUTABLE);
        }
        let mut parent = path;
        while let Some(slash) = parent.iter().rposition(|&byte| byte == b'/') {
            parent = &parent[..slash];
            if !repository.directories.insert(parent.to_vec()) {
                break;
            }
        }
        repository.directories.insert(Vec::new());
    }
    repository
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_files_output_gives_files_modes_and_their_directories() {
        let output = b"100644 e69de29bb2d1d6434b8b29ae775ad8c2e48c5391 0\tREADME\0\
100755 e69de29bb2d1d6434b8b29ae775ad8c2e48c5391 0\tapp/bin/run\0\
100644 e69de29bb2d1d6434b8b29ae775ad8c2e48c5391 0\tapp/lib/x.py\0\
120000 e69de29bb2d1d6434b8b29ae775ad8c2e48c5391 0\tlink\0\
160000 e69de29bb2d1d6434b8b29ae775ad8c2e48c5391 0\tvendor/sub\0";
        let repository = Arc::new(parse_ls_files(output));
        let view = |prefix: &[u8]| TrackedView {
            repository: Arc::clone(&repository),
            prefix: prefix.to_vec(),
        };
        let root = view(b"");
        assert_eq!(
            root.lookup(b"README", FileKind::Regular),
            Tracked::File { executable: false }
        );
        assert_eq!(
            root.lookup(b"app/bin/run", FileKind::Regular),
            Tracked::File { executable: true }
        );
        for directory in [&b""[..], b"app", b"app/bin", b"vendor", b"vendor/sub"] {
            assert_eq!(
                root.lookup(directory, FileKind::Directory),
                Tracked::Directory
            );
        }
        assert_eq!(root.lookup(b"out", FileKind::Directory), Tracked::No);
        assert_eq!(
            root.lookup(b"app/untracked", FileKind::Regular),
            Tracked::No
        );
        // A path git tracks as a file but that is a directory on disk.
        assert_eq!(root.lookup(b"README", FileKind::Directory), Tracked::No);
        let app = view(b"app");
        assert_eq!(
            app.lookup(b"bin/run", FileKind::Regular),
            Tracked::File { executable: true }
        );
        assert_eq!(app.lookup(b"", FileKind::Directory), Tracked::Directory);
        assert_eq!(
            view(b"app/bin/run").lookup(b"", FileKind::Regular),
            Tracked::File { executable: true }
        );
    }

    #[test]
    fn outside_a_repository_nothing_is_tracked() {
        let work = tempfile::tempdir().unwrap();
        let tracked = TrackedFiles::new();
        let recorder = crate::progress::Recorder::default();
        assert!(tracked.view(work.path(), &recorder).is_none());
        assert!(recorder.0.lock().unwrap().is_empty());
    }
}
