//! Layers built from real files on disk, read back with the `tar` crate and
//! GNU tar, checked with gzip, zcat and zstd.

mod common;

use hoist::layer::{
    BuiltLayer, Compression, LayerInput, LayerRecipe, OwnerPolicy, Permissions, build_layer,
};
use hoist::progress::{Event, Recorder, Silent};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

const EPOCH: u64 = 1_700_000_000;

/// One tar entry as read back.
#[derive(Debug)]
struct Entry {
    path: Vec<u8>,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Option<Vec<u8>>,
    content: Vec<u8>,
    pax: Vec<(String, Vec<u8>)>,
    username: Vec<u8>,
    groupname: Vec<u8>,
    device: Option<(u32, u32)>,
}

impl Entry {
    fn path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

fn input(source: &Path, target: &str) -> LayerInput {
    LayerInput {
        source: source.to_path_buf(),
        target: target.to_string(),
        mode: None,
        exclude: Vec::new(),
    }
}

fn recipe(inputs: Vec<LayerInput>) -> LayerRecipe {
    LayerRecipe {
        name: "test".to_string(),
        inputs,
        owner: OwnerPolicy::Fixed { uid: 0, gid: 0 },
        permissions: Permissions::Normalize,
        remove: Vec::new(),
        epoch: EPOCH,
        compression: Compression::None,
    }
}

fn build(recipe: &LayerRecipe, blobs: &Path) -> BuiltLayer {
    build_layer(recipe, blobs, 2, &Silent).expect("layer builds")
}

fn read_entries(tar_bytes: &[u8]) -> Vec<Entry> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut entries = Vec::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let pax = match entry.pax_extensions().expect("pax") {
            Some(records) => records
                .map(|record| {
                    let record = record.expect("pax record");
                    (
                        record.key().expect("utf-8 key").to_string(),
                        record.value_bytes().to_vec(),
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        let header = entry.header().clone();
        let kind = header.entry_type();
        let device = if kind.is_character_special() || kind.is_block_special() {
            Some((
                header.device_major().unwrap().unwrap(),
                header.device_minor().unwrap().unwrap(),
            ))
        } else {
            None
        };
        let path = entry.path_bytes().into_owned();
        let link = entry.link_name_bytes().map(|link| link.into_owned());
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("entry content");
        entries.push(Entry {
            path,
            kind,
            mode: header.mode().unwrap(),
            uid: header.uid().unwrap(),
            gid: header.gid().unwrap(),
            mtime: header.mtime().unwrap(),
            link,
            content,
            pax,
            username: header.username_bytes().unwrap_or_default().to_vec(),
            groupname: header.groupname_bytes().unwrap_or_default().to_vec(),
            device,
        });
    }
    entries
}

fn built_entries(layer: &BuiltLayer) -> Vec<Entry> {
    read_entries(&fs::read(&layer.blob_path).expect("blob"))
}

fn find<'a>(entries: &'a [Entry], path: &str) -> &'a Entry {
    entries
        .iter()
        .find(|entry| entry.path == path.as_bytes())
        .unwrap_or_else(|| panic!("no entry {path} in {:?}", paths(entries)))
}

fn paths(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(Entry::path).collect()
}

fn write(path: &Path, content: &[u8]) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, content).unwrap();
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn set_mtime(path: &Path, seconds: u64) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
        .unwrap();
}

fn gnu_listing(path: &Path) -> String {
    common::run(
        Command::new("tar")
            .arg("--numeric-owner")
            .arg("-tvf")
            .arg(path),
    )
}

