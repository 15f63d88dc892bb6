//! Pushing to and pulling from a real `docker-registry`, checked with skopeo.

use crate::common;

use crate::common::registry::TestRegistry;
use crate::common::registry_images::{large_image, manifest_digests, multi_platform, small_image};
use crate::common::run;
use hoist::image::model::ChildEntry;
use hoist::image::{Index, Manifest, publish};
use hoist::progress::Silent;
use hoist::registry::{
    ClientOptions, CredentialEnvironment, Reference, RegistryClient, RegistrySink, RegistrySource,
    get_manifest_digest,
};
use hoist::source::Source;
use std::io::Read as _;
use std::process::Command;

fn client() -> RegistryClient {
    client_with(ClientOptions::default())
}

/// A client whose chunks are the smallest every registry takes, so a few
/// MiB of test data make several.
fn small_chunks() -> RegistryClient {
    client_with(ClientOptions {
        chunk_size: hoist::registry::MINIMUM_CHUNK,
        ..ClientOptions::default()
    })
}

fn client_with(options: ClientOptions) -> RegistryClient {
    RegistryClient::new(ClientOptions {
        credential_environment: CredentialEnvironment::default(),
        ..options
    })
    .expect("client")
}

fn reference(registry: &TestRegistry, name: &str) -> Reference {
    format!("{}/{name}", registry.host()).parse().unwrap()
}

fn skopeo_raw(target: &str) -> String {
    run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]))
}

fn tags(list: &[&str]) -> Vec<String> {
    list.iter().map(|tag| tag.to_string()).collect()
}

#[test]
fn single_image_push_reads_back_with_skopeo() {
    let registry = TestRegistry::start();
    let client = client();
    let image = Manifest::Image(small_image("single", "linux/amd64"));
    let target = reference(&registry, "team/app");
    let sink = RegistrySink::new(client.clone(), target.clone());
    let report = publish(&image, &sink, &tags(&["v1", "latest"]), &Silent).unwrap();
    assert_eq!(report.uploaded.len(), 2, "config and layer");

    let raw = skopeo_raw(&format!("{}/team/app:v1", registry.host()));
    assert_eq!(raw.as_bytes(), image.manifest_blob().bytes());
    assert_eq!(
        get_manifest_digest(&client, &target.with_tag("latest")).unwrap(),
        Some(image.digest().clone())
    );
    assert_eq!(
        get_manifest_digest(&client, &target.with_tag("missing")).unwrap(),
        None
    );

    // skopeo copies it out, which checks every blob's digest.
    let out = tempfile::tempdir().unwrap();
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/team/app:v1", registry.host()),
        &format!("oci:{}:copied", out.path().join("layout").display()),
    ]));
    let index = std::fs::read_to_string(out.path().join("layout/index.json")).unwrap();
    assert!(index.contains(&image.digest().to_string()), "{index}");
}

#[test]
fn multi_platform_push_and_pull_back() {
    let registry = TestRegistry::start();
    let client = client();
    let index = multi_platform("multi", &["linux/amd64", "linux/arm64"]);
    let target = reference(&registry, "multi");
    publish(
        &index,
        &RegistrySink::new(client.clone(), target.clone()),
        &tags(&["1.0"]),
        &Silent,
    )
    .unwrap();
    // The blobs went up side by side; the first to start asked the host
    // whether it speaks TLS, the others waited for its answer.
    assert_eq!(
        registry.count_requests_to("GET", "/v2/"),
        1,
        "one scheme probe:\n{}",
        registry.log()
    );
    // Every blob was new, so no platform manifest could be there already:
    // none is asked for before it is sent.
    assert_eq!(
        registry.count_requests("HEAD", "/manifests/"),
        0,
        "{}",
        registry.log()
    );

    let raw = skopeo_raw(&format!("{}/multi:1.0", registry.host()));
    assert_eq!(raw.as_bytes(), index.manifest_blob().bytes());
    let arm = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--override-arch=arm64",
        &format!("docker://{}/multi:1.0", registry.host()),
    ]));
    assert!(arm.contains("\"Architecture\": \"arm64\""), "{arm}");

    let pulled = RegistrySource::new(client.clone(), target.with_tag("1.0"))
        .resolve()
        .unwrap();
    assert_eq!(manifest_digests(&pulled), manifest_digests(&index));
    let original_images = index.images();
    for (pulled_image, original) in pulled.images().into_iter().zip(original_images) {
        assert_eq!(pulled_image.config.bytes(), original.config.bytes());
        let layer = &pulled_image.layers[0];
        assert_eq!(
            layer.origin().map(|origin| origin.repository.as_str()),
            Some("multi")
        );
        let mut pulled_bytes = Vec::new();
        layer
            .open()
            .unwrap()
            .read_to_end(&mut pulled_bytes)
            .unwrap();
        let mut original_bytes = Vec::new();
        original.layers[0]
            .open()
            .unwrap()
            .read_to_end(&mut original_bytes)
            .unwrap();
        assert_eq!(pulled_bytes, original_bytes);
    }

    // Pinned by digest, the same tree comes back.
    let pinned = RegistrySource::new(client, target.with_digest(index.digest().clone()))
        .resolve()
        .unwrap();
    assert_eq!(pinned.digest(), index.digest());
}

