//! The registry through the `hoist` binary, against a real `docker-registry`:
//! build outputs and `--push`, registry base images, a push killed midway,
//! plain HTTP and `--insecure-registry`, progress on a terminal, and the
//! errors users meet. skopeo and umoci read back what hoist wrote.

use crate::common::hoist::{
    HoistOutput, Layout, copy_tree, expected_hello, fixture, hoist_in, read_digest_file,
    unpack_platform,
};
use crate::common::registry::{TestRegistry, registry_digest};
use crate::common::registry_images::noise;
use crate::common::run;
use crate::common::tree::assert_same_tree;
use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// True when the registry has no manifest under this tag.
fn tag_missing(reference: &str) -> bool {
    let output = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo runs");
    if output.status.success() {
        return false;
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("manifest unknown") || stderr.contains("not found"),
        "skopeo failed for another reason than a missing tag: {stderr}"
    );
    true
}

/// `skopeo copy --all` from the registry into a layout tagged `copy`, which
/// checks every blob against its digest.
fn skopeo_copy_all(reference: &str, layout: &Path) -> Layout {
    run(Command::new("skopeo").args([
        "copy",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:copy", layout.display()),
    ]));
    Layout::open(layout)
}

fn json_events(output: &HoistOutput) -> Vec<Value> {
    output
        .lines()
        .iter()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not JSON ({error}): {line}\n{}", output.stderr))
        })
        .collect()
}

fn upload_requests(registry: &TestRegistry) -> usize {
    registry.count_requests("POST", "/blobs/uploads/")
        + registry.count_requests("PUT", "/blobs/uploads/")
        + registry.count_requests("PATCH", "/blobs/uploads/")
}