#[test]
fn inputs_merge_with_parents_and_later_inputs_winning() {
    let work = tempfile::tempdir().unwrap();
    let base = work.path().join("base");
    write(&base.join("etc/conf"), b"base");
    write(&base.join("etc/keep"), b"keep");
    let overlay = work.path().join("overlay");
    write(&overlay.join("etc/conf"), b"overlay");
    let app = work.path().join("app");
    write(&app.join("bin/run"), b"#!/bin/sh\n");
    let tool = work.path().join("tool");
    write(&tool, b"tool");
    let mut tool_input = input(&tool, "/usr/local/bin/tool");
    tool_input.mode = Some(0o700);

    let recipe = recipe(vec![
        input(&base, "/"),
        input(&overlay, "/"),
        input(&app, "/opt/app"),
        tool_input,
    ]);
    let layer = build(&recipe, &work.path().join("blobs"));
    let entries = built_entries(&layer);
    assert_eq!(
        paths(&entries),
        [
            "etc/",
            "etc/conf",
            "etc/keep",
            "opt/",
            "opt/app/",
            "opt/app/bin/",
            "opt/app/bin/run",
            "usr/",
            "usr/local/",
            "usr/local/bin/",
            "usr/local/bin/tool",
        ]
    );
    assert_eq!(layer.entries, entries.len() as u64);
    assert_eq!(find(&entries, "etc/conf").content, b"overlay");
    assert_eq!(find(&entries, "usr/local/bin/tool").mode, 0o700);
    // Parents no input provides: directories, 0755, root, at the epoch.
    for parent in ["opt/", "usr/", "usr/local/", "usr/local/bin/"] {
        let entry = find(&entries, parent);
        assert!(entry.kind.is_dir());
        assert_eq!(
            (entry.mode, entry.uid, entry.gid, entry.mtime),
            (0o755, 0, 0, EPOCH)
        );
    }
    // The directory input's target is an entry of its own.
    assert!(find(&entries, "opt/app/").kind.is_dir());
    assert!(
        entries
            .iter()
            .all(|entry| !entry.path.starts_with(b"/") && !entry.path.starts_with(b"./"))
    );
}

#[test]
fn excludes_match_relative_paths_and_prune_directories() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("src");
    write(&source.join("a.pyc"), b"");
    write(&source.join("lib/b.pyc"), b"");
    write(&source.join("lib/__pycache__/c.pyc"), b"");
    write(&source.join("__pycache__/d"), b"");
    write(&source.join("lib/mod.py"), b"");
    let mut directory = input(&source, "/");
    directory.exclude = vec!["*.pyc".to_string(), "**/__pycache__".to_string()];
    let layer = build(&recipe(vec![directory]), &work.path().join("blobs"));
    assert_eq!(
        paths(&built_entries(&layer)),
        ["lib/", "lib/b.pyc", "lib/mod.py"]
    );
}

#[test]
fn owners_modes_and_mtimes_follow_the_policies() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("root");
    write(&source.join("plain"), b"p");
    write(&source.join("script"), b"s");
    write(&source.join("suid"), b"u");
    write(&source.join("old"), b"o");
    fs::create_dir(source.join("tmp")).unwrap();
    set_mode(&source.join("plain"), 0o600);
    set_mode(&source.join("script"), 0o740);
    set_mode(&source.join("suid"), 0o4750);
    set_mode(&source.join("tmp"), 0o1777);
    set_mtime(&source.join("old"), 1_000);
    std::os::unix::fs::chown(source.join("plain"), Some(1234), Some(5678)).unwrap();

    let mut normalized = recipe(vec![input(&source, "/")]);
    normalized.owner = OwnerPolicy::Fixed {
        uid: 1000,
        gid: 1001,
    };
    let entries = built_entries(&build(&normalized, &work.path().join("blobs")));
    let mode = |path| find(&entries, path).mode;
    assert_eq!(mode("plain"), 0o644);
    assert_eq!(mode("script"), 0o755);
    assert_eq!(mode("suid"), 0o4755);
    assert_eq!(mode("tmp/"), 0o1755);
    for entry in &entries {
        assert_eq!((entry.uid, entry.gid), (1000, 1001), "{}", entry.path());
        assert!(entry.username.is_empty() && entry.groupname.is_empty());
    }
    assert_eq!(find(&entries, "old").mtime, 1_000);
    // Files created now are newer than the epoch: clamped to it.
    assert_eq!(find(&entries, "plain").mtime, EPOCH);

    let mut preserved = recipe(vec![input(&source, "/")]);
    preserved.owner = OwnerPolicy::Preserve;
    preserved.permissions = Permissions::Preserve;
    let entries = built_entries(&build(&preserved, &work.path().join("blobs")));
    let plain = find(&entries, "plain");
    assert_eq!((plain.mode, plain.uid, plain.gid), (0o600, 1234, 5678));
    assert_eq!(find(&entries, "script").mode, 0o740);
    assert_eq!(find(&entries, "suid").mode, 0o4750);
    assert_eq!(find(&entries, "tmp/").mode, 0o1777);
}