#[test]
fn nested_index_goes_up_children_first() {
    // An index listing an index of two images and an image: the registry
    // refuses an index whose manifests it does not hold, so each level must
    // be stored before the one above it.
    let registry = TestRegistry::start();
    let inner = multi_platform("nested-inner", &["linux/amd64", "linux/arm64"]);
    let outer = Manifest::Index(
        Index::from_children(
            vec![
                (inner, ChildEntry::default()),
                (
                    Manifest::Image(small_image("nested-outer", "linux/s390x")),
                    ChildEntry {
                        platform: Some("linux/s390x".parse().unwrap()),
                        ..Default::default()
                    },
                ),
            ],
            &Default::default(),
        )
        .unwrap(),
    );
    let sink = RegistrySink::new(client(), reference(&registry, "nested"));
    let first = publish(&outer, &sink, &tags(&["1"]), &Silent).unwrap();
    assert_eq!(first.manifests_sent, 5, "three images, two indexes");
    assert_eq!(first.manifests_existed, 0);
    for digest in manifest_digests(&outer) {
        let raw = skopeo_raw(&format!("{}/nested@{digest}", registry.host()));
        assert_eq!(
            hoist::oci::sha256_digest(raw.as_bytes()),
            digest,
            "the registry serves {digest} as pushed"
        );
    }

    // Pushed again under another tag, the registry has every blob, so each
    // child is asked for and found.
    let second = publish(&outer, &sink, &tags(&["2"]), &Silent).unwrap();
    assert_eq!(second.manifests_existed, 4, "every manifest below the top");
    assert_eq!(second.manifests_sent, 1, "the top, for its new tag");
}

#[test]
fn second_push_uploads_no_blob() {
    let registry = TestRegistry::start();
    let client = client();
    let index = multi_platform("again", &["linux/amd64", "linux/arm64"]);
    let sink = RegistrySink::new(client, reference(&registry, "again"));
    let first = publish(&index, &sink, &tags(&["a"]), &Silent).unwrap();
    assert_eq!(first.uploaded.len(), 4);
    let uploads_before = registry.count_requests("POST", "/blobs/uploads");
    let puts_before = registry.count_requests("PUT", "/blobs/uploads");
    assert_eq!(uploads_before, 4, "{}", registry.log());

    let second = publish(&index, &sink, &tags(&["b"]), &Silent).unwrap();
    assert!(second.uploaded.is_empty());
    assert_eq!(second.existed.len(), 4);
    assert_eq!(second.manifests_existed, 2, "children are not sent again");
    assert_eq!(
        registry.count_requests("POST", "/blobs/uploads"),
        uploads_before
    );
    assert_eq!(
        registry.count_requests("PUT", "/blobs/uploads"),
        puts_before
    );
    assert_eq!(
        skopeo_raw(&format!("{}/again:b", registry.host())).as_bytes(),
        index.manifest_blob().bytes()
    );
}

