//! A loopback GitHub REST API for container packages, written from GitHub's
//! reference ("REST API endpoints for packages"), backed by a real
//! `docker-registry` for the manifests: `GET
//! /{orgs|users}/{owner}/packages/container/{package}/versions` lists one
//! version per manifest the registry holds under the package's repository
//! (every manifest a tag reaches, what those list, and untagged ones the
//! test names), named by digest, with `metadata.container.tags` and
//! `created_at`, `per_page` at a time with a `Link: <…>; rel="next"`
//! header; `DELETE …/versions/{id}` deletes the manifest from the registry
//! and answers 204. The owner is a user (the organisation listing answers
//! 404, as GitHub does for a user's name). Without `Authorization: Bearer
//! <token>` every call answers 401 `{"message": "Bad credentials"}`.

use super::http::{HandlerError, Reply, TestServer, query_values, reply};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Versions per page at most, so a test's few manifests span pages.
const PAGE_LIMIT: usize = 3;

#[derive(Default)]
struct State {
    /// Version ids by digest, in the order first seen.
    ids: Vec<String>,
    /// Push times by digest (RFC 3339); others are 2024-01-01.
    created: HashMap<String, String>,
    /// Untagged top-level manifests pushed by digest, and every manifest
    /// listed once: a version stays until it is deleted, tag or not.
    untagged: Vec<String>,
    /// Deleted versions' digests.
    deleted: Vec<String>,
    /// (method, path and query, Authorization) of every request.
    requests: Vec<(String, String, Option<String>)>,
}

pub struct GitHubApi {
    server: TestServer,
    state: Arc<Mutex<State>>,
}

impl GitHubApi {
    /// Serves `owner/package` (a repository of `registry`) to `token`.
    pub fn start(registry: &str, repository: &str, token: &str) -> GitHubApi {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let registry = registry.to_string();
        let repository = repository.to_string();
        let token = token.to_string();
        let server = TestServer::start(move |request| {
            let state = shared.clone();
            let registry = registry.clone();
            let repository = repository.clone();
            let token = token.clone();
            async move { answer(request, &state, &registry, &repository, &token).await }
        });
        GitHubApi { server, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.server.host())
    }

    /// Says `digest` was pushed at `time` (RFC 3339).
    pub fn pushed_at(&self, digest: &str, time: &str) {
        let mut state = self.state.lock().unwrap();
        state.created.insert(digest.to_string(), time.to_string());
    }

    /// Lists `digest`, pushed without a tag, as a version.
    pub fn add_untagged(&self, digest: &str) {
        self.state.lock().unwrap().untagged.push(digest.to_string());
    }

    /// Every request so far: (method, path and query, Authorization).
    pub fn requests(&self) -> Vec<(String, String, Option<String>)> {
        self.state.lock().unwrap().requests.clone()
    }
}

async fn answer(
    request: hyper::Request<hyper::body::Incoming>,
    state: &Mutex<State>,
    registry: &str,
    repository: &str,
    token: &str,
) -> Reply {
    let method = request.method().to_string();
    let host = request
        .headers()
        .get("host")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let path = request.uri().path().to_string();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    state.lock().unwrap().requests.push((
        method.clone(),
        request.uri().to_string(),
        authorization.clone(),
    ));
    if authorization.as_deref() != Some(&format!("Bearer {token}")) {
        return message(401, "Bad credentials");
    }
    let (owner, package) = repository.split_once('/').unwrap();
    let versions = format!(
        "/users/{owner}/packages/container/{}/versions",
        package.replace('/', "%2F")
    );
    let manifests = all_manifests(registry, repository, state).await?;
    if method == "GET" && path == versions {
        let page: usize = query_values(request.uri(), "page")
            .first()
            .map_or(1, |page| page.parse().unwrap());
        let asked: usize = query_values(request.uri(), "per_page")
            .first()
            .map_or(30, |count| count.parse().unwrap());
        let per_page = asked.min(PAGE_LIMIT);
        let listed: Vec<serde_json::Value> = manifests
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|(digest, tags)| version_json(state, digest, tags))
            .collect();
        let mut headers = vec![("content-type", "application/json".to_string())];
        if page * per_page < manifests.len() {
            let next = format!("http://{host}{versions}?per_page={asked}&page={}", page + 1);
            headers.push(("link", format!("<{next}>; rel=\"next\"")));
        }
        return reply(200, &headers, serde_json::Value::from(listed).to_string());
    }
    if let Some(id) = path.strip_prefix(&format!("{versions}/")) {
        if method != "DELETE" {
            return message(405, "Method Not Allowed");
        }
        let digest = state
            .lock()
            .unwrap()
            .ids
            .get(id.parse::<usize>()? - 1)
            .cloned();
        let Some(digest) = digest.filter(|digest| manifests.iter().any(|(d, _)| d == digest))
        else {
            return message(404, "Package version not found.");
        };
        let url = format!("http://{registry}/v2/{repository}/manifests/{digest}");
        let deleted = reqwest::Client::new().delete(url).send().await?;
        assert!(deleted.status().is_success(), "{}", deleted.status());
        state.lock().unwrap().deleted.push(digest);
        return reply(204, &[], "");
    }
    message(404, "Not Found")
}

