//! Layouts and archives written by hoist, read back by the real tools
//! (skopeo, umoci), checked against the official schemas, and read back by
//! hoist's own sources.

use crate::common::images;

use crate::common::{assert_valid_json, run};
use hoist::image::{Blob, BytesBlob, Image, Manifest, publish};
use hoist::oci::{Digest, Platform};
use hoist::progress::Silent;
use hoist::sink::{DockerArchiveSink, LayoutSink, OciArchiveSink};
use hoist::source::{DockerArchiveSource, LayoutSource, OciArchiveSource, Source, select_platform};
use images::{Packing, image, multi, simple};
use oci_spec::image::Descriptor;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn tags(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

fn publish_layout(manifest: &Manifest, directory: &Path, tag: &[&str]) {
    let sink = LayoutSink::open(directory).unwrap();
    publish(manifest, &sink, &tags(tag), &Silent).unwrap();
}

fn skopeo(arguments: &[&str]) -> String {
    run(Command::new("skopeo")
        .arg("--insecure-policy")
        .args(arguments))
}

/// Every file under `root`, relative path to bytes.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            (
                entry.path().strip_prefix(root).unwrap().to_path_buf(),
                fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

/// Names under `root` (recursively) that are staging leftovers.
fn leftovers(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|entry| entry.unwrap())
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .contains(".hoist-staging-")
        })
        .map(|entry| entry.path().to_path_buf())
        .collect()
}

fn blob_file(layout: &Path, digest: &Digest) -> PathBuf {
    layout.join("blobs/sha256").join(digest.digest())
}

/// Validates the layout file, index.json and every manifest, index and
/// config reachable from `manifest` against the official schemas.
fn assert_layout_valid(layout: &Path, manifest: &Manifest) {
    assert_valid_json(
        "oci/image-layout-schema.json",
        &[&layout.join("oci-layout")],
    );
    assert_valid_json("oci/image-index-schema.json", &[&layout.join("index.json")]);
    let mut indexes = Vec::new();
    let mut manifests = Vec::new();
    let mut configs = Vec::new();
    fn visit(
        layout: &Path,
        manifest: &Manifest,
        indexes: &mut Vec<PathBuf>,
        manifests: &mut Vec<PathBuf>,
        configs: &mut Vec<PathBuf>,
    ) {
        match manifest {
            Manifest::Index(index) => {
                indexes.push(blob_file(layout, index.manifest.digest()));
                for child in &index.children {
                    visit(layout, child, indexes, manifests, configs);
                }
            }
            Manifest::Image(image) => {
                manifests.push(blob_file(layout, image.manifest.digest()));
                configs.push(blob_file(layout, image.config.digest()));
            }
        }
    }
    visit(layout, manifest, &mut indexes, &mut manifests, &mut configs);
    fn paths(list: &[PathBuf]) -> Vec<&Path> {
        list.iter().map(PathBuf::as_path).collect()
    }
    if !indexes.is_empty() {
        assert_valid_json("oci/image-index-schema.json", &paths(&indexes));
    }
    assert_valid_json("oci/image-manifest-schema.json", &paths(&manifests));
    assert_valid_json("oci/config-schema.json", &paths(&configs));
}

/// Unpacks `image` (`DIR:TAG`) with umoci and returns the root filesystem path.
fn umoci_unpack(image: &str, bundle: &Path) -> PathBuf {
    let mut command = Command::new("umoci");
    command.arg("unpack");
    // As root umoci keeps owners; anyone else needs --rootless.
    if !is_root() {
        command.arg("--rootless");
    }
    run(command.arg("--image").arg(image).arg(bundle));
    bundle.join("rootfs")
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|metadata| std::os::unix::fs::MetadataExt::uid(&metadata) == 0)
        .unwrap_or(false)
}

