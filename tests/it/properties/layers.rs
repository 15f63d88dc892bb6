//! The layer reader of the SBOM step (`attest::files`): random layer tars,
//! plain or compressed, and random bytes under layer media types, merged as
//! an image's layers and then read back file by file.

use super::{TarMember, config, corrupt, member_name, tar_bytes, tar_member};
use hoist::attest::{FileTree, image_files};
use hoist::image::{Blob, BytesBlob};
use hoist::oci::media_type;
use proptest::prelude::*;
use std::io::{Read, Write};
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
enum Codec {
    Plain,
    Gzip,
    Zstd,
    /// A media type the reader does not know.
    Unknown,
}

#[derive(Clone, Debug)]
enum Content {
    Members(Vec<TarMember>, Vec<(usize, u8)>),
    Bytes(Vec<u8>),
}

fn layer_blob(codec: Codec, content: &Content) -> Arc<dyn Blob> {
    let tar = match content {
        Content::Members(members, damage) => corrupt(tar_bytes(members), damage),
        Content::Bytes(bytes) => bytes.clone(),
    };
    let (media_type, bytes) = match codec {
        Codec::Plain => (media_type::OCI_LAYER, tar),
        Codec::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&tar).expect("compressing into a Vec");
            (
                media_type::OCI_LAYER_GZIP,
                encoder.finish().expect("compressing into a Vec"),
            )
        }
        Codec::Zstd => (
            media_type::OCI_LAYER_ZSTD,
            zstd::encode_all(tar.as_slice(), 1).expect("compressing into a Vec"),
        ),
        Codec::Unknown => ("application/vnd.example.layer", tar),
    };
    Arc::new(BytesBlob::new(media_type, bytes))
}

fn layer() -> impl Strategy<Value = (Codec, Content)> {
    let codec = prop_oneof![
        4 => Just(Codec::Plain),
        2 => Just(Codec::Gzip),
        2 => Just(Codec::Zstd),
        1 => Just(Codec::Unknown),
    ];
    let content = prop_oneof![
        6 => (
            prop::collection::vec(tar_member(), 0..8),
            prop::collection::vec((any::<usize>(), any::<u8>()), 0..2),
        )
            .prop_map(|(members, damage)| Content::Members(members, damage)),
        1 => prop::collection::vec(any::<u8>(), 0..1500).prop_map(Content::Bytes),
    ];
    (codec, content)
}

/// Everything a cataloger does with a tree: look paths up, follow links,
/// and read the content of every file.
fn use_tree(tree: &FileTree, paths: &[String]) {
    let listed: Vec<String> = tree.iter().map(|(path, _)| path.to_string()).collect();
    for path in listed.iter().chain(paths) {
        let _ = tree.get(path);
        let _ = tree.resolve(path);
    }
    let _ = tree.read_files(
        &|_, _| true,
        &mut |_, _, reader| {
            let _ = std::io::copy(&mut reader.take(1 << 20), &mut std::io::sink());
        },
        &mut |_, _, _| {},
    );
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn layer_reader_takes_any_layers(
        layers in prop::collection::vec(layer(), 1..4),
        paths in prop::collection::vec(member_name(), 0..4),
    ) {
        let blobs: Vec<Arc<dyn Blob>> =
            layers.iter().map(|(codec, content)| layer_blob(*codec, content)).collect();
        if let Ok(tree) = image_files(&blobs) {
            use_tree(&tree, &paths);
        }
    }
}

/// Links whose targets form a loop, or climb above the root, resolve to
/// nothing or to a path, and never spin.
#[test]
fn link_loops_and_escapes_resolve_or_end() {
    let link = |name: &str, target: &str, kind: u8| TarMember {
        name: name.to_string(),
        link: target.to_string(),
        kind,
        mode: 0o777,
        data: Vec::new(),
        declared_size: None,
    };
    let members = vec![
        link("a", "b", b'2'),
        link("b", "a", b'2'),
        link("up", "../../../..", b'2'),
        link("self", "self", b'1'),
        TarMember::file("etc/os-release", b"ID=test\n".to_vec()),
        link("hard", "etc/os-release", b'1'),
    ];
    let tree = image_files(&[layer_blob(
        Codec::Plain,
        &Content::Members(members, Vec::new()),
    )])
    .expect("a well-formed layer");
    assert_eq!(tree.resolve("/a"), None);
    assert_eq!(
        tree.resolve("/up/etc/os-release").as_deref(),
        Some("/etc/os-release")
    );
    let mut read = Vec::new();
    tree.read_files(
        &|path, _| path == "/hard",
        &mut |_, _, reader| {
            reader
                .read_to_end(&mut read)
                .expect("reading the linked file");
        },
        &mut |_, _, _| {},
    )
    .expect("reading the layer again");
    assert_eq!(read, b"ID=test\n");
}
