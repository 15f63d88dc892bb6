//! Hostile layouts and archives (made by `fixtures/make-hostile-inputs.sh`):
//! a blob that is a symlink, that has other bytes or another size than its
//! descriptor says, an `index.json` naming a path. Every path a blob takes
//! into an output (a hard link on the same filesystem, a copy onto another,
//! an archive) must refuse them, name the blob, and leave no output and no
//! byte of a file from outside the layout behind.

use crate::common::hoist::{HoistOutput, hoist};
use crate::common::hostile::{HostileInputs, SECRET_MARKER, assert_nothing_holds, hostile_inputs};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// Where outputs go: beside the inputs (so blobs are hard-linked), and on
/// the tmpfs at /dev/shm (another filesystem, so blobs are copied).
struct Outputs {
    same_filesystem: TempDir,
    other_filesystem: TempDir,
}

impl Outputs {
    fn new(work: &Path) -> Outputs {
        let other_filesystem = tempfile::tempdir_in("/dev/shm").expect("a directory in /dev/shm");
        assert_ne!(
            fs::metadata(work).unwrap().dev(),
            fs::metadata(other_filesystem.path()).unwrap().dev(),
            "/dev/shm must be another filesystem than the test's work directory"
        );
        Outputs {
            same_filesystem: tempfile::tempdir_in(work).unwrap(),
            other_filesystem,
        }
    }

    /// Every output location a copy is tried to, named `name`.
    fn locations(&self, name: &str) -> Vec<(String, PathBuf)> {
        let same = self.same_filesystem.path();
        let other = self.other_filesystem.path();
        vec![
            (
                format!("oci:{}", same.join(name).display()),
                same.join(name),
            ),
            (
                format!("oci:{}", other.join(name).display()),
                other.join(name),
            ),
            (
                format!(
                    "oci-archive:{}",
                    other.join(format!("{name}.tar")).display()
                ),
                other.join(format!("{name}.tar")),
            ),
            (
                format!(
                    "docker-archive:{}:small:1",
                    same.join(format!("{name}.docker.tar")).display()
                ),
                same.join(format!("{name}.docker.tar")),
            ),
        ]
    }

    /// Nothing under either output directory holds `needle`.
    fn assert_nothing_holds(&self, needle: &[u8]) {
        assert_nothing_holds(self.same_filesystem.path(), needle);
        assert_nothing_holds(self.other_filesystem.path(), needle);
    }
}

/// `hoist copy` of the one platform there is (a docker archive takes one
/// image, not an index).
fn copy(source: &str, destination: &str) -> HoistOutput {
    hoist(["copy", "--platform", "linux/amd64", source, destination]).run()
}

/// Copies `source` to every output location; each must fail, mention all
/// of `needles` and leave nothing at the output path.
fn assert_refused_everywhere(outputs: &Outputs, name: &str, source: &str, needles: &[&str]) {
    for (location, path) in outputs.locations(name) {
        copy(source, &location).failure(1).stderr_mentions(needles);
        assert!(
            fs::symlink_metadata(&path).is_err(),
            "a refused copy from {source} left {}",
            path.display()
        );
    }
}

fn inputs() -> (TempDir, HostileInputs) {
    let work = tempfile::tempdir().unwrap();
    let inputs = hostile_inputs(work.path());
    (work, inputs)
}

/// The good layout copies everywhere, and beside its source by hard link:
/// the refusals below are of the hostile variants, not of a path that
/// never works, and the same-filesystem output does take the link path.
#[test]
fn the_good_layout_copies_by_hard_link_and_by_copy() {
    let (work, inputs) = inputs();
    let outputs = Outputs::new(work.path());
    let source = format!("oci:{}:small", inputs.good.display());
    for (location, path) in outputs.locations("good") {
        copy(&source, &location).success();
        assert!(path.exists(), "{location}");
    }
    let hex = inputs.target.trim_start_matches("sha256:");
    let inode = |root: &Path| {
        fs::metadata(root.join("blobs/sha256").join(hex))
            .unwrap()
            .ino()
    };
    assert_eq!(
        inode(&inputs.good),
        inode(&outputs.same_filesystem.path().join("good")),
        "beside its source a layout's blob is hard-linked"
    );
}