fn index_tags(layout: &Path) -> Vec<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| {
            entry["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn single_image_layout_is_read_by_skopeo_and_umoci() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let built = Manifest::Image(simple("linux/amd64", "hello from hoist"));
    publish_layout(&built, &layout, &["1.0"]);

    assert_layout_valid(&layout, &built);
    let raw = skopeo(&["inspect", "--raw", &format!("oci:{}:1.0", layout.display())]);
    assert_eq!(raw.as_bytes(), built.manifest_blob().bytes());
    let inspected: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        &format!("oci:{}:1.0", layout.display()),
    ]))
    .unwrap();
    assert_eq!(inspected["Architecture"], "amd64");
    assert_eq!(inspected["Digest"], built.digest().to_string());

    let rootfs = umoci_unpack(
        &format!("{}:1.0", layout.display()),
        &work.path().join("bundle"),
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("hello.txt")).unwrap(),
        "hello from hoist"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/os-release")).unwrap(),
        "ID=test\n"
    );
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );
}

#[test]
fn multi_platform_layout_round_trips_through_skopeo_and_hoist() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let built = multi(&["linux/amd64", "linux/arm64/v8"], "hi");
    publish_layout(&built, &layout, &["multi"]);
    assert_layout_valid(&layout, &built);

    let location = format!("oci:{}:multi", layout.display());
    let raw = skopeo(&["inspect", "--raw", &location]);
    assert_eq!(raw.as_bytes(), built.manifest_blob().bytes());
    let arm: serde_json::Value = serde_json::from_str(&skopeo(&[
        "--override-arch",
        "arm64",
        "--override-variant",
        "v8",
        "inspect",
        &location,
    ]))
    .unwrap();
    assert_eq!(arm["Architecture"], "arm64");

    // skopeo copies every platform of hoist's index into a layout of its own.
    let copied = work.path().join("copied");
    skopeo(&[
        "copy",
        "--all",
        &location,
        &format!("oci:{}:multi", copied.display()),
    ]);
    let raw_copy = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:multi", copied.display()),
    ]);
    assert_eq!(raw_copy, raw);

    // hoist reads skopeo's layout and writes it again with the same digests.
    let source = LayoutSource::open(&copied, Some("multi")).unwrap();
    let resolved = source.resolve().unwrap();
    assert_eq!(resolved.digest(), built.digest());
    assert_eq!(resolved.images().len(), 2);
    let again = work.path().join("again");
    publish_layout(&resolved, &again, &["multi"]);
    assert_eq!(snapshot(&again), snapshot(&layout));

    let arm64 = select_platform(&resolved, &"linux/arm64".parse().unwrap()).unwrap();
    let expected = built.images()[1].manifest.digest().clone();
    assert_eq!(arm64.manifest.digest(), &expected);
    let error = select_platform(&resolved, &"linux/s390x".parse::<Platform>().unwrap())
        .err()
        .unwrap();
    let message = format!("{}", error.source);
    assert!(
        message.contains("linux/amd64") && message.contains("linux/arm64/v8"),
        "{message}"
    );
}

#[test]
fn a_second_tag_keeps_the_first_and_a_same_tag_replaces() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let first = Manifest::Image(simple("linux/amd64", "first"));
    let second = Manifest::Image(simple("linux/amd64", "second"));
    let third = Manifest::Image(simple("linux/amd64", "third"));
    publish_layout(&first, &layout, &["a"]);
    publish_layout(&second, &layout, &["b"]);
    assert_eq!(index_tags(&layout), ["a", "b"]);
    let resolve = |tag| {
        LayoutSource::open(&layout, Some(tag))
            .unwrap()
            .resolve()
            .unwrap()
            .digest()
            .clone()
    };
    assert_eq!(&resolve("a"), first.digest());
    assert_eq!(&resolve("b"), second.digest());

    publish_layout(&third, &layout, &["a"]);
    assert_eq!(index_tags(&layout), ["b", "a"]);
    assert_eq!(&resolve("a"), third.digest());
    assert_eq!(&resolve("b"), second.digest());
    // The first image's blobs stay: a layout is not garbage-collected.
    assert!(blob_file(&layout, first.digest()).exists());

    let missing = LayoutSource::open(&layout, Some("c"))
        .unwrap()
        .resolve()
        .err()
        .unwrap();
    let message = format!("{missing}: {}", missing.source);
    assert!(
        message.contains("`c`") && message.contains("b, a"),
        "{message}"
    );
    let ambiguous = LayoutSource::open(&layout, None)
        .unwrap()
        .resolve()
        .err()
        .unwrap();
    assert!(ambiguous.source.to_string().contains("b, a"));
    umoci_unpack(
        &format!("{}:b", layout.display()),
        &work.path().join("bundle"),
    );
    assert!(leftovers(work.path()).is_empty());
}

