//! The async core under every registry call, in layers that each read and
//! test alone, as go-containerregistry's `transport` package has them:
//!
//! - [`tls`]: the rustls configuration (system roots, `--ca-cert`);
//! - [`scheme`]: HTTPS, or plain HTTP for loopback and insecure registries;
//! - [`authentication`]: challenges, tokens, the `Authorization` header;
//! - [`retry`]: one challenge answered, transient failures retried;
//! - [`classify`]: what a failed connection or answer means;
//! - [`body`]: answers read into memory, each with a cap counted in bytes.
//!
//! Callers describe a request with a [`Call`] (host, scopes, what for) and
//! a [`Request`] (method, URL, headers, statuses they handle).

mod authentication;
mod body;
mod classify;
mod retry;
mod scheme;
mod tls;

pub(crate) use authentication::{CachedToken, HostAuth, TokenKey};
pub(crate) use body::{MAXIMUM_MANIFEST, MAXIMUM_TAG_PAGE};
pub(crate) use classify::{retry_after, transport_error};

use super::credentials::Credential;
use super::error::RegistryError;
use super::options::ClientOptions;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use std::collections::HashMap;
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

    pub(crate) fn key(&self) -> String {
        self.0.join(" ")
    }

    pub(crate) fn wants_push(&self) -> bool {
        self.0.iter().any(|scope| scope.ends_with("push"))
    }

    pub(crate) fn wants_delete(&self) -> bool {
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

/// Whom a request is for: the registry host (`host:port`, as references
/// name it), the token scopes it needs, and what it is doing (for errors).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Call<'a> {
    pub host: &'a str,
    pub scopes: &'a Scopes,
    pub context: &'a Context,
}

impl<'a> Call<'a> {
    pub fn new(host: &'a str, scopes: &'a Scopes, context: &'a Context) -> Self {
        Call {
            host,
            scopes,
            context,
        }
    }
}

/// One HTTP request of a call: method, URL, headers, and the statuses
/// besides 2xx and 3xx that the caller handles itself (a 404 that means
/// "absent"). The body goes beside it: replayable bytes for
/// [`Transport::send`], a one-shot stream for [`Transport::attempt`].
#[derive(Clone, Debug)]
pub(crate) struct Request<'a> {
    pub method: Method,
    pub url: &'a str,
    pub headers: HeaderMap,
    pub allowed: &'a [StatusCode],
}

impl<'a> Request<'a> {
    pub fn new(method: Method, url: &'a str) -> Self {
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            allowed: &[],
        }
    }

    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// Hands responses with these statuses back instead of failing.
    pub fn allowing(mut self, statuses: &'a [StatusCode]) -> Self {
        self.allowed = statuses;
        self
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
    /// Passwords for ECR registries, from the AWS credential chain.
    pub(super) ecr_logins: super::aws::EcrLogins,
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

impl Transport {
    pub fn new(options: ClientOptions) -> Result<Self, RegistryError> {
        let tls = tls::tls_config(&options)?;
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
            ecr_logins: Default::default(),
        })
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
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_request_starts_with_no_headers_and_no_allowed_statuses() {
        let request = Request::new(Method::GET, "https://registry.example/v2/")
            .allowing(&[StatusCode::NOT_FOUND]);
        assert!(request.headers.is_empty());
        assert_eq!(request.allowed, &[StatusCode::NOT_FOUND]);
    }
}