#[test]
fn symlinks_are_kept_and_never_followed() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("root");
    write(&source.join("real/file"), b"x");
    symlink("real", source.join("alias")).unwrap();
    symlink("/nowhere/at/all", source.join("dangling")).unwrap();
    // A link to a directory outside the input: its contents must not appear.
    write(&work.path().join("outside/secret"), b"s");
    symlink(work.path().join("outside"), source.join("escape")).unwrap();
    let layer = build(
        &recipe(vec![input(&source, "/")]),
        &work.path().join("blobs"),
    );
    let entries = built_entries(&layer);
    assert_eq!(
        paths(&entries),
        ["alias", "dangling", "escape", "real/", "real/file"]
    );
    let dangling = find(&entries, "dangling");
    assert!(dangling.kind.is_symlink());
    assert_eq!(dangling.link.as_deref(), Some(&b"/nowhere/at/all"[..]));
    assert_eq!(dangling.mode, 0o777);
    assert_eq!(find(&entries, "alias").link.as_deref(), Some(&b"real"[..]));
    let listing = gnu_listing(&layer.blob_path);
    assert!(listing.contains("dangling -> /nowhere/at/all"), "{listing}");
}

#[test]
fn hardlinks_point_at_the_first_path_in_order() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("root");
    write(&source.join("m/original"), b"shared content");
    fs::hard_link(source.join("m/original"), source.join("b-link")).unwrap();
    fs::hard_link(source.join("m/original"), source.join("z-link")).unwrap();
    let layer = build(
        &recipe(vec![input(&source, "/")]),
        &work.path().join("blobs"),
    );
    let entries = built_entries(&layer);
    let first = find(&entries, "b-link");
    assert_eq!(first.kind, tar::EntryType::Regular);
    assert_eq!(first.content, b"shared content");
    for later in ["m/original", "z-link"] {
        let entry = find(&entries, later);
        assert_eq!(entry.kind, tar::EntryType::Link, "{later}");
        assert_eq!(entry.link.as_deref(), Some(&b"b-link"[..]));
        assert!(entry.content.is_empty());
    }
    let listing = gnu_listing(&layer.blob_path);
    assert!(listing.contains("z-link link to b-link"), "{listing}");
}

#[test]
fn devices_and_fifos_keep_numbers_and_sockets_are_skipped() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("root");
    fs::create_dir(&source).unwrap();
    common::run(
        Command::new("mknod")
            .arg(source.join("null"))
            .args(["c", "1", "3"]),
    );
    common::run(
        Command::new("mknod")
            .arg(source.join("loop9"))
            .args(["b", "7", "9"]),
    );
    common::run(Command::new("mkfifo").arg(source.join("pipe")));
    let _listener = std::os::unix::net::UnixListener::bind(source.join("socket")).unwrap();
    let mut preserve = recipe(vec![input(&source, "/")]);
    preserve.permissions = Permissions::Preserve;
    let recorder = Recorder::default();
    let layer = build_layer(&preserve, &work.path().join("blobs"), 1, &recorder).unwrap();
    let entries = built_entries(&layer);
    assert_eq!(paths(&entries), ["loop9", "null", "pipe"]);
    let null = find(&entries, "null");
    assert!(null.kind.is_character_special());
    assert_eq!(null.device, Some((1, 3)));
    let loop9 = find(&entries, "loop9");
    assert!(loop9.kind.is_block_special());
    assert_eq!(loop9.device, Some((7, 9)));
    assert!(find(&entries, "pipe").kind.is_fifo());
    let warnings: Vec<String> = recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|event| match event {
            Event::Warning { message } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("socket"), "{warnings:?}");
    let listing = gnu_listing(&layer.blob_path);
    assert!(
        listing.lines().any(|line| line.starts_with("crw-")),
        "{listing}"
    );
    assert!(listing.contains("1,3"), "{listing}");
}