/// A layer whose content cannot be read, like a file deleted mid-build.
struct FailingBlob(Descriptor);

impl Blob for FailingBlob {
    fn descriptor(&self) -> &Descriptor {
        &self.0
    }

    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        Err(io::Error::other("the layer file vanished"))
    }
}

fn image_with_failing_layer() -> Manifest {
    let good = simple("linux/amd64", "good");
    let failing: Arc<dyn Blob> = Arc::new(FailingBlob(Descriptor::new(
        hoist::oci::media_type::OCI_LAYER_GZIP.into(),
        10,
        hoist::oci::sha256_digest(b"never read"),
    )));
    let mut layers = good.layers.clone();
    layers.push(failing);
    Manifest::Image(
        Image::from_parts(good.config.clone(), layers, &BTreeMap::new(), None, None).unwrap(),
    )
}

#[test]
fn a_failed_publish_leaves_the_layout_as_it_was() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    publish_layout(
        &Manifest::Image(simple("linux/amd64", "kept")),
        &layout,
        &["kept"],
    );
    let before = snapshot(&layout);

    let sink = LayoutSink::open(&layout).unwrap();
    let error = publish(
        &image_with_failing_layer(),
        &sink,
        &tags(&["broken"]),
        &Silent,
    )
    .err()
    .unwrap();
    assert!(format!("{error:?}").contains("vanished"), "{error:?}");
    drop(sink);
    assert_eq!(snapshot(&layout), before);
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );

    // A new layout that fails never appears.
    let fresh = work.path().join("fresh");
    let sink = LayoutSink::open(&fresh).unwrap();
    assert!(publish(&image_with_failing_layer(), &sink, &tags(&["x"]), &Silent).is_err());
    drop(sink);
    assert!(!fresh.exists());
    // Nor does an archive, and an old one stays.
    let archive = work.path().join("old.tar");
    fs::write(&archive, b"previous archive").unwrap();
    let sink = OciArchiveSink::create(&archive).unwrap();
    assert!(publish(&image_with_failing_layer(), &sink, &[], &Silent).is_err());
    drop(sink);
    assert_eq!(fs::read(&archive).unwrap(), b"previous archive");
    let sink = DockerArchiveSink::create(&archive, Some("app".into())).unwrap();
    assert!(publish(&image_with_failing_layer(), &sink, &[], &Silent).is_err());
    drop(sink);
    assert_eq!(fs::read(&archive).unwrap(), b"previous archive");
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let good = simple("linux/amd64", "good");
    let lying: Arc<dyn Blob> = Arc::new(BytesBlob::with_descriptor(
        good.layers[0].descriptor().clone(),
        b"other bytes".to_vec(),
    ));
    let manifest = Manifest::Image(Image {
        manifest: good.manifest.clone(),
        config: good.config.clone(),
        layers: vec![lying],
    });
    let layout = work.path().join("layout");
    let sink = LayoutSink::open(&layout).unwrap();
    let error = publish(&manifest, &sink, &[], &Silent).err().unwrap();
    let chain = format!("{error}: {}", error.source);
    assert!(chain.contains("does not match"), "{chain}");
    drop(sink);
    assert!(!layout.exists());
}

