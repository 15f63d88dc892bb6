//! A loopback GitHub REST API for container packages, backed by a real
//! `docker-registry` for the manifests, written from GitHub's OpenAPI
//! description: github/rest-api-description,
//! `descriptions/api.github.com/api.github.com.yaml` at commit
//! 0000036e42b5e7121c2b1ac244cb7bba1d2f3914 (the "packages" operations and
//! the `package-version`, `basic-error`, `per-page` and `page` components),
//! with docs.github.com's "API versions" and "Rate limits for the REST API"
//! pages for what the description leaves out.
//!
//! - `GET /orgs/{org}/packages/container/{package}/versions` and `GET
//!   /user/packages/container/{package}/versions` take `page`, `per_page`
//!   (default 30; GitHub gives at most 100 whatever is asked) and `state`
//!   (`active`, the default, or `deleted`; anything else 422); `GET
//!   /users/{username}/packages/container/{package}/versions` lists the
//!   same with `page` and `per_page` only. Each lists one version per
//!   manifest the registry holds under the package's repository (every
//!   manifest a tag reaches, what those list, and untagged ones the test
//!   names), named by digest, with `metadata.container.tags`, `created_at`
//!   and `updated_at`, the next page in `Link: <…>; rel="next"`. To make a
//!   test's few manifests span pages it serves at most three a page.
//! - `GET …/versions/{id}` answers the version; `DELETE …/versions/{id}`
//!   deletes the manifest from the registry and answers 204, or 400 for a
//!   version the test marked as downloaded more than 5,000 times (the
//!   description says such a version of a public package cannot be
//!   deleted; the status and message are GitHub's, not the description's).
//! - `GET /user` names the token's user. The package's owner is a user or
//!   an organisation: the other kind's listing answers 404, as GitHub does,
//!   and so does `/user/packages/…` for a token of another user.
//! - Every error is `{"message", "documentation_url"}`. Without
//!   `Authorization: Bearer <token>` a call answers 401 "Requires
//!   authentication", with another token 401 "Bad credentials"; an
//!   `X-GitHub-Api-Version` GitHub does not serve answers 400 (without one
//!   GitHub serves 2022-11-28); an unknown route or method answers 404.
//! - Faults a test queues answer the next matching request instead (a 503,
//!   a 403 with `x-ratelimit-remaining: 0`).
//! - Served under a path prefix, it stands for GitHub Enterprise Server's
//!   `https://HOST/api/v3`.

use super::http::{
    Faults, HandlerError, Reply, TestServer, paging, query_values, reply, request_header,
};
use super::registry::{manifest_at, tags_at};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Versions per page at most, so a test's few manifests span pages.
const PAGE_LIMIT: usize = 3;

/// The most versions GitHub gives a page, whatever `per_page` asks.
const PER_PAGE_MAXIMUM: usize = 100;

/// The API versions GitHub serves (docs.github.com, "API versions").
const API_VERSIONS: [&str; 2] = ["2022-11-28", "2026-03-10"];

const DOCUMENTATION: &str = "https://docs.github.com/rest/packages/packages";

/// Who owns the package, and whose token the test's is.
#[derive(Clone)]
pub struct Setup {
    /// The package's owner is an organisation (else a user).
    pub organization: bool,
    /// The token's user (`GET /user`).
    pub login: String,
    /// A path the API is served under (`/api/v3` for GitHub Enterprise).
    pub prefix: String,
}

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
    /// Versions downloaded more than 5,000 times.
    popular: Vec<String>,
    /// Every request as it came.
    requests: Vec<Seen>,
}

/// A request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: hyper::HeaderMap,
}

