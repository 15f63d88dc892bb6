//! Registry quirks no real registry here shows on demand, served by a small
//! in-memory registry: ECR's chunk rules (PATCH answered 201, every part
//! of an upload but the last at least 5 MiB), an advertised `OCI-Chunk-Min-Length`, no cross-repository
//! mount, blob redirects to a storage host, and tokens revoked mid-push.

use crate::common;

use crate::common::http::{Reply, TestServer, error_reply, query_values, read_body, reply};
use crate::common::registry_images::{large_image, small_image};
use hoist::image::{Blob, Manifest, publish};
use hoist::oci::sha256_digest;
use hoist::progress::Silent;
use hoist::registry::{
    ClientOptions, CredentialEnvironment, GivenCredentials, Reference, RegistryClient,
    RegistrySink, RegistrySource, RetryPolicy,
};
use hoist::source::Source;
use hyper::Method;
use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

#[derive(Default, Clone)]
struct Quirks {
    /// PATCH answers 201; every part of an upload but the last (PATCH
    /// bodies, and a PUT body) must hold `minimum_chunk` bytes, as ECR's
    /// layer parts must: a part is refused once another follows a short one.
    ecr_chunks: bool,
    minimum_chunk: usize,
    /// Send `OCI-Chunk-Min-Length: minimum_chunk` when opening uploads.
    advertise_minimum: bool,
    /// Answer mount requests with a plain upload session.
    no_mount: bool,
    /// Require these Basic credentials.
    basic: Option<String>,
    /// Redirect blob GETs to this storage server.
    storage: Option<String>,
    /// Bearer tokens from `/token` on this server; the first one is revoked
    /// after this many accepted requests.
    revoke_first_token_after: Option<usize>,
    /// Every PATCH fails with 500.
    fail_patches: bool,
    /// Request bodies over this many bytes are refused with 413, as a
    /// proxy with a body limit in front of a registry refuses them.
    max_body: Option<usize>,
}

#[derive(Default)]
struct State {
    blobs: HashMap<String, Vec<u8>>,
    /// (repository, digest) pairs: which repositories hold which blobs.
    linked: HashSet<(String, String)>,
    uploads: HashMap<String, Vec<u8>>,
    /// The size of each open upload's last PATCH body.
    last_part: HashMap<String, usize>,
    manifests: HashMap<(String, String), (String, Vec<u8>)>,
    next_upload: usize,
    /// "METHOD path STATUS": what was asked and answered.
    log: Vec<String>,
    patch_sizes: Vec<usize>,
    issued_tokens: Vec<String>,
    revoked_tokens: HashSet<String>,
    accepted_with_first_token: usize,
}

struct QuirkRegistry {
    quirks: Quirks,
    state: Mutex<State>,
    host: OnceLock<String>,
}

impl QuirkRegistry {
    fn log(&self, method: &Method, path: &str, status: u16) {
        self.state
            .lock()
            .unwrap()
            .log
            .push(format!("{method} {path} {status}"));
    }

    fn count(&self, method: &str, part: &str) -> usize {
        let state = self.state.lock().unwrap();
        state
            .log
            .iter()
            .filter(|line| line.starts_with(&format!("{method} ")) && line.contains(part))
            .count()
    }

    /// Checks the Authorization header; `Some(reply)` when it is refused.
    fn refuse(&self, authorization: Option<&str>) -> Option<Reply> {
        if let Some(expected) = &self.quirks.basic {
            let encoded = {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(expected)
            };
            if authorization != Some(format!("Basic {encoded}").as_str()) {
                return Some(reply(
                    401,
                    &[("www-authenticate", "Basic realm=\"quirks\"".to_string())],
                    "",
                ));
            }
        }
        if let Some(limit) = self.quirks.revoke_first_token_after {
            let mut state = self.state.lock().unwrap();
            let token = authorization.and_then(|value| value.strip_prefix("Bearer "));
            let valid = token.is_some_and(|token| {
                state.issued_tokens.iter().any(|issued| issued == token)
                    && !state.revoked_tokens.contains(token)
            });
            if !valid {
                let realm = format!(
                    "http://{}/token",
                    self.host.get().cloned().unwrap_or_default()
                );
                return Some(reply(
                    401,
                    &[(
                        "www-authenticate",
                        format!("Bearer realm=\"{realm}\",service=\"quirks\""),
                    )],
                    "",
                ));
            }
            let first = state.issued_tokens.first().cloned();
            if token.map(str::to_string) == first {
                state.accepted_with_first_token += 1;
                if state.accepted_with_first_token >= limit
                    && let Some(first) = first
                {
                    state.revoked_tokens.insert(first);
                }
            }
        }
        None
    }

