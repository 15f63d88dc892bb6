//! The HTTP side of the providers' APIs: JSON over HTTPS to one API base
//! URL, with the provider's credential on that origin and nowhere else. A
//! URL on another origin (a `Link` or `next` page, a redirect) is refused
//! rather than followed, plain HTTP is allowed only to loopback (for
//! tests), every answer is read under a cap counted in bytes, and a failed
//! connection, a 5xx or a rate limit is tried again as the client's retry
//! policy allows (the same bounded attempts and backoff as the
//! distribution transport, after the wait the API names: [`super::retry`]).

use super::super::RegistryClient;
use super::super::capped::read_at_most;
use super::RegistryApi;
use super::retry::{self, Verdict};
use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use std::sync::Mutex;
use std::time::SystemTime;

/// One page of an API's listing, an error body, a token answer.
const MAXIMUM_ANSWER: usize = 16 * 1024 * 1024;

/// A provider API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{api} at {url}: give an https:// URL (plain http is allowed for loopback only)")]
    NotHttps { api: RegistryApi, url: String },
    #[error("{api}: {url} is not on {base}, which alone receives its credentials; refused")]
    ForeignUrl {
        api: RegistryApi,
        url: String,
        base: String,
    },
    #[error("{api}: {method} {url}: {source}")]
    Http {
        api: RegistryApi,
        method: Method,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{api} answered {status} to {method} {url}: {message}{hint}")]
    Status {
        api: RegistryApi,
        method: Method,
        url: String,
        status: u16,
        message: String,
        hint: String,
    },
    #[error("{source} (gave up after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        #[source]
        source: Box<ApiError>,
    },
    #[error("{api}: {url} answered more than {limit} bytes")]
    TooLarge {
        api: RegistryApi,
        url: String,
        limit: usize,
    },
    #[error("{api}: {url} answered JSON hoist cannot read: {source}")]
    Json {
        api: RegistryApi,
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{repository}: {api} needs a token: {how}")]
    NoCredentials {
        repository: String,
        api: RegistryApi,
        how: &'static str,
    },
    #[error(
        "{repository}: cleaning up through {api} is not built into this hoist; \
         pass --registry-api distribution if the registry accepts the distribution API's DELETE"
    )]
    NotAvailable {
        repository: String,
        api: RegistryApi,
    },
    #[error(
        "{repository}: {api} has no container package `{package}` under the organisation or \
         user `{owner}` (404 from {url}); check the name, and that the token may read the package \
         ({hint})"
    )]
    NoPackage {
        repository: String,
        api: RegistryApi,
        owner: String,
        package: String,
        url: String,
        hint: &'static str,
    },
    #[error(
        "{repository}@{digest}: Docker Hub deletes a manifest only when no tag and no other image \
         refers to it, and only for a token that may delete (Read, Write & Delete): {source}"
    )]
    ManifestReferenced {
        repository: String,
        digest: String,
        #[source]
        source: Box<super::super::RegistryError>,
    },
    #[error("{repository}: {api} has no manifest {digest} to delete")]
    NoSuchManifest {
        repository: String,
        api: RegistryApi,
        digest: String,
    },
}

impl ApiError {
    /// Whether another attempt may succeed: a connection that failed or
    /// timed out (a request hoist could not build will not).
    fn is_transient(&self) -> bool {
        matches!(self, ApiError::Http { source, .. } if !source.is_builder())
    }

    /// The HTTP status the API answered, where it answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            ApiError::GaveUp { source, .. } => source.status(),
            _ => None,
        }
    }

    /// The same error with `extra` added to what it tells the user to do.
    pub fn with_hint(self, extra: &str) -> ApiError {
        match self {
            ApiError::Status {
                api,
                method,
                url,
                status,
                message,
                hint,
            } => ApiError::Status {
                api,
                method,
                url,
                status,
                message,
                hint: format!("{hint} ({extra})"),
            },
            ApiError::GaveUp { attempts, source } => ApiError::GaveUp {
                attempts,
                source: Box::new(source.with_hint(extra)),
            },
            other => other,
        }
    }
}

impl From<ApiError> for super::super::retention::RetentionError {
    fn from(error: ApiError) -> Self {
        super::super::retention::RetentionError::Api(Box::new(error))
    }
}