#[test]
fn concurrent_publishes_into_one_layout_both_land() {
    let work = tempfile::tempdir().unwrap();
    for round in 0..3 {
        // Round 0 races to create the layout; later rounds add to it.
        let layout = work.path().join("shared");
        let first = format!("first-{round}");
        let second = format!("second-{round}");
        std::thread::scope(|scope| {
            for tag in [&first, &second] {
                let layout = &layout;
                scope.spawn(move || {
                    let image = Manifest::Image(simple("linux/amd64", tag));
                    let sink = LayoutSink::open(layout).unwrap();
                    publish(&image, &sink, std::slice::from_ref(tag), &Silent).unwrap();
                });
            }
        });
        let present = index_tags(&layout);
        assert!(
            present.contains(&first) && present.contains(&second),
            "{present:?}"
        );
        for tag in [&first, &second] {
            let resolved = LayoutSource::open(&layout, Some(tag))
                .unwrap()
                .resolve()
                .unwrap();
            assert_eq!(
                resolved.digest(),
                Manifest::Image(simple("linux/amd64", tag)).digest()
            );
        }
    }
    assert_eq!(index_tags(&work.path().join("shared")).len(), 6);
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );
}

#[test]
fn an_output_that_is_not_a_layout_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let occupied = work.path().join("occupied");
    fs::create_dir(&occupied).unwrap();
    fs::write(occupied.join("notes.txt"), b"mine").unwrap();
    let error = LayoutSink::open(&occupied).err().unwrap();
    let message = format!("{error}: {}", error.source);
    assert!(
        message.contains(&occupied.display().to_string()),
        "{message}"
    );
    assert!(message.contains("not an OCI image layout"), "{message}");

    let file = work.path().join("file");
    fs::write(&file, b"x").unwrap();
    let error = LayoutSink::open(&file).err().unwrap();
    assert!(
        error
            .source
            .to_string()
            .contains(&file.display().to_string())
    );

    // An empty directory is fine and becomes a layout.
    let empty = work.path().join("empty");
    fs::create_dir(&empty).unwrap();
    publish_layout(&Manifest::Image(simple("linux/amd64", "e")), &empty, &["e"]);
    assert_eq!(index_tags(&empty), ["e"]);
    assert_eq!(fs::read(occupied.join("notes.txt")).unwrap(), b"mine");

    // Neither is a directory where an archive should go.
    let error = OciArchiveSink::create(&occupied).err().unwrap();
    assert!(error.source.to_string().contains("is a directory"));
}

#[test]
fn oci_archive_is_deterministic_and_read_by_skopeo() {
    let work = tempfile::tempdir().unwrap();
    let built = multi(&["linux/amd64", "linux/arm64/v8"], "archived");
    let archive = work.path().join("image.tar");
    for path in [&archive, &work.path().join("again.tar")] {
        let sink = OciArchiveSink::create(path).unwrap();
        publish(&built, &sink, &tags(&["v1"]), &Silent).unwrap();
    }
    assert_eq!(
        fs::read(&archive).unwrap(),
        fs::read(work.path().join("again.tar")).unwrap()
    );
    let mut names = Vec::new();
    for entry in tar::Archive::new(fs::File::open(&archive).unwrap())
        .entries()
        .unwrap()
    {
        let entry = entry.unwrap();
        assert_eq!(entry.header().mtime().unwrap(), 0);
        assert_eq!(entry.header().uid().unwrap(), 0);
        names.push(entry.path().unwrap().to_string_lossy().into_owned());
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(names.contains(&"oci-layout".to_string()) && names.contains(&"index.json".to_string()));

    let location = format!("oci-archive:{}:v1", archive.display());
    let raw = skopeo(&["inspect", "--raw", &location]);
    assert_eq!(raw.as_bytes(), built.manifest_blob().bytes());
    let copied = work.path().join("copied");
    // umoci unpacks single images: let skopeo pick the arm64 one.
    skopeo(&[
        "--override-arch",
        "arm64",
        "copy",
        &location,
        &format!("oci:{}:v1", copied.display()),
    ]);
    let rootfs = umoci_unpack(
        &format!("{}:v1", copied.display()),
        &work.path().join("bundle"),
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("hello.txt")).unwrap(),
        "archived linux/arm64/v8"
    );

    // hoist's archive source, on its own archive and on one skopeo wrote.
    let resolved = OciArchiveSource::open(&archive, Some("v1"))
        .unwrap()
        .resolve()
        .unwrap();
    assert_eq!(resolved.digest(), built.digest());
    let skopeo_archive = work.path().join("skopeo.tar");
    skopeo(&[
        "copy",
        "--all",
        &location,
        &format!("oci-archive:{}:v1", skopeo_archive.display()),
    ]);
    let from_skopeo = OciArchiveSource::open(&skopeo_archive, None)
        .unwrap()
        .resolve()
        .unwrap();
    assert_eq!(from_skopeo.digest(), built.digest());
    // Its layers read back with their digests checked.
    let round = work.path().join("round");
    publish_layout(&from_skopeo, &round, &["v1"]);
    assert_layout_valid(&round, &built);
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );
}