    async fn answer(self: Arc<Self>, request: hyper::Request<hyper::body::Incoming>) -> Reply {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let path = uri.path().to_string();
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        let authorization = header("authorization");
        let content_range = header("content-range");
        let body = read_body(request.into_body()).await?;

        if path == "/token" {
            let mut state = self.state.lock().unwrap();
            let token = format!("token-{}", state.issued_tokens.len() + 1);
            state.issued_tokens.push(token.clone());
            state.log.push("GET /token 200".to_string());
            return reply(
                200,
                &[],
                serde_json::json!({"token": token, "expires_in": 600}).to_string(),
            );
        }
        if let Some(refused) = self.refuse(authorization.as_deref()) {
            self.log(&method, &path, 401);
            return refused;
        }
        let answer = self.route(&method, &uri, &path, content_range, body);
        if let Ok(response) = &answer {
            self.log(&method, &path, response.status().as_u16());
        }
        answer
    }

    fn new_upload(&self, state: &mut State, name: &str) -> Reply {
        state.next_upload += 1;
        let id = format!("upload-{}", state.next_upload);
        state.uploads.insert(id.clone(), Vec::new());
        let mut headers = vec![("location", format!("/v2/{name}/blobs/uploads/{id}"))];
        if self.quirks.advertise_minimum {
            headers.push((
                "oci-chunk-min-length",
                self.quirks.minimum_chunk.to_string(),
            ));
        }
        reply(202, &headers, "")
    }