#[test]
fn build_output_reads_back_and_a_second_push_uploads_nothing() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let target = format!("{}/hello:1.0", registry.host());
    let digest_file = work.join("digest");
    let first = hoist_in(work, ["build", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("--output")
        .arg(format!("docker://{target}"))
        .args(["--tag", "latest", "--digest-file"])
        .arg(&digest_file)
        .run()
        .success();
    let digest = first.last_line_digest();
    assert_eq!(read_digest_file(&digest_file), digest);
    let summary = first
        .lines()
        .into_iter()
        .find(|line| line.starts_with("pushed hello to "))
        .unwrap_or_else(|| panic!("no summary line:\n{}", first.stdout))
        .to_string();
    assert!(
        summary.contains(&format!("{target} (1.0, latest)"))
            && summary.contains("5 blobs uploaded")
            && summary.contains("0 already there"),
        "{summary}"
    );

    // The registry gives both tags the digest hoist reported.
    assert_eq!(registry_digest(&target), digest);
    assert_eq!(
        registry_digest(&format!("{}/hello:latest", registry.host())),
        digest
    );

    // skopeo copies every platform out; umoci unpacks each to the source tree.
    let copy = skopeo_copy_all(&target, &work.join("copy"));
    assert_eq!(copy.tagged_digest("copy"), digest);
    let platforms = copy.platform_manifests("copy");
    assert_eq!(platforms.len(), 2, "{platforms:?}");
    for (platform, manifest) in &platforms {
        copy.verify_diff_ids(manifest);
        let architecture = platform.rsplit('/').next().unwrap();
        let bundle = unpack_platform(
            &format!("oci:{}:copy", copy.dir.display()),
            architecture,
            work,
        );
        assert_same_tree(&expected_hello(architecture), &bundle.join("rootfs"));
    }

    // The same image again: every blob is already there, nothing is uploaded.
    let uploads_before = upload_requests(&registry);
    let second = hoist_in(work, ["build", "--json", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("--output")
        .arg(format!("docker://{target}"))
        .args(["--tag", "latest"])
        .run()
        .success();
    let events = json_events(&second);
    let blobs: Vec<&Value> = events
        .iter()
        .filter(|event| event["event"] == "blob")
        .collect();
    assert_eq!(blobs.len(), 5, "{}", second.stdout);
    assert!(
        blobs.iter().all(|event| event["outcome"] == "skipped"),
        "{}",
        second.stdout
    );
    let output = events
        .iter()
        .find(|event| event["event"] == "output")
        .expect("an output event");
    assert_eq!(output["uploaded"], 0);
    assert_eq!(output["existed"], 5);
    assert_eq!(output["digest"], digest.as_str());
    assert_eq!(events.last().unwrap()["digest"], digest.as_str());
    assert_eq!(
        upload_requests(&registry),
        uploads_before,
        "{}",
        registry.log()
    );
}

#[test]
fn push_goes_to_the_spec_repository_with_its_tags() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let spec_directory = work.join("spec");
    copy_tree(&fixture("hello"), &spec_directory);
    let spec_path = spec_directory.join("hoist.toml");
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    let spec = spec.replacen(
        "source-date-epoch = 1700000000\n",
        &format!(
            "source-date-epoch = 1700000000\nrepository = \"{}/team/hello\"\ntags = [\"v1\", \"stable\"]\n",
            registry.host()
        ),
        1,
    );
    std::fs::write(&spec_path, spec).unwrap();
    let pushed = hoist_in(work, ["build", "--push", "--tag", "extra", "-f"])
        .arg(&spec_path)
        .run()
        .success();
    let digest = pushed.last_line_digest();
    for tag in ["v1", "stable", "extra"] {
        assert_eq!(
            registry_digest(&format!("{}/team/hello:{tag}", registry.host())),
            digest,
            "tag {tag}"
        );
    }
    assert!(tag_missing(&format!(
        "{}/team/hello:latest",
        registry.host()
    )));
}

/// Builds the hello fixture into a layout and pushes it with skopeo as
/// `HOST/base:1`; returns the layout.
fn push_hello_base(registry: &TestRegistry, work: &Path) -> Layout {
    let layout = work.join("base-layout");
    hoist_in(work, ["build", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("oci:{}:hello", layout.display()))
        .run()
        .success();
    run(Command::new("skopeo").args([
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:hello", layout.display()),
        &format!("docker://{}/base:1", registry.host()),
    ]));
    Layout::open(layout)
}

fn write_child_spec(directory: &Path, base: &str, platforms: &str) -> PathBuf {
    std::fs::create_dir_all(directory).unwrap();
    std::fs::write(directory.join("extra.txt"), "on top of the base\n").unwrap();
    let spec = format!(
        r#"[[image]]
name = "child"
platforms = [{platforms}]
base = "{base}"
source-date-epoch = 1700000000

[image.config]
env = {{ EXTRA = "yes", GREETING = "bonjour" }}

[[image.layer]]
files = [{{ source = "extra.txt", target = "/extra.txt" }}]
"#
    );
    let path = directory.join("hoist.toml");
    std::fs::write(&path, spec).unwrap();
    path
}

fn config_env(layout: &Layout, manifest: &str) -> Vec<String> {
    let manifest = layout.json(manifest);
    let config = layout.json(manifest["config"]["digest"].as_str().unwrap());
    config["config"]["Env"]
        .as_array()
        .expect("config has Env")
        .iter()
        .map(|entry| entry.as_str().unwrap().to_string())
        .collect()
}

fn layer_digests(layout: &Layout, manifest: &str) -> Vec<String> {
    layout.json(manifest)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn registry_base_image_by_tag_and_by_digest() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let base = push_hello_base(&registry, work);
    let base_digest = base.tagged_digest("hello");
    let base_manifests = base.platform_manifests("hello");

    for (name, reference) in [
        ("tag", format!("{}/base:1", registry.host())),
        (
            "pinned",
            format!("{}/base:1@{base_digest}", registry.host()),
        ),
    ] {
        let spec = write_child_spec(
            &work.join(name),
            &reference,
            "\"linux/amd64\", \"linux/arm64\"",
        );
        let out = work.join(format!("{name}-out"));
        hoist_in(work, ["build", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("oci:{}:child", out.display()))
            .run()
            .success();
        let child = Layout::open(out);
        let child_manifests = child.platform_manifests("child");
        assert_eq!(child_manifests.len(), 2, "{child_manifests:?}");
        for (platform, manifest) in &child_manifests {
            let (_, base_manifest) = base_manifests
                .iter()
                .find(|(base_platform, _)| base_platform == platform)
                .unwrap_or_else(|| panic!("base has no {platform}"));
            let base_layers = layer_digests(&base, base_manifest);
            let child_layers = layer_digests(&child, manifest);
            assert_eq!(
                child_layers.len(),
                base_layers.len() + 1,
                "{name} {platform}"
            );
            assert_eq!(child_layers[..base_layers.len()], base_layers[..]);
            child.verify_diff_ids(manifest);
            let environment = config_env(&child, manifest);
            for expected in [
                "EXTRA=yes",
                "GREETING=bonjour",
                "PATH=/usr/local/bin:/usr/bin:/bin",
            ] {
                assert!(
                    environment.iter().any(|entry| entry == expected),
                    "{name} {platform}: {expected} not in {environment:?}"
                );
            }
            assert!(
                !environment.iter().any(|entry| entry == "GREETING=hello"),
                "{environment:?}"
            );
        }
    }

    // A platform the base lacks: the error lists the ones it has.
    let spec = write_child_spec(
        &work.join("s390x"),
        &format!("{}/base:1", registry.host()),
        "\"linux/s390x\"",
    );
    hoist_in(work, ["build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}", work.join("s390x-out").display()))
        .run()
        .failure(1)
        .stderr_mentions(&["linux/s390x", "linux/amd64", "linux/arm64", "base:1"]);
}

/// A TCP proxy on 127.0.0.1 that forwards to `upstream`, sending at most
/// `rate` bytes per second towards it and counting what it forwarded.
struct SlowProxy {
    port: u16,
    forwarded: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl SlowProxy {
    fn start(upstream: u16, rate: u64) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let forwarded = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopping) = (forwarded.clone(), stop.clone());
        std::thread::spawn(move || {
            // Bounded: ten minutes of polling at most.
            for _ in 0..60_000 {
                if stopping.load(Ordering::Relaxed) {
                    return;
                }
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                            continue;
                        };
                        let (client_read, server_write) = (client.try_clone().unwrap(), server);
                        let (server_read, client_write) =
                            (server_write.try_clone().unwrap(), client);
                        let counter = counter.clone();
                        let stopping = stopping.clone();
                        std::thread::spawn(move || {
                            pump(client_read, server_write, Some((rate, counter, stopping)))
                        });
                        std::thread::spawn(move || pump(server_read, client_write, None));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        SlowProxy {
            port,
            forwarded,
            stop,
        }
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies until either side closes; throttled when `limit` is given.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    limit: Option<(u64, Arc<AtomicU64>, Arc<AtomicBool>)>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if to.write_all(&buffer[..read]).is_err() {
            break;
        }
        if let Some((rate, counter, stop)) = &limit {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            counter.fetch_add(read as u64, Ordering::Relaxed);
            std::thread::sleep(Duration::from_micros(read as u64 * 1_000_000 / rate));
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

#[test]
fn a_push_killed_midway_leaves_the_old_image_and_a_rerun_completes() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();

    // The tag first holds the small hello image.
    let old = hoist_in(work, ["build", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("docker://{}/big:1", registry.host()))
        .run()
        .success()
        .last_line_digest();

    // A spec with 24 MiB that do not compress.
    let spec_directory = work.join("big");
    std::fs::create_dir_all(spec_directory.join("data")).unwrap();
    for part in 0..3u64 {
        std::fs::write(
            spec_directory.join(format!("data/part-{part}.bin")),
            noise(part + 1, 8 << 20),
        )
        .unwrap();
    }
    std::fs::write(
        spec_directory.join("hoist.toml"),
        "[[image]]\nname = \"big\"\nplatforms = [\"linux/amd64\"]\ncompression = \"gzip\"\ncompression-level = 1\nsource-date-epoch = 1700000000\n\n[[image.layer]]\nsource = \"data\"\ntarget = \"/data\"\n",
    )
    .unwrap();

    // Through a proxy sending 4 MiB/s, killed once 6 MiB went through.
    let proxy = SlowProxy::start(registry.port(), 4 << 20);
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["build", "-f"])
        .arg(spec_directory.join("hoist.toml"))
        .arg("-o")
        .arg(format!("docker://127.0.0.1:{}/big:1", proxy.port))
        .env("HOIST_CACHE", work.join("cache"))
        .env("DOCKER_CONFIG", work.join("docker"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut killed = false;
    for _ in 0..1200 {
        if proxy.forwarded.load(Ordering::Relaxed) > 6 << 20 {
            child.kill().unwrap();
            killed = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    assert!(
        killed,
        "hoist finished ({status}) before 6 MiB went through the proxy"
    );
    drop(proxy);

    // The tag still names the old, complete image.
    let tagged = format!("{}/big:1", registry.host());
    assert_eq!(registry_digest(&tagged), old);

    // Again, straight to the registry: it finishes and every blob verifies.
    let rerun = hoist_in(work, ["build", "-f"])
        .arg(spec_directory.join("hoist.toml"))
        .arg("-o")
        .arg(format!("docker://{tagged}"))
        .run()
        .success();
    let digest = rerun.last_line_digest();
    assert_ne!(digest, old);
    assert_eq!(registry_digest(&tagged), digest);
    let copy = skopeo_copy_all(&tagged, &work.join("copy"));
    for (_, manifest) in copy.platform_manifests("copy") {
        assert_eq!(copy.verify_diff_ids(&manifest), 1);
    }
}

#[test]
fn errors_name_the_reference_and_the_cause() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let build_to = |output: &str| {
        hoist_in(work, ["build", "-f"])
            .arg(fixture("hello/hoist.toml"))
            .arg("-o")
            .arg(output)
            .run()
    };

    // A malformed reference fails before anything is built.
    let malformed = build_to("docker://UPPER/x")
        .failure(1)
        .stderr_mentions(&["UPPER/x", "lowercase"]);
    assert!(malformed.stdout.is_empty(), "{}", malformed.stdout);

    // Nobody listens: the error names the host; retries are bounded.
    build_to("docker://127.0.0.1:1/x")
        .failure(1)
        .stderr_mentions(&["127.0.0.1:1", "connection", "refused"]);

    // A name that does not resolve (`.invalid` never does) is not retried.
    let unknown = build_to("docker://registry.nonexistent.invalid/x:1")
        .failure(1)
        .stderr_mentions(&["registry.nonexistent.invalid", "no such host"]);
    assert!(
        !unknown.stderr.contains("gave up after") && !unknown.stderr.contains("retrying"),
        "{}",
        unknown.stderr
    );

    // A 4xx shows the registry's code and the reference.
    let registry = TestRegistry::start();
    let missing = format!("{}/nothing/here:1", registry.host());
    hoist_in(work, ["copy"])
        .arg(format!("docker://{missing}"))
        .arg(format!("oci:{}", work.join("out").display()))
        .run()
        .failure(1)
        .stderr_mentions(&[&missing, "404", "MANIFEST_UNKNOWN"]);
}

/// Plain HTTP only for loopback names: `0.0.0.0` reaches this machine's
/// 127.0.0.1 on Linux but is not a loopback address, so it stands for a
/// remote registry without needing a network.
#[test]
fn plain_http_needs_insecure_registry_for_other_hosts() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let host = format!("0.0.0.0:{}", registry.port());
    let target = format!("docker://{host}/plain:1");
    hoist_in(work, ["build", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(&target)
        .run()
        .failure(1)
        .stderr_mentions(&[&host, "--insecure-registry"]);
    assert_eq!(
        registry.count_requests("GET", "/v2/")
            + registry.count_requests("HEAD", "/v2/")
            + registry.count_requests("POST", "/v2/"),
        0,
        "a request reached the registry over plain HTTP:\n{}",
        registry.log()
    );

    let digest = hoist_in(work, ["build", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(&target)
        .args(["--insecure-registry", &host])
        .run()
        .success()
        .last_line_digest();
    assert_eq!(
        registry_digest(&format!("{}/plain:1", registry.host())),
        digest
    );
}

/// On a terminal each blob gets a line: what happened to it and its size.
#[test]
fn a_terminal_shows_one_line_per_blob() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let command = format!(
        "{} build -f {} -o docker://{}/tty:1",
        env!("CARGO_BIN_EXE_hoist"),
        fixture("hello/hoist.toml").display(),
        registry.host()
    );
    let output = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("HOIST_CACHE", work.join("cache"))
        .env("DOCKER_CONFIG", work.join("docker"))
        .env("TERM", "xterm")
        .output()
        .expect("script runs (util-linux)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    // Progress redraws move the cursor rather than end lines: count matches.
    let uploaded = text.matches("uploaded sha256:").count();
    assert_eq!(uploaded, 5, "{text}");
    assert!(text.contains("pushed hello to"), "{text}");
}