/// An answer: status, headers, the body read under the cap, and how many
/// attempts it took.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// More than one when an earlier attempt failed transiently: a 404 to a
    /// DELETE then likely means the earlier attempt deleted it.
    pub attempts: u32,
}

/// A client bound to one API's base URL and the credential for it.
pub(crate) struct ApiClient {
    client: RegistryClient,
    api: RegistryApi,
    base: Url,
    /// Sent with every request (GitHub's media type and API version).
    headers: HeaderMap,
    /// Replaced when a short-lived token is renewed (Hub's last minutes).
    authorization: Mutex<Option<HeaderValue>>,
    /// What a 401 or 403 should add: which token and scopes the API wants.
    hint: &'static str,
}

/// Whether `url` may be reached: HTTPS, or plain HTTP to loopback.
fn allowed_scheme(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Domain(name)) => name == "localhost",
            Some(url::Host::Ipv4(address)) => address.is_loopback(),
            Some(url::Host::Ipv6(address)) => address.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

impl ApiClient {
    /// A client for `api` at `base`, refusing a base that is neither HTTPS
    /// nor loopback. `base` may carry a path (GitHub Enterprise Server's
    /// `https://HOST/api/v3`); every call's path goes after it.
    pub fn new(
        client: &RegistryClient,
        api: RegistryApi,
        base: &str,
        hint: &'static str,
    ) -> Result<Self, ApiError> {
        let parsed = Url::parse(base.trim_end_matches('/'))
            .ok()
            .filter(allowed_scheme)
            .ok_or_else(|| ApiError::NotHttps {
                api,
                url: base.to_string(),
            })?;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        Ok(ApiClient {
            client: client.clone(),
            api,
            base: parsed,
            headers,
            authorization: Mutex::new(None),
            hint,
        })
    }

    /// Sends `name: value` with every request, in place of any default.
    pub fn with_header(mut self, name: header::HeaderName, value: &'static str) -> Self {
        self.headers.insert(name, HeaderValue::from_static(value));
        self
    }

    /// Sends `value` as the `Authorization` header from now on.
    pub fn authorize(&self, value: &str) {
        let header = HeaderValue::from_str(value).ok().map(|mut header| {
            header.set_sensitive(true);
            header
        });
        *self
            .authorization
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = header;
    }

    /// The base URL with `path` (which starts with `/`) after it.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    /// One call, tried again as the client's retry policy allows when the
    /// connection fails or the API answers 5xx or a rate limit
    /// ([`retry::verdict`]), after the wait it names. A status other than
    /// 2xx (or one in `allowed`) is an error with the API's message.
    pub fn send(
        &self,
        method: Method,
        url: &str,
        json: Option<&serde_json::Value>,
        allowed: &[StatusCode],
    ) -> Result<Answer, ApiError> {
        self.exchange(method, url, json, allowed, true)
    }

    /// As [`ApiClient::send`], without the `Authorization` header: a
    /// sign-in sends its credentials in the body, not a token that may
    /// have run out.
    pub fn send_anonymous(
        &self,
        method: Method,
        url: &str,
        json: Option<&serde_json::Value>,
    ) -> Result<Answer, ApiError> {
        self.exchange(method, url, json, &[], false)
    }