    fn route(
        &self,
        method: &Method,
        uri: &hyper::Uri,
        path: &str,
        content_range: Option<String>,
        body: bytes::Bytes,
    ) -> Reply {
        if path == "/v2/" {
            return reply(200, &[], "{}");
        }
        if self.quirks.max_body.is_some_and(|limit| body.len() > limit) {
            return reply(413, &[], "<html>413 Request Entity Too Large</html>");
        }
        let rest = path.strip_prefix("/v2/").unwrap_or_default();
        let mut state = self.state.lock().unwrap();
        if let Some((name, id)) = rest.split_once("/blobs/uploads/") {
            let id = id.trim_end_matches('/');
            if method == Method::POST {
                let mount = query_values(uri, "mount");
                if let Some(digest) = mount.first()
                    && !self.quirks.no_mount
                    && state.blobs.contains_key(digest)
                {
                    state.linked.insert((name.to_string(), digest.clone()));
                    return reply(
                        201,
                        &[("location", format!("/v2/{name}/blobs/{digest}"))],
                        "",
                    );
                }
                return self.new_upload(&mut state, name);
            }
            let Some(upload) = state.uploads.get(id).cloned() else {
                return error_reply(404, "BLOB_UPLOAD_UNKNOWN", "no such upload");
            };
            let range = |length: usize| format!("0-{}", length.saturating_sub(1));
            // Another part follows this upload's last PATCH: that one must
            // not have been short.
            let minimum = if self.quirks.ecr_chunks || self.quirks.advertise_minimum {
                self.quirks.minimum_chunk
            } else {
                0
            };
            let short_part = state
                .last_part
                .get(id)
                .copied()
                .filter(|size| *size < minimum)
                .map(|short| {
                    error_reply(
                        400,
                        "BLOB_UPLOAD_INVALID",
                        &format!("a part of {short} bytes, under {minimum}, was not the last"),
                    )
                });
            return match *method {
                Method::PATCH if self.quirks.fail_patches => {
                    error_reply(500, "UNAVAILABLE", "chunks are broken today")
                }
                Method::PATCH => {
                    if let Some(refused) = short_part {
                        return refused;
                    }
                    let start = content_range
                        .as_deref()
                        .and_then(|range| range.split('-').next())
                        .and_then(|start| start.parse::<usize>().ok());
                    if start.is_some_and(|start| start != upload.len()) {
                        return error_reply(416, "RANGE_INVALID", "out of order");
                    }
                    state.patch_sizes.push(body.len());
                    state.last_part.insert(id.to_string(), body.len());
                    let entry = state.uploads.get_mut(id).expect("upload exists");
                    entry.extend_from_slice(&body);
                    let length = entry.len();
                    let status = if self.quirks.ecr_chunks { 201 } else { 202 };
                    reply(
                        status,
                        &[
                            ("location", format!("/v2/{name}/blobs/uploads/{id}")),
                            ("range", range(length)),
                        ],
                        "",
                    )
                }
                Method::PUT => {
                    let minimum = if self.quirks.ecr_chunks || self.quirks.advertise_minimum {
                        self.quirks.minimum_chunk
                    } else {
                        0
                    };
                    if !body.is_empty()
                        && let Some(short) = state.last_part.get(id).filter(|size| **size < minimum)
                    {
                        return error_reply(
                            400,
                            "BLOB_UPLOAD_INVALID",
                            &format!("a part of {short} bytes, under {minimum}, was not the last"),
                        );
                    }
                    state.last_part.remove(id);
                    let mut content = upload;
                    content.extend_from_slice(&body);
                    let digest = query_values(uri, "digest").pop().unwrap_or_default();
                    if sha256_digest(&content).to_string() != digest {
                        return error_reply(400, "DIGEST_INVALID", "digest does not match");
                    }
                    state.uploads.remove(id);
                    state.blobs.insert(digest.clone(), content);
                    state.linked.insert((name.to_string(), digest.clone()));
                    reply(201, &[("docker-content-digest", digest)], "")
                }
                Method::GET => reply(204, &[("range", range(upload.len()))], ""),
                _ => error_reply(405, "UNSUPPORTED", "method"),
            };
        }
        if let Some((name, digest)) = rest.split_once("/blobs/") {
            let linked = state
                .linked
                .contains(&(name.to_string(), digest.to_string()));
            let Some(content) = state.blobs.get(digest).cloned().filter(|_| linked) else {
                return error_reply(404, "BLOB_UNKNOWN", "no such blob");
            };
            if method == Method::GET
                && let Some(storage) = &self.quirks.storage
            {
                return reply(
                    307,
                    &[("location", format!("http://{storage}/data/{digest}"))],
                    "",
                );
            }
            let headers = [("content-length", content.len().to_string())];
            return match *method {
                Method::HEAD => reply(200, &headers, ""),
                _ => reply(200, &[], content),
            };
        }
        if let Some((name, reference)) = rest.split_once("/manifests/") {
            let key = (name.to_string(), reference.to_string());
            return match *method {
                Method::PUT => {
                    let digest = sha256_digest(&body).to_string();
                    let media_type = "application/vnd.oci.image.manifest.v1+json".to_string();
                    let media_type = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|value| value["mediaType"].as_str().map(str::to_string))
                        .unwrap_or(media_type);
                    let stored = (media_type, body.to_vec());
                    state.manifests.insert(key, stored.clone());
                    state
                        .manifests
                        .insert((name.to_string(), digest.clone()), stored);
                    reply(201, &[("docker-content-digest", digest)], "")
                }
                _ => match state.manifests.get(&key) {
                    None => error_reply(404, "MANIFEST_UNKNOWN", "no such manifest"),
                    Some((media_type, bytes)) => {
                        let headers = [
                            ("content-type", media_type.clone()),
                            ("docker-content-digest", sha256_digest(bytes).to_string()),
                        ];
                        if *method == Method::HEAD {
                            reply(200, &headers, "")
                        } else {
                            reply(200, &headers, bytes.clone())
                        }
                    }
                },
            };
        }
        error_reply(404, "NAME_UNKNOWN", "no such route")
    }
}

fn start(quirks: Quirks) -> (Arc<QuirkRegistry>, TestServer) {
    let registry = Arc::new(QuirkRegistry {
        quirks,
        state: Mutex::new(State::default()),
        host: OnceLock::new(),
    });
    let server = {
        let registry = registry.clone();
        TestServer::start(move |request| registry.clone().answer(request))
    };
    registry.host.set(server.host()).unwrap();
    (registry, server)
}

fn client(options: ClientOptions) -> RegistryClient {
    RegistryClient::new(ClientOptions {
        credential_environment: CredentialEnvironment::default(),
        ..options
    })
    .unwrap()
}

fn reference(server: &TestServer, name: &str) -> Reference {
    format!("{}/{name}", server.host()).parse().unwrap()
}

