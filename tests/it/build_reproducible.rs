//! The same inputs give the same digests: `hoist build` of the fixtures in
//! different conditions (directory, umask, file creation order, mtimes,
//! thread count, timezone) prints the same lines, and the digests are pinned.
use crate::common;

use crate::common::hoist::{HoistOutput, Layout, copy_tree, fixture, hoist};
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The index digest of fixtures/hello (gzip), as built by hoist. A change
/// here is a change to the bytes hoist writes: explain it in the commit.
const GOLDEN_HELLO_GZIP: &str =
    "sha256:bd9edeb9ea01429e901e37c8f1a3570403b3fb3fe27af95c08e1428e793f820c";
/// The same with `compression = "zstd"`.
const GOLDEN_HELLO_ZSTD: &str =
    "sha256:0e2cccb1d2f05bdf0ae098e2c17756ea9036bc70d99c82de414ffb250f08d985";
/// fixtures/hello built for linux/amd64 alone: since format version 4 its
/// platform manifest is the top (it was an index over it), the same
/// manifest the two-platform index lists.
const GOLDEN_HELLO_AMD64: &str =
    "sha256:7c32d6378af11c32dcf9c80acf2ca267f8d32759bb69cd49e1978960ae6df0c3";

/// fixtures/hello/hoist.toml's epoch, and a time far after it.
const HELLO_EPOCH: i64 = 1_700_000_000;
const YEAR_2100: i64 = 4_102_444_800;

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Builds the spec in `spec_dir` into a fresh layout; returns the output.
/// The spec directory is copied (mtimes kept) to a temporary directory
/// first: inside this repository, the build would take the checkout's
/// commit into its labels, and the pinned digests would move with every
/// commit. The copy is staged in a repository of its own, as a checkout of
/// the fixture would be, so git's modes count rather than the umask's.
fn build(spec_dir: &Path, extra: &[&str], environment: &[(&str, &str)]) -> HoistOutput {
    let work = temp();
    let out = work.path().join("out");
    let copy = work.path().join("spec");
    copy_tree(spec_dir, &copy);
    common::stage_with_git(&copy);
    let mut command = hoist(["build", "-f"])
        .arg(copy.join("hoist.toml"))
        .arg("-o")
        .arg(format!("oci:{}", out.display()))
        .args(extra)
        .current_dir(work.path());
    for (key, value) in environment {
        command = command.env(key, value);
    }
    let output = command.run().success();
    assert_eq!(
        Layout::open(&out).tagged_digest("hello"),
        output.last_line_digest(),
        "index.json tags the printed digest"
    );
    output
}

/// Every printed line (per-platform manifest digests, sizes and the top digest).
fn lines(output: &HoistOutput) -> Vec<String> {
    output.lines().into_iter().map(str::to_string).collect()
}

fn baseline() -> Vec<String> {
    lines(&build(&fixture("hello"), &[], &[]))
}

fn assert_same_build(condition: &str, output: &HoistOutput) {
    assert_eq!(
        lines(output),
        baseline(),
        "{condition} changes what hoist builds"
    );
}

/// A copy of fixtures/hello made the way a checkout makes files: new files,
/// modes masked by `umask`, mtimes now.
fn copy_with_umask(umask: &str, destination: &Path) {
    let source = fixture("hello");
    common::run(
        Command::new("sh")
            .arg("-c")
            .arg("umask \"$1\" && cp -R \"$2\" \"$3\"")
            .arg("sh")
            .arg(umask)
            .arg(&source)
            .arg(destination),
    );
}

/// A copy whose files are created in reverse path order.
fn copy_in_reverse_order(source: &Path, destination: &Path) {
    let mut paths: Vec<PathBuf> = walkdir::WalkDir::new(source)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .map(|entry| entry.expect("walk fixture").into_path())
        .collect();
    paths.reverse();
    fs::create_dir_all(destination).unwrap();
    for path in paths {
        let relative = path.strip_prefix(source).unwrap();
        let target = destination.join(relative);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        let metadata = fs::symlink_metadata(&path).unwrap();
        if metadata.file_type().is_symlink() {
            symlink(fs::read_link(&path).unwrap(), &target).unwrap();
        } else if metadata.is_dir() {
            fs::create_dir_all(&target).unwrap();
        } else {
            fs::write(&target, fs::read(&path).unwrap()).unwrap();
            fs::set_permissions(
                &target,
                fs::Permissions::from_mode(metadata.permissions().mode()),
            )
            .unwrap();
        }
    }
}

fn set_all_mtimes(root: &Path, seconds: i64) {
    common::run(
        Command::new("find")
            .arg(root)
            .args(["-exec", "touch", "-h", "-d"])
            .arg(format!("@{seconds}"))
            .args(["{}", "+"]),
    );
}

