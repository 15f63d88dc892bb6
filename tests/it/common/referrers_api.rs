//! The OCI 1.1 referrers API in front of a real `docker-registry`, which
//! has none (2.8): manifests with a `subject` are recorded as they are
//! pushed through, forgotten when deleted through, and listed by
//! `GET /v2/<name>/referrers/<digest>` as the distribution spec says (an
//! image index of descriptors carrying `artifactType` and annotations,
//! never a 404). A push of such a manifest is answered with `OCI-Subject`,
//! as registries with the API do; optionally, deleting a manifest deletes
//! its referrers too, as some registries do. Everything else goes to the
//! registry.

use super::hoist::sha256_hex;
use super::http::{Reply, TestServer, read_body, reply};
use super::proxy::{Upstream, start_proxy};
use super::registry::TestRegistry;
use hyper::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// A manifest with a subject: repository, subject digest, its descriptor.
type Recorded = (String, String, Value);

/// A registry with the referrers API, and the referrer lists it was asked for.
pub struct ReferrersRegistry {
    pub server: TestServer,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    queries: Arc<Mutex<Vec<String>>>,
}

impl ReferrersRegistry {
    pub fn start(registry: &TestRegistry) -> ReferrersRegistry {
        Self::start_with(registry, false)
    }

    /// As [`ReferrersRegistry::start`]; with `cascade`, deleting a manifest
    /// deletes its referrers too, as some registries do.
    pub fn start_with(registry: &TestRegistry, cascade: bool) -> ReferrersRegistry {
        let recorded: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let queries: Arc<Mutex<Vec<String>>> = Arc::default();
        let server = start_proxy(registry, {
            let recorded = recorded.clone();
            let queries = queries.clone();
            move |upstream, request| {
                let recorded = recorded.clone();
                let queries = queries.clone();
                async move { answer(&upstream, request, &recorded, &queries, cascade).await }
            }
        });
        ReferrersRegistry {
            server,
            recorded,
            queries,
        }
    }

    pub fn host(&self) -> String {
        self.server.host()
    }

