//! Layers built from real files on disk, entry by entry, read back with the
//! `tar` crate and GNU tar.

use crate::common;

use crate::layer_support::*;
use hoist::layer::{OwnerPolicy, Permissions, build_layer};
use hoist::progress::{Recorder, Silent};
use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::process::Command;

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
    // Parents no input provides: directories, 0755, root, at one second
    // past 1970 whatever the epoch.
    for parent in ["opt/", "usr/", "usr/local/", "usr/local/bin/"] {
        let entry = find(&entries, parent);
        assert!(entry.kind.is_dir());
        assert_eq!(
            (entry.mode, entry.uid, entry.gid, entry.mtime),
            (0o755, 0, 0, 1)
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
    // 4750 gains read for others but never execute: the helper stays
    // runnable by its group only.
    assert_eq!(mode("suid"), 0o4754);
    // Still writable by everyone: normalizing must not break /tmp.
    assert_eq!(mode("tmp/"), 0o1777);
    for entry in &entries {
        assert_eq!((entry.uid, entry.gid), (1000, 1001), "{}", entry.path());
        assert!(entry.username.is_empty() && entry.groupname.is_empty());
    }
    assert_eq!(find(&entries, "old").mtime, 1_000);
    // Files created now are newer than the epoch: one second past 1970,
    // the same for every epoch.
    assert_eq!(find(&entries, "plain").mtime, 1);

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
    let warnings = crate::common::warnings(&recorder);
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