#[test]
fn file_capabilities_are_kept_and_other_xattrs_dropped() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("root");
    write(&source.join("ping"), b"binary");
    write(&source.join("plain"), b"plain");
    common::run(
        Command::new("setcap")
            .arg("cap_net_raw+ep")
            .arg(source.join("ping")),
    );
    xattr::set(source.join("plain"), "user.comment", b"dropped").unwrap();
    let capability = xattr::get(source.join("ping"), "security.capability")
        .unwrap()
        .expect("setcap wrote the xattr");
    let layer = build(
        &recipe(vec![input(&source, "/")]),
        &work.path().join("blobs"),
    );
    let entries = built_entries(&layer);
    assert_eq!(
        find(&entries, "ping").pax,
        [("SCHILY.xattr.security.capability".to_string(), capability)]
    );
    assert!(find(&entries, "plain").pax.is_empty());
}

#[test]
fn long_and_non_utf8_names_use_pax_only_where_needed() {
    use std::os::unix::ffi::OsStrExt;
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("root");
    let deep = format!("{}/{}", "d".repeat(120), "f".repeat(60));
    write(&source.join(&deep), b"deep");
    let long = "l".repeat(200);
    write(&source.join(&long), b"long");
    symlink("t".repeat(150), source.join("longlink")).unwrap();
    let raw_name = std::ffi::OsStr::from_bytes(b"caf\xe9");
    write(&source.join(raw_name), b"latin-1");
    let layer = build(
        &recipe(vec![input(&source, "/")]),
        &work.path().join("blobs"),
    );
    let entries = built_entries(&layer);
    // Fits ustar's prefix and name fields: no PAX.
    assert!(find(&entries, &deep).pax.is_empty());
    // 121 bytes with its slash and nowhere to split: needs PAX.
    assert_eq!(
        find(&entries, &format!("{}/", "d".repeat(120))).pax[0].0,
        "path"
    );
    let keys = |path: &str| -> Vec<String> {
        find(&entries, path)
            .pax
            .iter()
            .map(|(key, _)| key.clone())
            .collect()
    };
    assert_eq!(keys(&long), ["path"]);
    assert_eq!(keys("longlink"), ["linkpath"]);
    assert_eq!(
        find(&entries, "longlink").link.as_deref(),
        Some("t".repeat(150).as_bytes())
    );
    let raw = entries
        .iter()
        .find(|entry| entry.path == b"caf\xe9")
        .expect("non-UTF-8 name kept byte for byte");
    assert!(raw.pax.is_empty());
    assert_eq!(raw.content, b"latin-1");
    for entry in &entries {
        for (key, _) in &entry.pax {
            assert!(!key.contains("atime") && !key.contains("ctime"), "{key}");
        }
    }
    let listing = gnu_listing(&layer.blob_path);
    assert!(listing.contains(&long), "{listing}");
}

#[test]
fn sparse_files_read_as_zeros() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("root");
    fs::create_dir(&source).unwrap();
    let sparse = source.join("sparse");
    {
        let mut file = fs::File::create(&sparse).unwrap();
        file.set_len(6 << 20).unwrap();
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(3 << 20)).unwrap();
        file.write_all(b"middle").unwrap();
    }
    let layer = build(
        &recipe(vec![input(&source, "/")]),
        &work.path().join("blobs"),
    );
    let entries = built_entries(&layer);
    let content = &find(&entries, "sparse").content;
    assert_eq!(content.len(), 6 << 20);
    assert_eq!(&content[3 << 20..(3 << 20) + 6], b"middle");
    assert!(content[..3 << 20].iter().all(|&byte| byte == 0));
    assert_eq!(find(&entries, "sparse").kind, tar::EntryType::Regular);
}

#[test]
fn removals_become_whiteouts() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("root");
    write(&source.join("etc/new"), b"n");
    let mut with_removals = recipe(vec![input(&source, "/")]);
    with_removals.remove = vec!["/etc/motd".to_string(), "/opt".to_string()];
    let layer = build(&with_removals, &work.path().join("blobs"));
    let entries = built_entries(&layer);
    assert_eq!(
        paths(&entries),
        [".wh.opt", "etc/", "etc/.wh.motd", "etc/new"]
    );
    for whiteout in [".wh.opt", "etc/.wh.motd"] {
        let entry = find(&entries, whiteout);
        assert_eq!(entry.kind, tar::EntryType::Regular);
        assert!(entry.content.is_empty());
        assert_eq!((entry.mode, entry.uid, entry.gid), (0o644, 0, 0));
    }
    // A file named like a whiteout would delete things: refused.
    write(&source.join(".wh.sneaky"), b"");
    let error = build_layer(&recipe(vec![input(&source, "/")]), work.path(), 1, &Silent)
        .err()
        .expect("reserved name refused");
    assert!(error.to_string().contains(".wh."), "{error}");
}