    /// The digests of the referrers of `subject` it holds now.
    pub fn referrers_of(&self, subject: &str) -> Vec<String> {
        self.recorded
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, recorded_subject, _)| recorded_subject == subject)
            .map(|(_, _, descriptor)| descriptor["digest"].as_str().unwrap().to_string())
            .collect()
    }

    /// The artifact types of the referrers of `subject` it holds, sorted.
    pub fn artifact_types_of(&self, subject: &str) -> Vec<String> {
        let mut types: Vec<String> = self
            .recorded
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, recorded_subject, _)| recorded_subject == subject)
            .map(|(_, _, descriptor)| descriptor["artifactType"].as_str().unwrap().to_string())
            .collect();
        types.sort();
        types
    }

    /// Every referrer it holds, as (subject, referrer digest).
    pub fn all_referrers(&self) -> Vec<(String, String)> {
        self.recorded
            .lock()
            .unwrap()
            .iter()
            .map(|(_, subject, descriptor)| {
                (
                    subject.clone(),
                    descriptor["digest"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// How many referrer lists were asked for.
    pub fn queries(&self) -> usize {
        self.queries.lock().unwrap().len()
    }
}

/// `/v2/<name>/<kind>/<last>` split into its parts.
fn route(path: &str, kind: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/v2/")?;
    let (name, last) = rest.rsplit_once(&format!("/{kind}/"))?;
    Some((name.to_string(), last.to_string()))
}

async fn answer(
    upstream: &Upstream,
    request: hyper::Request<hyper::body::Incoming>,
    recorded: &Mutex<Vec<Recorded>>,
    queries: &Mutex<Vec<String>>,
    cascade: bool,
) -> Reply {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    if method == Method::GET
        && let Some((name, subject)) = route(&path, "referrers")
    {
        queries.lock().unwrap().push(subject.clone());
        let manifests: Vec<Value> = recorded
            .lock()
            .unwrap()
            .iter()
            .filter(|(repository, of, _)| *repository == name && *of == subject)
            .map(|(_, _, descriptor)| descriptor.clone())
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        return reply(
            200,
            &[(
                "content-type",
                "application/vnd.oci.image.index.v1+json".to_string(),
            )],
            index.to_string(),
        );
    }
    let Some((name, reference)) = route(&path, "manifests") else {
        return upstream.forward(request).await;
    };
    if method == Method::PUT {
        let path_and_query = request
            .uri()
            .path_and_query()
            .map(|part| part.to_string())
            .unwrap_or_default();
        let (parts, body) = request.into_parts();
        let body = read_body(body).await?;
        let answer = upstream
            .send(&parts.method, &path_and_query, &parts.headers, body.clone())
            .await?;
        let stored = answer.status().is_success();
        let mut relayed = upstream.relay(answer).await?;
        let manifest: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if stored && let Some(subject) = manifest["subject"]["digest"].as_str() {
            let digest = format!("sha256:{}", sha256_hex(&body));
            let artifact_type = manifest["artifactType"]
                .as_str()
                .or_else(|| manifest["config"]["mediaType"].as_str())
                .unwrap_or_default();
            let mut descriptor = json!({
                "mediaType": manifest["mediaType"],
                "digest": digest,
                "size": body.len(),
                "artifactType": artifact_type,
            });
            if let Some(annotations) = manifest.get("annotations") {
                descriptor["annotations"] = annotations.clone();
            }
            let mut recorded = recorded.lock().unwrap();
            recorded.retain(|(_, _, listed)| listed["digest"] != digest);
            recorded.push((name, subject.to_string(), descriptor));
            relayed
                .headers_mut()
                .insert("oci-subject", subject.parse()?);
        }
        return Ok(relayed);
    }
    if method == Method::DELETE {
        let headers = request.headers().clone();
        // What the manifest lists, read before it goes: with `cascade`, their
        // referrers go too, as a registry's garbage collection would take
        // them with the untagged manifests.
        let mut subjects = vec![reference.clone()];
        if cascade {
            let listing = upstream
                .send(
                    &Method::GET,
                    &path,
                    &accept_manifests(),
                    bytes::Bytes::new(),
                )
                .await?
                .bytes()
                .await?;
            let listing: Value = serde_json::from_slice(&listing).unwrap_or(Value::Null);
            for child in listing["manifests"].as_array().into_iter().flatten() {
                subjects.extend(child["digest"].as_str().map(str::to_string));
            }
        }
        let answer = upstream.forward(request).await?;
        if answer.status().is_success() {
            let referrers: Vec<String> = {
                let mut recorded = recorded.lock().unwrap();
                recorded.retain(|(repository, _, listed)| {
                    !(*repository == name && listed["digest"] == reference.as_str())
                });
                recorded
                    .iter()
                    .filter(|(repository, subject, _)| {
                        *repository == name && subjects.contains(subject)
                    })
                    .map(|(_, _, listed)| listed["digest"].as_str().unwrap().to_string())
                    .collect()
            };
            if cascade {
                for referrer in referrers {
                    let path = format!("/v2/{name}/manifests/{referrer}");
                    upstream
                        .send(&Method::DELETE, &path, &headers, bytes::Bytes::new())
                        .await?;
                    recorded
                        .lock()
                        .unwrap()
                        .retain(|(_, _, listed)| listed["digest"] != referrer.as_str());
                }
            }
        }
        return Ok(answer);
    }
    upstream.forward(request).await
}

/// An `Accept` for every manifest type a registry serves.
fn accept_manifests() -> hyper::HeaderMap {
    let mut headers = hyper::HeaderMap::new();
    headers.insert(
        hyper::header::ACCEPT,
        hyper::header::HeaderValue::from_static(
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
        ),
    );
    headers
}