#[test]
fn docker_archive_is_loadable_and_keeps_the_image_id() {
    let work = tempfile::tempdir().unwrap();
    let built = image(
        "linux/amd64",
        &[
            (&[("base/a.txt", b"from gzip")], Packing::Gzip),
            (&[("base/b.txt", b"from zstd")], Packing::Zstd),
            (&[("c.txt", b"plain")], Packing::Plain),
        ],
    );
    let config_digest = built.config.digest().clone();
    let diff_ids: Vec<String> = {
        let config: serde_json::Value = serde_json::from_slice(built.config.bytes()).unwrap();
        config["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().to_string())
            .collect()
    };
    let manifest = Manifest::Image(built);
    let archive = work.path().join("docker.tar");
    for path in [&archive, &work.path().join("again.tar")] {
        let sink =
            DockerArchiveSink::create(path, Some("example.com/team/app:1.0".into())).unwrap();
        publish(&manifest, &sink, &tags(&["extra"]), &Silent).unwrap();
    }
    assert_eq!(
        fs::read(&archive).unwrap(),
        fs::read(work.path().join("again.tar")).unwrap()
    );

    let inspected: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        &format!("docker-archive:{}", archive.display()),
    ]))
    .unwrap();
    let layers: Vec<String> = inspected["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer.as_str().unwrap().to_string())
        .collect();
    assert_eq!(layers, diff_ids);
    assert_eq!(inspected["Architecture"], "amd64");
    let raw_config = skopeo(&[
        "inspect",
        "--raw",
        "--config",
        &format!(
            "docker-archive:{}:example.com/team/app:extra",
            archive.display()
        ),
    ]);
    assert_eq!(raw_config.as_bytes(), manifest.images()[0].config.bytes());

    let copied = work.path().join("copied");
    skopeo(&[
        "copy",
        &format!(
            "docker-archive:{}:example.com/team/app:1.0",
            archive.display()
        ),
        &format!("oci:{}:app", copied.display()),
    ]);
    let rootfs = umoci_unpack(
        &format!("{}:app", copied.display()),
        &work.path().join("bundle"),
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("base/a.txt")).unwrap(),
        "from gzip"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("base/b.txt")).unwrap(),
        "from zstd"
    );
    assert_eq!(fs::read_to_string(rootfs.join("c.txt")).unwrap(), "plain");

    // hoist reads it back: same config (image ID), uncompressed layers.
    let source = DockerArchiveSource::open(&archive, Some("example.com/team/app:1.0")).unwrap();
    let resolved = source.resolve().unwrap();
    let image = &resolved.images()[0];
    assert_eq!(image.config.digest(), &config_digest);
    let layer_digests: Vec<String> = image
        .layers
        .iter()
        .map(|layer| layer.digest().to_string())
        .collect();
    assert_eq!(layer_digests, diff_ids);
    assert!(
        DockerArchiveSource::open(&archive, Some("other:1"))
            .unwrap()
            .resolve()
            .err()
            .unwrap()
            .source
            .to_string()
            .contains("example.com/team/app:1.0")
    );
    // ... and a docker archive skopeo wrote, then into a layout umoci opens.
    let skopeo_archive = work.path().join("skopeo.tar");
    skopeo(&[
        "copy",
        &format!("oci:{}:app", copied.display()),
        &format!("docker-archive:{}:app:2", skopeo_archive.display()),
    ]);
    let from_skopeo = DockerArchiveSource::open(&skopeo_archive, None)
        .unwrap()
        .resolve()
        .unwrap();
    // skopeo rewrites the config when it converts to Docker's format; the
    // source must keep skopeo's bytes, as they are the image ID.
    let skopeo_config = skopeo(&[
        "inspect",
        "--raw",
        "--config",
        &format!("docker-archive:{}", skopeo_archive.display()),
    ]);
    assert_eq!(
        from_skopeo.images()[0].config.bytes(),
        skopeo_config.as_bytes()
    );
    let skopeo_layers: Vec<String> = from_skopeo.images()[0]
        .layers
        .iter()
        .map(|layer| layer.digest().to_string())
        .collect();
    assert_eq!(skopeo_layers, diff_ids);
    // Docker media types survive a layout round trip in hoist (skopeo 1.9
    // skips layout entries that are not OCI types, so hoist reads it back).
    let relayout = work.path().join("relayout");
    publish_layout(&from_skopeo, &relayout, &["app"]);
    let reread = LayoutSource::open(&relayout, Some("app"))
        .unwrap()
        .resolve()
        .unwrap();
    assert_eq!(reread.digest(), from_skopeo.digest());
    // Archive to archive: hoist's docker archive of skopeo's, opened by skopeo.
    let rewritten = work.path().join("rewritten.tar");
    let sink = DockerArchiveSink::create(&rewritten, Some("app:3".into())).unwrap();
    publish(&reread, &sink, &[], &Silent).unwrap();
    let converted = work.path().join("converted");
    skopeo(&[
        "copy",
        &format!("docker-archive:{}", rewritten.display()),
        &format!("oci:{}:app", converted.display()),
    ]);
    let rootfs = umoci_unpack(
        &format!("{}:app", converted.display()),
        &work.path().join("bundle2"),
    );
    assert_eq!(fs::read_to_string(rootfs.join("c.txt")).unwrap(), "plain");
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );
}

