//! Hostile layouts and archives (made by `fixtures/make-hostile-inputs.sh`):
//! a blob that is a symlink, that has other bytes or another size than its
//! descriptor says, an `index.json` naming a path. Every path a blob takes
//! into an output (a hard link on the same filesystem, a copy onto another,
//! an archive) must refuse them, name the blob, and leave no output and no
//! byte of a file from outside the layout behind.

use crate::common::hoist::{HoistOutput, hoist};
use crate::common::hostile::{HostileInputs, SECRET_MARKER, assert_nothing_holds, hostile_inputs};
use serde_json::Value;
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

/// A docker archive's layers are entries of the archive, never files its
/// `manifest.json` or a symlink entry names elsewhere.
#[test]
fn a_docker_archive_cannot_name_a_file_outside_it() {
    let (work, inputs) = inputs();
    let outputs = Outputs::new(work.path());
    for (archive, entry) in [
        ("docker-symlink.tar", "layer.tar"),
        ("docker-dotdot.tar", "../../outside/secret"),
    ] {
        let source = format!("docker-archive:{}", inputs.variant(archive).display());
        assert_refused_everywhere(&outputs, archive, &source, &[entry]);
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

/// What the SBOM step may hold at once: its 256 MiB budget, one file's
/// copy while it is decoded, and the program itself.
const SBOM_PEAK_LIMIT_KIB: u64 = (256 + 192) * 1024;

/// `hoist sbom LOCATION --format FORMAT` under GNU time: the document, the
/// warnings, and the peak resident memory in KiB.
fn sbom_measured(work: &Path, location: &str, format: &str) -> (Value, String, u64) {
    let document = work.join(format!("sbom.{format}"));
    let peak = work.join("peak");
    let output = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&peak)
        .arg(env!("CARGO_BIN_EXE_hoist"))
        .args(["sbom", location, "--format", format, "-o"])
        .arg(&document)
        .env("NO_COLOR", "1")
        .output()
        .expect("GNU time runs (apt-get install -y time)");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "hoist sbom failed:\n{stderr}");
    let peak = fs::read_to_string(&peak).unwrap();
    let peak: u64 = peak.trim().lines().last().unwrap().parse().unwrap();
    let value = serde_json::from_slice(&fs::read(&document).unwrap()).unwrap();
    (value, stderr, peak)
}

/// Paths of the hostile tree the SBOM step must skip, and why.
fn expected_skips() -> Vec<(String, &'static str)> {
    let mut skips = vec![
        ("/var/lib/dpkg/status".to_string(), "more than the 64 MiB"),
        (
            "/usr/bin/tool-a".to_string(),
            "a hard link to /usr/bin/tool",
        ),
        (
            "/usr/bin/tool-b".to_string(),
            "a hard link to /usr/bin/tool",
        ),
    ];
    // 4 × 60 MiB fit in the 256 MiB budget; the fifth does not.
    for number in 4..10 {
        skips.push((
            format!("/usr/lib/python3/dist-packages/big{number}-1.0.dist-info/METADATA"),
            "256 MiB budget",
        ));
    }
    skips
}

/// An image with an oversized package database, many large metadata files
/// and a large executable shared by hard links: the SBOM step reads within
/// its limits, names every file it skipped in a warning, and marks both
/// documents incomplete, naming them; what fits is still cataloged.
#[test]
fn the_sbom_of_a_hostile_image_is_bounded_and_marked_incomplete() {
    let (work, inputs) = inputs();
    let image = work.path().join("sbom-image");
    hoist(["build", "-q", "-f"])
        .arg(inputs.variant("sbom-tree/hoist.toml"))
        .arg("-o")
        .arg(format!("oci:{}:hostile", image.display()))
        .env("HOIST_CACHE", work.path().join("cache"))
        .run()
        .success();
    let location = format!("oci:{}:hostile", image.display());

    let (spdx, warnings, peak) = sbom_measured(work.path(), &location, "spdx-json");
    assert!(
        peak < SBOM_PEAK_LIMIT_KIB,
        "the SBOM step held {peak} KiB, more than its budget allows"
    );
    crate::common::assert_valid_json_bytes(
        "spdx/spdx-2.3.schema.json",
        &serde_json::to_vec(&spdx).unwrap(),
    );
    let comment = spdx["creationInfo"]["comment"].as_str().unwrap_or_default();
    assert!(
        comment.starts_with("hoist: incomplete catalog"),
        "{comment}"
    );
    for (path, reason) in expected_skips() {
        assert!(comment.contains(&path), "{path} not named in: {comment}");
        let warning = warnings
            .lines()
            .find(|line| {
                line.starts_with("warning: ") && line.contains(&format!("skipping {path}:"))
            })
            .unwrap_or_else(|| panic!("no warning names {path}:\n{warnings}"));
        assert!(warning.contains(reason), "{warning}");
    }
    let names: Vec<&str> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|package| package["name"].as_str())
        .collect();
    assert!(names.contains(&"aaa-small"), "{names:?}");

    let (cyclonedx, _, _) = sbom_measured(work.path(), &location, "cyclonedx-json");
    crate::common::assert_valid_json_bytes(
        "cyclonedx/bom-1.6.schema.json",
        &serde_json::to_vec(&cyclonedx).unwrap(),
    );
    assert_eq!(
        cyclonedx["compositions"],
        serde_json::json!([{"aggregate": "incomplete", "assemblies": ["image"]}])
    );
    let skipped: Vec<&str> = cyclonedx["metadata"]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|property| property["name"] == "hoist:sbom:skipped")
        .filter_map(|property| property["value"].as_str())
        .collect();
    assert_eq!(skipped.len(), expected_skips().len() + 4, "{skipped:?}");
    for (path, _) in expected_skips() {
        assert!(
            skipped
                .iter()
                .any(|value| value.starts_with(&format!("{path}: "))),
            "{path} not in {skipped:?}"
        );
    }

    // A complete catalog says nothing of the kind.
    let good = format!("oci:{}:small", inputs.good.display());
    let (spdx, _, _) = sbom_measured(work.path(), &good, "spdx-json");
    assert!(spdx["creationInfo"].get("comment").is_none(), "{spdx}");
    let (cyclonedx, _, _) = sbom_measured(work.path(), &good, "cyclonedx-json");
    assert!(cyclonedx.get("compositions").is_none(), "{cyclonedx}");
}