#[test]
fn mount_across_repositories() {
    let registry = TestRegistry::start();
    let client = client();
    let image = Manifest::Image(small_image("mount", "linux/amd64"));
    let source_reference = reference(&registry, "source/app");
    publish(
        &image,
        &RegistrySink::new(client.clone(), source_reference.clone()),
        &tags(&["1"]),
        &Silent,
    )
    .unwrap();
    let pulled = RegistrySource::new(client.clone(), source_reference.with_tag("1"))
        .resolve()
        .unwrap();
    let report = publish(
        &pulled,
        &RegistrySink::new(client, reference(&registry, "target/app")),
        &tags(&["1"]),
        &Silent,
    )
    .unwrap();
    // The layer came from the registry and is mounted; the config was read
    // into memory and is uploaded.
    assert_eq!(report.mounted.len(), 1, "{report:?}");
    assert_eq!(registry.count_requests("POST", "mount="), 1);
    assert_eq!(
        skopeo_raw(&format!("{}/target/app:1", registry.host())).as_bytes(),
        image.manifest_blob().bytes()
    );
}

#[test]
fn large_blob_goes_in_chunks_from_disk() {
    let registry = TestRegistry::start();
    let client = client_with(ClientOptions {
        monolithic_limit: 1024 * 1024,
        chunk_size: 5 * 1024 * 1024,
        ..ClientOptions::default()
    });
    let directory = tempfile::tempdir().unwrap();
    let image = Manifest::Image(large_image(directory.path(), 7, 12 * 1024 * 1024));
    let target = reference(&registry, "big");
    publish(
        &image,
        &RegistrySink::new(client.clone(), target.clone()),
        &tags(&["1"]),
        &Silent,
    )
    .unwrap();
    // 12 MiB in 5 MiB chunks: two PATCHes, the rest on the closing PUT.
    assert_eq!(
        registry.count_requests("PATCH", "/big/blobs/uploads"),
        2,
        "{}",
        registry.log()
    );
    let out = tempfile::tempdir().unwrap();
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/big:1", registry.host()),
        &format!("oci:{}:big", out.path().join("layout").display()),
    ]));
    let pulled = RegistrySource::new(client, target.with_tag("1"))
        .resolve()
        .unwrap();
    let mut count = 0u64;
    let mut reader = pulled.images()[0].layers[0].open().unwrap();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = reader.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        count += read as u64;
    }
    assert_eq!(count, image.images()[0].layers[0].size());
}

#[test]
fn a_blob_under_the_monolithic_limit_goes_in_one_put_from_disk() {
    // 40 MiB, past the 16 MiB chunk size: by default still one PUT (each
    // chunk would cost a round trip), its body streamed from the file.
    let registry = TestRegistry::start();
    let directory = tempfile::tempdir().unwrap();
    let image = Manifest::Image(large_image(directory.path(), 8, 40 * 1024 * 1024));
    let layer = image.images()[0].layers[0].clone();
    assert!(layer.size() > ClientOptions::default().chunk_size);
    let target = reference(&registry, "whole");
    publish(
        &image,
        &RegistrySink::new(client(), target),
        &tags(&["1"]),
        &Silent,
    )
    .unwrap();
    assert_eq!(
        registry.count_requests("PATCH", "/whole/blobs/uploads"),
        0,
        "{}",
        registry.log()
    );
    assert_eq!(
        registry.count_requests("PUT", "/whole/blobs/uploads"),
        2,
        "the layer and the config, one PUT each:\n{}",
        registry.log()
    );
    let mut stored = Vec::new();
    layer.open().unwrap().read_to_end(&mut stored).unwrap();
    assert!(std::fs::read(registry.blob_path(layer.digest())).unwrap() == stored);
}

#[test]
fn corrupted_blob_is_refused_on_pull() {
    let registry = TestRegistry::start();
    let client = client();
    let image = small_image("corrupt", "linux/amd64");
    let target = reference(&registry, "corrupt");
    publish(
        &Manifest::Image(image.clone()),
        &RegistrySink::new(client.clone(), target.clone()),
        &tags(&["1"]),
        &Silent,
    )
    .unwrap();
    let data = registry.blob_path(image.layers[0].digest());
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();

    let pulled = RegistrySource::new(client, target.with_tag("1"))
        .resolve()
        .unwrap();
    let error = std::io::copy(
        &mut pulled.images()[0].layers[0].open().unwrap(),
        &mut std::io::sink(),
    )
    .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
}

