//! The ECR API (JSON 1.1: `POST /` with `X-Amz-Target:
//! AmazonEC2ContainerRegistry_V20150921.<Operation>`, signed with SigV4):
//! `DescribeImages` for what a repository holds and when each image was
//! pushed, `BatchDeleteImage` for deletes, and `GetAuthorizationToken` for
//! the registry password pushes and pulls use ([`EcrLogins`], which keeps
//! it until it expires).

use super::credentials::{self, AwsCredentials};
use super::environment::{AwsEnvironment, EcrHost, Service};
use super::sigv4::{self, Scope};
use super::{AwsError, send};
use crate::registry::credentials::Credential;
use base64::Engine as _;
use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

const TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";

/// `BatchDeleteImage` takes at most this many image ids a call.
pub const DELETE_BATCH: usize = 100;

/// The ECR API of one region, with credentials from the chain.
pub struct EcrApi {
    http: reqwest::Client,
    endpoint: Url,
    region: String,
    /// The registry's account, when its host names it.
    account: Option<String>,
    credentials: AwsCredentials,
}

/// One image as `DescribeImages` lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct EcrImage {
    pub digest: String,
    pub tags: Vec<String>,
    /// Unix seconds.
    pub pushed_at: Option<i64>,
}

/// What `BatchDeleteImage` could not delete: the image id (a digest or a
/// tag) with ECR's failure code and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteFailure {
    pub image: String,
    pub code: String,
    pub reason: String,
}

/// An image id for `BatchDeleteImage`.
#[derive(Clone, Debug)]
pub enum ImageId {
    Digest(String),
    Tag(String),
}

