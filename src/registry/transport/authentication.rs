//! The authentication layer of the registry transport: learning a host's
//! challenge (`WWW-Authenticate`: Basic or Bearer with realm and service),
//! fetching bearer tokens for a set of scopes with the credentials at hand,
//! keeping them per scope until they expire or a 401 says otherwise, and
//! sending one request with the `Authorization` header that results.

use super::super::aws::{self, EcrHost};
use super::super::capped::read_at_most;
use super::super::credentials::{self, Credential};
use super::super::error::RegistryError;
use super::super::options::GivenCredentials;
use super::body::MAXIMUM_TOKEN;
use super::classify::{is_certificate_error, parse_error_body, transport_error};
use super::{Call, Request, Scopes, Transport, one_at_a_time};
use base64::Engine as _;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Response, Url};
use std::time::{Duration, Instant};

/// How a host wants to be authenticated, learned from its challenge.
#[derive(Clone)]
pub(crate) enum HostAuth {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// (host, scopes) a token was issued for.
pub(crate) type TokenKey = (String, String);

pub(crate) struct CachedToken {
    pub(super) header: HeaderValue,
    pub(super) expires: Instant,
}

impl Transport {
    /// Records how `host` wants to be authenticated, from a 401's headers.
    /// Returns false when the headers carry no usable challenge.
    pub(super) fn remember_challenge(&self, host: &str, headers: &HeaderMap) -> bool {
        let Some(auth) = parse_challenge(headers) else {
            return false;
        };
        self.lock_auth().insert(host.to_string(), auth);
        true
    }

    /// Credentials for `host`: the flags, else docker/podman configuration,
    /// else for an ECR registry a password from the AWS credential chain.
    pub async fn credential(&self, host: &str) -> Result<Option<Credential>, RegistryError> {
        if let Some(found) = self.given_or_stored(host)? {
            return Ok(Some(found));
        }
        match self.ecr_registry(host)? {
            Some(registry) => {
                let options = &self.options;
                let login = self
                    .ecr_logins
                    .credential(&self.http, &options.aws, host, &registry);
                Ok(Some(login.await?))
            }
            None => Ok(None),
        }
    }

    /// The ECR registry `host` is, by its name or because the options say
    /// so (then in the region the AWS settings name).
    pub(crate) fn ecr_registry(&self, host: &str) -> Result<Option<EcrHost>, RegistryError> {
        let listed = self.options.ecr_registries.iter().any(|name| name == host);
        self.ecr_registry_as(host, listed)
    }

    /// The ECR registry `host` is by its name, else when `forced` one in
    /// the region the AWS settings name; `None` when neither.
    pub(crate) fn ecr_registry_as(
        &self,
        host: &str,
        forced: bool,
    ) -> Result<Option<EcrHost>, RegistryError> {
        if let Some(found) = aws::ecr_host(host) {
            return Ok(Some(found));
        }
        if !forced {
            return Ok(None);
        }
        let environment = &self.options.aws;
        let region = match environment.region_variable() {
            Some(region) => Some(region.to_string()),
            None => aws::credentials::profile_region(environment)?,
        };
        let region = region.ok_or_else(|| aws::AwsError::NoRegion {
            registry: host.to_string(),
        })?;
        Ok(Some(EcrHost {
            account: String::new(),
            region,
        }))
    }

