//! Hostile inputs for the tests that check nothing slips into an output
//! unchecked: a good one-layer layout built by hoist, and the variants
//! `fixtures/make-hostile-inputs.sh` derives from it.

use crate::common::hoist::{fixture, hoist, tool};
use std::fs;
use std::path::{Path, PathBuf};

/// The line `outside/secret` holds; no output may ever contain it.
pub const SECRET_MARKER: &str = "HOIST-OUTSIDE-SECRET";

/// The inputs `fixtures/make-hostile-inputs.sh` made.
pub struct HostileInputs {
    /// The good layout the variants are copies of (tag `small`).
    pub good: PathBuf,
    /// The directory holding the variants and `outside/`.
    pub directory: PathBuf,
    /// The digest of the blob each variant got wrong.
    pub target: String,
}

impl HostileInputs {
    pub fn variant(&self, name: &str) -> PathBuf {
        self.directory.join(name)
    }

    /// The bytes of the target blob as the good layout holds them.
    pub fn target_bytes(&self) -> Vec<u8> {
        fs::read(self.directory.join("outside/same-bytes")).expect("the fixture's copy")
    }
}

/// Builds a one-file image into `work/good` and the hostile variants of it
/// into `work/hostile`.
pub fn hostile_inputs(work: &Path) -> HostileInputs {
    let tree = work.join("tree");
    fs::create_dir_all(tree.join("src/app")).unwrap();
    fs::write(
        tree.join("src/app/message.txt"),
        b"a message in the image\n",
    )
    .unwrap();
    fs::write(
        tree.join("hoist.toml"),
        "[[image]]\nname = \"small\"\nplatforms = [\"linux/amd64\"]\n\
         source-date-epoch = 1700000000\n\n[[image.layer]]\nsource = \"src\"\ntarget = \"/\"\n",
    )
    .unwrap();
    let good = work.join("good");
    hoist(["build", "-f"])
        .arg(tree.join("hoist.toml"))
        .arg("-o")
        .arg(format!("oci:{}:small", good.display()))
        .env("HOIST_CACHE", work.join("cache"))
        .run()
        .success();
    let directory = work.join("hostile");
    let output = tool(
        fixture("make-hostile-inputs.sh")
            .to_str()
            .expect("UTF-8 path"),
        &[good.as_os_str(), directory.as_os_str()],
    );
    let target = output.trim().to_string();
    assert!(target.starts_with("sha256:"), "{output}");
    HostileInputs {
        good,
        directory,
        target,
    }
}

/// Every regular file under `root` (symlinks are listed, never followed).
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let Ok(entries) = fs::read_dir(&directory) else {
            continue;
        };
        for entry in entries.flatten() {
            let file_type = entry.file_type().unwrap();
            if file_type.is_dir() {
                pending.push(entry.path());
            } else {
                found.push(entry.path());
            }
        }
    }
    found
}

/// Panics if any file or symlink under `root` holds `needle` (or is a
/// symlink at all: an output has none).
pub fn assert_nothing_holds(root: &Path, needle: &[u8]) {
    for path in files_under(root) {
        let metadata = fs::symlink_metadata(&path).unwrap();
        assert!(
            !metadata.file_type().is_symlink(),
            "{} is a symlink in an output",
            path.display()
        );
        let bytes = fs::read(&path).unwrap();
        assert!(
            !bytes.windows(needle.len()).any(|window| window == needle),
            "{} holds bytes from outside the layout",
            path.display()
        );
    }
}
