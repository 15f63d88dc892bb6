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