#[test]
fn tar_ends_with_two_zero_blocks() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("root");
    write(&source.join("a"), b"abc");
    let layer = build(
        &recipe(vec![input(&source, "/")]),
        &work.path().join("blobs"),
    );
    let bytes = fs::read(&layer.blob_path).unwrap();
    assert_eq!(bytes.len() % 512, 0);
    assert_eq!(bytes.len(), 512 * 4, "header, data, end marker");
    assert!(bytes[bytes.len() - 1024..].iter().all(|&byte| byte == 0));
    assert_eq!(layer.uncompressed_size, bytes.len() as u64);
    assert_eq!(layer.layer.diff_id.to_string(), {
        let digest = hoist::oci::sha256_digest(&bytes);
        digest.to_string()
    });
    assert_eq!(
        layer.blob_path.file_name().unwrap().to_str().unwrap(),
        layer.layer.diff_id.digest()
    );
}

#[test]
fn bad_inputs_are_errors_that_name_the_problem() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("f");
    write(&file, b"f");
    let missing = build_layer(
        &recipe(vec![input(&work.path().join("missing"), "/")]),
        work.path(),
        1,
        &Silent,
    )
    .err()
    .unwrap();
    assert!(missing.to_string().contains("missing"), "{missing}");
    let relative = build_layer(&recipe(vec![input(&file, "app")]), work.path(), 1, &Silent)
        .err()
        .unwrap();
    assert!(relative.to_string().contains("absolute"), "{relative}");
    let root_file = build_layer(&recipe(vec![input(&file, "/")]), work.path(), 1, &Silent)
        .err()
        .unwrap();
    assert!(root_file.to_string().contains("image root"), "{root_file}");
    // A file where a later entry needs a directory.
    let tree = work.path().join("tree");
    write(&tree.join("x/y"), b"y");
    let clash = build_layer(
        &recipe(vec![input(&tree, "/"), input(&file, "/x")]),
        work.path(),
        1,
        &Silent,
    )
    .err()
    .unwrap();
    assert!(clash.to_string().contains("not one"), "{clash}");
}

/// A tree bigger than several gzip blocks and zstd jobs.
fn large_tree(root: &Path) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for file in 0..6 {
        let mut content = Vec::with_capacity(3 << 20);
        while content.len() < 3 << 20 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            content.extend_from_slice(format!("{file} {:x}\n", state % 100_000).as_bytes());
        }
        write(&root.join(format!("data/{file}.txt")), &content);
    }
}