impl Seen {
    /// The request's header `name`, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

pub struct GitHubApi {
    server: TestServer,
    state: Arc<Mutex<State>>,
    faults: Arc<Faults>,
    prefix: String,
}

impl GitHubApi {
    /// Serves `owner/package` (a repository of `registry`) to `token`, as
    /// `setup` says.
    pub fn start(registry: &str, repository: &str, token: &str, setup: Setup) -> GitHubApi {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let state = Arc::new(Mutex::new(State::default()));
        let faults = Arc::new(Faults::default());
        let (shared, queued) = (state.clone(), faults.clone());
        let prefix = setup.prefix.clone();
        let served = Arc::new(Served {
            registry: registry.to_string(),
            repository: repository.to_string(),
            token: token.to_string(),
            setup,
        });
        let server = TestServer::start(move |request| {
            let (state, faults, served) = (shared.clone(), queued.clone(), served.clone());
            async move { answer(request, &state, &faults, &served).await }
        });
        GitHubApi {
            server,
            state,
            faults,
            prefix,
        }
    }

    /// The API's base URL, as `GITHUB_API_URL` gives it.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.server.host(), self.prefix)
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

    /// Marks `digest` as a version of a public package downloaded more than
    /// 5,000 times: GitHub refuses to delete it.
    pub fn downloaded_often(&self, digest: &str) {
        self.state.lock().unwrap().popular.push(digest.to_string());
    }

    /// The faults to serve instead of requests, `{"message"}` their text.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }
}

/// What the server serves, fixed at its start.
struct Served {
    registry: String,
    repository: String,
    token: String,
    setup: Setup,
}

/// The listing a path is, if it is one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Listing {
    Organization,
    TokenUser,
    User,
}

async fn answer(
    request: hyper::Request<hyper::body::Incoming>,
    state: &Mutex<State>,
    faults: &Faults,
    served: &Served,
) -> Reply {
    let seen = Seen {
        method: request.method().to_string(),
        path: request.uri().to_string(),
        headers: request.headers().clone(),
    };
    let host = request_header(&request, "host").unwrap_or_default();
    state.lock().unwrap().requests.push(seen.clone());
    if let Some(fault) = faults.take(&seen.method, &seen.path) {
        return message_with(fault.status, &fault.text, &fault.headers);
    }
    if let Some(version) = seen.header("x-github-api-version")
        && !API_VERSIONS.contains(&version)
    {
        return message(
            400,
            &format!("Unsupported 'X-GitHub-Api-Version' header: {version}"),
        );
    }
    match seen.header("authorization") {
        None => return message(401, "Requires authentication"),
        Some(given) if given != format!("Bearer {}", served.token) => {
            return message(401, "Bad credentials");
        }
        Some(_) => {}
    }
    let Some(path) = request
        .uri()
        .path()
        .strip_prefix(served.setup.prefix.as_str())
    else {
        return message(404, "Not Found");
    };
    let method = seen.method.as_str();
    if path == "/user" && method == "GET" {
        let body = serde_json::json!({"login": served.setup.login, "id": 1, "type": "User"});
        return json(200, &[], body);
    }
    let (owner, package) = served.repository.split_once('/').unwrap();
    let package = package.replace('/', "%2F");
    let listings = [
        (
            Listing::Organization,
            format!("/orgs/{owner}/packages/container/{package}/versions"),
        ),
        (
            Listing::TokenUser,
            format!("/user/packages/container/{package}/versions"),
        ),
        (
            Listing::User,
            format!("/users/{owner}/packages/container/{package}/versions"),
        ),
    ];
    let Some((listing, versions)) = listings.iter().find(|(_, versions)| {
        path == versions.as_str() || path.starts_with(&format!("{versions}/"))
    }) else {
        return message(404, "Not Found");
    };
    let owned = match listing {
        Listing::Organization => served.setup.organization,
        Listing::TokenUser => !served.setup.organization && served.setup.login == owner,
        Listing::User => !served.setup.organization,
    };
    if !owned {
        return message(404, "Not Found");
    }
    let manifests = all_manifests(&served.registry, &served.repository, state).await?;
    if path == versions.as_str() {
        if method != "GET" {
            return message(404, "Not Found");
        }
        let base = format!("http://{host}{}{versions}", served.setup.prefix);
        return list(&request, *listing, &base, state, &manifests);
    }
    let id = &path[versions.len() + 1..];
    let digest = id
        .parse::<usize>()
        .ok()
        .and_then(|id| state.lock().unwrap().ids.get(id.wrapping_sub(1)).cloned());
    let Some(digest) = digest.filter(|digest| manifests.iter().any(|(d, _)| d == digest)) else {
        return message(404, "Package version not found.");
    };
    match method {
        "GET" => {
            let tags = &manifests.iter().find(|(d, _)| *d == digest).unwrap().1;
            json(200, &[], version_json(state, &digest, tags))
        }
        "DELETE" => delete(state, served, &digest).await,
        _ => message(404, "Not Found"),
    }
}

