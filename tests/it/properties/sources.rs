//! The OCI layout, OCI archive and docker archive readers over random
//! stores, random tar members and random bytes.

use super::documents::{self, Store, json_value, tag};
use super::{TarMember, config, corrupt, tar_bytes, tar_member};
use hoist::image::{Blob, Manifest};
use hoist::oci::Platform;
use hoist::source::{
    DockerArchiveSource, LayoutSource, OciArchiveSource, Source, SourceError, select_platform,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::json;
use std::io::Read;
use std::path::Path;

/// Reads every blob of a resolved tree (bounded), and picks a platform, as
/// a build on a base would.
fn consume(result: Result<Manifest, SourceError>) {
    let Ok(manifest) = result else { return };
    read_blobs(&manifest);
    if let Ok(platform) = "linux/amd64".parse::<Platform>() {
        let _ = select_platform(&manifest, &platform);
    }
}

fn read_blobs(manifest: &Manifest) {
    let read = |blob: &dyn Blob| {
        if let Ok(reader) = blob.open() {
            let _ = std::io::copy(&mut reader.take(1 << 20), &mut std::io::sink());
        }
    };
    match manifest {
        Manifest::Image(image) => {
            read(&image.config);
            for layer in &image.layers {
                read(layer.as_ref());
            }
        }
        Manifest::Index(index) => index.children.iter().for_each(read_blobs),
    }
}

fn write_tree(root: &Path, files: &[(String, Vec<u8>)]) {
    for (name, bytes) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().expect("a file in a directory"))
            .expect("creating a directory");
        std::fs::write(&path, bytes).expect("writing a file");
    }
}

fn read_layout(root: &Path, tag: Option<&str>) {
    consume(LayoutSource::open(root, tag).and_then(|source| source.resolve()));
}

fn read_oci_archive(bytes: &[u8], tag: Option<&str>) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("image.tar");
    std::fs::write(&path, bytes).expect("writing the archive");
    consume(OciArchiveSource::open(&path, tag).and_then(|source| source.resolve()));
}

fn read_docker_archive(bytes: &[u8], reference: Option<&str>) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("image.tar");
    std::fs::write(&path, bytes).expect("writing the archive");
    consume(DockerArchiveSource::open(&path, reference).and_then(|source| source.resolve()));
}

/// A docker archive: `manifest.json` naming members (or any JSON), beside
/// random members and layer blobs.
fn docker_archive_members() -> impl Strategy<Value = Vec<TarMember>> {
    let member_names = prop::sample::select(vec!["config.json", "a/layer.tar", "b/layer.tar", "x"]);
    let entry = (
        member_names.clone(),
        prop::collection::vec(member_names, 0..3),
        prop::option::of(prop::collection::vec(tag(), 0..2)),
    )
        .prop_map(|(config, layers, tags)| json!({ "Config": config, "Layers": layers, "RepoTags": tags }));
    let listing = prop_oneof![
        3 => prop::collection::vec(entry, 0..3).prop_map(|entries| json!(entries)),
        1 => json_value(),
    ];
    let layer = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        Just(vec![0x1f, 0x8b, 8, 0]),
        Just(vec![0x28, 0xb5, 0x2f, 0xfd, 0]),
    ];
    (
        listing,
        prop::collection::vec(json_value(), 1..2),
        prop::collection::vec(layer, 2),
        prop::collection::vec(tar_member(), 0..3),
    )
        .prop_map(|(listing, configs, layers, mut extra)| {
            let mut members = vec![
                TarMember::file("manifest.json", listing.to_string().into_bytes()),
                TarMember::file("config.json", configs[0].to_string().into_bytes()),
                TarMember::file("a/layer.tar", layers[0].clone()),
                TarMember::file("b/layer.tar", layers[1].clone()),
            ];
            members.append(&mut extra);
            members
        })
}

fn store_archive(store: &Store, extra: Vec<TarMember>) -> Vec<u8> {
    let mut members: Vec<TarMember> = store
        .layout_files()
        .into_iter()
        .map(|(name, bytes)| TarMember::file(name, bytes))
        .collect();
    members.extend(extra);
    tar_bytes(&members)
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn layout_reader_takes_any_store(store in documents::store(), tag in prop::option::of(tag())) {
        let directory = tempfile::tempdir().expect("a temporary directory");
        write_tree(directory.path(), &store.layout_files());
        read_layout(directory.path(), tag.as_deref());
    }

    #[test]
    fn layout_reader_takes_any_index_and_layout_bytes(
        index in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            json_value().prop_map(|value| value.to_string().into_bytes()),
        ],
        layout in prop_oneof![
            Just(br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            prop::collection::vec(any::<u8>(), 0..40),
        ],
        tag in prop::option::of(tag()),
    ) {
        let directory = tempfile::tempdir().expect("a temporary directory");
        write_tree(
            directory.path(),
            &[("oci-layout".to_string(), layout), ("index.json".to_string(), index)],
        );
        read_layout(directory.path(), tag.as_deref());
    }

    #[test]
    fn oci_archive_reader_takes_any_store(
        store in documents::store(),
        extra in prop::collection::vec(tar_member(), 0..3),
        damage in prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        tag in prop::option::of(tag()),
    ) {
        let bytes = corrupt(store_archive(&store, extra), &damage);
        read_oci_archive(&bytes, tag.as_deref());
    }

    #[test]
    fn oci_archive_reader_takes_any_members(
        members in prop::collection::vec(tar_member(), 0..6),
        tag in prop::option::of(tag()),
    ) {
        read_oci_archive(&tar_bytes(&members), tag.as_deref());
    }

    #[test]
    fn docker_archive_reader_takes_any_archive(
        members in docker_archive_members(),
        damage in prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        reference in prop::option::of(prop_oneof![Just("app:1".to_string()), tag()]),
    ) {
        let bytes = corrupt(tar_bytes(&members), &damage);
        read_docker_archive(&bytes, reference.as_deref());
    }

    #[test]
    fn archive_readers_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
        read_oci_archive(&bytes, None);
        read_docker_archive(&bytes, None);
    }
}

/// The stores are worth their time only if some of them resolve: real
/// digests lead the readers all the way down the tree.
#[test]
fn generated_stores_often_resolve() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = documents::store();
    let mut resolved = 0;
    for _ in 0..200 {
        let store = strategy.new_tree(&mut runner).expect("a store").current();
        let directory = tempfile::tempdir().expect("a temporary directory");
        write_tree(directory.path(), &store.layout_files());
        let result = LayoutSource::open(directory.path(), None).and_then(|source| source.resolve());
        resolved += usize::from(result.is_ok());
    }
    assert!(
        resolved >= 20,
        "only {resolved} of 200 generated layouts resolved"
    );
}