#[test]
fn missing_image_error_names_reference_and_code() {
    let registry = TestRegistry::start();
    let source = RegistrySource::new(client(), reference(&registry, "nothing:here"));
    let error = match source.resolve() {
        Ok(_) => panic!("resolving a missing image succeeded"),
        Err(error) => error,
    };
    let chain = format!("{error}: {}", std::error::Error::source(&error).unwrap());
    assert!(chain.contains("nothing:here"), "{chain}");
    assert!(chain.contains("MANIFEST_UNKNOWN"), "{chain}");
    assert!(chain.contains("404"), "{chain}");
}

/// Feeds `data` to a streamed upload from another thread, as a layer being
/// compressed does, ending with `end` (or abandoning the blob for `None`).
fn stream_blob(
    sink: &RegistrySink,
    data: Vec<u8>,
    end: Option<oci_spec::image::Descriptor>,
) -> Result<oci_spec::image::Descriptor, hoist::registry::RegistryError> {
    use hoist::registry::StreamPiece;
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let producer = std::thread::spawn(move || {
        for piece in data.chunks(300 * 1024) {
            let piece = StreamPiece::Bytes(bytes::Bytes::copy_from_slice(piece));
            if sender.blocking_send(piece).is_err() {
                return;
            }
        }
        if let Some(end) = end {
            let _ = sender.blocking_send(StreamPiece::End(Box::new(end)));
        }
    });
    let result = sink.upload_streamed(receiver);
    producer.join().unwrap();
    result
}

fn layer_descriptor(data: &[u8]) -> oci_spec::image::Descriptor {
    oci_spec::image::Descriptor::new(
        oci_spec::image::MediaType::ImageLayerGzip,
        data.len() as u64,
        hoist::oci::sha256_digest(data),
    )
}

/// The bytes the registry holds of uploads still open in `repository`:
/// what its storage has written to their data files.
fn bytes_held_in_uploads(registry_directory: &std::path::Path, repository: &str) -> u64 {
    let uploads = registry_directory
        .join("storage/docker/registry/v2/repositories")
        .join(repository)
        .join("_uploads");
    let Ok(entries) = std::fs::read_dir(uploads) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| std::fs::metadata(entry.path().join("data")).ok())
        .map(|metadata| metadata.len())
        .sum()
}

#[test]
fn streamed_blob_goes_up_in_chunks_while_it_is_written() {
    use hoist::image::Sink as _;
    use hoist::registry::StreamPiece;
    let registry = TestRegistry::start();
    let sink = RegistrySink::new(small_chunks(), reference(&registry, "streamed"));
    let data = common::registry_images::noise(21, 11 * 1024 * 1024 + 7);
    let descriptor = layer_descriptor(&data);

    // The producer sends 1 MiB, a fifth of a chunk, and waits until the
    // registry has stored some of it: the PATCH body streams, it does not
    // wait for a whole chunk.
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let (first, rest) = data.split_at(1024 * 1024);
    let (first, rest) = (first.to_vec(), rest.to_vec());
    let registry_directory = registry.directory().to_path_buf();
    let end = descriptor.clone();
    let producer = std::thread::spawn(move || {
        sender
            .blocking_send(StreamPiece::Bytes(first.into()))
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut held = 0;
        while held == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            held = bytes_held_in_uploads(&registry_directory, "streamed");
        }
        for piece in rest.chunks(300 * 1024) {
            sender
                .blocking_send(StreamPiece::Bytes(bytes::Bytes::copy_from_slice(piece)))
                .unwrap();
        }
        sender
            .blocking_send(StreamPiece::End(Box::new(end)))
            .unwrap();
        held
    });
    let stored = sink.upload_streamed(receiver).unwrap();
    let held_before_the_rest = producer.join().unwrap();
    assert!(
        held_before_the_rest > 0 && held_before_the_rest <= 1024 * 1024,
        "the registry held {held_before_the_rest} bytes while the producer waited"
    );
    assert_eq!(stored, descriptor);
    // Chunks of 5 MiB, 5 MiB and the last 1 MiB and 7 bytes, each a PATCH;
    // the PUT only names the digest.
    assert_eq!(
        registry.count_requests("PATCH", "/streamed/blobs/uploads"),
        3,
        "{}",
        registry.log()
    );
    assert_eq!(registry.count_requests("PUT", "/streamed/blobs/uploads"), 1);
    assert!(sink.has_blob(&descriptor).unwrap());
    assert!(
        std::fs::read(registry.blob_path(descriptor.digest())).unwrap() == data,
        "the registry holds other bytes"
    );
}

