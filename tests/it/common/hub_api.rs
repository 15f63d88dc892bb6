//! A loopback Docker Hub: Hub's API and Hub's registry in front of a real
//! `docker-registry`, written from Docker's references in docker/docs:
//! `content/reference/api/hub/latest.yaml` at commit
//! c065f8002e74b9ef1a9a5afe638f8ae13da5193d (Hub's API) and
//! `content/reference/api/registry/latest.yaml` at commit
//! 98196ca95f58d2fc9da333d35f603202220c91c7 (what Hub's registry does of
//! the distribution API), and the tag delete Docker's `hub-tool` sends
//! (docker/hub-tool, `pkg/hub/tags.go` at commit
//! 6911e3c9dc59d631cb31182539b173f19806a690), which Hub's reference does
//! not document.
//!
//! Hub's API:
//! - `POST /v2/auth/token` (`{"identifier", "secret"}` → `{"access_token"}`,
//!   else 401 with `detail`); other methods 405. A token lasts until the
//!   test ends it (Hub's last ten minutes); without a valid one every
//!   other call answers 401.
//! - `GET /v2/namespaces/{namespace}/repositories/{repository}/tags`:
//!   `page` and `page_size` (default 10, at most 100: more answers 400),
//!   `{"count", "next", "previous", "results"}` with an absolute `next`,
//!   each result the reference's `tag` (`name`, `images` as one object,
//!   `last_updated`, `tag_last_pushed`, `status`) and, once the test asks,
//!   the `digest` Hub adds. To make a test's few tags span pages it serves
//!   at most two a page. `GET …/tags/{tag}` answers one; other methods
//!   there 405.
//! - `DELETE /v2/repositories/{namespace}/{repository}/tags/{tag}/` (204;
//!   404 for a tag it does not have): the tag goes, its manifest stays.
//! - Errors are `{"detail", "message"}`. Faults a test queues answer the
//!   next matching request instead (a 429 with `Retry-After` and the
//!   `X-RateLimit-*` headers; a 401 that ends the tokens).
//!
//! Hub's registry (`registry_host`): the real registry, less the tags
//! deleted through the API; `DELETE /v2/{name}/manifests/{digest}` deletes
//! only a manifest no tag points at and no other manifest lists (else 403
//! `DENIED`), by digest only (a tag: 405), and answers 202.

use super::http::{Faults, HandlerError, Reply, TestServer, paging, read_body, reply};
use super::proxy::{Upstream, start_proxy};
use super::registry::{TestRegistry, manifest_at, tags_at};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Tags per page at most, so a test's few tags span pages.
const PAGE_LIMIT: usize = 2;
/// The most `page_size` may ask (the reference: "Max of 100").
const PAGE_SIZE_MAXIMUM: usize = 100;

#[derive(Default)]
struct State {
    /// Tags deleted through the API.
    deleted: Vec<String>,
    pushed: HashMap<String, String>,
    /// Tokens that are valid now; `issued` counts every one handed out.
    tokens: Vec<String>,
    issued: usize,
    /// Whether listed tags carry the digest they point at.
    digests: bool,
    /// (method, path and query, Authorization) of every request to the API.
    requests: Vec<(String, String, Option<String>)>,
    /// (digest, status) of every manifest DELETE the registry answered.
    manifest_deletes: Vec<(String, u16)>,
}

/// What both servers serve, fixed at the start.
struct Served {
    registry: String,
    /// Where the registry keeps the repository's manifest revisions.
    revisions: PathBuf,
    repository: String,
    login: serde_json::Value,
    faults: Faults,
}

pub struct HubApi {
    server: TestServer,
    front: TestServer,
    state: Arc<Mutex<State>>,
    served: Arc<Served>,
}