#[test]
fn compressed_bytes_do_not_depend_on_threads() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("root");
    large_tree(&source);
    for compression in [
        Compression::Gzip { level: 6 },
        Compression::Zstd { level: 3 },
    ] {
        let mut layer_recipe = recipe(vec![input(&source, "/")]);
        layer_recipe.compression = compression;
        let builds: Vec<BuiltLayer> = [1, 2, 4]
            .iter()
            .map(|&threads| {
                let blobs = work.path().join(format!("blobs-{threads}"));
                build_layer(&layer_recipe, &blobs, threads, &Silent).unwrap()
            })
            .collect();
        for built in &builds[1..] {
            assert_eq!(built.layer.blob.digest(), builds[0].layer.blob.digest());
            assert_eq!(built.layer.diff_id, builds[0].layer.diff_id);
        }
        let blob = &builds[0].blob_path;
        let media_type = builds[0].layer.blob.descriptor().media_type().to_string();
        match compression {
            Compression::Gzip { .. } => {
                assert_eq!(media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
                common::run(Command::new("gzip").arg("-t").arg(blob));
                let output = Command::new("zcat").arg(blob).output().unwrap();
                assert!(output.status.success());
                assert_eq!(
                    hoist::oci::sha256_digest(&output.stdout),
                    builds[0].layer.diff_id
                );
            }
            Compression::Zstd { .. } => {
                assert_eq!(media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
                common::run(Command::new("zstd").arg("-t").arg(blob));
                let output = Command::new("zstd")
                    .args(["-d", "-c"])
                    .arg(blob)
                    .output()
                    .unwrap();
                assert_eq!(
                    hoist::oci::sha256_digest(&output.stdout),
                    builds[0].layer.diff_id
                );
            }
            Compression::None => unreachable!(),
        }
        assert_eq!(
            fs::metadata(blob).unwrap().len(),
            builds[0].layer.blob.size()
        );
        assert!(builds[0].layer.blob.size() < builds[0].uncompressed_size);
    }
}

/// The same files made in another order, with another umask's modes and
/// newer mtimes, give the same layer.
#[test]
fn umask_creation_order_and_new_mtimes_do_not_change_digests() {
    let work = tempfile::tempdir().unwrap();
    let make = |root: &Path, reverse: bool, private: bool, mtime: u64| {
        let mut names = vec!["a", "b/c", "b/d", "e"];
        if reverse {
            names.reverse();
        }
        for name in names {
            write(&root.join(name), name.as_bytes());
            let mode = if name == "e" { 0o755 } else { 0o644 };
            set_mode(&root.join(name), if private { mode & 0o700 } else { mode });
            set_mtime(&root.join(name), mtime);
        }
        set_mode(&root.join("b"), if private { 0o700 } else { 0o755 });
    };
    let first = work.path().join("first");
    let second = work.path().join("second");
    make(&first, false, false, EPOCH + 10);
    make(&second, true, true, EPOCH + 99_999);
    let digest = |root: &PathBuf, compression| {
        let mut layer_recipe = recipe(vec![input(root, "/")]);
        layer_recipe.compression = compression;
        build(&layer_recipe, &work.path().join("blobs"))
            .layer
            .blob
            .digest()
            .clone()
    };
    for compression in [Compression::None, Compression::Gzip { level: 9 }] {
        assert_eq!(digest(&first, compression), digest(&second, compression));
    }
}

/// Golden digests, computed once with the first version of the layer format
/// (tar, gzip level 6 in 1 MiB blocks, zstd level 3 in 4 MiB jobs). A change
/// here changes every layer hoist builds, so it must be deliberate (and bump
/// `hoist::layer::FORMAT_VERSION`).
#[test]
fn golden_digests() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("root");
    write(&source.join("bin/app"), b"#!/bin/sh\necho hello\n");
    set_mode(&source.join("bin/app"), 0o755);
    write(&source.join("etc/app.conf"), &b"key = value\n".repeat(1000));
    symlink("../bin/app", source.join("etc/app-link")).unwrap();
    let mut layer_recipe = recipe(vec![input(&source, "/srv")]);
    layer_recipe.remove = vec!["/var/cache".to_string()];
    let mut digest = |compression| {
        layer_recipe.compression = compression;
        let built = build(&layer_recipe, &work.path().join("blobs"));
        (
            built.layer.diff_id.to_string(),
            built.layer.blob.digest().to_string(),
        )
    };
    let (diff_id, none) = digest(Compression::None);
    let (gzip_diff_id, gzip) = digest(Compression::Gzip { level: 6 });
    let (zstd_diff_id, zstd) = digest(Compression::Zstd { level: 3 });
    assert_eq!(diff_id, none);
    assert_eq!(gzip_diff_id, diff_id);
    assert_eq!(zstd_diff_id, diff_id);
    assert_eq!(
        (diff_id.as_str(), gzip.as_str(), zstd.as_str()),
        (
            "sha256:bc55604c53ad407d3c697fa17a76888e1e65cef43e75cec202170d2a65ae7bf3",
            "sha256:4b908a211fb0b99b9914c97e2bfd88fb158dd81b61a63b2d6663316297a65a69",
            "sha256:3539c912c08bc29bd403812fa1086862c0803e920dea64b24c6815a78b0974b9",
        )
    );
}