impl EcrApi {
    /// The API for the registry `host` (`account`, `region`) with
    /// credentials from the chain in `environment`.
    pub async fn connect(
        http: &reqwest::Client,
        environment: &AwsEnvironment,
        host: &str,
        registry: &EcrHost,
    ) -> Result<EcrApi, AwsError> {
        let endpoint = environment.endpoint(Service::Ecr, &registry.region)?;
        let credentials = credentials::resolve(http, environment, &registry.region, host).await?;
        Ok(EcrApi {
            http: http.clone(),
            endpoint,
            region: registry.region.clone(),
            account: (!registry.account.is_empty()).then(|| registry.account.clone()),
            credentials,
        })
    }

    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// One signed call of `operation` with `input`; its JSON answer.
    /// Throttling and server errors are retried a few times with backoff,
    /// and a broken connection too when the call only reads.
    async fn call(&self, operation: &'static str, mut input: Value) -> Result<Value, AwsError> {
        if let (Some(account), Some(object)) = (&self.account, input.as_object_mut()) {
            object.insert("registryId".to_string(), json!(account));
        }
        let body = serde_json::to_vec(&input).unwrap_or_default();
        let reads_only = operation != "BatchDeleteImage";
        let mut attempt = 1;
        loop {
            match self.attempt(operation, &body).await {
                Err(error) if attempt < ATTEMPTS && is_transient(&error, reads_only) => {
                    let delay = Duration::from_millis(250 << attempt);
                    tokio::time::sleep(delay.mul_f64(0.5 + fastrand::f64() * 0.5)).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// One signed request of `operation` with `body`.
    async fn attempt(&self, operation: &'static str, body: &[u8]) -> Result<Value, AwsError> {
        let target = format!("{TARGET_PREFIX}{operation}");
        let host = super::host_header(&self.endpoint);
        let content_type = "application/x-amz-json-1.1";
        let unsigned = [
            ("content-type", content_type),
            ("host", host.as_str()),
            ("x-amz-target", target.as_str()),
        ];
        let signed = sigv4::sign_request(
            &self.credentials,
            Scope {
                service: Service::Ecr.signing_name(),
                region: &self.region,
            },
            SystemTime::now(),
            ("POST", self.endpoint.as_str()),
            &unsigned,
            body,
        )?;
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .header("content-type", content_type)
            .header("x-amz-target", target.as_str());
        for header in signed {
            let (Ok(name), Ok(mut value)) = (
                HeaderName::from_bytes(header.name.as_bytes()),
                HeaderValue::from_str(&header.value),
            ) else {
                continue;
            };
            value.set_sensitive(header.sensitive || name == reqwest::header::AUTHORIZATION);
            request = request.header(name, value);
        }
        let answer = send(request.body(body.to_vec()), operation, &self.endpoint).await?;
        let parsed: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if !answer.status.is_success() {
            return Err(self.api_error(operation, answer.status.as_u16(), &parsed));
        }
        Ok(parsed)
    }

    /// ECR's error body, `{"__type": "...#RepositoryNotFoundException",
    /// "message": "..."}`, as an error.
    fn api_error(&self, operation: &'static str, status: u16, body: &Value) -> AwsError {
        let kind = body["__type"].as_str().unwrap_or("unknown error");
        let code = kind.rsplit('#').next().unwrap_or(kind).to_string();
        let message = body["message"]
            .as_str()
            .or_else(|| body["Message"].as_str())
            .unwrap_or_default()
            .to_string();
        AwsError::Api {
            operation,
            endpoint: self.endpoint.to_string(),
            status,
            code,
            message,
        }
    }

    /// Every image of `repository`, through every page.
    pub async fn describe_images(&self, repository: &str) -> Result<Vec<EcrImage>, AwsError> {
        let mut images = Vec::new();
        let mut next: Option<String> = None;
        // Bounded: a repository holds at most 20,000 images by default,
        // 1000 a page.
        for _ in 0..1000 {
            let mut input = json!({
                "repositoryName": repository,
                "maxResults": 1000,
                "filter": {"tagStatus": "ANY"},
            });
            if let Some(token) = &next {
                input["nextToken"] = json!(token);
            }
            let page = self.call("DescribeImages", input).await?;
            for detail in page["imageDetails"].as_array().into_iter().flatten() {
                if let Some(image) = parse_image(detail) {
                    images.push(image);
                }
            }
            next = page["nextToken"].as_str().map(str::to_string);
            if next.is_none() {
                return Ok(images);
            }
        }
        Err(AwsError::Protocol {
            operation: "DescribeImages",
            endpoint: self.endpoint.to_string(),
            detail: format!("{repository} has more than 1000 pages of images"),
        })
    }

    /// Deletes `ids` from `repository`, [`DELETE_BATCH`] a call; returns
    /// what ECR could not delete.
    pub async fn batch_delete_image(
        &self,
        repository: &str,
        ids: &[ImageId],
    ) -> Result<Vec<DeleteFailure>, AwsError> {
        let mut failures = Vec::new();
        for batch in ids.chunks(DELETE_BATCH) {
            let image_ids: Vec<Value> = batch
                .iter()
                .map(|id| match id {
                    ImageId::Digest(digest) => json!({"imageDigest": digest}),
                    ImageId::Tag(tag) => json!({"imageTag": tag}),
                })
                .collect();
            let input = json!({"repositoryName": repository, "imageIds": image_ids});
            let answer = self.call("BatchDeleteImage", input).await?;
            for failure in answer["failures"].as_array().into_iter().flatten() {
                let id = &failure["imageId"];
                let image = id["imageDigest"]
                    .as_str()
                    .or_else(|| id["imageTag"].as_str())
                    .unwrap_or_default();
                failures.push(DeleteFailure {
                    image: image.to_string(),
                    code: failure["failureCode"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    reason: failure["failureReason"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                });
            }
        }
        Ok(failures)
    }

    /// The registry password `GetAuthorizationToken` gives (user `AWS`),
    /// with when it expires.
    pub async fn authorization_token(&self) -> Result<(Credential, SystemTime), AwsError> {
        let answer = self.call("GetAuthorizationToken", json!({})).await?;
        let protocol = |detail: &str| AwsError::Protocol {
            operation: "GetAuthorizationToken",
            endpoint: self.endpoint.to_string(),
            detail: detail.to_string(),
        };
        let data = &answer["authorizationData"][0];
        let encoded = data["authorizationToken"]
            .as_str()
            .ok_or_else(|| protocol("the answer holds no authorizationToken"))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| protocol("the authorizationToken is not base64 text"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| protocol("the authorizationToken is not USER:PASSWORD"))?;
        // The token lasts 12 hours; without a time, assume one hour.
        let expires = data["expiresAt"]
            .as_f64()
            .filter(|seconds| *seconds > 0.0)
            .map_or_else(
                || SystemTime::now() + Duration::from_secs(3600),
                |seconds| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds),
            );
        Ok((
            Credential::UsernamePassword {
                username: username.to_string(),
                password: password.to_string(),
            },
            expires,
        ))
    }
}

/// Tries of one ECR call, the first included.
const ATTEMPTS: u32 = 4;

/// Whether `error` may pass if the call is made again: ECR throttled it or
/// failed itself (it did nothing), or, for a call that only reads, the
/// connection broke.
fn is_transient(error: &AwsError, reads_only: bool) -> bool {
    match error {
        AwsError::Api { status, code, .. } => {
            *status >= 500
                || *status == 429
                || matches!(
                    code.as_str(),
                    "ThrottlingException" | "TooManyRequestsException"
                )
        }
        AwsError::Transport { .. } => reads_only,
        _ => false,
    }
}

/// An `imageDetails` entry; `imagePushedAt` is epoch seconds (a number in
/// JSON 1.1).
fn parse_image(detail: &Value) -> Option<EcrImage> {
    Some(EcrImage {
        digest: detail["imageDigest"].as_str()?.to_string(),
        tags: detail["imageTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|tag| tag.as_str().map(str::to_string))
            .collect(),
        pushed_at: detail["imagePushedAt"]
            .as_f64()
            .map(|seconds| seconds as i64),
    })
}

/// Registry passwords from `GetAuthorizationToken`, per registry host,
/// each kept until shortly before it expires.
#[derive(Default)]
pub struct EcrLogins {
    cached: Mutex<HashMap<String, (Credential, SystemTime)>>,
    /// One token request at a time: uploads starting together share it.
    fetching: tokio::sync::Mutex<()>,
}

impl EcrLogins {
    /// The password for the ECR registry `host` in `region`.
    pub async fn credential(
        &self,
        http: &reqwest::Client,
        environment: &AwsEnvironment,
        host: &str,
        registry: &EcrHost,
    ) -> Result<Credential, AwsError> {
        if let Some(found) = self.cached(host) {
            return Ok(found);
        }
        let _fetching = self.fetching.lock().await;
        if let Some(found) = self.cached(host) {
            return Ok(found);
        }
        let api = EcrApi::connect(http, environment, host, registry).await?;
        let (credential, expires) = api.authorization_token().await?;
        self.cached
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(host.to_string(), (credential.clone(), expires));
        Ok(credential)
    }

    fn cached(&self, host: &str) -> Option<Credential> {
        let cached = self
            .cached
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let (credential, expires) = cached.get(host)?;
        // Renewed five minutes early, so a push never starts on a token
        // about to lapse.
        (SystemTime::now() + Duration::from_secs(300) < *expires).then(|| credential.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_retried_refusals_are_not() {
        let api = |status: u16, code: &str| AwsError::Api {
            operation: "DescribeImages",
            endpoint: "https://api.ecr.us-east-1.amazonaws.com/".to_string(),
            status,
            code: code.to_string(),
            message: String::new(),
        };
        assert!(is_transient(&api(400, "ThrottlingException"), true));
        assert!(is_transient(&api(503, "ServerException"), false));
        assert!(!is_transient(
            &api(400, "RepositoryNotFoundException"),
            true
        ));
        assert!(!is_transient(
            &api(400, "UnrecognizedClientException"),
            true
        ));
    }

    #[test]
    fn image_details_parse_with_and_without_tags() {
        let tagged = json!({
            "imageDigest": "sha256:aa",
            "imageTags": ["v1", "latest"],
            "imagePushedAt": 1.7e9,
        });
        assert_eq!(
            parse_image(&tagged),
            Some(EcrImage {
                digest: "sha256:aa".to_string(),
                tags: vec!["v1".to_string(), "latest".to_string()],
                pushed_at: Some(1_700_000_000),
            })
        );
        let untagged = parse_image(&json!({"imageDigest": "sha256:bb"})).unwrap();
        assert!(untagged.tags.is_empty() && untagged.pushed_at.is_none());
        assert_eq!(parse_image(&json!({"imageTags": ["x"]})), None);
    }
}
