//! What a push does side by side, seen by a gate in front of a real
//! `docker-registry`: the gate holds each request of one kind until four
//! wait together, so a client that sends them one at a time fails (after a
//! few seconds a request) instead of passing by luck. Blob uploads run four
//! at a time whatever `-j` says; the tags of an image go up side by side.

mod common;

use common::hoist::{Layout, fixture, hoist, sha256_hex};
use common::http::TestServer;
use common::proxy::{Gate, start_proxy};
use common::registry::TestRegistry;
use common::run;
use std::process::Command;
use std::sync::Arc;

/// The digest the registry gives a reference: the sha256 of its manifest.
fn registry_digest(reference: &str) -> String {
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]));
    format!("sha256:{}", sha256_hex(raw.as_bytes()))
}

/// A proxy in front of `registry` that holds the requests `holds` picks
/// (by method and path) at a gate for four.
fn gated_proxy(
    registry: &TestRegistry,
    holds: fn(&hyper::Method, &str) -> bool,
) -> (TestServer, Arc<Gate>) {
    let gate = Arc::new(Gate::new(4));
    let proxy = start_proxy(registry, {
        let gate = gate.clone();
        move |upstream, request| {
            let gate = gate.clone();
            async move {
                if holds(request.method(), request.uri().path()) {
                    gate.pass().await;
                }
                upstream.forward(request).await
            }
        }
    });
    (proxy, gate)
}

#[test]
fn blob_uploads_run_four_at_a_time_even_with_one_job() {
    // Uploads wait on round trips, not on the cores: with `-j 1` hoist still
    // has four in flight. A proxy in front of the registry holds each
    // upload's opening POST until four wait together.
    let registry = TestRegistry::start();
    let (proxy, gate) = gated_proxy(&registry, |method, path| {
        method == hyper::Method::POST && path.ends_with("/blobs/uploads/")
    });
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source");
    hoist(["build", "-q", "--no-cache", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("oci:{}:hello", source.display()))
        .run()
        .success();
    let layout = Layout::open(&source);
    let blobs = layout.platform_manifests("hello").len() * 2 + 1;
    assert!(blobs >= 4, "the example has at least four blobs");

    let destination = format!("docker://{}/gated/hello:1", proxy.host());
    let copied = hoist(["copy", "-q", "-j", "1"])
        .arg(format!("oci:{}:hello", source.display()))
        .arg(&destination)
        .run()
        .success();
    assert_eq!(
        copied.last_line_digest(),
        layout.tagged_digest("hello"),
        "digests unchanged"
    );
    assert!(
        gate.most() >= 4,
        "at most {} uploads were in flight at once",
        gate.most()
    );
    // The registry holds what was copied.
    assert_eq!(
        registry_digest(&format!("{}/gated/hello:1", registry.host())),
        layout.tagged_digest("hello")
    );
}

#[test]
fn the_tags_of_a_push_go_up_side_by_side() {
    // Each tag is its own manifest PUT and a registry keeps no order among
    // them: a proxy holds every PUT by tag until four wait together.
    let registry = TestRegistry::start();
    let (proxy, gate) = gated_proxy(&registry, |method, path| {
        method == hyper::Method::PUT
            && path
                .rsplit_once("/manifests/")
                .is_some_and(|(_, reference)| !reference.starts_with("sha256:"))
    });
    let pushed = hoist(["build", "-q", "--no-cache", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("docker://{}/tagged/hello:1", proxy.host()))
        .args(["--tag", "a", "--tag", "b", "--tag", "c"])
        .run()
        .success();
    assert!(
        gate.most() >= 4,
        "at most {} tags were pushed at once",
        gate.most()
    );
    for tag in ["1", "a", "b", "c"] {
        assert_eq!(
            registry_digest(&format!("{}/tagged/hello:{tag}", registry.host())),
            pushed.last_line_digest(),
            "tag {tag}"
        );
    }
}