impl HubApi {
    /// Serves `namespace/repository` of `registry` to `user`/`secret`.
    pub fn start(registry: &TestRegistry, repository: &str, user: &str, secret: &str) -> HubApi {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let state = Arc::new(Mutex::new(State::default()));
        let served = Arc::new(Served {
            registry: registry.host(),
            revisions: registry.directory().join(format!(
                "storage/docker/registry/v2/repositories/{repository}/_manifests/revisions/sha256"
            )),
            repository: repository.to_string(),
            login: serde_json::json!({"identifier": user, "secret": secret}),
            faults: Faults::default(),
        });
        let server = {
            let (state, served) = (state.clone(), served.clone());
            TestServer::start(move |request| {
                let (state, served) = (state.clone(), served.clone());
                async move { answer_api(request, &state, &served).await }
            })
        };
        let front = {
            let (state, served) = (state.clone(), served.clone());
            start_proxy(registry, move |upstream, request| {
                let (state, served) = (state.clone(), served.clone());
                async move { answer_registry(upstream, request, &state, &served).await }
            })
        };
        HubApi {
            server,
            front,
            state,
            served,
        }
    }

    /// Hub's API, as `HOIST_DOCKERHUB_API_URL` gives it.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.host())
    }

    /// Hub's registry: `127.0.0.1:PORT`.
    pub fn registry_host(&self) -> String {
        self.front.host()
    }

    /// Says `tag` was last pushed at `time` (RFC 3339).
    pub fn pushed_at(&self, tag: &str, time: &str) {
        let mut state = self.state.lock().unwrap();
        state.pushed.insert(tag.to_string(), time.to_string());
    }

    /// Lists each tag with the digest it points at, as Hub does beyond
    /// its reference.
    pub fn list_digests(&self) {
        self.state.lock().unwrap().digests = true;
    }

    /// The faults to serve instead of API requests, `{"detail"}` their
    /// text; a 401 also ends every token handed out (as when Hub's ten
    /// minutes are up).
    pub fn faults(&self) -> &Faults {
        &self.served.faults
    }

    /// The tags deleted through the API.
    pub fn deleted(&self) -> Vec<String> {
        let mut deleted = self.state.lock().unwrap().deleted.clone();
        deleted.sort();
        deleted
    }

    /// The requests to the API: (method, path and query, Authorization).
    pub fn requests(&self) -> Vec<(String, String, Option<String>)> {
        self.state.lock().unwrap().requests.clone()
    }

    /// (digest, status) of every manifest DELETE the registry answered.
    pub fn manifest_deletes(&self) -> Vec<(String, u16)> {
        self.state.lock().unwrap().manifest_deletes.clone()
    }
}