fn replace_in_spec(spec_dir: &Path, from: &str, to: &str) {
    let path = spec_dir.join("hoist.toml");
    let spec = fs::read_to_string(&path).unwrap();
    assert!(spec.contains(from), "hoist.toml has no {from:?}");
    fs::write(&path, spec.replace(from, to)).unwrap();
}

#[test]
fn another_directory_gives_the_same_digests() {
    let work = temp();
    let copy = work.path().join("somewhere/else/hello");
    copy_tree(&fixture("hello"), &copy);
    assert_same_build("another directory", &build(&copy, &[], &[]));
}

#[test]
fn umask_gives_the_same_digests() {
    let work = temp();
    let strict = work.path().join("strict");
    let loose = work.path().join("loose");
    copy_with_umask("077", &strict);
    copy_with_umask("022", &loose);
    let message_mode = fs::metadata(strict.join("app/message.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(message_mode & 0o777, 0o600, "umask 077 applied to the copy");
    assert_same_build("umask 077", &build(&strict, &[], &[]));
    assert_same_build("umask 022", &build(&loose, &[], &[]));
}

#[test]
fn file_creation_order_gives_the_same_digests() {
    let work = temp();
    let reversed = work.path().join("reversed");
    copy_in_reverse_order(&fixture("hello"), &reversed);
    assert_same_build("reverse creation order", &build(&reversed, &[], &[]));
}

#[test]
fn mtimes_newer_than_the_epoch_all_become_one_time() {
    let work = temp();
    let future = work.path().join("future");
    copy_tree(&fixture("hello"), &future);
    set_all_mtimes(&future, YEAR_2100);
    assert_same_build("mtimes in 2100", &build(&future, &[], &[]));

    // Older than the epoch is kept, so it does change the digest.
    let past = work.path().join("past");
    copy_tree(&fixture("hello"), &past);
    set_all_mtimes(&past, HELLO_EPOCH - 86_400);
    assert_ne!(
        lines(&build(&past, &[], &[])),
        baseline(),
        "mtimes before the epoch are kept, not clamped"
    );
}

#[test]
fn thread_count_gives_the_same_digests() {
    let hello = fixture("hello");
    assert_same_build("--jobs 1", &build(&hello, &["--jobs", "1"], &[]));
    assert_same_build("--jobs 4", &build(&hello, &["--jobs", "4"], &[]));
    assert_same_build("HOIST_JOBS=3", &build(&hello, &[], &[("HOIST_JOBS", "3")]));
    assert_same_build(
        "another timezone and locale",
        &build(
            &hello,
            &["--jobs", "2"],
            &[("TZ", "Pacific/Kiritimati"), ("LC_ALL", "C.UTF-8")],
        ),
    );
}

#[test]
fn zstd_is_reproducible_across_thread_counts() {
    let work = temp();
    let copy = work.path().join("zstd");
    copy_tree(&fixture("hello"), &copy);
    replace_in_spec(&copy, "compression = \"gzip\"", "compression = \"zstd\"");
    replace_in_spec(&copy, "compression-level = 6", "compression-level = 3");
    let one = build(&copy, &["--jobs", "1"], &[]);
    let four = build(&copy, &["--jobs", "4"], &[]);
    assert_eq!(
        lines(&one),
        lines(&four),
        "zstd bytes depend on the thread count"
    );
    assert_ne!(
        lines(&one),
        baseline(),
        "zstd and gzip give different layers"
    );

    let layout_dir = work.path().join("check");
    hoist(["build", "-f"])
        .arg(copy.join("hoist.toml"))
        .arg("-o")
        .arg(format!("oci:{}", layout_dir.display()))
        .run()
        .success();
    let layout = Layout::open(&layout_dir);
    for node in layout.walk("hello") {
        if node.media_type.contains("layer") {
            assert_eq!(
                node.media_type,
                "application/vnd.oci.image.layer.v1.tar+zstd"
            );
        }
    }
    for (_, manifest) in layout.platform_manifests("hello") {
        layout.verify_diff_ids(&manifest);
    }
}

#[test]
fn uncompressed_layers_are_reproducible() {
    let work = temp();
    let copy = work.path().join("none");
    copy_tree(&fixture("hello"), &copy);
    replace_in_spec(&copy, "compression = \"gzip\"", "compression = \"none\"");
    replace_in_spec(&copy, "compression-level = 6\n", "");
    let one = build(&copy, &["--jobs", "1"], &[]);
    let four = build(&copy, &["--jobs", "4"], &[]);
    assert_eq!(lines(&one), lines(&four));
    assert_ne!(lines(&one), baseline());
}

#[test]
fn epoch_comes_from_the_environment_then_the_spec_then_git() {
    let work = temp();
    let epoch_line = "source-date-epoch = 1700000000\n";

    // SOURCE_DATE_EPOCH stands in for the spec's key.
    let from_environment = work.path().join("environment");
    copy_tree(&fixture("hello"), &from_environment);
    set_all_mtimes(&from_environment, YEAR_2100);
    replace_in_spec(&from_environment, epoch_line, "");
    assert_same_build(
        "SOURCE_DATE_EPOCH instead of the spec's key",
        &build(
            &from_environment,
            &[],
            &[("SOURCE_DATE_EPOCH", "1700000000")],
        ),
    );

    // and wins over it.
    assert_ne!(
        lines(&build(
            &fixture("hello"),
            &[],
            &[("SOURCE_DATE_EPOCH", "1600000000")]
        )),
        baseline(),
        "SOURCE_DATE_EPOCH overrides the spec"
    );

    // Without either, the commit time of the spec's git repository.
    let repository = work.path().join("repository");
    copy_tree(&fixture("hello"), &repository);
    set_all_mtimes(&repository, YEAR_2100);
    replace_in_spec(&repository, epoch_line, "");
    let git = |args: &[&str]| {
        common::run(
            Command::new("git")
                .args([
                    "-c",
                    "user.name=hoist",
                    "-c",
                    "user.email=hoist@example.invalid",
                ])
                .args(args)
                .current_dir(&repository)
                .env("GIT_COMMITTER_DATE", "@1700000000 +0000")
                .env("GIT_AUTHOR_DATE", "@1600000000 +0000"),
        )
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "fixture"]);
    // Inside git the config also gets the commit's labels, so compare what
    // the epoch decides: the layers and `created`.
    let layers_and_created = |spec_dir: &Path| {
        let out = work.path().join("check-epoch");
        let _ = fs::remove_dir_all(&out);
        hoist(["build", "-f"])
            .arg(spec_dir.join("hoist.toml"))
            .arg("-o")
            .arg(format!("oci:{}", out.display()))
            .current_dir(work.path())
            .run()
            .success();
        let layout = Layout::open(&out);
        layout
            .platform_manifests("hello")
            .into_iter()
            .map(|(platform, manifest)| {
                let manifest = layout.json(&manifest);
                let config = layout.json(manifest["config"]["digest"].as_str().unwrap());
                (
                    platform,
                    manifest["layers"].clone(),
                    config["created"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let from_git = layers_and_created(&repository);
    let plain = work.path().join("plain");
    copy_tree(&fixture("hello"), &plain);
    assert_eq!(
        from_git,
        layers_and_created(&plain),
        "the git commit time gives the spec's epoch"
    );
    let labels = {
        let out = work.path().join("check-epoch");
        let layout = Layout::open(&out);
        let (_, manifest) = layout.platform_manifests("hello").remove(0);
        let config = layout.json(layout.json(&manifest)["config"]["digest"].as_str().unwrap());
        config["config"]["Labels"].clone()
    };
    assert_eq!(
        labels.get("org.opencontainers.image.revision"),
        None,
        "outside git the config has no revision label"
    );

    // Without any: 0.
    let nothing = work.path().join("nothing");
    copy_tree(&fixture("hello"), &nothing);
    replace_in_spec(&nothing, epoch_line, "");
    let out = work.path().join("zero");
    hoist(["build", "-f"])
        .arg(nothing.join("hoist.toml"))
        .arg("-o")
        .arg(format!("oci:{}", out.display()))
        .current_dir(work.path())
        .run()
        .success();
    let layout = Layout::open(&out);
    let (_, manifest) = layout.platform_manifests("hello").remove(0);
    let config = layout.json(layout.json(&manifest)["config"]["digest"].as_str().unwrap());
    assert!(
        config["created"]
            .as_str()
            .is_some_and(|created| created.starts_with("1970-01-01T00:00:00")),
        "created {}",
        config["created"]
    );
}

#[test]
fn golden_digests() {
    let both = build(&fixture("hello"), &[], &[]);
    let gzip = both.last_line_digest();
    let work = temp();
    let copy = work.path().join("zstd");
    copy_tree(&fixture("hello"), &copy);
    replace_in_spec(&copy, "compression = \"gzip\"", "compression = \"zstd\"");
    replace_in_spec(&copy, "compression-level = 6", "compression-level = 3");
    let zstd = build(&copy, &[], &[]).last_line_digest();
    assert_eq!(
        (gzip.as_str(), zstd.as_str()),
        (GOLDEN_HELLO_GZIP, GOLDEN_HELLO_ZSTD),
        "fixtures/hello's digests changed (gzip, zstd)"
    );
    let amd64 = build(&fixture("hello"), &["--platform", "linux/amd64"], &[]);
    assert_eq!(
        amd64.last_line_digest(),
        GOLDEN_HELLO_AMD64,
        "fixtures/hello's linux/amd64 manifest changed"
    );
    assert_eq!(amd64.image_lines()[0].digest, GOLDEN_HELLO_AMD64);
    assert!(
        both.image_lines()
            .iter()
            .any(|line| line.digest == GOLDEN_HELLO_AMD64)
    );
}