/// `{"message": …, "documentation_url": …}`, as GitHub answers errors.
fn message(status: u16, text: &str) -> Reply {
    let body = serde_json::json!({
        "message": text,
        "documentation_url": "https://docs.github.com/rest/packages/packages",
    });
    reply(
        status,
        &[("content-type", "application/json".to_string())],
        body.to_string(),
    )
}

fn version_json(state: &Mutex<State>, digest: &str, tags: &[String]) -> serde_json::Value {
    let mut state = state.lock().unwrap();
    let id = match state.ids.iter().position(|known| known == digest) {
        Some(index) => index + 1,
        None => {
            state.ids.push(digest.to_string());
            state.ids.len()
        }
    };
    let created = state
        .created
        .get(digest)
        .cloned()
        .unwrap_or_else(|| "2024-01-01T00:00:00Z".to_string());
    serde_json::json!({
        "id": id,
        "name": digest,
        "url": format!("https://api.github.com/users/acme/packages/container/app/versions/{id}"),
        "package_html_url": "https://github.com/users/acme/packages/container/package/app",
        "created_at": created,
        "updated_at": created,
        "metadata": {"package_type": "container", "container": {"tags": tags}},
    })
}

/// Every manifest of the repository with its tags: what the tags point
/// at, what those list, and the untagged ones named, each once, as the
/// registry holds them now.
async fn all_manifests(
    registry: &str,
    repository: &str,
    state: &Mutex<State>,
) -> Result<Vec<(String, Vec<String>)>, HandlerError> {
    let http = reqwest::Client::new();
    let listed: serde_json::Value = http
        .get(format!("http://{registry}/v2/{repository}/tags/list"))
        .send()
        .await?
        .json()
        .await?;
    let tags: Vec<String> = listed["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|tag| tag.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    let mut queue: Vec<(String, Option<String>)> = tags
        .into_iter()
        .map(|tag| (tag.clone(), Some(tag)))
        .collect();
    let (untagged, deleted) = {
        let state = state.lock().unwrap();
        (state.untagged.clone(), state.deleted.clone())
    };
    queue.extend(
        untagged
            .into_iter()
            .filter(|digest| !deleted.contains(digest))
            .map(|digest| (digest, None)),
    );
    let accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
                  application/vnd.docker.distribution.manifest.list.v2+json, \
                  application/vnd.docker.distribution.manifest.v2+json";
    while let Some((target, tag)) = queue.pop() {
        let answer = http
            .get(format!(
                "http://{registry}/v2/{repository}/manifests/{target}"
            ))
            .header("accept", accept)
            .send()
            .await?;
        if !answer.status().is_success() {
            continue;
        }
        let digest = answer.headers()["docker-content-digest"]
            .to_str()?
            .to_string();
        let body: serde_json::Value = answer.json().await?;
        match found.iter_mut().find(|(known, _)| *known == digest) {
            Some((_, tags)) => tags.extend(tag),
            None => {
                let mut known = state.lock().unwrap();
                if !known.untagged.contains(&digest) {
                    known.untagged.push(digest.clone());
                }
                drop(known);
                found.push((digest, tag.into_iter().collect()));
                for child in body["manifests"].as_array().into_iter().flatten() {
                    queue.push((child["digest"].as_str().unwrap().to_string(), None));
                }
            }
        }
    }
    found.sort();
    Ok(found)
}
