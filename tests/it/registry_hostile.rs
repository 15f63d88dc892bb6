//! What a registry must never get out of hoist, whatever it answers: the
//! registry's credentials on another origin (upload `Location`s, tag and
//! referrers `Link` pages and blob redirects pointing at a second loopback
//! port that logs every request), a move from HTTPS to plain HTTP, or
//! memory without bound (chunked manifests and token answers that never
//! end, the last also against the hoist binary under a memory rlimit).

use crate::common::certificates::make_server_certificates;
use crate::common::hoist::sha256_hex;
use crate::common::http::{Reply, TestServer, read_body, reply};
use crate::common::raw_http::{RawAnswer, RawServer};
use crate::common::registry_images::small_image;
use base64::Engine as _;
use hoist::image::{Manifest, publish};
use hoist::progress::Silent;
use hoist::registry::{
    Access, ClientOptions, CredentialEnvironment, GivenCredentials, Reference, RegistryClient,
    RegistryError, RegistrySink, RegistrySource,
};
use hoist::source::Source;
use std::collections::HashMap;
use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// How much an endless body sends at most: far past every cap, so only a
/// client that reads without one gets to the end.
const ENDLESS: u64 = 64 * 1024 * 1024;

fn client(credentials: Option<(&str, &str)>, ca: Option<&std::path::Path>) -> RegistryClient {
    RegistryClient::new(ClientOptions {
        credentials: credentials
            .map(|(user, password)| GivenCredentials::everywhere(user, password))
            .into_iter()
            .collect(),
        ca_certificates: ca.into_iter().map(|path| path.to_path_buf()).collect(),
        credential_environment: CredentialEnvironment::default(),
        ..ClientOptions::default()
    })
    .unwrap()
}

/// An error with its causes, as the command line prints it.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

/// (method, path, Authorization) of each request a server got.
type Log = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

fn record(log: &Log, request: &hyper::Request<hyper::body::Incoming>) {
    let authorization = request
        .headers()
        .get("authorization")
        .map(|value| value.to_str().unwrap_or("?").to_string());
    log.lock().unwrap().push((
        request.method().to_string(),
        request.uri().to_string(),
        authorization,
    ));
}

/// The other origin: stores what is uploaded to it, serves it back, and
/// would list a tag of its own.
fn other_origin(log: Log) -> TestServer {
    let blobs: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
    TestServer::start(move |request| {
        record(&log, &request);
        let blobs = blobs.clone();
        async move {
            let path = request.uri().path().to_string();
            let digest = crate::common::http::query_values(request.uri(), "digest");
            if request.method() == hyper::Method::PUT && path.starts_with("/upload/") {
                let body = read_body(request.into_body()).await?;
                let digest = digest.first().cloned().unwrap_or_default();
                blobs.lock().unwrap().insert(digest, body.to_vec());
                return reply(201, &[], "");
            }
            if let Some(digest) = path.strip_prefix("/blobs/") {
                let found = blobs.lock().unwrap().get(digest).cloned();
                return match found {
                    Some(bytes) => reply(200, &[], bytes),
                    None => reply(404, &[], ""),
                };
            }
            reply(200, &[], r#"{"name":"app","tags":["not-the-registrys"]}"#)
        }
    })
}

/// A registry behind Basic auth that sends uploads, blob downloads and the
/// next page of every listing to `other`.
fn registry_pointing_at(other: String, log: Log) -> TestServer {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:secret")
    );
    let manifests: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
    TestServer::start(move |request| {
        record(&log, &request);
        let authorized = request
            .headers()
            .get("authorization")
            .is_some_and(|value| value.as_bytes() == expected.as_bytes());
        let (manifests, other) = (manifests.clone(), other.clone());
        async move {
            if !authorized {
                let challenge = r#"Basic realm="test""#.to_string();
                return reply(401, &[("www-authenticate", challenge)], "");
            }
            answer_as_registry(request, &other, &manifests).await
        }
    })
}