fn read_all(blob: &dyn Blob) -> Vec<u8> {
    let mut bytes = Vec::new();
    blob.open().unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn ecr_chunk_rules() {
    let (registry, server) = start(Quirks {
        ecr_chunks: true,
        minimum_chunk: 5 * 1024 * 1024,
        ..Quirks::default()
    });
    // Asked for 1 MiB chunks, hoist still sends at least 5 MiB.
    let client = client(ClientOptions {
        monolithic_limit: 1024 * 1024,
        chunk_size: 1024 * 1024,
        ..ClientOptions::default()
    });
    let directory = tempfile::tempdir().unwrap();
    let image = Manifest::Image(large_image(directory.path(), 3, 12 * 1024 * 1024));
    let target = reference(&server, "ecr/app");
    publish(
        &image,
        &RegistrySink::new(client.clone(), target.clone()),
        &["1".to_string()],
        &Silent,
    )
    .unwrap();
    let sizes = registry.state.lock().unwrap().patch_sizes.clone();
    assert_eq!(sizes, vec![5 * 1024 * 1024, 5 * 1024 * 1024]);
    let pulled = RegistrySource::new(client, target.with_tag("1"))
        .resolve()
        .unwrap();
    assert_eq!(pulled.digest(), image.digest());
    let layer = &pulled.images()[0].layers[0];
    assert_eq!(read_all(layer.as_ref()).len() as u64, layer.size());
}

#[test]
fn advertised_minimum_chunk_is_honoured() {
    let (registry, server) = start(Quirks {
        advertise_minimum: true,
        minimum_chunk: 6 * 1024 * 1024,
        ..Quirks::default()
    });
    let client = client(ClientOptions {
        monolithic_limit: 1024 * 1024,
        chunk_size: 5 * 1024 * 1024,
        ..ClientOptions::default()
    });
    let directory = tempfile::tempdir().unwrap();
    let image = Manifest::Image(large_image(directory.path(), 4, 12 * 1024 * 1024 + 100));
    publish(
        &image,
        &RegistrySink::new(client, reference(&server, "min")),
        &["1".to_string()],
        &Silent,
    )
    .unwrap();
    let sizes = registry.state.lock().unwrap().patch_sizes.clone();
    assert_eq!(sizes, vec![6 * 1024 * 1024, 6 * 1024 * 1024]);
}

#[test]
fn registry_without_mount_gets_a_normal_upload() {
    let (registry, server) = start(Quirks {
        no_mount: true,
        ..Quirks::default()
    });
    let client = client(ClientOptions::default());
    let image = Manifest::Image(small_image("nomount", "linux/amd64"));
    let source = reference(&server, "source/app");
    publish(
        &image,
        &RegistrySink::new(client.clone(), source.clone()),
        &["1".to_string()],
        &Silent,
    )
    .unwrap();
    let pulled = RegistrySource::new(client.clone(), source.with_tag("1"))
        .resolve()
        .unwrap();
    let target = reference(&server, "target/app");
    let report = publish(
        &pulled,
        &RegistrySink::new(client.clone(), target.clone()),
        &["1".to_string()],
        &Silent,
    )
    .unwrap();
    assert!(report.mounted.is_empty(), "{report:?}");
    assert_eq!(report.uploaded.len(), 2, "{report:?}");
    let log = registry.state.lock().unwrap().log.clone();
    let mount_posts = log
        .iter()
        .filter(|line| line.starts_with("POST /v2/target/app/blobs/uploads/ 202"))
        .count();
    // One mount attempt (answered 202) for the layer, one plain start for the config.
    assert_eq!(mount_posts, 2, "{log:?}");
    assert_eq!(registry.count("PUT", "/v2/target/app/blobs/uploads/"), 2);
    let again = RegistrySource::new(client, target.with_tag("1"))
        .resolve()
        .unwrap();
    assert_eq!(again.digest(), image.digest());
}

#[test]
fn redirects_to_storage_carry_no_credentials() {
    let seen_authorization = Arc::new(Mutex::new(Vec::<bool>::new()));
    let blobs: Arc<OnceLock<Arc<QuirkRegistry>>> = Arc::new(OnceLock::new());
    let storage = {
        let seen = seen_authorization.clone();
        let blobs = blobs.clone();
        TestServer::start(move |request| {
            let seen = seen.clone();
            let blobs = blobs.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push(request.headers().contains_key("authorization"));
                let digest = request
                    .uri()
                    .path()
                    .trim_start_matches("/data/")
                    .to_string();
                let content = blobs.get().and_then(|registry| {
                    registry.state.lock().unwrap().blobs.get(&digest).cloned()
                });
                match content {
                    Some(content) => reply(200, &[], content),
                    None => error_reply(404, "BLOB_UNKNOWN", "not in storage"),
                }
            }
        })
    };
    let (registry, server) = start(Quirks {
        basic: Some("user:secret".to_string()),
        // Another host name than the registry's 127.0.0.1.
        storage: Some(format!("localhost:{}", storage.address().port())),
        ..Quirks::default()
    });
    blobs.set(registry.clone()).ok().unwrap();
    let client = client(ClientOptions {
        credentials: vec![GivenCredentials::everywhere("user", "secret")],
        ..ClientOptions::default()
    });
    let image = small_image("redirect", "linux/amd64");
    let target = reference(&server, "redirect");
    publish(
        &Manifest::Image(image.clone()),
        &RegistrySink::new(client.clone(), target.clone()),
        &["1".to_string()],
        &Silent,
    )
    .unwrap();
    let pulled = RegistrySource::new(client, target.with_tag("1"))
        .resolve()
        .unwrap();
    let layer = &pulled.images()[0].layers[0];
    assert_eq!(read_all(layer.as_ref()), read_all(image.layers[0].as_ref()));
    let seen = seen_authorization.lock().unwrap().clone();
    // The config and the layer both came from storage, without credentials.
    assert_eq!(seen, vec![false, false]);
    assert!(registry.count("GET", "/blobs/sha256:") >= 2);
}