#[test]
fn streamed_blob_ending_on_a_chunk_boundary_sends_no_empty_chunk() {
    let registry = TestRegistry::start();
    let sink = RegistrySink::new(small_chunks(), reference(&registry, "boundary"));
    let data = common::registry_images::noise(8, 10 * 1024 * 1024);
    let descriptor = stream_blob(&sink, data.clone(), Some(layer_descriptor(&data))).unwrap();
    assert_eq!(
        registry.count_requests("PATCH", "/boundary/blobs/uploads"),
        2,
        "{}",
        registry.log()
    );
    assert_eq!(registry.count_requests("PUT", "/boundary/blobs/uploads"), 1);
    assert!(std::fs::read(registry.blob_path(descriptor.digest())).unwrap() == data);
}

#[test]
fn streamed_chunks_are_the_client_chunk_size() {
    // 16 MiB by default: a 17 MiB blob is one full chunk and the rest, not
    // four of the 5 MiB minimum (each chunk boundary is a round trip in
    // which nothing is sent).
    let registry = TestRegistry::start();
    let sink = RegistrySink::new(client(), reference(&registry, "default"));
    let data = common::registry_images::noise(9, 17 * 1024 * 1024 + 3);
    let descriptor = stream_blob(&sink, data.clone(), Some(layer_descriptor(&data))).unwrap();
    assert_eq!(
        registry.count_requests("PATCH", "/default/blobs/uploads"),
        2,
        "{}",
        registry.log()
    );
    assert!(std::fs::read(registry.blob_path(descriptor.digest())).unwrap() == data);
}

#[test]
fn small_streamed_blob_goes_up_in_one_patch() {
    use hoist::image::Sink as _;
    let registry = TestRegistry::start();
    let sink = RegistrySink::new(client(), reference(&registry, "small"));
    let data = common::registry_images::noise(5, 700 * 1024);
    let descriptor = stream_blob(&sink, data.clone(), Some(layer_descriptor(&data))).unwrap();
    assert_eq!(registry.count_requests("PATCH", "/small/blobs/uploads"), 1);
    assert_eq!(registry.count_requests("PUT", "/small/blobs/uploads"), 1);
    assert!(sink.has_blob(&descriptor).unwrap());
    assert!(std::fs::read(registry.blob_path(descriptor.digest())).unwrap() == data);
}

#[test]
fn abandoned_or_misdescribed_streams_store_nothing() {
    use hoist::image::Sink as _;
    let registry = TestRegistry::start();
    let sink = RegistrySink::new(client(), reference(&registry, "broken"));
    let data = common::registry_images::noise(8, 7 * 1024 * 1024);

    // The layer failed half way: the channel closes without an end.
    let error = stream_blob(&sink, data.clone(), None).unwrap_err();
    assert!(error.to_string().contains("abandoned"), "{error}");
    assert!(!sink.has_blob(&layer_descriptor(&data)).unwrap());
    // The chunk already sent is dropped at once: the upload is cancelled.
    let log = registry.log();
    assert_eq!(
        registry.count_requests("DELETE", "/broken/blobs/uploads/"),
        1,
        "{log}"
    );
    assert!(
        log.lines()
            .any(|line| line.contains("\"DELETE /v2/broken/blobs/uploads/")
                && line.contains("\" 204 ")),
        "{log}"
    );

    // A descriptor that does not match the bytes: the registry refuses the
    // digest, and nothing is stored under either digest.
    let other = common::registry_images::noise(9, 16);
    let wrong = oci_spec::image::Descriptor::new(
        oci_spec::image::MediaType::ImageLayerGzip,
        data.len() as u64,
        hoist::oci::sha256_digest(&other),
    );
    let error = stream_blob(&sink, data.clone(), Some(wrong.clone())).unwrap_err();
    assert!(
        error.to_string().contains(wrong.digest().as_ref()),
        "{error}"
    );
    assert!(!sink.has_blob(&wrong).unwrap());
    assert!(!sink.has_blob(&layer_descriptor(&data)).unwrap());
}
