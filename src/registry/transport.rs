//! The async core under every registry call: TLS setup, choosing HTTPS or
//! (for loopback and insecure registries only) plain HTTP, answering
//! `WWW-Authenticate` challenges (Basic, Bearer token with a cache per scope),
//! and retrying 5xx, 429, resets and timeouts with backoff and jitter.

use super::auth::{CachedToken, HostAuth, TokenKey};
use super::client::ClientOptions;
use super::credentials::Credential;
use super::error::{Answer, RegistryError};
use bytes::Bytes;
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, Response, StatusCode};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Token scopes a request needs, kept sorted so equal sets share a cache entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Scopes(pub(super) Vec<String>);

impl Scopes {
    pub fn pull(repository: &str) -> Self {
        Scopes(vec![format!("repository:{repository}:pull")])
    }

    pub fn push(repository: &str) -> Self {
        Scopes(vec![format!("repository:{repository}:pull,push")])
    }

    /// Push to `repository` and pull from `source`, for a cross-repository mount.
    pub fn mount(repository: &str, source: &str) -> Self {
        let mut scopes = vec![
            format!("repository:{repository}:pull,push"),
            format!("repository:{source}:pull"),
        ];
        scopes.sort();
        Scopes(scopes)
    }

    /// Deleting manifests: an action of its own in distribution's token
    /// scheme, which a push token does not include.
    pub fn delete(repository: &str) -> Self {
        Scopes(vec![format!("repository:{repository}:delete")])
    }

    pub fn none() -> Self {
        Scopes(Vec::new())
    }

    pub(super) fn key(&self) -> String {
        self.0.join(" ")
    }

    fn wants_push(&self) -> bool {
        self.0.iter().any(|scope| scope.ends_with("push"))
    }

    fn wants_delete(&self) -> bool {
        self.0.iter().any(|scope| scope.ends_with(":delete"))
    }
}

/// What one call is doing, for error messages.
#[derive(Clone, Debug)]
pub(crate) struct Context {
    pub operation: String,
    pub target: String,
}

impl Context {
    pub fn new(operation: impl Into<String>, target: impl ToString) -> Self {
        Context {
            operation: operation.into(),
            target: target.to_string(),
        }
    }
}

pub(crate) struct Transport {
    pub http: reqwest::Client,
    pub options: ClientOptions,
    pub(super) schemes: Mutex<HashMap<String, &'static str>>,
    /// One scheme probe per host at a time: uploads starting together wait
    /// for the first one's answer instead of each probing the host.
    scheme_probes: Flights<String>,
    pub(super) auth: Mutex<HashMap<String, HostAuth>>,
    pub(super) tokens: Mutex<HashMap<TokenKey, CachedToken>>,
    /// One fetch per scope at a time: parallel uploads starting together
    /// share one token instead of each asking the realm.
    pub(super) token_fetches: Flights<TokenKey>,
    pub(super) credentials: Mutex<HashMap<String, Option<Credential>>>,
}

/// A lock per key, for work that requests starting together should do once
/// (the first does it, the others wait and then find its result cached).
pub(super) type Flights<K> = Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>;

/// The lock for `key` in `flights`, made on first use.
pub(super) fn one_at_a_time<K: std::hash::Hash + Eq>(
    flights: &Flights<K>,
    key: K,
) -> Arc<tokio::sync::Mutex<()>> {
    flights
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .entry(key)
        .or_default()
        .clone()
}

/// True for `localhost`, `127.0.0.0/8` and `::1`, with or without a port.
pub(crate) fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                name
            } else {
                host
            }
        })
    };
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn tls_config(options: &ClientOptions) -> Result<rustls::ClientConfig, RegistryError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Honours SSL_CERT_FILE and SSL_CERT_DIR, else the system store.
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!("loading system CA certificates: {error}");
    }
    roots.add_parsable_certificates(native.certs);
    for path in &options.ca_certificates {
        let certificates = CertificateDer::pem_file_iter(path)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|error| RegistryError::CaCertificate {
                path: path.clone(),
                reason: error.to_string(),
            })?;
        if certificates.is_empty() {
            return Err(RegistryError::CaCertificate {
                path: path.clone(),
                reason: "the file holds no PEM certificate".to_string(),
            });
        }
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|error| RegistryError::CaCertificate {
                    path: path.clone(),
                    reason: error.to_string(),
                })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(RegistryError::TlsSetup)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The next error down the chain. io::Error's `source()` skips the error it
