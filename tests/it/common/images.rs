//! Small images made in memory for tests: layers as tar streams compressed
//! with gzip or zstd, configs with their diff_ids, indexes over platforms.
#![allow(dead_code)]

use hoist::image::model::ChildEntry;
use hoist::image::{Blob, BytesBlob, Image, Index, Manifest};
use hoist::oci::{Digest, media_type, sha256_digest, to_canonical_json};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    Gzip,
    Zstd,
    Plain,
}

/// An uncompressed tar of `files` (path, content), with a directory entry
/// for every parent, in the order given.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut directories = std::collections::BTreeSet::new();
    for (path, content) in files {
        let mut parent = std::path::Path::new(path).parent();
        let mut missing = Vec::new();
        while let Some(directory) = parent.filter(|p| !p.as_os_str().is_empty()) {
            if directories.insert(directory.to_path_buf()) {
                missing.push(directory.to_path_buf());
            }
            parent = directory.parent();
        }
        for directory in missing.into_iter().rev() {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_mtime(0);
            header.set_size(0);
            builder
                .append_data(
                    &mut header,
                    format!("{}/", directory.display()),
                    std::io::empty(),
                )
                .unwrap();
        }
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_size(content.len() as u64);
        builder.append_data(&mut header, path, *content).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A layer blob holding `files` and the digest of its uncompressed tar.
pub fn layer(files: &[(&str, &[u8])], packing: Packing) -> (Arc<dyn Blob>, Digest) {
    let tar = tar_of(files);
    let diff_id = sha256_digest(&tar);
    let (media, bytes) = match packing {
        Packing::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(&tar).unwrap();
            (media_type::OCI_LAYER_GZIP, encoder.finish().unwrap())
        }
        Packing::Zstd => (
            media_type::OCI_LAYER_ZSTD,
            zstd::encode_all(&tar[..], 3).unwrap(),
        ),
        Packing::Plain => (media_type::OCI_LAYER, tar),
    };
    (Arc::new(BytesBlob::new(media, bytes)), diff_id)
}

/// Files of a layer: in-image path and content.
pub type Files<'a> = &'a [(&'a str, &'a [u8])];

/// An image for `platform` (`linux/arm64/v8`) with one layer per entry of `layers`.
pub fn image(platform: &str, layers: &[(Files<'_>, Packing)]) -> Image {
    let parts: Vec<&str> = platform.split('/').collect();
    let built: Vec<(Arc<dyn Blob>, Digest)> = layers
        .iter()
        .map(|(files, packing)| layer(files, *packing))
        .collect();
    let mut config = serde_json::json!({
        "os": parts[0],
        "architecture": parts[1],
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/app"]},
        "rootfs": {
            "type": "layers",
            "diff_ids": built.iter().map(|(_, diff_id)| diff_id.to_string()).collect::<Vec<_>>(),
        },
        "history": built.iter().map(|_| serde_json::json!({"created_by": "test"})).collect::<Vec<_>>(),
    });
    if let Some(variant) = parts.get(2) {
        config["variant"] = serde_json::json!(variant);
    }
    let config = BytesBlob::new(media_type::OCI_CONFIG, to_canonical_json(&config).unwrap());
    Image::from_parts(
        config,
        built.into_iter().map(|(blob, _)| blob).collect(),
        &BTreeMap::new(),
        None,
        None,
    )
    .unwrap()
}

/// A one-layer image whose file `hello.txt` says `greeting`.
pub fn simple(platform: &str, greeting: &str) -> Image {
    image(
        platform,
        &[(
            &[
                ("etc/os-release", b"ID=test\n"),
                ("hello.txt", greeting.as_bytes()),
            ],
            Packing::Gzip,
        )],
    )
}

/// An index over one simple image per platform.
pub fn multi(platforms: &[&str], greeting: &str) -> Manifest {
    let children = platforms
        .iter()
        .map(|platform| {
            (
                Manifest::Image(simple(platform, &format!("{greeting} {platform}"))),
                ChildEntry {
                    platform: Some(platform.parse().unwrap()),
                    ..Default::default()
                },
            )
        })
        .collect();
    Manifest::Index(Index::from_children(children, &BTreeMap::new()).unwrap())
}
