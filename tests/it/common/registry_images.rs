//! Small real images for registry tests: gzip'd tar layers made with the tar
//! and flate2 crates, an OCI config listing their diff_ids, manifests and
//! indexes made by hoist's own model.

use flate2::Compression;
use flate2::write::GzEncoder;
use hoist::image::model::ChildEntry;
use hoist::image::{Blob, BytesBlob, FileBlob, Image, Index, Manifest};
use hoist::oci::{Digest, DigestWriter, sha256_digest};
use oci_spec::image::{Descriptor, MediaType};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

/// A tar of `files` (path, content), gzip'd; returns (gzip bytes, diff_id).
pub fn gzip_layer(files: &[(&str, &[u8])]) -> (Vec<u8>, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, path, *content)
            .expect("tar entry");
    }
    let tar = tar.into_inner().expect("tar done");
    let diff_id = sha256_digest(&tar);
    let mut gzip = GzEncoder::new(Vec::new(), Compression::fast());
    gzip.write_all(&tar).expect("gzip");
    (gzip.finish().expect("gzip done"), diff_id)
}

/// Bytes that do not compress: a xorshift stream from `seed`.
pub fn noise(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed.max(1);
    let mut out = Vec::with_capacity(length + 8);
    while out.len() < length {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(length);
    out
}

fn config(platform: &str, diff_ids: &[Digest]) -> BytesBlob {
    let (os, architecture) = platform.split_once('/').expect("os/arch");
    let config = serde_json::json!({
        "architecture": architecture,
        "os": os,
        "config": {"Env": ["PATH=/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    });
    BytesBlob::new(
        MediaType::ImageConfig,
        hoist::oci::to_canonical_json(&config).expect("config json"),
    )
}

/// An image for `platform` with one small layer whose content depends on `seed`.
pub fn small_image(seed: &str, platform: &str) -> Image {
    let content = format!("hello from {seed} on {platform}\n");
    let (layer, diff_id) = gzip_layer(&[("hello.txt", content.as_bytes())]);
    let layer: Arc<dyn Blob> = Arc::new(BytesBlob::new(MediaType::ImageLayerGzip, layer));
    Image::from_parts(
        config(platform, &[diff_id]),
        vec![layer],
        &BTreeMap::new(),
        None,
        None,
    )
    .expect("image")
}

/// An image whose single layer is a file of `size` incompressible bytes
/// (gzip'd), written under `directory` and streamed from disk.
pub fn large_image(directory: &Path, seed: u64, size: usize) -> Image {
    let (layer, diff_id) = gzip_layer(&[("big.bin", &noise(seed, size))]);
    let path = directory.join(format!("layer-{seed}.tar.gz"));
    let mut writer = DigestWriter::new(std::fs::File::create(&path).expect("layer file"));
    writer.write_all(&layer).expect("write layer");
    let (_, digest, length) = writer.finish();
    let blob: Arc<dyn Blob> = Arc::new(FileBlob::new(
        Descriptor::new(MediaType::ImageLayerGzip, length, digest),
        path,
    ));
    Image::from_parts(
        config("linux/amd64", &[diff_id]),
        vec![blob],
        &BTreeMap::new(),
        None,
        None,
    )
    .expect("image")
}

/// An index over one small image per platform.
pub fn multi_platform(seed: &str, platforms: &[&str]) -> Manifest {
    let children = platforms
        .iter()
        .map(|platform| {
            (
                Manifest::Image(small_image(seed, platform)),
                ChildEntry {
                    platform: Some(platform.parse().expect("platform")),
                    ..Default::default()
                },
            )
        })
        .collect();
    Manifest::Index(Index::from_children(children, &BTreeMap::new()).expect("index"))
}

/// Every manifest digest in a tree, parents before children.
pub fn manifest_digests(manifest: &Manifest) -> Vec<Digest> {
    let mut out = vec![manifest.digest().clone()];
    if let Manifest::Index(index) = manifest {
        for child in &index.children {
            out.extend(manifest_digests(child));
        }
    }
    out
}