/// Writes an OCI layout holding one image made of `layers`, tagged `test`.
fn write_layout(layout: &Path, layers: &[&BuiltLayer]) {
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let digest = hoist::oci::sha256_digest(bytes);
        fs::write(blobs.join(digest.digest()), bytes).unwrap();
        (digest.to_string(), bytes.len())
    };
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|layer| layer.layer.diff_id.to_string()).collect::<Vec<_>>(),
        },
    });
    let (config_digest, config_size) = put(config.to_string().as_bytes());
    let layer_descriptors: Vec<serde_json::Value> = layers
        .iter()
        .map(|layer| {
            fs::copy(
                &layer.blob_path,
                blobs.join(layer.layer.blob.digest().digest()),
            )
            .unwrap();
            serde_json::json!({
                "mediaType": layer.layer.blob.descriptor().media_type().to_string(),
                "digest": layer.layer.blob.digest().to_string(),
                "size": layer.layer.blob.size(),
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": layer_descriptors,
    });
    let (manifest_digest, manifest_size) = put(manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "test"},
        }],
    });
    fs::write(layout.join("index.json"), index.to_string()).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
}

/// umoci applies the layers the way a runtime does: whiteouts delete,
/// links link, capabilities survive.
#[test]
fn umoci_unpacks_layers_with_whiteouts_links_and_capabilities() {
    use std::os::unix::fs::MetadataExt;
    let work = tempfile::tempdir().unwrap();
    let lower = work.path().join("lower");
    write(&lower.join("etc/motd"), b"hello");
    write(&lower.join("opt/tool/bin"), b"tool");
    write(&lower.join("usr/bin/ping"), b"ping");
    common::run(
        Command::new("setcap")
            .arg("cap_net_raw+ep")
            .arg(lower.join("usr/bin/ping")),
    );
    fs::hard_link(lower.join("etc/motd"), lower.join("etc/motd-link")).unwrap();
    fs::hard_link(lower.join("etc/motd"), lower.join("etc/motd-kept")).unwrap();
    let long = format!("{}/{}", "p".repeat(130), "q".repeat(130));
    write(&lower.join(&long), b"long");
    symlink("/etc/motd", lower.join("motd-symlink")).unwrap();
    let mut lower_recipe = recipe(vec![input(&lower, "/")]);
    lower_recipe.compression = Compression::Gzip { level: 6 };
    let blobs = work.path().join("blobs");
    let lower_layer = build(&lower_recipe, &blobs);

    let upper = work.path().join("upper");
    write(&upper.join("new"), b"new");
    let mut upper_recipe = recipe(vec![input(&upper, "/srv")]);
    upper_recipe.remove = vec!["/opt/tool".to_string(), "/etc/motd-link".to_string()];
    // umoci 0.4 reads no zstd; `zstd -t` checks those layers above.
    upper_recipe.compression = Compression::None;
    let upper_layer = build(&upper_recipe, &blobs);

    let layout = work.path().join("layout");
    write_layout(&layout, &[&lower_layer, &upper_layer]);
    let bundle = work.path().join("bundle");
    common::run(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:test", layout.display()))
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(fs::read(rootfs.join("etc/motd")).unwrap(), b"hello");
    assert!(!rootfs.join("opt/tool").exists(), "whiteout of a directory");
    assert!(rootfs.join("opt").is_dir());
    assert!(!rootfs.join("etc/motd-link").exists(), "whiteout of a file");
    assert_eq!(fs::read(rootfs.join(&long)).unwrap(), b"long");
    assert_eq!(
        fs::metadata(rootfs.join("etc/motd-kept")).unwrap().ino(),
        fs::metadata(rootfs.join("etc/motd")).unwrap().ino(),
        "hardlinks unpack as one inode"
    );
    assert_eq!(fs::read(rootfs.join("srv/new")).unwrap(), b"new");
    assert_eq!(
        fs::read_link(rootfs.join("motd-symlink")).unwrap(),
        Path::new("/etc/motd")
    );
    let capabilities = common::run(Command::new("getcap").arg(rootfs.join("usr/bin/ping")));
    assert!(capabilities.contains("cap_net_raw"), "{capabilities}");
    assert_eq!(
        fs::metadata(rootfs.join("etc/motd")).unwrap().mode() & 0o7777,
        0o644
    );
}
