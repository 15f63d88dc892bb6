//! The async core under every registry call: TLS setup, choosing HTTPS or
//! (for loopback and insecure registries only) plain HTTP, answering
//! `WWW-Authenticate` challenges (Basic, Bearer token with a cache per scope),
//! and retrying 5xx, 429, resets and timeouts with backoff and jitter.

use super::client::ClientOptions;
use super::credentials::{self, Credential};
use super::error::{Answer, RegistryError};
use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Token scopes a request needs, kept sorted so equal sets share a cache entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Scopes(Vec<String>);

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

    pub fn none() -> Self {
        Scopes(Vec::new())
    }

    fn key(&self) -> String {
        self.0.join(" ")
    }

    fn wants_push(&self) -> bool {
        self.0.iter().any(|scope| scope.ends_with("push"))
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

/// How a host wants to be authenticated, learned from its challenge.
#[derive(Clone)]
enum HostAuth {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// (host, scopes) a token was issued for.
type TokenKey = (String, String);

struct CachedToken {
    header: HeaderValue,
    expires: Instant,
}

pub(crate) struct Transport {
    pub http: reqwest::Client,
    pub options: ClientOptions,
    schemes: Mutex<HashMap<String, &'static str>>,
    auth: Mutex<HashMap<String, HostAuth>>,
    tokens: Mutex<HashMap<TokenKey, CachedToken>>,
    /// One fetch per scope at a time: parallel uploads starting together
    /// share one token instead of each asking the realm.
    token_fetches: Mutex<HashMap<TokenKey, Arc<tokio::sync::Mutex<()>>>>,
    credentials: Mutex<HashMap<String, Option<Credential>>>,
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

fn is_certificate_error(error: &reqwest::Error) -> bool {
    matches!(
        find_tls_error(error),
        Some(
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::UnsupportedNameType
        )
    )
}

fn is_connection_refused(error: &reqwest::Error) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(item) = current {
        if let Some(io) = item.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
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
fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
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

    fn lock_auth(&self) -> std::sync::MutexGuard<'_, HashMap<String, HostAuth>> {
        self.auth
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<TokenKey, CachedToken>> {
        self.tokens
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Records how `host` wants to be authenticated, from a 401's headers.
    /// Returns false when the headers carry no usable challenge.
    fn remember_challenge(&self, host: &str, headers: &HeaderMap) -> bool {
        let Some(auth) = parse_challenge(headers) else {
            return false;
        };
        self.lock_auth().insert(host.to_string(), auth);
        true
    }

    /// Credentials for `host`: the flags, else docker/podman configuration.
    pub fn credential(&self, host: &str) -> Result<Option<Credential>, RegistryError> {
        if let Some((username, password)) = &self.options.credentials {
            return Ok(Some(Credential::UsernamePassword {
                username: username.clone(),
                password: password.clone(),
            }));
        }
        let mut cache = self
            .credentials
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(found) = cache.get(host) {
            return Ok(found.clone());
        }
        let found = credentials::resolve_in(&self.options.credential_environment, host)?;
        cache.insert(host.to_string(), found.clone());
        Ok(found)
    }

    /// The Authorization header for a request to `host` with `scopes`, from
    /// what is known so far (nothing before the first challenge).
    async fn authorization(
        &self,
        host: &str,
        scopes: &Scopes,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let auth = self.lock_auth().get(host).cloned();
        match auth {
            None => Ok(None),
            Some(HostAuth::Basic) => match self.credential(host)? {
                Some(Credential::UsernamePassword { username, password }) => {
                    Ok(Some(basic_header(&username, &password)))
                }
                _ => Ok(None),
            },
            Some(HostAuth::Bearer { realm, service }) => {
                let key: TokenKey = (host.to_string(), scopes.key());
                if let Some(header) = self.cached_token(&key) {
                    return Ok(Some(header));
                }
                let fetch_lock = self
                    .token_fetches
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .entry(key.clone())
                    .or_default()
                    .clone();
                let _fetching = fetch_lock.lock().await;
                // Another request may have fetched it while this one waited.
                if let Some(header) = self.cached_token(&key) {
                    return Ok(Some(header));
                }
                let token = self
                    .fetch_token(host, &realm, service.as_deref(), scopes)
                    .await?;
                let header = token.header.clone();
                self.lock_tokens().insert(key, token);
                Ok(Some(header))
            }
        }
    }

    fn cached_token(&self, key: &TokenKey) -> Option<HeaderValue> {
        self.lock_tokens()
            .get(key)
            .filter(|token| token.expires > Instant::now())
            .map(|token| token.header.clone())
    }

    /// Learns from a 401 and drops the token that was refused, so the next
    /// `authorization` fetches a fresh one.
    async fn answer_challenge(
        &self,
        host: &str,
        scopes: &Scopes,
        headers: &HeaderMap,
    ) -> Result<bool, RegistryError> {
        if !self.remember_challenge(host, headers) {
            return Ok(false);
        }
        self.lock_tokens().remove(&(host.to_string(), scopes.key()));
        if matches!(self.lock_auth().get(host), Some(HostAuth::Basic)) {
            match self.credential(host)? {
                Some(Credential::UsernamePassword { .. }) => {}
                _ => {
                    return Err(RegistryError::NoCredentials {
                        host: host.to_string(),
                    });
                }
            }
        }
        Ok(true)
    }

    async fn fetch_token(
        &self,
        host: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &Scopes,
    ) -> Result<CachedToken, RegistryError> {
        let realm_url = reqwest::Url::parse(realm).map_err(|error| RegistryError::Challenge {
            host: host.to_string(),
            challenge: realm.to_string(),
            reason: format!("the realm is not a URL: {error}"),
        })?;
        let realm_host = realm_url.host_str().unwrap_or_default().to_string();
        let realm_authority = match realm_url.port() {
            Some(port) => format!("{realm_host}:{port}"),
            None => realm_host.clone(),
        };
        let credential = self.credential(host)?;
        if realm_url.scheme() != "https"
            && credential.is_some()
            && !self.plain_http_allowed(&realm_authority)
            && !self.plain_http_allowed(&realm_host)
        {
            return Err(RegistryError::InsecureRefused {
                host: realm_authority,
                url: realm.to_string(),
            });
        }
        let mut params: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = service {
            params.push(("service", service));
        }
        for scope in &scopes.0 {
            params.push(("scope", scope));
        }
        let request = match &credential {
            Some(Credential::IdentityToken(refresh_token)) => {
                let mut form = params.clone();
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", refresh_token));
                form.push(("client_id", "hoist"));
                self.http
                    .post(realm_url.clone())
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form_encode(&form))
            }
            Some(Credential::UsernamePassword { username, password }) => {
                let mut url = realm_url.clone();
                url.query_pairs_mut()
                    .extend_pairs(&params)
                    .append_pair("account", username);
                self.http
                    .get(url)
                    .header(header::AUTHORIZATION, basic_header(username, password))
            }
            None => {
                let mut url = realm_url.clone();
                url.query_pairs_mut().extend_pairs(&params);
                self.http.get(url)
            }
        };
        let response = request.send().await.map_err(|source| {
            if is_certificate_error(&source) {
                RegistryError::Certificate {
                    host: realm_authority.clone(),
                    source,
                }
            } else {
                RegistryError::Transport {
                    operation: "requesting a token from".to_string(),
                    target: realm.to_string(),
                    source,
                }
            }
        })?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            let (code, message) = parse_error_body(&body);
            let message = match (code, message) {
                (Some(code), Some(message)) => Some(format!("{code}: {message}")),
                (code, message) => message.or(code),
            };
            return Err(RegistryError::Token {
                host: host.to_string(),
                realm: realm.to_string(),
                status: status.as_u16(),
                message,
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|source| RegistryError::Json {
                what: "token response from",
                target: realm.to_string(),
                source,
            })?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| RegistryError::Protocol {
                operation: "requesting a token from".to_string(),
                target: realm.to_string(),
                detail: "the answer holds no token".to_string(),
            })?;
        let mut header = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            RegistryError::Protocol {
                operation: "requesting a token from".to_string(),
                target: realm.to_string(),
                detail: "the token has characters not allowed in a header".to_string(),
            }
        })?;
        header.set_sensitive(true);
        // The spec's default lifetime is 60 s; renew a little early.
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).max(10));
        Ok(CachedToken {
            header,
            expires: Instant::now() + lifetime - Duration::from_secs(5),
        })
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

/// `application/x-www-form-urlencoded` encoding of `pairs`.
fn form_encode(pairs: &[(&str, &str)]) -> String {
    // Url's query serializer is that encoding; borrow it.
    let mut url = reqwest::Url::parse("http://form.invalid/").expect("a constant URL parses");
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_string()
}

fn basic_header(username: &str, password: &str) -> HeaderValue {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    value
}

/// The first Basic or Bearer challenge in `WWW-Authenticate`.
fn parse_challenge(headers: &HeaderMap) -> Option<HostAuth> {
    for value in headers.get_all(header::WWW_AUTHENTICATE) {
        let Ok(text) = value.to_str() else { continue };
        let Ok(challenges) = http_auth::parse_challenges(text) else {
            continue;
        };
        for challenge in challenges {
            let parameter = |name: &str| {
                challenge
                    .params
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value.to_unescaped())
            };
            if challenge.scheme.eq_ignore_ascii_case("bearer") {
                let realm = parameter("realm")?;
                return Some(HostAuth::Bearer {
                    realm,
                    service: parameter("service"),
                });
            }
            if challenge.scheme.eq_ignore_ascii_case("basic") {
                return Some(HostAuth::Basic);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn parses_bearer_and_basic_challenges() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#,
            ),
        );
        match parse_challenge(&headers) {
            Some(HostAuth::Bearer { realm, service }) => {
                assert_eq!(realm, "https://auth.example/token");
                assert_eq!(service.as_deref(), Some("registry.example"));
            }
            _ => panic!("expected a bearer challenge"),
        }
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="Registry Realm""#),
        );
        assert!(matches!(parse_challenge(&headers), Some(HostAuth::Basic)));
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Negotiate"),
        );
        assert!(parse_challenge(&headers).is_none());
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
