//! Layers built with the spec's defaults (no `owner`, no `permissions`):
//! the running user's files come out owned by root, everybody else's keep
//! their owner, and what git does not track keeps its mode exactly, so a
//! root filesystem made by root comes out as it is on disk. Checked entry
//! by entry in the layer tar `hoist build` wrote.

use crate::common::hoist::{Layout, decompress, hoist_in};
use crate::layer_support::{Entry, find, read_entries};
use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::Path;

/// A uid and gid no file of the system has: the user a build runs as.
const BUILDER: u32 = 4242;

/// Writes a one-layer spec (`source` at `/`, no owner or permission keys)
/// in `spec_dir`.
fn default_spec(spec_dir: &Path, source: &str) {
    fs::write(
        spec_dir.join("hoist.toml"),
        format!(
            "[[image]]\nname = \"rootfs\"\nplatforms = [\"linux/amd64\"]\n\
             source-date-epoch = 1700000000\ncompression = \"gzip\"\n\n\
             [[image.layer]]\nsource = \"{source}\"\ntarget = \"/\"\n"
        ),
    )
    .unwrap();
}

/// The entries of the one layer of the image `hoist build` wrote to `out`.
fn layer_entries(out: &Path) -> Vec<Entry> {
    let layout = Layout::open(out);
    let manifests = layout.platform_manifests("rootfs");
    assert_eq!(manifests.len(), 1);
    let manifest = layout.json(&manifests[0].1);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    let media_type = layers[0]["mediaType"].as_str().unwrap();
    let blob = layout.blob(layers[0]["digest"].as_str().unwrap());
    read_entries(&decompress(media_type, &blob))
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Run by another user than root: that user's files and directories become
/// 0:0, a file owned by someone else keeps its owner.
#[test]
fn the_running_users_files_become_root_and_others_keep_their_owner() {
    let work = tempfile::tempdir().unwrap();
    set_mode(work.path(), 0o755);
    let home = work.path().join("home");
    let tree = home.join("tree");
    fs::create_dir_all(tree.join("bin")).unwrap();
    fs::write(tree.join("bin/tool"), b"tool").unwrap();
    fs::write(tree.join("theirs"), b"theirs").unwrap();
    fs::write(tree.join("group-only"), b"group").unwrap();
    default_spec(&home, "tree");
    for path in [&home, &tree, &tree.join("bin"), &tree.join("bin/tool")] {
        chown(path, Some(BUILDER), Some(BUILDER)).unwrap();
    }
    chown(tree.join("theirs"), Some(5001), Some(5002)).unwrap();
    // The builder's file in a group of its own: only the uid is the builder's.
    chown(tree.join("group-only"), Some(BUILDER), Some(5003)).unwrap();

    hoist_in(&home, ["build", "--no-cache", "-o", "oci:out"])
        .current_dir(&home)
        .run_as(BUILDER, BUILDER)
        .run()
        .success();
    let entries = layer_entries(&home.join("out"));
    let tool = find(&entries, "bin/tool");
    assert_eq!((tool.uid, tool.gid), (0, 0), "the builder's file is root's");
    let bin = find(&entries, "bin/");
    assert_eq!(
        (bin.uid, bin.gid),
        (0, 0),
        "the builder's directory is root's"
    );
    let theirs = find(&entries, "theirs");
    assert_eq!(
        (theirs.uid, theirs.gid),
        (5001, 5002),
        "another owner is kept"
    );
    let group_only = find(&entries, "group-only");
    assert_eq!((group_only.uid, group_only.gid), (0, 5003));
}

/// A root filesystem made by root, as debootstrap or apk leave one, built
/// with no `owner` or `permissions`: every owner, mode (special bits
/// included) and device number comes out as it is on disk.
#[test]
fn a_root_filesystem_made_by_root_comes_out_exactly() {
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    for directory in ["etc", "root", "tmp", "dev", "usr/bin", "var/cache/apt"] {
        fs::create_dir_all(rootfs.join(directory)).unwrap();
    }
    let file = |path: &str, mode: u32, uid: u32, gid: u32| {
        let path = rootfs.join(path);
        if !path.exists() {
            fs::write(&path, path.to_string_lossy().as_bytes()).unwrap();
        }
        chown(&path, Some(uid), Some(gid)).unwrap();
        set_mode(&path, mode);
    };
    file("etc/shadow", 0o640, 0, 42);
    file("etc/passwd", 0o644, 0, 0);
    file("root/.ssh-key", 0o600, 0, 0);
    file("usr/bin/helper", 0o4754, 0, 50);
    file("usr/bin/wall", 0o2755, 0, 5);
    file("var/cache/apt/pkgcache.bin", 0o644, 100, 65534);
    file("root", 0o700, 0, 0);
    file("tmp", 0o1777, 0, 0);
    file("var/cache/apt", 0o755, 100, 65534);
    let device = |path: &str, mode: &str, kind: &str, numbers: [&str; 2], group: u32| {
        crate::common::run(
            std::process::Command::new("mknod")
                .args(["-m", mode])
                .arg(rootfs.join(path))
                .arg(kind)
                .args(numbers),
        );
        chown(rootfs.join(path), Some(0), Some(group)).unwrap();
    };
    device("dev/loop0", "0640", "b", ["7", "0"], 6);
    device("dev/tty1", "0620", "c", ["4", "1"], 5);
    default_spec(work.path(), "rootfs");

    hoist_in(work.path(), ["build", "--no-cache", "-o", "oci:out"])
        .current_dir(work.path())
        .run()
        .success();
    let entries = layer_entries(&work.path().join("out"));
    let expected: &[(&str, u32, u64, u64)] = &[
        ("etc/shadow", 0o640, 0, 42),
        ("etc/passwd", 0o644, 0, 0),
        ("root/", 0o700, 0, 0),
        ("root/.ssh-key", 0o600, 0, 0),
        ("tmp/", 0o1777, 0, 0),
        ("usr/bin/helper", 0o4754, 0, 50),
        ("usr/bin/wall", 0o2755, 0, 5),
        ("var/cache/apt/", 0o755, 100, 65534),
        ("var/cache/apt/pkgcache.bin", 0o644, 100, 65534),
        ("dev/loop0", 0o640, 0, 6),
        ("dev/tty1", 0o620, 0, 5),
    ];
    for &(path, mode, uid, gid) in expected {
        let entry = find(&entries, path);
        assert_eq!(
            (entry.mode, entry.uid, entry.gid),
            (mode, uid, gid),
            "/{path}: mode {:o}, owner {}:{}",
            entry.mode,
            entry.uid,
            entry.gid
        );
    }
    let loop0 = find(&entries, "dev/loop0");
    assert!(loop0.kind.is_block_special());
    assert_eq!(loop0.device, Some((7, 0)));
    let tty1 = find(&entries, "dev/tty1");
    assert!(tty1.kind.is_character_special());
    assert_eq!(tty1.device, Some((4, 1)));
}

/// In a checkout, what git tracks gets git's mode whatever the disk says
/// (a umask, a chmod since), while an untracked file beside it, a build
/// output, keeps its mode on disk.
#[test]
fn tracked_files_get_gits_mode_and_untracked_ones_their_own() {
    let work = tempfile::tempdir().unwrap();
    let checkout = work.path().join("checkout");
    let app = checkout.join("app");
    fs::create_dir_all(app.join("bin")).unwrap();
    fs::write(app.join("config.txt"), b"config").unwrap();
    fs::write(app.join("bin/run"), b"#!/bin/sh\n").unwrap();
    set_mode(&app.join("config.txt"), 0o644);
    set_mode(&app.join("bin/run"), 0o755);
    crate::common::stage_with_git(&checkout);
    // What a strict umask or a later chmod leaves on disk.
    set_mode(&app.join("config.txt"), 0o600);
    set_mode(&app.join("bin/run"), 0o700);
    set_mode(&app.join("bin"), 0o700);
    // Made by the build, never added to git.
    fs::create_dir(app.join("generated")).unwrap();
    fs::write(app.join("generated/secret.key"), b"key").unwrap();
    set_mode(&app.join("generated/secret.key"), 0o600);
    set_mode(&app.join("generated"), 0o750);
    fs::write(app.join("local.conf"), b"local").unwrap();
    set_mode(&app.join("local.conf"), 0o640);
    default_spec(&checkout, "app");

    hoist_in(work.path(), ["build", "--no-cache", "-o", "oci:out"])
        .current_dir(&checkout)
        .run()
        .success();
    let entries = layer_entries(&checkout.join("out"));
    let mode = |path| find(&entries, path).mode;
    assert_eq!(mode("config.txt"), 0o644, "git records 100644");
    assert_eq!(mode("bin/run"), 0o755, "git records 100755");
    assert_eq!(mode("bin/"), 0o755, "the checkout made this directory");
    assert_eq!(mode("generated/"), 0o750);
    assert_eq!(mode("generated/secret.key"), 0o600);
    assert_eq!(mode("local.conf"), 0o640);
}
