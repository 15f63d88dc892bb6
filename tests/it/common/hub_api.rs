//! A loopback Docker Hub API, written from Hub's API reference, backed by
//! a real `docker-registry` for the tags and manifests: `POST
//! /v2/auth/token` (`{"identifier", "secret"}` → `{"access_token"}`, else
//! 401 with `detail`), `GET /v2/namespaces/{namespace}/repositories/
//! {repository}/tags` (`page_size` at a time, `{"count", "next",
//! "previous", "results": [{"name", "digest", "tag_last_pushed", …}]}` with
//! an absolute `next`), and `DELETE …/tags/{tag}` (204; 404 for a tag it
//! does not have). Hub deletes tags and keeps their manifests: the
//! registry behind keeps both, and the API stops listing the tag.

use super::http::{Reply, TestServer, query_values, read_body, reply};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Tags per page at most, so a test's few tags span pages.
const PAGE_LIMIT: usize = 2;
const ACCESS_TOKEN: &str = "hub-access-token";

#[derive(Default)]
struct State {
    deleted: Vec<String>,
    pushed: HashMap<String, String>,
    /// (method, path and query, Authorization) of every request.
    requests: Vec<(String, String, Option<String>)>,
}

pub struct HubApi {
    server: TestServer,
    state: Arc<Mutex<State>>,
}

impl HubApi {
    /// Serves `namespace/repository` of `registry` to `user`/`secret`.
    pub fn start(registry: &str, repository: &str, user: &str, secret: &str) -> HubApi {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let (registry, repository) = (registry.to_string(), repository.to_string());
        let login = serde_json::json!({"identifier": user, "secret": secret});
        let server = TestServer::start(move |request| {
            let (state, registry, repository) =
                (shared.clone(), registry.clone(), repository.clone());
            let login = login.clone();
            async move { answer(request, &state, &registry, &repository, &login).await }
        });
        HubApi { server, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.server.host())
    }

    /// Says `tag` was last pushed at `time` (RFC 3339).
    pub fn pushed_at(&self, tag: &str, time: &str) {
        let mut state = self.state.lock().unwrap();
        state.pushed.insert(tag.to_string(), time.to_string());
    }

    /// The tags deleted through the API.
    pub fn deleted(&self) -> Vec<String> {
        let mut deleted = self.state.lock().unwrap().deleted.clone();
        deleted.sort();
        deleted
    }

    pub fn requests(&self) -> Vec<(String, String, Option<String>)> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn detail(status: u16, text: &str) -> Reply {
    let body = serde_json::json!({"detail": text, "message": text});
    reply(
        status,
        &[("content-type", "application/json".to_string())],
        body.to_string(),
    )
}

async fn answer(
    request: hyper::Request<hyper::body::Incoming>,
    state: &Mutex<State>,
    registry: &str,
    repository: &str,
    login: &serde_json::Value,
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
    if method == "POST" && path == "/v2/auth/token" {
        let body: serde_json::Value =
            serde_json::from_slice(&read_body(request.into_body()).await?)?;
        if body != *login {
            return detail(401, "Incorrect authentication credentials");
        }
        let token = serde_json::json!({"access_token": ACCESS_TOKEN});
        return reply(
            200,
            &[("content-type", "application/json".to_string())],
            token.to_string(),
        );
    }
    if authorization.as_deref() != Some(&format!("Bearer {ACCESS_TOKEN}")) {
        return detail(401, "authentication required");
    }
    let (namespace, name) = repository.split_once('/').unwrap();
    let tags_path = format!("/v2/namespaces/{namespace}/repositories/{name}/tags");
    let tags = live_tags(registry, repository, state).await?;
    if method == "GET" && path == tags_path {
        let page: usize = query_values(request.uri(), "page")
            .first()
            .map_or(1, |page| page.parse().unwrap());
        let results: Vec<serde_json::Value> = tags
            .iter()
            .skip((page - 1) * PAGE_LIMIT)
            .take(PAGE_LIMIT)
            .map(|(tag, digest)| {
                let pushed = state.lock().unwrap().pushed.get(tag).cloned();
                serde_json::json!({
                    "name": tag,
                    "digest": digest,
                    "tag_last_pushed": pushed.unwrap_or_else(|| "2024-01-01T00:00:00.000000Z".into()),
                    "last_updated": "2024-01-01T00:00:00.000000Z",
                    "tag_status": "active",
                    "images": [],
                })
            })
            .collect();
        let next = (page * PAGE_LIMIT < tags.len()).then(|| {
            format!(
                "http://{host}{tags_path}?page={}&page_size={PAGE_LIMIT}",
                page + 1
            )
        });
        let body = serde_json::json!({
            "count": tags.len(),
            "next": next,
            "previous": null,
            "results": results,
        });
        return reply(
            200,
            &[("content-type", "application/json".to_string())],
            body.to_string(),
        );
    }
    if let Some(tag) = path.strip_prefix(&format!("{tags_path}/")) {
        if method != "DELETE" || !tags.iter().any(|(listed, _)| listed == tag) {
            return detail(404, "tag not found");
        }
        state.lock().unwrap().deleted.push(tag.to_string());
        return reply(204, &[], "");
    }
    detail(404, "object not found")
}

/// The registry's tags less those deleted through the API, each with the
/// digest it points at.
async fn live_tags(
    registry: &str,
    repository: &str,
    state: &Mutex<State>,
) -> Result<Vec<(String, String)>, super::http::HandlerError> {
    let http = reqwest::Client::new();
    let listed: serde_json::Value = http
        .get(format!("http://{registry}/v2/{repository}/tags/list"))
        .send()
        .await?
        .json()
        .await?;
    let deleted = state.lock().unwrap().deleted.clone();
    let mut tags = Vec::new();
    for tag in listed["tags"].as_array().into_iter().flatten() {
        let tag = tag.as_str().unwrap().to_string();
        if deleted.contains(&tag) {
            continue;
        }
        let answer = http
            .head(format!("http://{registry}/v2/{repository}/manifests/{tag}"))
            .header(
                "accept",
                "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
            )
            .send()
            .await?;
        let digest = answer.headers()["docker-content-digest"]
            .to_str()?
            .to_string();
        tags.push((tag, digest));
    }
    tags.sort();
    Ok(tags)
}