/// A page of versions, as `page`, `per_page` and `state` ask.
fn list(
    request: &hyper::Request<hyper::body::Incoming>,
    listing: Listing,
    base: &str,
    state: &Mutex<State>,
    manifests: &[(String, Vec<String>)],
) -> Reply {
    let Some((page, asked)) = paging(request.uri(), "per_page", 30) else {
        return message(400, "page and per_page take integers");
    };
    let wanted = query_values(request.uri(), "state");
    let deleted = match (listing, wanted.first().map(String::as_str)) {
        (Listing::User, _) | (_, None | Some("active")) => false,
        (_, Some("deleted")) => true,
        (_, Some(other)) => {
            return message(422, &format!("Invalid value for state: {other}"));
        }
    };
    let listed: Vec<(String, Vec<String>)> = if deleted {
        let gone = state.lock().unwrap().deleted.clone();
        gone.into_iter()
            .map(|digest| (digest, Vec::new()))
            .collect()
    } else {
        manifests.to_vec()
    };
    let per_page = asked.clamp(1, PER_PAGE_MAXIMUM).min(PAGE_LIMIT);
    let shown: Vec<serde_json::Value> = listed
        .iter()
        .skip((page.max(1) - 1) * per_page)
        .take(per_page)
        .map(|(digest, tags)| version_json(state, digest, tags))
        .collect();
    let mut headers = Vec::new();
    let pages = listed.len().div_ceil(per_page).max(1);
    if page < pages {
        let mut query = format!("per_page={asked}&page={}", page + 1);
        if let Some(wanted) = wanted.first() {
            query.push_str(&format!("&state={wanted}"));
        }
        let last = query.replace(&format!("page={}", page + 1), &format!("page={pages}"));
        headers.push((
            "link",
            format!("<{base}?{query}>; rel=\"next\", <{base}?{last}>; rel=\"last\""),
        ));
    }
    json(200, &headers, serde_json::Value::from(shown))
}

/// Deletes the version of `digest`: its manifest from the registry.
async fn delete(state: &Mutex<State>, served: &Served, digest: &str) -> Reply {
    if state.lock().unwrap().popular.iter().any(|d| d == digest) {
        return message(
            400,
            "Publicly visible package versions with more than 5000 downloads cannot be deleted. \
             Contact GitHub support for further assistance.",
        );
    }
    let url = format!(
        "http://{}/v2/{}/manifests/{digest}",
        served.registry, served.repository
    );
    let deleted = reqwest::Client::new().delete(url).send().await?;
    assert!(deleted.status().is_success(), "{}", deleted.status());
    state.lock().unwrap().deleted.push(digest.to_string());
    reply(204, &[], "")
}

fn json(status: u16, headers: &[(&'static str, String)], body: serde_json::Value) -> Reply {
    let mut all = vec![(
        "content-type",
        "application/json; charset=utf-8".to_string(),
    )];
    all.extend(headers.iter().cloned());
    reply(status, &all, body.to_string())
}

/// `{"message": …, "documentation_url": …}`, as GitHub answers errors
/// (the description's `basic-error`).
fn message(status: u16, text: &str) -> Reply {
    message_with(status, text, &[])
}

fn message_with(status: u16, text: &str, headers: &[(&'static str, String)]) -> Reply {
    let body = serde_json::json!({
        "message": text,
        "documentation_url": DOCUMENTATION,
        "status": status.to_string(),
    });
    json(status, headers, body)
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
    let tags = tags_at(registry, repository).await?;
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
    while let Some((target, tag)) = queue.pop() {
        let Some((digest, body)) = manifest_at(registry, repository, &target).await? else {
            continue;
        };
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