#[test]
fn a_symlinked_blob_is_refused_on_every_path() {
    let (work, inputs) = inputs();
    let outputs = Outputs::new(work.path());
    let passwd = fs::read("/etc/passwd").unwrap();
    let passwd_line = passwd.split(|byte| *byte == b'\n').next().unwrap().to_vec();
    for variant in ["symlink-secret", "symlink-same-bytes", "symlink-passwd"] {
        let source = format!("oci:{}:small", inputs.variant(variant).display());
        let blob = inputs.variant(variant).join("blobs/sha256");
        let blob = blob.join(inputs.target.trim_start_matches("sha256:"));
        assert_refused_everywhere(
            &outputs,
            variant,
            &source,
            &[&inputs.target, &blob.display().to_string(), "symbolic link"],
        );
    }
    let source = format!(
        "oci:{}:small",
        inputs.variant("symlink-directory").display()
    );
    assert_refused_everywhere(
        &outputs,
        "symlink-directory",
        &source,
        &["symlink-directory/blobs/sha256", "symbolic link"],
    );
    outputs.assert_nothing_holds(SECRET_MARKER.as_bytes());
    outputs.assert_nothing_holds(&inputs.target_bytes());
    outputs.assert_nothing_holds(&passwd_line);
}

#[test]
fn a_blob_with_other_bytes_or_size_is_refused_on_every_path() {
    let (work, inputs) = inputs();
    let outputs = Outputs::new(work.path());
    for variant in ["tampered", "truncated"] {
        let source = format!("oci:{}:small", inputs.variant(variant).display());
        assert_refused_everywhere(
            &outputs,
            variant,
            &source,
            &[&inputs.target, "does not match its descriptor"],
        );
    }
    let tampered = fs::read(
        inputs
            .variant("tampered/blobs/sha256")
            .join(inputs.target.trim_start_matches("sha256:")),
    )
    .unwrap();
    outputs.assert_nothing_holds(&tampered);
}

#[test]
fn an_index_entry_cannot_name_a_path() {
    let (work, inputs) = inputs();
    let outputs = Outputs::new(work.path());
    for (variant, path) in [
        ("dotdot-index", "../../outside/secret"),
        ("absolute-index", "/etc/passwd"),
    ] {
        let source = format!("oci:{}", inputs.variant(variant).display());
        assert_refused_everywhere(&outputs, variant, &source, &["index.json", path]);
    }
    outputs.assert_nothing_holds(SECRET_MARKER.as_bytes());
}

#[test]
fn an_archive_with_a_link_out_or_other_bytes_is_refused() {
    let (work, inputs) = inputs();
    let outputs = Outputs::new(work.path());
    for (archive, reason) in [
        ("symlink-secret.tar", "is missing"),
        ("link-outside.tar", "is missing"),
        ("tampered.tar", "does not match its descriptor"),
    ] {
        let source = format!("oci-archive:{}:small", inputs.variant(archive).display());
        assert_refused_everywhere(&outputs, archive, &source, &[&inputs.target, reason]);
    }
    outputs.assert_nothing_holds(SECRET_MARKER.as_bytes());
}

/// A base image is read through the same source: a build on a hostile
/// layout fails before writing anything.
#[test]
fn a_build_on_a_hostile_base_is_refused() {
    let (work, inputs) = inputs();
    let outputs = Outputs::new(work.path());
    for variant in ["symlink-same-bytes", "tampered"] {
        let spec = work.path().join(format!("{variant}.toml"));
        fs::write(
            &spec,
            format!(
                "[[image]]\nname = \"on-base\"\nbase = \"oci:{}:small\"\n\
                 platforms = [\"linux/amd64\"]\n",
                inputs.variant(variant).display()
            ),
        )
        .unwrap();
        let output = outputs.same_filesystem.path().join(variant);
        hoist(["build", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("oci:{}", output.display()))
            .env("HOIST_CACHE", work.path().join("cache"))
            .run()
            .failure(1)
            .stderr_mentions(&[&inputs.target]);
        assert!(
            !output.exists(),
            "a refused build left {}",
            output.display()
        );
    }
    outputs.assert_nothing_holds(&inputs.target_bytes());
}