async fn answer_as_registry(
    request: hyper::Request<hyper::body::Incoming>,
    other: &str,
    manifests: &Mutex<HashMap<String, Vec<u8>>>,
) -> Reply {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let link = |next: &str| ("link", format!("<http://{other}{next}>; rel=\"next\""));
    if path == "/v2/" {
        return reply(200, &[], "");
    }
    if path == "/v2/app/blobs/uploads/" {
        return reply(202, &[("location", format!("http://{other}/upload/1"))], "");
    }
    if let Some(digest) = path.strip_prefix("/v2/app/blobs/") {
        if method == hyper::Method::HEAD {
            return reply(404, &[], "");
        }
        return reply(
            307,
            &[("location", format!("http://{other}/blobs/{digest}"))],
            "",
        );
    }
    if let Some(target) = path.strip_prefix("/v2/app/manifests/") {
        if method == hyper::Method::PUT {
            let body = read_body(request.into_body()).await?.to_vec();
            let digest = format!("sha256:{}", sha256_hex(&body));
            let mut stored = manifests.lock().unwrap();
            stored.insert(target.to_string(), body.clone());
            stored.insert(digest.clone(), body);
            return reply(201, &[("docker-content-digest", digest)], "");
        }
        let found = manifests.lock().unwrap().get(target).cloned();
        return match found {
            Some(body) => reply(200, &[("content-type", OCI_MANIFEST.to_string())], body),
            None => reply(404, &[], ""),
        };
    }
    if path == "/v2/app/tags/list" {
        let next = link("/v2/app/tags/list?last=1");
        return reply(200, &[next], r#"{"name":"app","tags":["1"]}"#);
    }
    if let Some(subject) = path.strip_prefix("/v2/app/referrers/") {
        let next = link(&format!("/v2/app/referrers/{subject}?page=2"));
        let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        return reply(200, &[next], index);
    }
    reply(404, &[], "")
}

#[test]
fn credentials_never_reach_another_origin() {
    let other_log = Log::default();
    let registry_log = Log::default();
    let other = other_origin(other_log.clone());
    let registry = registry_pointing_at(other.host(), registry_log.clone());
    let client = client(Some(("alice", "secret")), None);
    let reference: Reference = format!("{}/app", registry.host()).parse().unwrap();

    // The upload goes where the registry says, without the credentials.
    let image = Manifest::Image(small_image("hostile", "linux/amd64"));
    let sink = RegistrySink::new(client.clone(), reference.clone());
    publish(&image, &sink, &["1".to_string()], &Silent).unwrap();

    // The blobs come back through the registry's redirects.
    let source = RegistrySource::new(client.clone(), reference.with_tag("1"));
    let Manifest::Image(pulled) = source.resolve().unwrap() else {
        panic!("an image was pushed");
    };
    let mut layer = Vec::new();
    pulled.layers[0]
        .open()
        .unwrap()
        .read_to_end(&mut layer)
        .unwrap();
    assert_eq!(layer.len() as u64, pulled.layers[0].size());

    // Listings whose next page is elsewhere.
    let repository = client.repository(&reference, Access::PULL);
    let tag_listing = repository.tags().map(|_| ());
    let subject = image.digest().clone();
    let referrer_listing = repository.referrers(&subject).map(|_| ());

    let seen = other_log.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|(method, path, _)| method == "PUT" && path.starts_with("/upload/")),
        "the upload went to the other origin: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(method, path, _)| method == "GET" && path.starts_with("/blobs/")),
        "the redirect was followed: {seen:?}"
    );
    for (method, path, authorization) in &seen {
        assert_eq!(
            authorization, &None,
            "{method} {path} reached the other origin with credentials"
        );
    }
    assert!(
        !seen.iter().any(|(_, path, _)| path.starts_with("/v2/")),
        "no listing page was asked of the other origin: {seen:?}"
    );
    // The registry itself did get them, so the check above could fail.
    assert!(
        registry_log
            .lock()
            .unwrap()
            .iter()
            .any(|(_, _, authorization)| authorization.is_some()),
        "the registry was sent credentials"
    );
    // Neither listing took the other server's page: both are refused.
    assert_foreign_page(tag_listing, &other.host());
    assert_foreign_page(referrer_listing, &other.host());
}

/// Why `source` could not be read.
fn resolve_error(source: &RegistrySource) -> hoist::source::SourceError {
    match source.resolve() {
        Ok(_) => panic!("{} was read", source.describe()),
        Err(error) => error,
    }
}

/// Asserts that a listing was refused for a next page on `other`.
fn assert_foreign_page(listed: Result<(), RegistryError>, other: &str) {
    let error = match listed {
        Ok(()) => panic!("a listing with a page on {other} was accepted"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("another server"), "{error}");
    assert!(
        error.contains(&format!("http://{other}/v2/app/")),
        "{error}"
    );
}

/// A manifest with no layers whose config is `config`.
fn manifest_of(config: &[u8]) -> Vec<u8> {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{}", sha256_hex(config)),
            "size": config.len(),
        },
        "layers": [],
    })
    .to_string()
    .into_bytes()
}

