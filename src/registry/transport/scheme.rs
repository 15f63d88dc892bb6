//! The scheme layer of the registry transport: every registry is spoken to
//! over HTTPS, except loopback addresses and registries named with
//! `--insecure-registry`, which are probed once (`GET /v2/`) and fall back
//! to plain HTTP when they do not answer in TLS.

use super::super::error::RegistryError;
use super::classify::{is_certificate_error, is_connection_refused};
use super::{Transport, one_at_a_time};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

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

    fn lock_schemes(&self) -> std::sync::MutexGuard<'_, HashMap<String, &'static str>> {
        self.schemes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::client::ClientOptions;
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
