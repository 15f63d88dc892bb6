use super::*;
use crate::image::BytesBlob;
use crate::oci::media_type;
use oci_spec::image::MediaType;
use std::collections::HashMap;

fn kinds(tree: &FileTree) -> HashMap<String, FileKind> {
    tree.iter()
        .map(|(path, entry)| (path.to_string(), entry.kind.clone()))
        .collect()
}

enum Item<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

fn tar_bytes(items: &[Item]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o755);
        match item {
            Item::File(path, content) => {
                header.set_size(content.len() as u64);
                header.set_entry_type(tar::EntryType::Regular);
                builder.append_data(&mut header, path, *content).unwrap();
            }
            Item::Dir(path) => {
                header.set_size(0);
                header.set_entry_type(tar::EntryType::Directory);
                builder.append_data(&mut header, path, &[][..]).unwrap();
            }
            Item::Symlink(path, target) => {
                header.set_size(0);
                header.set_entry_type(tar::EntryType::Symlink);
                builder.append_link(&mut header, path, target).unwrap();
            }
            Item::Hardlink(path, target) => {
                header.set_size(0);
                header.set_entry_type(tar::EntryType::Link);
                builder.append_link(&mut header, path, target).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn layer(media_type: MediaType, bytes: Vec<u8>) -> Arc<dyn Blob> {
    Arc::new(BytesBlob::new(media_type, bytes))
}

fn contents(tree: &FileTree, wanted: &dyn Fn(&str, &FileEntry) -> bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    tree.read_files(
        wanted,
        &mut |path, _, reader| {
            let mut text = String::new();
            reader.read_to_string(&mut text).unwrap();
            out.push((path.to_string(), text));
        },
        &mut |path, _, first| panic!("{path} (a link to {first}) was not read"),
    )
    .unwrap();
    out.sort();
    out
}

#[test]
fn whiteouts_and_opaque_directories_apply_to_lower_layers() {
    let base = tar_bytes(&[
        Item::Dir("etc/"),
        Item::File("etc/keep", b"keep"),
        Item::File("etc/gone", b"gone"),
        Item::Dir("opt/"),
        Item::File("opt/old", b"old"),
        Item::Dir("var/lib/"),
        Item::File("var/lib/a", b"a"),
    ]);
    let top = tar_bytes(&[
        Item::File("etc/.wh.gone", b""),
        Item::File("opt/new", b"new"),
        Item::File("opt/.wh..wh..opq", b""),
        Item::File("./etc/keep", b"changed"),
        Item::File("var/.wh.lib", b""),
    ]);
    let layers = vec![
        layer(MediaType::ImageLayerGzip, gzip(&base)),
        layer(MediaType::Other(media_type::DOCKER_LAYER.to_string()), top),
    ];
    let tree = image_files(&layers).unwrap();
    let kinds = kinds(&tree);
    assert!(!kinds.contains_key("/etc/gone"));
    assert!(
        !kinds.contains_key("/opt/old"),
        "opaque dir hides lower files"
    );
    assert!(
        kinds.contains_key("/opt/new"),
        "opaque dir keeps its own layer"
    );
    assert!(!kinds.contains_key("/var/lib"));
    assert!(!kinds.contains_key("/var/lib/a"));
    assert_eq!(
        contents(&tree, &|path, _| path.starts_with("/etc/")),
        vec![("/etc/keep".to_string(), "changed".to_string())]
    );
}

#[test]
fn zstd_layers_symlinks_and_hardlinks() {
    let bytes = tar_bytes(&[
        Item::Dir("usr/lib/"),
        Item::File("usr/lib/os-release", b"ID=test\n"),
        Item::Dir("etc/"),
        Item::Symlink("etc/os-release", "../usr/lib/os-release"),
        Item::Symlink("lib", "usr/lib"),
        Item::Hardlink("usr/lib/copy", "usr/lib/os-release"),
    ]);
    let compressed = zstd::encode_all(&bytes[..], 3).unwrap();
    let tree = image_files(&[layer(MediaType::ImageLayerZstd, compressed)]).unwrap();
    assert_eq!(
        tree.resolve("/etc/os-release").as_deref(),
        Some("/usr/lib/os-release")
    );
    assert_eq!(
        tree.resolve("/lib/os-release").as_deref(),
        Some("/usr/lib/os-release")
    );
    assert_eq!(tree.resolve("/etc/missing"), None);
    assert_eq!(tree.get("/usr/lib/copy").unwrap().size, 8);
    assert_eq!(
        contents(&tree, &|path, _| path.starts_with("/usr/lib/")),
        vec![
            ("/usr/lib/copy".to_string(), "ID=test\n".to_string()),
            ("/usr/lib/os-release".to_string(), "ID=test\n".to_string()),
        ]
    );
}

#[test]
fn only_the_final_version_is_read() {
    let first = tar_bytes(&[Item::File("a", b"one"), Item::File("b", b"bee")]);
    let second = tar_bytes(&[Item::File("a", b"two"), Item::File("a", b"three")]);
    let tree = image_files(&[
        layer(MediaType::ImageLayer, first),
        layer(MediaType::ImageLayer, second),
    ])
    .unwrap();
    assert_eq!(
        contents(&tree, &|_, _| true),
        vec![
            ("/a".to_string(), "three".to_string()),
            ("/b".to_string(), "bee".to_string())
        ]
    );
}

#[test]
fn unknown_media_types_and_corrupt_layers_are_errors() {
    let error = image_files(&[layer(MediaType::ImageConfig, b"{}".to_vec())]).err();
    assert!(matches!(error, Some(AttestError::UnsupportedLayer { .. })));
    let error = image_files(&[layer(MediaType::ImageLayerGzip, b"not gzip".to_vec())]).err();
    assert!(matches!(error, Some(AttestError::LayerRead { .. })));
}

#[test]
fn directory_tree_reads_from_disk() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(directory.path().join("etc")).unwrap();
    std::fs::write(directory.path().join("etc/hostname"), b"box").unwrap();
    std::os::unix::fs::symlink("hostname", directory.path().join("etc/name")).unwrap();
    let tree = FileTree::from_directory(directory.path()).unwrap();
    assert_eq!(tree.resolve("/etc/name").as_deref(), Some("/etc/hostname"));
    assert_eq!(
        contents(&tree, &|_, _| true),
        vec![("/etc/hostname".to_string(), "box".to_string())]
    );
}
