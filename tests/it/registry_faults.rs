//! Retries and resumed uploads: a loopback proxy between hoist and a real
//! `docker-registry` answers 500 and 429 to the first requests, drops the
//! connection after forwarding the first chunk, and cuts a monolithic
//! upload off mid-body. The push must still succeed and skopeo verify it.

use crate::common;

use crate::common::http::{HandlerError, Reply, TestServer, reply};
use crate::common::proxy::{Upstream, start_proxy};
use crate::common::registry::TestRegistry;
use crate::common::registry_images::{large_image, small_image};
use crate::common::run;
use hoist::image::model::ChildEntry;
use hoist::image::{Index, Manifest, publish};
use hoist::progress::Silent;
use hoist::registry::{
    ClientOptions, CredentialEnvironment, RegistryClient, RegistrySink, RetryPolicy,
};
use http_body_util::BodyExt as _;
use hyper::Request;
use hyper::body::Incoming;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Default)]
struct Faults {
    repository_requests: AtomicUsize,
    server_errors: AtomicUsize,
    throttled: AtomicUsize,
    dropped_after_chunk: AtomicUsize,
    cut_mid_body: AtomicUsize,
    cut_mid_chunk: AtomicUsize,
    /// Uploads (by path) that have had a PATCH: a streamed chunk carries no
    /// range, so this tells a later chunk from the first.
    patched_uploads: std::sync::Mutex<std::collections::HashSet<String>>,
}

async fn forward(
    upstream: Arc<Upstream>,
    request: Request<Incoming>,
    faults: Arc<Faults>,
) -> Reply {
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let method = request.method().clone();
    let in_repository = path.starts_with("/v2/") && path.len() > 4;
    if in_repository {
        let number = faults.repository_requests.fetch_add(1, Ordering::SeqCst);
        if number == 0 {
            faults.server_errors.fetch_add(1, Ordering::SeqCst);
            return reply(500, &[], "injected failure");
        }
        if number == 1 {
            faults.throttled.fetch_add(1, Ordering::SeqCst);
            return reply(429, &[("retry-after", "1".to_string())], "slow down");
        }
    }
    let is_upload_body = path.contains("/blobs/uploads/")
        && (method == hyper::Method::PATCH || method == hyper::Method::PUT);
    let (parts, body) = request.into_parts();
    // A monolithic PUT with a body: read some of it, then hang up.
    if is_upload_body
        && method == hyper::Method::PUT
        && parts
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v != "0")
        && faults
            .cut_mid_body
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    {
        let mut body = body;
        let _ = body.frame().await;
        return Err::<_, HandlerError>("cut the upload off mid-body".into());
    }
    // A later chunk (not at offset 0): read some of it, then hang up; the
    // registry never sees it, so the upload can resume where it stands.
    let later_chunk = is_upload_body && method == hyper::Method::PATCH && {
        let upload = path.split('?').next().unwrap_or_default().to_string();
        let patched_before = !faults.patched_uploads.lock().unwrap().insert(upload);
        match parts
            .headers
            .get("content-range")
            .and_then(|v| v.to_str().ok())
        {
            Some(range) => !range.starts_with("0-"),
            None => patched_before,
        }
    };
    if later_chunk
        && faults
            .cut_mid_chunk
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    {
        let mut body = body;
        let _ = body.frame().await;
        return Err::<_, HandlerError>("cut the chunk off mid-body".into());
    }
    let body = body.collect().await?.to_bytes();
    let answer = upstream.send(&method, &path, &parts.headers, body).await?;
    // The first PATCH reaches the registry, but its answer is lost. The
    // registry's upload state then no longer matches the location hoist
    // holds, so hoist must start that upload over.
    if is_upload_body
        && method == hyper::Method::PATCH
        && faults
            .dropped_after_chunk
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    {
        return Err::<_, HandlerError>("dropped the connection after the chunk".into());
    }
    upstream.relay(answer).await
}

/// The fault-injecting proxy in front of `registry`.
fn start_faults_proxy(registry: &TestRegistry, faults: &Arc<Faults>) -> TestServer {
    let faults = faults.clone();
    start_proxy(registry, move |upstream, request| {
        forward(upstream, request, faults.clone())
    })
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 6,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
    }
}