/// `{"detail", "message"}`, the reference's `Error`.
fn detail(status: u16, text: &str, headers: &[(&'static str, String)]) -> Reply {
    let body = serde_json::json!({"detail": text, "message": text});
    let mut all = vec![("content-type", "application/json".to_string())];
    all.extend(headers.iter().cloned());
    reply(status, &all, body.to_string())
}

fn json(status: u16, body: serde_json::Value) -> Reply {
    reply(
        status,
        &[("content-type", "application/json".to_string())],
        body.to_string(),
    )
}

fn not_allowed(method: &str) -> Reply {
    detail(405, &format!("Method \"{method}\" not allowed."), &[])
}

async fn answer_api(
    request: hyper::Request<hyper::body::Incoming>,
    state: &Mutex<State>,
    served: &Served,
) -> Reply {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let host = request.headers()["host"].to_str()?.to_string();
    let authorization = request
        .headers()
        .get("authorization")
        .map(|value| value.to_str().unwrap().to_string());
    state.lock().unwrap().requests.push((
        method.clone(),
        request.uri().to_string(),
        authorization.clone(),
    ));
    if let Some(fault) = served.faults.take(&method, &path) {
        if fault.status == 401 {
            state.lock().unwrap().tokens.clear();
        }
        return detail(fault.status, &fault.text, &fault.headers);
    }
    if path == "/v2/auth/token" {
        if method != "POST" {
            return not_allowed(&method);
        }
        return sign_in(request, state, served).await;
    }
    let signed_in = authorization
        .as_deref()
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|token| state.lock().unwrap().tokens.iter().any(|t| t == token));
    if !signed_in {
        return detail(401, "Authentication credentials were not provided.", &[]);
    }
    let (namespace, name) = served.repository.split_once('/').unwrap();
    let tags_path = format!("/v2/namespaces/{namespace}/repositories/{name}/tags");
    let delete_path = format!("/v2/repositories/{namespace}/{name}/tags/");
    let tags = live_tags(served, state).await?;
    if path == tags_path {
        return match method.as_str() {
            "GET" | "HEAD" => list_tags(&request, &host, &tags_path, &tags, state),
            _ => not_allowed(&method),
        };
    }
    if let Some(tag) = path.strip_prefix(&format!("{tags_path}/")) {
        let Some(listed) = tags.iter().find(|listed| listed.name == tag) else {
            return detail(404, "Not found.", &[]);
        };
        return match method.as_str() {
            "GET" | "HEAD" => json(200, tag_json(listed, state)),
            _ => not_allowed(&method),
        };
    }
    if let Some(tag) = path
        .strip_prefix(&delete_path)
        .and_then(|rest| rest.strip_suffix('/'))
    {
        if method != "DELETE" {
            return not_allowed(&method);
        }
        if !tags.iter().any(|listed| listed.name == tag) {
            return detail(404, "Not found.", &[]);
        }
        state.lock().unwrap().deleted.push(tag.to_string());
        return reply(204, &[], "");
    }
    detail(404, "Not found.", &[])
}

/// `POST /v2/auth/token`.
async fn sign_in(
    request: hyper::Request<hyper::body::Incoming>,
    state: &Mutex<State>,
    served: &Served,
) -> Reply {
    let body: serde_json::Value =
        serde_json::from_slice(&read_body(request.into_body()).await?).unwrap_or_default();
    if body
        .get("identifier")
        .and_then(|value| value.as_str())
        .is_none()
        || body
            .get("secret")
            .and_then(|value| value.as_str())
            .is_none()
    {
        return detail(400, "identifier and secret are required", &[]);
    }
    if body != served.login {
        return detail(401, "Incorrect authentication credentials", &[]);
    }
    let token = {
        let mut state = state.lock().unwrap();
        state.issued += 1;
        let token = format!("hub-access-token-{}", state.issued);
        state.tokens.push(token.clone());
        token
    };
    json(200, serde_json::json!({"access_token": token}))
}

/// A page of tags, as `page` and `page_size` ask.
fn list_tags(
    request: &hyper::Request<hyper::body::Incoming>,
    host: &str,
    tags_path: &str,
    tags: &[LiveTag],
    state: &Mutex<State>,
) -> Reply {
    let Some((page, page_size)) = paging(request.uri(), "page_size", 10) else {
        return detail(400, "page and page_size take integers", &[]);
    };
    if page_size > PAGE_SIZE_MAXIMUM || page_size == 0 || page == 0 {
        return detail(
            400,
            &format!("page_size must be between 1 and {PAGE_SIZE_MAXIMUM}"),
            &[],
        );
    }
    let served = page_size.min(PAGE_LIMIT);
    let results: Vec<serde_json::Value> = tags
        .iter()
        .skip((page - 1) * served)
        .take(served)
        .map(|tag| tag_json(tag, state))
        .collect();
    if results.is_empty() && page > 1 {
        return detail(404, "That page contains no results", &[]);
    }
    let at =
        |number: usize| format!("http://{host}{tags_path}?page={number}&page_size={page_size}");
    let next = (page * served < tags.len()).then(|| at(page + 1));
    let previous = (page > 1).then(|| at(page - 1));
    json(
        200,
        serde_json::json!({
            "count": tags.len(),
            "next": next,
            "previous": previous,
            "results": results,
        }),
    )
}

/// The reference's `tag`, and Hub's `digest` once the test asks.
fn tag_json(tag: &LiveTag, state: &Mutex<State>) -> serde_json::Value {
    let state = state.lock().unwrap();
    let pushed = state
        .pushed
        .get(&tag.name)
        .cloned()
        .unwrap_or_else(|| "2024-01-01T00:00:00.000000Z".to_string());
    let mut body = serde_json::json!({
        "id": 1,
        "name": tag.name,
        "images": {
            "architecture": "amd64",
            "os": "linux",
            "digest": tag.image,
            "status": "active",
            "last_pushed": pushed,
        },
        "creator": 1,
        "last_updated": pushed,
        "last_updater_username": "acme",
        "repository": 1,
        "full_size": 1,
        "v2": "true",
        "status": "active",
        "tag_last_pulled": null,
        "tag_last_pushed": pushed,
    });
    if state.digests {
        body["digest"] = serde_json::Value::from(tag.digest.clone());
    }
    body
}

/// A tag the API lists: the manifest it points at and, as the
/// reference's `images` has it, an image (a platform's, for an index).
struct LiveTag {
    name: String,
    digest: String,
    image: String,
}

/// The registry's tags less those deleted through the API, each with
/// the digest it points at.
async fn live_tags(served: &Served, state: &Mutex<State>) -> Result<Vec<LiveTag>, HandlerError> {
    let (registry, repository) = (&served.registry, &served.repository);
    let deleted = state.lock().unwrap().deleted.clone();
    let mut tags = Vec::new();
    for tag in tags_at(registry, repository).await? {
        if deleted.contains(&tag) {
            continue;
        }
        let Some((digest, body)) = manifest_at(registry, repository, &tag).await? else {
            continue;
        };
        let image = body["manifests"][0]["digest"]
            .as_str()
            .map_or_else(|| digest.clone(), str::to_string);
        tags.push(LiveTag {
            name: tag,
            digest,
            image,
        });
    }
    tags.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tags)
}