#[test]
fn token_revoked_mid_push_is_refreshed() {
    let (registry, server) = start(Quirks {
        revoke_first_token_after: Some(3),
        ..Quirks::default()
    });
    let client = client(ClientOptions::default());
    let index = common::registry_images::multi_platform("revoked", &["linux/amd64", "linux/arm64"]);
    let target = reference(&server, "revoked");
    publish(
        &index,
        &RegistrySink::new(client.clone(), target.clone()),
        &["1".to_string()],
        &Silent,
    )
    .unwrap();
    let state = registry.state.lock().unwrap();
    assert!(state.issued_tokens.len() >= 2, "{:?}", state.log);
    assert!(state.revoked_tokens.contains("token-1"));
    assert!(
        state
            .log
            .iter()
            .any(|line| line.contains("/v2/revoked/") && line.ends_with(" 401")),
        "{:?}",
        state.log
    );
    drop(state);
    let pulled = RegistrySource::new(client, target.with_tag("1"))
        .resolve()
        .unwrap();
    assert_eq!(pulled.digest(), index.digest());
}

/// Streams `data` as a layer being compressed does: pieces from another
/// thread, then the finished blob's descriptor.
fn stream_blob(
    sink: &RegistrySink,
    data: &[u8],
) -> Result<oci_spec::image::Descriptor, hoist::registry::RegistryError> {
    use hoist::registry::StreamPiece;
    let descriptor = oci_spec::image::Descriptor::new(
        oci_spec::image::MediaType::ImageLayerGzip,
        data.len() as u64,
        sha256_digest(data),
    );
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let pieces: Vec<Vec<u8>> = data.chunks(256 * 1024).map(<[u8]>::to_vec).collect();
    let producer = std::thread::spawn(move || {
        for piece in pieces {
            if sender
                .blocking_send(StreamPiece::Bytes(piece.into()))
                .is_err()
            {
                return;
            }
        }
        let _ = sender.blocking_send(StreamPiece::End(Box::new(descriptor)));
    });
    let result = sink.upload_streamed(receiver);
    producer.join().unwrap();
    result
}

