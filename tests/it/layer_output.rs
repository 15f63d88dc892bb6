//! Whole layers: compressed bytes independent of threads and of how the
//! files were made, golden digests, and real consumers (gzip, zstd, umoci).

use crate::common;

use crate::layer_support::*;
use hoist::layer::{BuiltLayer, Compression, build_layer};
use hoist::progress::Silent;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// Golden digests of layer format 5 (tar with times newer than the epoch at
/// one second past 1970, gzip by libdeflate 1.26 at level 6 in one member
/// per 1 MiB block, zstd level 3 in 4 MiB jobs). A change here changes every
/// layer hoist builds, so it must be deliberate (and bump
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
            "sha256:b4ab584215ccc4e8e3eed0ee80e62a69d10391c30bff6ce0c9ac46f1230a84eb",
            "sha256:0d7cbdfab26c92a77679d9506a9cf7101052274ca272dbd3c9bfe43214ddb96b",
            "sha256:20edd287046b7eaf3107c0c040c8ce978dce4b306e57eeaeb3c55c61455bedce",
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