/// wraps, so that one is visited explicitly.
fn next_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
    {
        return Some(inner);
    }
    error.source()
}

/// The rustls error somewhere in `error`'s chain, if any.
fn find_tls_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(item) = current {
        if let Some(tls) = item.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = next_error(item);
    }
    None
}

pub(super) fn is_certificate_error(error: &reqwest::Error) -> bool {
    matches!(
        find_tls_error(error),
        Some(
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::UnsupportedNameType
        )
    )
}

/// True when the other end answered the TLS handshake with something that is
/// not TLS: most often a registry serving plain HTTP.
pub(super) fn is_not_tls(error: &reqwest::Error) -> bool {
    matches!(
        find_tls_error(error),
        Some(rustls::Error::InvalidMessage(_))
    )
}

/// True when name resolution said the host does not exist (getaddrinfo's
/// EAI_NONAME or EAI_NODATA), as opposed to failing to ask.
fn is_unknown_host(error: &reqwest::Error) -> bool {
    const ANSWERS: [&str; 3] = [
        "Name or service not known",
        "No address associated with hostname",
        "nodename nor servname provided",
    ];
    has_io_error(error, |io| {
        let message = io.to_string();
        ANSWERS.iter().any(|answer| message.contains(answer))
    })
}

fn is_connection_refused(error: &reqwest::Error) -> bool {
    has_io_error(error, |io| {
        io.kind() == std::io::ErrorKind::ConnectionRefused
    })
}

/// Whether an `io::Error` in `error`'s chain of causes satisfies `test`.
fn has_io_error(error: &reqwest::Error, test: impl Fn(&std::io::Error) -> bool) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(item) = current {
        if let Some(io) = item.downcast_ref::<std::io::Error>()
            && test(io)
        {
            return true;
        }
        current = next_error(item);
    }
    false
}

/// Parses `Retry-After`: delay seconds or an HTTP date; capped at a minute.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    };
    Some(delay.min(Duration::from_secs(60)))
}

/// The registry's `{"errors":[{"code","message"}]}` body, first entry.
pub(super) fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(parsed) => match parsed.errors.into_iter().next() {
            Some(entry) => (entry.code, entry.message),
            None => (None, None),
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                (None, None)
            } else {
                (None, Some(text.chars().take(300).collect()))
            }
        }
    }
}

impl Transport {
    pub fn new(options: ClientOptions) -> Result<Self, RegistryError> {
        let tls = tls_config(&options)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(options.user_agent.clone())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(options.read_timeout)
            .build()
            .map_err(RegistryError::ClientSetup)?;
        Ok(Transport {
            http,
            options,
            schemes: Mutex::new(HashMap::new()),
            scheme_probes: Mutex::new(HashMap::new()),
            auth: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            token_fetches: Mutex::new(HashMap::new()),
            credentials: Mutex::new(HashMap::new()),
        })
    }

    /// True when `host` may be spoken to over plain HTTP.
    pub fn plain_http_allowed(&self, host: &str) -> bool {
        is_loopback(host)
            || self
                .options
                .insecure_registries
                .iter()
                .any(|insecure| insecure == host)
    }