#[test]
fn streamed_upload_meets_ecr_chunk_rules() {
    let (registry, server) = start(Quirks {
        ecr_chunks: true,
        minimum_chunk: 5 * 1024 * 1024,
        ..Quirks::default()
    });
    let sink = RegistrySink::new(
        client(ClientOptions {
            chunk_size: 5 * 1024 * 1024,
            ..ClientOptions::default()
        }),
        reference(&server, "ecr/streamed"),
    );
    let data = common::registry_images::noise(4, 11 * 1024 * 1024 + 3);
    let descriptor = stream_blob(&sink, &data).unwrap();
    // Two PATCHes of exactly 5 MiB (ECR answers them 201), then the rest as
    // the last part, and the digest on the PUT.
    assert_eq!(registry.count("PATCH", "/ecr/streamed/"), 3);
    assert_eq!(
        registry.state.lock().unwrap().patch_sizes,
        [5 * 1024 * 1024, 5 * 1024 * 1024, 1024 * 1024 + 3]
    );
    assert_eq!(
        registry.state.lock().unwrap().blobs[&descriptor.digest().to_string()],
        data
    );
}

#[test]
fn failed_stream_leaves_the_blob_to_a_normal_upload() {
    use hoist::image::Sink as _;
    let (registry, server) = start(Quirks {
        fail_patches: true,
        ..Quirks::default()
    });
    let client = client(ClientOptions {
        retry: RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(50),
        },
        ..ClientOptions::default()
    });
    let sink = RegistrySink::new(client, reference(&server, "fallback"));
    let data = common::registry_images::noise(5, 6 * 1024 * 1024);
    let error = stream_blob(&sink, &data).unwrap_err();
    assert!(error.to_string().contains("500"), "{error}");
    assert!(registry.count("PATCH", "/fallback/") >= 1);
    assert!(
        registry.state.lock().unwrap().blobs.is_empty(),
        "a failed stream stores nothing"
    );

    // What a build does next: publish uploads the layer from its file.
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("layer");
    std::fs::write(&path, &data).unwrap();
    let descriptor = oci_spec::image::Descriptor::new(
        oci_spec::image::MediaType::ImageLayerGzip,
        data.len() as u64,
        sha256_digest(&data),
    );
    let blob = hoist::image::FileBlob::new(descriptor.clone(), path);
    sink.put_blob(&blob).unwrap();
    assert_eq!(
        registry.state.lock().unwrap().blobs[&descriptor.digest().to_string()],
        data
    );
}

#[test]
fn a_blob_too_large_for_one_request_goes_up_in_chunks() {
    use hoist::image::Sink as _;
    let (registry, server) = start(Quirks {
        max_body: Some(6 * 1024 * 1024),
        ..Quirks::default()
    });
    let sink = RegistrySink::new(
        client(ClientOptions {
            chunk_size: 5 * 1024 * 1024,
            ..ClientOptions::default()
        }),
        reference(&server, "capped/blob"),
    );
    let directory = tempfile::tempdir().unwrap();
    let data = common::registry_images::noise(7, 12 * 1024 * 1024);
    let path = directory.path().join("blob");
    std::fs::write(&path, &data).unwrap();
    let descriptor = oci_spec::image::Descriptor::new(
        oci_spec::image::MediaType::ImageLayerGzip,
        data.len() as u64,
        hoist::oci::sha256_digest(&data),
    );
    let blob = hoist::image::FileBlob::new(descriptor.clone(), path);
    sink.put_blob(&blob).unwrap();
    // The one PUT was refused; then two 5 MiB PATCHes and the rest on the PUT.
    assert_eq!(registry.count("PATCH", "/capped/blob/"), 2);
    assert_eq!(registry.count("PUT", "/capped/blob/"), 2);
    assert_eq!(
        registry.state.lock().unwrap().blobs[&descriptor.digest().to_string()],
        data
    );
}

#[test]
fn streamed_upload_honours_an_advertised_minimum_chunk() {
    let (registry, server) = start(Quirks {
        advertise_minimum: true,
        minimum_chunk: 6 * 1024 * 1024,
        ..Quirks::default()
    });
    // Asked for 5 MiB chunks, the client raises them to the registry's 6.
    let sink = RegistrySink::new(
        client(ClientOptions {
            chunk_size: 5 * 1024 * 1024,
            ..ClientOptions::default()
        }),
        reference(&server, "min/streamed"),
    );
    let data = common::registry_images::noise(6, 13 * 1024 * 1024);
    let descriptor = stream_blob(&sink, &data).unwrap();
    assert_eq!(
        registry.state.lock().unwrap().patch_sizes,
        [6 * 1024 * 1024, 6 * 1024 * 1024, 1024 * 1024]
    );
    assert_eq!(
        registry.state.lock().unwrap().blobs[&descriptor.digest().to_string()],
        data
    );
}
