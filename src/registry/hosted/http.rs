//! The HTTP side of the providers' APIs: JSON over HTTPS to one API base
//! URL, with the provider's credential on that origin and nowhere else. A
//! URL on another origin (a `Link` or `next` page, a redirect) is refused
//! rather than followed, plain HTTP is allowed only to loopback (for
//! tests), and every answer is read under a cap counted in bytes.

use super::super::RegistryClient;
use super::super::capped::read_at_most;
use super::RegistryApi;
use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};

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
    #[error("{repository}: {api} has no manifest {digest} to delete")]
    NoSuchManifest {
        repository: String,
        api: RegistryApi,
        digest: String,
    },
}

impl From<ApiError> for super::super::retention::RetentionError {
    fn from(error: ApiError) -> Self {
        super::super::retention::RetentionError::Api(Box::new(error))
    }
}

/// An answer: status, headers and the body read under the cap.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A client bound to one API's base URL and the credential for it.
pub(crate) struct ApiClient {
    client: RegistryClient,
    api: RegistryApi,
    base: Url,
    authorization: Option<HeaderValue>,
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
    /// nor loopback.
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
        Ok(ApiClient {
            client: client.clone(),
            api,
            base: parsed,
            authorization: None,
            hint,
        })
    }

    /// Sends `value` as the `Authorization` header from now on.
    pub fn authorize(&mut self, value: &str) {
        self.authorization = HeaderValue::from_str(value).ok().map(|mut header| {
            header.set_sensitive(true);
            header
        });
    }

    /// The base URL with `path` (which starts with `/`) after it.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    /// One request; a status other than 2xx (or one in `allowed`) is an
    /// error with the API's message.
    pub fn send(
        &self,
        method: Method,
        url: &str,
        json: Option<&serde_json::Value>,
        allowed: &[StatusCode],
    ) -> Result<Answer, ApiError> {
        let parsed = Url::parse(url)
            .ok()
            .filter(|parsed| parsed.origin() == self.base.origin())
            .ok_or_else(|| ApiError::ForeignUrl {
                api: self.api,
                url: url.to_string(),
                base: self.base.origin().ascii_serialization(),
            })?;
        let http = self.client.transport.http.clone();
        let authorization = self.authorization.clone();
        let json = json.cloned();
        let api = self.api;
        let failed = |source| ApiError::Http {
            api,
            method: method.clone(),
            url: url.to_string(),
            source,
        };
        let (status, headers, capped) = self.client.block_on(async {
            let mut request = http
                .request(method.clone(), parsed)
                .header(header::ACCEPT, "application/json");
            if let Some(authorization) = authorization {
                request = request.header(header::AUTHORIZATION, authorization);
            }
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
                api,
                url: url.to_string(),
                limit: MAXIMUM_ANSWER,
            });
        }
        if !status.is_success() && !allowed.contains(&status) {
            return Err(self.status_error(method, url, status, &capped.bytes));
        }
        Ok(Answer {
            status,
            headers,
            body: capped.bytes,
        })
    }

    /// GETs `url` and reads its JSON.
    pub fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<(T, HeaderMap), ApiError> {
        let answer = self.send(Method::GET, url, None, &[])?;
        Ok((self.parse(url, &answer.body)?, answer.headers))
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
