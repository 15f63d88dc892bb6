//! What a push does side by side, seen by a gate in front of a real
//! `docker-registry`: the gate holds each request of one kind until four
//! wait together, so a client that sends them one at a time fails (after a
//! few seconds a request) instead of passing by luck. Blob uploads run four
//! at a time whatever `-j` says; the tags of an image go up side by side, and
//! so do the images of one spec pushed to their repositories.

use crate::common::hoist::{Layout, fixture, hoist};
use crate::common::http::TestServer;
use crate::common::proxy::{Gate, start_proxy};
use crate::common::registry::{TestRegistry, registry_digest};
use std::sync::Arc;

/// A proxy in front of `registry` that holds the requests `holds` picks
/// (by method and path) at a gate for four.
fn gated_proxy(
    registry: &TestRegistry,
    holds: fn(&hyper::Method, &str) -> bool,
) -> (TestServer, Arc<Gate>) {
    gated_proxy_for(registry, 4, holds)
}

/// A proxy in front of `registry` that holds the requests `holds` picks
/// at a gate for `count`.
fn gated_proxy_for(
    registry: &TestRegistry,
    count: usize,
    holds: fn(&hyper::Method, &str) -> bool,
) -> (TestServer, Arc<Gate>) {
    let gate = Arc::new(Gate::new(count));
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

/// True for a manifest PUT by tag (not by digest).
fn is_tag_put(method: &hyper::Method, path: &str) -> bool {
    method == hyper::Method::PUT
        && path
            .rsplit_once("/manifests/")
            .is_some_and(|(_, reference)| !reference.starts_with("sha256:"))
}

#[test]
fn the_tags_of_a_push_go_up_side_by_side() {
    // Each tag is its own manifest PUT and a registry keeps no order among
    // them: a proxy holds every PUT by tag until four wait together.
    let registry = TestRegistry::start();
    let (proxy, gate) = gated_proxy(&registry, is_tag_put);
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

#[test]
fn the_images_of_a_spec_are_pushed_side_by_side() {
    // Three images, each to its own repository: a proxy holds each tag PUT
    // until three wait together, so pushing one image after another fails.
    let registry = TestRegistry::start();
    let (proxy, gate) = gated_proxy_for(&registry, 3, is_tag_put);
    let project = tempfile::tempdir().unwrap();
    let names = ["web", "api", "worker"];
    let mut spec = String::new();
    for name in names {
        let source = project.path().join(name);
        std::fs::create_dir_all(&source).unwrap();
        std::fs::write(source.join("name.txt"), format!("{name}\n")).unwrap();
        spec.push_str(&format!(
            "[[image]]\nname = \"{name}\"\nrepository = \"{}/org/{name}\"\n\
             source-date-epoch = 1700000000\n\
             [[image.layer]]\nsource = \"{name}\"\ntarget = \"/srv\"\n\n",
            proxy.host()
        ));
    }
    std::fs::write(project.path().join("hoist.toml"), spec).unwrap();
    let pushed = hoist(["build", "--json", "--no-cache", "--push", "--tag", "1"])
        .current_dir(project.path())
        .run()
        .success();
    assert!(
        gate.most() >= 3,
        "at most {} images were tagged at once",
        gate.most()
    );
    // Each repository holds its own image under the tag, and the output
    // events name them all, whatever order they finished in.
    let outputs: Vec<serde_json::Value> = pushed
        .lines()
        .into_iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["event"] == "output")
        .collect();
    assert_eq!(outputs.len(), names.len(), "{outputs:?}");
    for name in names {
        let event = outputs
            .iter()
            .find(|event| event["image"] == name)
            .unwrap_or_else(|| panic!("no output event for {name}: {outputs:?}"));
        assert_eq!(
            registry_digest(&format!("{}/org/{name}:1", registry.host())),
            event["digest"].as_str().unwrap(),
            "{name}"
        );
    }
}