    fn exchange(
        &self,
        method: Method,
        url: &str,
        json: Option<&serde_json::Value>,
        allowed: &[StatusCode],
        authorized: bool,
    ) -> Result<Answer, ApiError> {
        let parsed = self.own_url(url)?;
        let policy = &self.client.options().retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= policy.attempts;
            let (error, asked) = match self.attempt(&method, &parsed, json, authorized) {
                Ok(answer) if answer.status.is_success() => {
                    return Ok(Answer {
                        attempts: attempt,
                        ..answer
                    });
                }
                Ok(answer) => {
                    // A status the caller handles is still tried again when
                    // it is a rate limit (GitHub's 403) and attempts remain.
                    let verdict = retry::verdict(answer.status, &answer.headers, SystemTime::now());
                    match verdict {
                        Verdict::Again(asked) if !last => (
                            self.status_error(method.clone(), url, answer.status, &answer.body),
                            asked,
                        ),
                        _ if allowed.contains(&answer.status) => {
                            return Ok(Answer {
                                attempts: attempt,
                                ..answer
                            });
                        }
                        Verdict::Again(asked) => (
                            self.status_error(method.clone(), url, answer.status, &answer.body),
                            asked,
                        ),
                        Verdict::Final => {
                            return Err(self.status_error(
                                method.clone(),
                                url,
                                answer.status,
                                &answer.body,
                            ));
                        }
                    }
                }
                Err(error) if error.is_transient() => (error, None),
                Err(error) => return Err(error),
            };
            if last {
                return Err(if attempt > 1 {
                    ApiError::GaveUp {
                        attempts: attempt,
                        source: Box::new(error),
                    }
                } else {
                    error
                });
            }
            let delay = policy.delay(attempt, asked);
            tracing::warn!(
                "{error}; retrying in {:.1}s (attempt {} of {})",
                delay.as_secs_f64(),
                attempt + 1,
                policy.attempts
            );
            std::thread::sleep(delay);
        }
    }

    /// `url` parsed, when it is on the API's origin: nothing else receives
    /// the credential.
    fn own_url(&self, url: &str) -> Result<Url, ApiError> {
        Url::parse(url)
            .ok()
            .filter(|parsed| parsed.origin() == self.base.origin())
            .ok_or_else(|| ApiError::ForeignUrl {
                api: self.api,
                url: url.to_string(),
                base: self.base.origin().ascii_serialization(),
            })
    }

    /// One request and its answer, read under the cap.
    fn attempt(
        &self,
        method: &Method,
        url: &Url,
        json: Option<&serde_json::Value>,
        authorized: bool,
    ) -> Result<Answer, ApiError> {
        let http = self.client.transport.http.clone();
        let mut headers = self.headers.clone();
        let authorization = self
            .authorization
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
            .filter(|_| authorized);
        if let Some(authorization) = authorization {
            headers.insert(header::AUTHORIZATION, authorization);
        }
        let json = json.cloned();
        let failed = |source| ApiError::Http {
            api: self.api,
            method: method.clone(),
            url: url.to_string(),
            source,
        };
        let (status, headers, capped) = self.client.block_on(async {
            let mut request = http.request(method.clone(), url.clone()).headers(headers);
            if let Some(json) = json {
                request = request.json(&json);
            }
            let response = request.send().await.map_err(failed)?;
            let status = response.status();
            let headers = response.headers().clone();
            let capped = read_at_most(response, MAXIMUM_ANSWER)
                .await
                .map_err(failed)?;
            Ok::<_, ApiError>((status, headers, capped))
        })?;
        if !capped.complete {
            return Err(ApiError::TooLarge {
                api: self.api,
                url: url.to_string(),
                limit: MAXIMUM_ANSWER,
            });
        }
        Ok(Answer {
            status,
            headers,
            body: capped.bytes,
            attempts: 1,
        })
    }

    /// Reads `body`, an answer from `url`, as JSON.
    pub fn parse<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        body: &[u8],
    ) -> Result<T, ApiError> {
        serde_json::from_slice(body).map_err(|source| ApiError::Json {
            api: self.api,
            url: url.to_string(),
            source,
        })
    }

    /// The next page a `Link: <…>; rel="next"` header names, if any.
    pub fn link_next(&self, headers: &HeaderMap) -> Option<String> {
        super::super::pages::link_next(headers, self.base.as_str().trim_end_matches('/'))
    }

    /// The error for an answer with `status`: the API's `message` (GitHub,
    /// Hub's `message` or `detail`), and for 401 or 403 what to give.
    fn status_error(&self, method: Method, url: &str, status: StatusCode, body: &[u8]) -> ApiError {
        let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let message = ["message", "detail", "errinfo"]
            .iter()
            .find_map(|key| parsed.get(key).and_then(|value| value.as_str()))
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
        let hint = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => format!(" ({})", self.hint),
            _ => String::new(),
        };
        ApiError::Status {
            api: self.api,
            method,
            url: url.to_string(),
            status: status.as_u16(),
            message,
            hint,
        }
    }
}