#[test]
fn docker_archive_takes_one_image_only() {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("docker.tar");
    let sink = DockerArchiveSink::create(&archive, None).unwrap();
    let error = publish(
        &multi(&["linux/amd64", "linux/arm64"], "x"),
        &sink,
        &[],
        &Silent,
    )
    .err()
    .unwrap();
    assert!(error.to_string().contains(&archive.display().to_string()));
    drop(sink);
    assert!(!archive.exists());
    assert!(DockerArchiveSink::create(&archive, Some("name@sha256:00".into())).is_err());
}

#[test]
fn a_truncated_blob_in_a_layout_is_replaced() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let built = Manifest::Image(simple("linux/amd64", "whole"));
    publish_layout(&built, &layout, &["one"]);
    let layer = blob_file(&layout, built.images()[0].layers[0].digest());
    let good = fs::read(&layer).unwrap();
    fs::write(&layer, &good[..good.len() / 2]).unwrap();
    publish_layout(&built, &layout, &["two"]);
    assert_eq!(fs::read(&layer).unwrap(), good);
    assert_eq!(index_tags(&layout), ["one", "two"]);
}

#[test]
fn a_commit_that_fails_takes_its_blobs_back_out() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    publish_layout(
        &Manifest::Image(simple("linux/amd64", "a")),
        &layout,
        &["a"],
    );
    // An index.json hoist cannot read makes the commit fail after the
    // blobs have moved in; they must leave again.
    fs::write(layout.join("index.json"), b"{not json").unwrap();
    let before = snapshot(&layout);
    let sink = LayoutSink::open(&layout).unwrap();
    let error = publish(
        &Manifest::Image(simple("linux/amd64", "b")),
        &sink,
        &tags(&["b"]),
        &Silent,
    )
    .err()
    .unwrap();
    assert!(format!("{error:?}").contains("index.json"), "{error:?}");
    drop(sink);
    assert_eq!(snapshot(&layout), before);
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );
}

/// Modes of every file under `root`, by path.
fn file_modes(root: &Path) -> Vec<(PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    crate::common::hostile::files_under(root)
        .into_iter()
        .map(|path| {
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
            (path, mode)
        })
        .collect()
}