    /// `https://host` or, for hosts allowed plain HTTP that do not speak
    /// TLS, `http://host`. Probed once per host with `GET /v2/`.
    pub async fn base_url(&self, host: &str) -> Result<String, RegistryError> {
        if let Some(scheme) = self.lock_schemes().get(host) {
            return Ok(format!("{scheme}://{host}"));
        }
        if !self.plain_http_allowed(host) {
            self.lock_schemes().insert(host.to_string(), "https");
            return Ok(format!("https://{host}"));
        }
        let probe_lock = one_at_a_time(&self.scheme_probes, host.to_string());
        let _probing = probe_lock.lock().await;
        // Another request may have probed the host while this one waited.
        if let Some(scheme) = self.lock_schemes().get(host) {
            return Ok(format!("{scheme}://{host}"));
        }
        let probe = |scheme: &str| {
            self.http
                .get(format!("{scheme}://{host}/v2/"))
                .timeout(Duration::from_secs(30))
                .send()
        };
        let scheme = match probe("https").await {
            Ok(response) => {
                self.remember_challenge(host, response.headers());
                "https"
            }
            Err(error) if is_certificate_error(&error) => {
                return Err(RegistryError::Certificate {
                    host: host.to_string(),
                    source: error,
                });
            }
            Err(error) if is_connection_refused(&error) || error.is_timeout() => {
                return Err(RegistryError::Transport {
                    operation: "connecting to".to_string(),
                    target: host.to_string(),
                    source: error,
                });
            }
            Err(_) => {
                // Not TLS on the other end: a plain HTTP registry we may use.
                if let Ok(response) = probe("http").await {
                    self.remember_challenge(host, response.headers());
                }
                "http"
            }
        };
        self.lock_schemes().insert(host.to_string(), scheme);
        Ok(format!("{scheme}://{host}"))
    }