#[test]
fn an_https_registry_cannot_send_hoist_to_plain_http() {
    let directory = tempfile::tempdir().unwrap();
    let certificates = make_server_certificates(directory.path());
    let other = RawServer::start(|_| RawAnswer::status(201, &[]));
    let other_host = other.host();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let manifest = manifest_of(config);
    let registry = RawServer::start_tls(
        &certificates.server_certificate,
        &certificates.server_key,
        move |request| {
            let path = request.path.as_str();
            if path.starts_with("/v2/app/blobs/uploads/") {
                let location = format!("http://{other_host}/upload/1");
                RawAnswer::status(202, &[("location", location)])
            } else if path.starts_with("/v2/app/blobs/") && request.method == "GET" {
                let location = format!("http://{other_host}/blobs/config");
                RawAnswer::status(307, &[("location", location)])
            } else if path.starts_with("/v2/app/manifests/") && request.method == "GET" {
                RawAnswer::body(200, OCI_MANIFEST, manifest.clone())
            } else if path == "/v2/" {
                RawAnswer::status(200, &[])
            } else {
                RawAnswer::status(404, &[])
            }
        },
    );
    let client = client(None, Some(&certificates.ca_certificate));
    let reference: Reference = format!("{}/app", registry.host()).parse().unwrap();

    let image = Manifest::Image(small_image("downgrade", "linux/amd64"));
    let sink = RegistrySink::new(client.clone(), reference.clone());
    let error = chain(&publish(&image, &sink, &["1".to_string()], &Silent).unwrap_err());
    assert!(error.contains("plain HTTP"), "{error}");
    assert!(
        error.contains(&format!("http://{}/upload/1", other.host())),
        "{error}"
    );

    let source = RegistrySource::new(client, reference.with_tag("1"));
    let error = chain(&resolve_error(&source));
    assert!(error.contains("plain HTTP"), "{error}");
    assert!(
        error.contains(&format!("http://{}/blobs/config", other.host())),
        "{error}"
    );

    assert!(other.requests().is_empty(), "{:?}", other.requests());
}

/// A plain registry whose manifests never end.
fn endless_manifests() -> RawServer {
    RawServer::start(|request| {
        if request.path.starts_with("/v2/app/manifests/") {
            RawAnswer::Endless {
                headers: vec![("content-type".to_string(), OCI_MANIFEST.to_string())],
                prefix: br#"{"schemaVersion":2,"padding":""#.to_vec(),
                total: ENDLESS,
            }
        } else {
            RawAnswer::status(200, &[])
        }
    })
}

#[test]
fn an_endless_manifest_stops_at_the_limit() {
    let registry = endless_manifests();
    let reference: Reference = format!("{}/app:1", registry.host()).parse().unwrap();
    let started = Instant::now();
    let error = chain(&resolve_error(&RegistrySource::new(
        client(None, None),
        reference,
    )));
    assert!(error.contains("4194304 bytes"), "{error}");
    assert!(error.contains("/v2/app/manifests/1"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_endless_token_answer_stops_at_the_limit() {
    let token = RawServer::start(|_| RawAnswer::Endless {
        headers: vec![("content-type".to_string(), "application/json".to_string())],
        prefix: br#"{"token":""#.to_vec(),
        total: ENDLESS,
    });
    let realm = format!("http://{}/token", token.host());
    let registry = RawServer::start(move |request| {
        if request.header("authorization").is_some() {
            return RawAnswer::body(200, "application/json", r#"{"tags":[]}"#);
        }
        let challenge = format!(r#"Bearer realm="{realm}",service="hostile""#);
        RawAnswer::status(401, &[("www-authenticate", challenge)])
    });
    let reference: Reference = format!("{}/app", registry.host()).parse().unwrap();
    let listing = client(None, None)
        .repository(&reference, Access::PULL)
        .tags();
    let error = chain(&listing.unwrap_err());
    assert!(error.contains("1048576 bytes"), "{error}");
    assert!(
        error.contains(&format!("http://{}/token", token.host())),
        "{error}"
    );
}

#[test]
fn hoist_under_a_memory_limit_reports_the_limit_on_an_endless_manifest() {
    let registry = RawServer::start(|request| {
        if request.path.starts_with("/v2/app/manifests/") {
            RawAnswer::Endless {
                headers: vec![("content-type".to_string(), OCI_MANIFEST.to_string())],
                prefix: br#"{"schemaVersion":2,"padding":""#.to_vec(),
                // More than the address space the child may use.
                total: 4 * 1024 * 1024 * 1024,
            }
        } else {
            RawAnswer::status(200, &[])
        }
    });
    let work = tempfile::tempdir().unwrap();
    let output = std::process::Command::new("prlimit")
        .arg(format!("--as={MEMORY_LIMIT}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_hoist"))
        .args(["copy", &format!("docker://{}/app:1", registry.host())])
        .arg(format!(
            "oci:{}:copied",
            work.path().join("layout").display()
        ))
        .env("HOME", work.path())
        .env("DOCKER_CONFIG", work.path().join("docker"))
        .env("REGISTRY_AUTH_FILE", work.path().join("auth.json"))
        .env("HOIST_CACHE", work.path().join("cache"))
        .env("NO_COLOR", "1")
        // Thread pools and malloc arenas reserve address space per core;
        // pinned, the limit means the same on any machine.
        .env("HOIST_JOBS", "2")
        .env("MALLOC_ARENA_MAX", "2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{:?}: {stderr}",
        output.status
    );
    assert!(stderr.contains("4194304 bytes"), "{stderr}");
    assert!(stderr.contains("/v2/app/manifests/1"), "{stderr}");
}

/// The address space hoist gets in the rlimit test: room for its threads
/// and caps, far less than the endless body would take.
const MEMORY_LIMIT: u64 = 1024 * 1024 * 1024;