/// Hub's registry: the real one, less the tags deleted through the API,
/// deleting a manifest only by digest and only when nothing refers to it.
async fn answer_registry(
    upstream: Arc<Upstream>,
    request: hyper::Request<hyper::body::Incoming>,
    state: &Mutex<State>,
    served: &Served,
) -> Reply {
    let path = request.uri().path().to_string();
    let method = request.method().to_string();
    let prefix = format!("/v2/{}/", served.repository);
    let rest = path.strip_prefix(&prefix).unwrap_or_default();
    let deleted = state.lock().unwrap().deleted.clone();
    if rest == "tags/list" && method == "GET" {
        let answer = upstream
            .send(
                request.method(),
                &request
                    .uri()
                    .path_and_query()
                    .map(|part| part.to_string())
                    .unwrap_or_default(),
                request.headers(),
                bytes::Bytes::new(),
            )
            .await?;
        let mut listed: serde_json::Value = answer.json().await?;
        if let Some(tags) = listed["tags"].as_array_mut() {
            tags.retain(|tag| !deleted.iter().any(|gone| tag == gone));
        }
        return json(200, listed);
    }
    let Some(reference) = rest.strip_prefix("manifests/") else {
        return upstream.forward(request).await;
    };
    let by_digest = reference.starts_with("sha256:");
    if method == "DELETE" {
        if !by_digest {
            return registry_error(405, "UNSUPPORTED", "Only digest-based deletion is allowed");
        }
        if let Some(why) = referenced(served, state, reference).await? {
            state
                .lock()
                .unwrap()
                .manifest_deletes
                .push((reference.to_string(), 403));
            return registry_error(403, "DENIED", &why);
        }
        let answer = upstream.forward(request).await?;
        state
            .lock()
            .unwrap()
            .manifest_deletes
            .push((reference.to_string(), answer.status().as_u16()));
        return Ok(answer);
    }
    if !by_digest && deleted.iter().any(|gone| gone == reference) {
        if method == "PUT" {
            // Pushed again: the tag is back.
            state
                .lock()
                .unwrap()
                .deleted
                .retain(|gone| gone != reference);
        } else {
            return registry_error(404, "MANIFEST_UNKNOWN", "manifest unknown");
        }
    }
    upstream.forward(request).await
}

/// Why the registry keeps `digest`: a tag points at it, or a manifest it
/// still holds lists it.
async fn referenced(
    served: &Served,
    state: &Mutex<State>,
    digest: &str,
) -> Result<Option<String>, HandlerError> {
    for tag in live_tags(served, state).await? {
        if tag.digest == digest {
            return Ok(Some(format!("manifest is tagged {}", tag.name)));
        }
    }
    let Ok(entries) = std::fs::read_dir(&served.revisions) else {
        return Ok(None);
    };
    for entry in entries.flatten() {
        if !entry.path().join("link").exists() {
            continue;
        }
        let other = format!("sha256:{}", entry.file_name().to_string_lossy());
        if other == digest {
            continue;
        }
        let Some((_, body)) = manifest_at(&served.registry, &served.repository, &other).await?
        else {
            continue;
        };
        let lists = body["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|child| child["digest"] == digest);
        if lists {
            return Ok(Some(format!("manifest is referenced by {other}")));
        }
    }
    Ok(None)
}

fn registry_error(status: u16, code: &str, message: &str) -> Reply {
    super::http::error_reply(status, code, message)
}