#[test]
fn push_survives_errors_throttling_and_resets() {
    let registry = TestRegistry::start();
    let faults = Arc::new(Faults::default());
    let proxy = start_faults_proxy(&registry, &faults);

    let directory = tempfile::tempdir().unwrap();
    let children = vec![
        (
            Manifest::Image(large_image(directory.path(), 11, 12 * 1024 * 1024)),
            ChildEntry {
                platform: Some("linux/amd64".parse().unwrap()),
                ..Default::default()
            },
        ),
        (
            Manifest::Image(small_image("faults", "linux/arm64")),
            ChildEntry {
                platform: Some("linux/arm64".parse().unwrap()),
                ..Default::default()
            },
        ),
    ];
    let index = Manifest::Index(Index::from_children(children, &BTreeMap::new()).unwrap());
    let client = RegistryClient::new(ClientOptions {
        credential_environment: CredentialEnvironment::default(),
        monolithic_limit: 1024 * 1024,
        chunk_size: 5 * 1024 * 1024,
        retry: quick_retries(),
        ..ClientOptions::default()
    })
    .unwrap();
    let target = format!("{}/flaky:1", proxy.host()).parse().unwrap();
    publish(
        &index,
        &RegistrySink::new(client, target),
        &["1".to_string()],
        &Silent,
    )
    .unwrap();

    for (name, counter) in [
        ("500", &faults.server_errors),
        ("429", &faults.throttled),
        ("dropped after chunk", &faults.dropped_after_chunk),
        ("cut mid-body", &faults.cut_mid_body),
        ("cut mid-chunk", &faults.cut_mid_chunk),
    ] {
        assert_eq!(
            counter.load(Ordering::SeqCst),
            1,
            "fault {name} was not injected"
        );
    }
    // First upload: one PATCH, answer lost, restart. Second upload: first
    // chunk, second chunk cut off, status asked (204 with the offset), the
    // second chunk sent again from there, the rest on the PUT.
    let log = registry.log();
    assert_eq!(
        registry.count_requests("PATCH", "/flaky/blobs/uploads"),
        3,
        "{log}"
    );
    let status_answers = log
        .lines()
        .filter(|line| line.contains("\"GET /v2/flaky/blobs/uploads/") && line.contains("\" 204 "))
        .count();
    assert_eq!(status_answers, 1, "{log}");

    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/flaky:1", registry.host()),
    ]));
    assert_eq!(raw.as_bytes(), index.manifest_blob().bytes());
    let out = tempfile::tempdir().unwrap();
    run(Command::new("skopeo").args([
        "copy",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{}/flaky:1", registry.host()),
        &format!("oci:{}:copied", out.path().join("layout").display()),
    ]));
}

#[test]
fn streamed_upload_resumes_a_chunk_cut_off_mid_body() {
    use hoist::registry::StreamPiece;
    let registry = TestRegistry::start();
    // Only the cut chunk is armed: the faults that fire once are marked as
    // already fired, and the first repository requests as already counted.
    let faults = Arc::new(Faults {
        repository_requests: AtomicUsize::new(2),
        dropped_after_chunk: AtomicUsize::new(1),
        cut_mid_body: AtomicUsize::new(1),
        ..Faults::default()
    });
    let proxy = start_faults_proxy(&registry, &faults);
    let client = RegistryClient::new(ClientOptions {
        credential_environment: CredentialEnvironment::default(),
        chunk_size: 5 * 1024 * 1024,
        retry: quick_retries(),
        ..ClientOptions::default()
    })
    .unwrap();
    let sink = RegistrySink::new(
        client,
        format!("{}/streamed:1", proxy.host()).parse().unwrap(),
    );
    let data = common::registry_images::noise(12, 13 * 1024 * 1024 + 5);
    let descriptor = oci_spec::image::Descriptor::new(
        oci_spec::image::MediaType::ImageLayerGzip,
        data.len() as u64,
        hoist::oci::sha256_digest(&data),
    );

    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let producer = {
        let data = data.clone();
        let descriptor = descriptor.clone();
        std::thread::spawn(move || {
            for piece in data.chunks(256 * 1024) {
                let piece = StreamPiece::Bytes(bytes::Bytes::copy_from_slice(piece));
                if sender.blocking_send(piece).is_err() {
                    return;
                }
            }
            let _ = sender.blocking_send(StreamPiece::End(Box::new(descriptor)));
        })
    };
    let stored = sink.upload_streamed(receiver).unwrap();
    producer.join().unwrap();
    assert_eq!(stored, descriptor);
    assert_eq!(faults.cut_mid_chunk.load(Ordering::SeqCst), 1);

    // Chunk one, chunk two cut off, the registry asked where it stands,
    // chunk two again from the bytes kept for it, chunk three, and the PUT.
    let log = registry.log();
    assert_eq!(
        registry.count_requests("PATCH", "/streamed/blobs/uploads"),
        3,
        "the cut chunk never reached the registry:\n{log}"
    );
    let status_answers = log
        .lines()
        .filter(|line| {
            line.contains("\"GET /v2/streamed/blobs/uploads/") && line.contains("\" 204 ")
        })
        .count();
    assert_eq!(status_answers, 1, "{log}");
    assert_eq!(
        registry.count_requests("PUT", "/streamed/blobs/uploads"),
        1,
        "{log}"
    );
    let kept = std::fs::read(registry.blob_path(descriptor.digest())).unwrap();
    assert!(kept == data, "the registry holds other bytes");
}
