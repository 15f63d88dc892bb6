//! The scheme layer of the registry transport: every registry is spoken to
//! over HTTPS, except loopback addresses and registries named with
//! `--insecure-registry`, which are probed once (`GET /v2/`) and fall back
//! to plain HTTP when they do not answer in TLS. It also says what the
//! registry's origin (scheme, host, port) is: credentials go only there,
//! and an HTTPS registry may never send hoist to plain HTTP.

use super::super::error::RegistryError;
use super::super::reference::is_loopback;
use super::classify::{is_certificate_error, is_connection_refused};
use super::{Transport, one_at_a_time};
use reqwest::Url;
use std::collections::HashMap;
use std::time::Duration;

/// True when `first` and `second` share scheme, host and port (the port a
/// scheme implies counts as given).
pub(crate) fn same_origin(first: &Url, second: &Url) -> bool {
    first.scheme() == second.scheme()
        && first.host_str() == second.host_str()
        && first.port_or_known_default() == second.port_or_known_default()
}

impl Transport {
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
        let scheme = self.probe(host).await?;
        self.lock_schemes().insert(host.to_string(), scheme);
        Ok(format!("{scheme}://{host}"))
    }

    /// Which scheme `host` (allowed plain HTTP) answers in, learning its
    /// challenge on the way.
    async fn probe(&self, host: &str) -> Result<&'static str, RegistryError> {
        let probe = |scheme: &str| {
            self.http
                .get(format!("{scheme}://{host}/v2/"))
                .timeout(Duration::from_secs(30))
                .send()
        };
        match probe("https").await {
            Ok(response) => {
                self.remember_challenge(host, response.headers());
                Ok("https")
            }
            Err(error) if is_certificate_error(&error) => Err(RegistryError::Certificate {
                host: host.to_string(),
                source: error,
            }),
            Err(error) if is_connection_refused(&error) || error.is_timeout() => {
                Err(RegistryError::Transport {
                    operation: "connecting to".to_string(),
                    target: host.to_string(),
                    source: error,
                })
            }
            Err(_) => {
                // Not TLS on the other end: a plain HTTP registry we may use.
                if let Ok(response) = probe("http").await {
                    self.remember_challenge(host, response.headers());
                }
                Ok("http")
            }
        }
    }

    /// The scheme `host` is spoken to in: what was probed or decided,
    /// else HTTPS (every caller asks [`Transport::base_url`] first).
    fn scheme_of(&self, host: &str) -> &'static str {
        self.lock_schemes().get(host).copied().unwrap_or("https")
    }

    /// True when `url` is on `host`'s own origin: the only place its
    /// credentials and tokens go.
    pub(crate) fn is_registry_origin(&self, host: &str, url: &Url) -> bool {
        Url::parse(&format!("{}://{host}/", self.scheme_of(host)))
            .is_ok_and(|origin| same_origin(&origin, url))
    }

    /// Refuses `url` when `host` is spoken to over HTTPS and `url` is plain
    /// HTTP: an answer (an upload `Location`, a redirect) must not move
    /// hoist off TLS, whatever the host.
    pub(crate) fn refuse_downgrade(&self, host: &str, url: &Url) -> Result<(), RegistryError> {
        if self.scheme_of(host) == "https" && url.scheme() != "https" {
            return Err(RegistryError::Downgrade {
                host: host.to_string(),
                url: url.to_string(),
            });
        }
        Ok(())
    }

    fn lock_schemes(&self) -> std::sync::MutexGuard<'_, HashMap<String, &'static str>> {
        self.schemes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::options::ClientOptions;
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
    fn origins_are_scheme_host_and_port() {
        let url = |text: &str| Url::parse(text).unwrap();
        assert!(same_origin(
            &url("https://registry.example/v2/"),
            &url("https://registry.example:443/v2/app/blobs/uploads/1")
        ));
        for other in [
            "http://registry.example/v2/",
            "https://registry.example:5000/v2/",
            "https://storage.example/v2/",
        ] {
            assert!(
                !same_origin(&url("https://registry.example/v2/"), &url(other)),
                "{other}"
            );
        }
    }

    #[test]
    fn an_https_registry_never_sends_hoist_to_http() {
        let transport = Transport::new(ClientOptions {
            credential_environment: Default::default(),
            ..ClientOptions::default()
        })
        .unwrap();
        let url = |text: &str| Url::parse(text).unwrap();
        assert!(
            transport
                .refuse_downgrade("ghcr.io", &url("https://storage.example/blob"))
                .is_ok()
        );
        let error = transport
            .refuse_downgrade("ghcr.io", &url("http://127.0.0.1:9/blob"))
            .unwrap_err();
        assert!(
            error.to_string().contains("http://127.0.0.1:9/blob"),
            "{error}"
        );
        assert!(transport.is_registry_origin("ghcr.io", &url("https://ghcr.io/v2/")));
        assert!(!transport.is_registry_origin("ghcr.io", &url("https://ghcr.io:8443/v2/")));
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
}