/// Layer blobs are spooled by the build and hard-linked into a layout; they
/// must be readable like the blobs the layout writes itself, with the
/// cache, without it, and from a cache an older version filled with 0600.
#[test]
fn layer_blobs_in_a_layout_have_the_mode_of_every_blob() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let spec = crate::common::hoist::fixture("hello/hoist.toml");
    let cache = work.path().join("cache");
    let build = |output: &str, extra: &[&str]| {
        crate::common::hoist::hoist(["build", "-q", "-f"])
            .arg(&spec)
            .args(extra)
            .arg("-o")
            .arg(format!("oci:{}", work.path().join(output).display()))
            .env("HOIST_CACHE", &cache)
            .run()
            .success();
    };
    let assert_all_readable = |output: &str| {
        let modes = file_modes(&work.path().join(output).join("blobs"));
        assert!(modes.len() > 4, "{modes:?}");
        for (path, mode) in modes {
            assert_eq!(mode, 0o644, "{}", path.display());
        }
    };
    build("cached", &[]);
    assert_all_readable("cached");
    build("uncached", &["--no-cache"]);
    assert_all_readable("uncached");
    for (path, _) in file_modes(&cache) {
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    build("from-old-cache", &[]);
    assert_all_readable("from-old-cache");
}

/// Runs `hoist ARGS` under strace; returns the fsync and rename calls in
/// the order they were made, with the paths of their descriptors.
fn traced_syncs_and_renames(work: &Path, args: &[String]) -> Vec<String> {
    let trace = work.join("trace");
    let status = Command::new("strace")
        .args([
            "-f",
            "-y",
            "-qq",
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2",
        ])
        .arg("-o")
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_hoist"))
        .args(args)
        .env("HOIST_CACHE", work.join("cache"))
        .status()
        .expect("strace runs (apt-get install -y strace)");
    assert!(status.success(), "hoist {args:?} under strace");
    fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every blob of `layout`, its blob directory and the layout's blobs
/// directory are flushed (fsync) before `index.json` is renamed into place.
fn assert_blobs_on_disk_before_index(calls: &[String], layout: &Path) {
    let index_at = calls
        .iter()
        .position(|call| call.starts_with_rename() && call.contains("index.json\""))
        .unwrap_or_else(|| panic!("no rename to index.json in {calls:#?}"));
    let synced_before = |suffix: &str| {
        calls[..index_at]
            .iter()
            .any(|call| call.contains("sync(") && call.contains(&format!("{suffix}>")))
    };
    for entry in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            synced_before(&format!("/blobs/sha256/{name}")),
            "blob {name} is not flushed before index.json: {calls:#?}"
        );
    }
    assert!(synced_before("/blobs/sha256"), "{calls:#?}");
    assert!(synced_before("/blobs"), "{calls:#?}");
}

trait TraceLine {
    fn starts_with_rename(&self) -> bool;
}

impl TraceLine for String {
    fn starts_with_rename(&self) -> bool {
        // `PID rename...(` with -f.
        self.split_whitespace()
            .nth(1)
            .is_some_and(|call| call.starts_with("rename"))
    }
}

#[test]
fn blobs_are_on_disk_before_the_index_that_names_them() {
    let work = tempfile::tempdir().unwrap();
    let created = work.path().join("created");
    let spec = crate::common::hoist::fixture("hello/hoist.toml");
    let calls = traced_syncs_and_renames(
        work.path(),
        &[
            "build".to_string(),
            "-q".to_string(),
            "-f".to_string(),
            spec.display().to_string(),
            "-o".to_string(),
            format!("oci:{}", created.display()),
        ],
    );
    assert_blobs_on_disk_before_index(&calls, &created);

    // Into an existing directory, blobs are moved in rather than the
    // staging directory renamed: the same must hold.
    let merged = work.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let calls = traced_syncs_and_renames(
        work.path(),
        &[
            "copy".to_string(),
            format!("oci:{}", created.display()),
            format!("oci:{}", merged.display()),
        ],
    );
    assert_blobs_on_disk_before_index(&calls, &merged);
}