    fn lock_schemes(&self) -> std::sync::MutexGuard<'_, HashMap<String, &'static str>> {
        self.schemes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub(super) fn lock_auth(&self) -> std::sync::MutexGuard<'_, HashMap<String, HostAuth>> {
        self.auth
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub(super) fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<TokenKey, CachedToken>> {
        self.tokens
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// One request with the current authorization, no retries.
    #[allow(clippy::too_many_arguments)]
    pub async fn attempt(
        &self,
        host: &str,
        scopes: &Scopes,
        context: &Context,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<reqwest::Body>,
    ) -> Result<Response, RegistryError> {
        let mut request = self.http.request(method, url).headers(headers);
        if let Some(authorization) = self.authorization(host, scopes).await? {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        request
            .send()
            .await
            .map_err(|source| self.transport_error(host, context, source))
    }

    pub fn transport_error(
        &self,
        host: &str,
        context: &Context,
        source: reqwest::Error,
    ) -> RegistryError {
        if is_certificate_error(&source) {
            RegistryError::Certificate {
                host: host.to_string(),
                source,
            }
        } else if is_unknown_host(&source) {
            // The resolver answered that the name does not exist: retrying
            // only delays the error (a resolver that could not be reached
            // is transient and stays a `Transport` error).
            RegistryError::UnknownHost {
                host: host.to_string(),
                source,
            }
        } else if is_not_tls(&source) {
            // Retrying cannot help: the host speaks another protocol.
            RegistryError::NotTls {
                host: host.to_string(),
                source,
            }
        } else {
            RegistryError::Transport {
                operation: context.operation.clone(),
                target: context.target.clone(),
                source,
            }
        }
    }

    /// Sends a request whose body can be replayed, answering one auth
    /// challenge and retrying transient failures. Returns responses with a
    /// 2xx or 3xx status or one listed in `allowed`; anything else becomes
    /// an error carrying the registry's code and message.
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        host: &str,
        scopes: &Scopes,
        context: &Context,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
        allowed: &[StatusCode],
    ) -> Result<Response, RegistryError> {
        let mut challenged = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .attempt(
                    host,
                    scopes,
                    context,
                    method.clone(),
                    url,
                    headers.clone(),
                    body.clone().map(reqwest::Body::from),
                )
                .await;
            let error = match result {
                Ok(response)
                    if response.status() == StatusCode::UNAUTHORIZED
                        && !challenged
                        && self
                            .answer_challenge(host, scopes, response.headers())
                            .await? =>
                {
                    challenged = true;
                    attempt -= 1;
                    continue;
                }
                Ok(response)
                    if response.status().is_success()
                        || response.status().is_redirection()
                        || allowed.contains(&response.status()) =>
                {
                    return Ok(response);
                }
                Ok(response) => {
                    self.error_from_response(host, scopes, context, response)
                        .await
                }
                Err(error) => error,
            };
            if !error.is_transient() {
                return Err(error);
            }
            if attempt >= self.options.retry.attempts {
                return Err(if attempt > 1 {
                    RegistryError::GaveUp {
                        operation: context.operation.clone(),
                        target: context.target.clone(),
                        attempts: attempt,
                        source: Box::new(error),
                    }
                } else {
                    error
                });
            }
            let delay = self.options.retry.delay(attempt, error.retry_after());
            tracing::warn!(
                "{}; retrying in {:.1}s (attempt {} of {})",
                error,
                delay.as_secs_f64(),
                attempt + 1,
                self.options.retry.attempts
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// The body of a JSON document (`what`: "the manifest"), refused when
    /// the registry announces more than `limit` bytes.
    pub async fn read_bounded(
        &self,
        host: &str,
        context: &Context,
        response: Response,
        limit: usize,
        what: &str,
    ) -> Result<bytes::Bytes, RegistryError> {
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(RegistryError::Protocol {
                operation: context.operation.clone(),
                target: context.target.clone(),
                detail: format!("{what} is larger than {limit} bytes"),
            });
        }
        response
            .bytes()
            .await
            .map_err(|source| self.transport_error(host, context, source))
    }

    /// Turns a failed response into an error with the registry's code and
    /// message. A 401 also teaches the host's challenge, so a caller that
    /// retries (a streamed upload) authenticates next time.
    pub async fn error_from_response(
        &self,
        host: &str,
        scopes: &Scopes,
        context: &Context,
        response: Response,
    ) -> RegistryError {
        let status = response.status();
        let delay = retry_after(response.headers());
        if status == StatusCode::UNAUTHORIZED {
            let _ = self
                .answer_challenge(host, scopes, response.headers())
                .await;
        }
        let body = response.bytes().await.unwrap_or_default();
        let (code, message) = parse_error_body(&body);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return RegistryError::Unauthorized {
                operation: context.operation.clone(),
                target: context.target.clone(),
                host: host.to_string(),
                answer: Box::new(Answer {
                    status: status.as_u16(),
                    code,
                    message,
                }),
                action: if scopes.wants_push() {
                    "push to it"
                } else if scopes.wants_delete() {
                    "delete from it"
                } else {
                    "pull from it"
                },
            };
        }
        RegistryError::Status {
            operation: context.operation.clone(),
            target: context.target.clone(),
            answer: Box::new(Answer {
                status: status.as_u16(),
                code,
                message,
            }),
            retry_after: delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]:5000",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["example.com", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn plain_http_only_for_loopback_and_listed_hosts() {
        let transport = Transport::new(ClientOptions {
            insecure_registries: vec!["registry.internal:5000".to_string()],
            credential_environment: Default::default(),
            ..ClientOptions::default()
        })
        .unwrap();
        assert!(transport.plain_http_allowed("registry.internal:5000"));
        assert!(transport.plain_http_allowed("localhost:5000"));
        assert!(transport.plain_http_allowed("127.0.0.1:5000"));
        assert!(!transport.plain_http_allowed("registry.internal"));
        assert!(!transport.plain_http_allowed("ghcr.io"));
        // Other hosts are HTTPS without asking them.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(
            runtime.block_on(transport.base_url("ghcr.io")).unwrap(),
            "https://ghcr.io"
        );
    }

    #[test]
    fn retry_after_forms() {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("86400"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(60)));
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn error_bodies() {
        let (code, message) = parse_error_body(
            br#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{}}]}"#,
        );
        assert_eq!(code.as_deref(), Some("MANIFEST_INVALID"));
        assert_eq!(message.as_deref(), Some("manifest invalid"));
        assert_eq!(parse_error_body(b"  "), (None, None));
        assert_eq!(
            parse_error_body(b"bad gateway").1.as_deref(),
            Some("bad gateway")
        );
    }

    #[test]
    fn scopes_share_keys() {
        assert_eq!(Scopes::mount("b", "a").key(), Scopes::mount("b", "a").key());
        assert!(Scopes::push("x").wants_push());
        assert!(!Scopes::pull("x").wants_push());
        assert_eq!(
            Scopes::mount("target", "source").0,
            vec![
                "repository:source:pull".to_string(),
                "repository:target:pull,push".to_string()
            ]
        );
    }
}