    /// Credentials for `host` from the flags or the docker/podman files.
    pub fn given_or_stored(&self, host: &str) -> Result<Option<Credential>, RegistryError> {
        if let Some(given) = GivenCredentials::choose(&self.options.credentials, host) {
            return Ok(Some(Credential::UsernamePassword {
                username: given.username.clone(),
                password: given.password.clone(),
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
    pub(super) async fn authorization(
        &self,
        host: &str,
        scopes: &Scopes,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let auth = self.lock_auth().get(host).cloned();
        match auth {
            None => Ok(None),
            Some(HostAuth::Basic) => match self.credential(host).await? {
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
                let fetch_lock = one_at_a_time(&self.token_fetches, key.clone());
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

    /// One request with the current authorization, no retries.
    pub async fn attempt(
        &self,
        call: Call<'_>,
        request: Request<'_>,
        body: Option<reqwest::Body>,
    ) -> Result<Response, RegistryError> {
        let url = Url::parse(request.url).map_err(|error| RegistryError::Protocol {
            operation: call.context.operation.clone(),
            target: call.context.target.clone(),
            detail: format!("bad URL `{}`: {error}", request.url),
        })?;
        self.refuse_downgrade(call.host, &url)?;
        // Another origin (an upload `Location` on a storage service) gets
        // the request but never the registry's credentials.
        let own_origin = self.is_registry_origin(call.host, &url);
        let mut builder = self
            .http
            .request(request.method, url)
            .headers(request.headers);
        if own_origin
            && let Some(authorization) = self.authorization(call.host, call.scopes).await?
        {
            builder = builder.header(header::AUTHORIZATION, authorization);
        }
        if let Some(body) = body {
            builder = builder.body(body);
        }
        builder
            .send()
            .await
            .map_err(|source| transport_error(call.host, call.context, source))
    }

    /// Learns from a 401 and drops the token that was refused, so the next
    /// `authorization` fetches a fresh one.
    /// Only the registry's own origin is listened to: a challenge from
    /// another server (one an upload was sent to) could otherwise name a
    /// realm of its choosing and be sent the registry's credentials.
    pub(super) async fn answer_challenge(
        &self,
        call: Call<'_>,
        response: &Response,
    ) -> Result<bool, RegistryError> {
        let Call { host, scopes, .. } = call;
        if !self.is_registry_origin(host, response.url())
            || !self.remember_challenge(host, response.headers())
        {
            return Ok(false);
        }
        self.lock_tokens().remove(&(host.to_string(), scopes.key()));
        if matches!(self.lock_auth().get(host), Some(HostAuth::Basic)) {
            match self.credential(host).await? {
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

    /// A token for `scopes` from the realm `host`'s challenge named.
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
        let credential = self.credential(host).await?;
        // Credentials go to the realm only over TLS, as the token
        // protocol requires (loopback and named insecure hosts excepted).
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
        let request = self.token_request(realm_url, service, scopes, credential.as_ref());
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
        let capped = read_at_most(response, MAXIMUM_TOKEN)
            .await
            .map_err(|source| RegistryError::Transport {
                operation: "requesting a token from".to_string(),
                target: realm.to_string(),
                source,
            })?;
        if !status.is_success() {
            let (code, message) = parse_error_body(&capped.bytes);
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
        if !capped.complete {
            return Err(RegistryError::TooLarge {
                operation: "requesting a token from".to_string(),
                target: host.to_string(),
                what: "the token response",
                url: realm.to_string(),
                limit: MAXIMUM_TOKEN,
            });
        }
        parse_token(realm, &capped.bytes)
    }

    /// The request to the realm: a refresh token in a form POST, a
    /// username and password as Basic auth on a GET, or an anonymous GET.
    fn token_request(
        &self,
        realm_url: Url,
        service: Option<&str>,
        scopes: &Scopes,
        credential: Option<&Credential>,
    ) -> reqwest::RequestBuilder {
        let mut params: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = service {
            params.push(("service", service));
        }
        for scope in &scopes.0 {
            params.push(("scope", scope));
        }
        match credential {
            Some(Credential::IdentityToken(refresh_token)) => {
                let mut form = params.clone();
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", refresh_token));
                form.push(("client_id", "hoist"));
                self.http
                    .post(realm_url)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form_encode(&form))
            }
            Some(Credential::UsernamePassword { username, password }) => {
                let mut url = realm_url;
                url.query_pairs_mut()
                    .extend_pairs(&params)
                    .append_pair("account", username);
                self.http
                    .get(url)
                    .header(header::AUTHORIZATION, basic_header(username, password))
            }
            None => {
                let mut url = realm_url;
                url.query_pairs_mut().extend_pairs(&params);
                self.http.get(url)
            }
        }
    }
}

/// The token in a token service's answer, as an `Authorization` value.
fn parse_token(realm: &str, body: &[u8]) -> Result<CachedToken, RegistryError> {
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        token: Option<String>,
        access_token: Option<String>,
        expires_in: Option<u64>,
    }
    let parsed: TokenResponse =
        serde_json::from_slice(body).map_err(|source| RegistryError::Json {
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
    let mut header =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| RegistryError::Protocol {
            operation: "requesting a token from".to_string(),
            target: realm.to_string(),
            detail: "the token has characters not allowed in a header".to_string(),
        })?;
    header.set_sensitive(true);
    // The spec's default lifetime is 60 s; renew a little early.
    let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).max(10));
    Ok(CachedToken {
        header,
        expires: Instant::now() + lifetime - Duration::from_secs(5),
    })
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
    fn credentials_go_to_a_realm_only_over_https() {
        let transport = Transport::new(super::super::super::options::ClientOptions {
            credentials: vec![GivenCredentials::everywhere("alice", "secret")],
            credential_environment: Default::default(),
            ..Default::default()
        })
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let Err(error) = runtime.block_on(transport.fetch_token(
            "registry.example",
            "http://auth.example/token",
            None,
            &Scopes::pull("app"),
        )) else {
            panic!("a token was fetched over plain HTTP");
        };
        assert!(
            matches!(error, RegistryError::InsecureRefused { .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains("http://auth.example/token"),
            "{error}"
        );
    }

    #[test]
    fn a_token_answer_becomes_a_sensitive_bearer_header() {
        let token =
            parse_token("https://auth.example/token", br#"{"access_token":"abc"}"#).unwrap();
        assert_eq!(token.header.to_str().unwrap(), "Bearer abc");
        assert!(token.header.is_sensitive());
        let Err(error) = parse_token("https://auth.example/token", br#"{"token":""}"#) else {
            panic!("an empty token is refused");
        };
        assert!(error.to_string().contains("holds no token"), "{error}");
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
}
