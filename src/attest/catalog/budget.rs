//! The limits of the SBOM step, applied before a byte of the image is read:
//! which files the catalogers get, decided from the sizes the layers' tar
//! headers (or the walk of a directory) give. A file over its per-file limit,
//! or one that would take what the step holds past the total budget, is
//! skipped and named, and the SBOM says it is incomplete. Hard links count
//! once per path, since each path is read and held on its own.

use super::super::files::{FileEntry, FileTree};
use std::collections::BTreeMap;

/// The largest metadata file or package database held in memory
/// (`/var/lib/dpkg/status`, an apk `installed`, a Python `METADATA`).
pub const TEXT_LIMIT: u64 = 64 << 20;
/// The largest rpm database (`rpmdb.sqlite`) spooled to a temporary file.
pub const RPM_DATABASE_LIMIT: u64 = 256 << 20;
/// The largest executable read for its build information; executables are
/// read one at a time and dropped, so they do not count in the budget.
pub const BINARY_LIMIT: u64 = 512 << 20;
/// What all the metadata files and rpm databases of one image may hold
/// together, in memory and spooled.
pub const HELD_BUDGET: u64 = 256 << 20;

/// How a cataloger reads a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Held in memory as text until every cataloger has run.
    Text,
    /// Spooled to a temporary file for SQLite.
    RpmDatabase,
    /// Streamed, one at a time.
    Binary,
}

impl Reading {
    fn limit(self) -> u64 {
        match self {
            Reading::Text => TEXT_LIMIT,
            Reading::RpmDatabase => RPM_DATABASE_LIMIT,
            Reading::Binary => BINARY_LIMIT,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Reading::Text => "a metadata file",
            Reading::RpmDatabase => "an rpm database",
            Reading::Binary => "an executable",
        }
    }
}

/// The files the catalogers get, and those skipped with why.
#[derive(Debug, Default)]
pub(crate) struct Selection {
    chosen: BTreeMap<String, Reading>,
    pub(crate) skipped: Vec<(String, String)>,
}

impl Selection {
    pub(crate) fn reading(&self, path: &str) -> Option<Reading> {
        self.chosen.get(path).copied()
    }
}

/// Chooses, in path order, the files `classify` wants that fit the limits.
pub(crate) fn select(
    tree: &FileTree,
    classify: &dyn Fn(&str, &FileEntry) -> Option<Reading>,
) -> Selection {
    select_within(tree, classify, HELD_BUDGET)
}

fn select_within(
    tree: &FileTree,
    classify: &dyn Fn(&str, &FileEntry) -> Option<Reading>,
    budget: u64,
) -> Selection {
    let mut selection = Selection::default();
    let mut held: u64 = 0;
    for (path, entry) in tree.iter() {
        if !entry.has_content() {
            continue;
        }
        let Some(reading) = classify(path, entry) else {
            continue;
        };
        if entry.size > reading.limit() {
            selection.skipped.push((
                path.to_string(),
                format!(
                    "{} bytes is more than the {} MiB hoist reads of {}",
                    entry.size,
                    reading.limit() >> 20,
                    reading.name()
                ),
            ));
            continue;
        }
        if reading != Reading::Binary {
            if held.saturating_add(entry.size) > budget {
                selection.skipped.push((
                    path.to_string(),
                    format!(
                        "its {} bytes would take the metadata read from this image past the {} MiB budget of the SBOM step",
                        entry.size,
                        budget >> 20
                    ),
                ));
                continue;
            }
            held += entry.size;
        }
        selection.chosen.insert(path.to_string(), reading);
    }
    selection
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, u64)]) -> (tempfile::TempDir, FileTree) {
        let root = tempfile::tempdir().unwrap();
        for (path, size) in files {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            // Sparse: the size is what counts, nothing is read.
            std::fs::File::create(&path)
                .unwrap()
                .set_len(*size)
                .unwrap();
        }
        let tree = FileTree::from_directory(root.path()).unwrap();
        (root, tree)
    }

    #[test]
    fn per_file_limits_and_the_budget_are_checked_in_path_order() {
        let (_root, tree) = tree(&[
            ("a/status", 40),
            ("b/huge", TEXT_LIMIT + 1),
            ("c/status", 40),
            ("d/status", 40),
            ("e/binary", 1000),
        ]);
        let classify = |path: &str, _: &FileEntry| {
            Some(if path.ends_with("binary") {
                Reading::Binary
            } else {
                Reading::Text
            })
        };
        let selection = select_within(&tree, &classify, 100);
        assert_eq!(selection.reading("/a/status"), Some(Reading::Text));
        assert_eq!(selection.reading("/c/status"), Some(Reading::Text));
        assert_eq!(selection.reading("/e/binary"), Some(Reading::Binary));
        let skipped: Vec<&str> = selection
            .skipped
            .iter()
            .map(|(path, _)| path.as_str())
            .collect();
        assert_eq!(skipped, ["/b/huge", "/d/status"]);
        assert!(
            selection.skipped[0].1.contains("64 MiB"),
            "{:?}",
            selection.skipped
        );
        assert!(
            selection.skipped[1].1.contains("budget"),
            "{:?}",
            selection.skipped
        );
    }
}
