//! A hand-written server in front of a real `docker-registry`: each request
//! goes to a test's handler, which may answer it itself (a fault), hold it
//! (a gate) or pass it on with [`Upstream`]. Answers passed back name the
//! proxy, not the registry, so the client keeps talking through it.

use super::http::{Reply, TestServer, reply};
use super::registry::TestRegistry;
use bytes::Bytes;
use hyper::Request;
use hyper::body::Incoming;
use std::future::Future;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The registry behind a proxy.
pub struct Upstream {
    http: reqwest::Client,
    registry: String,
    proxy: OnceLock<String>,
}

impl Upstream {
    /// Sends a request on to the registry.
    pub async fn send(
        &self,
        method: &hyper::Method,
        path: &str,
        headers: &hyper::HeaderMap,
        body: Bytes,
    ) -> Result<reqwest::Response, super::http::HandlerError> {
        let mut outgoing = self.http.request(
            reqwest::Method::from_bytes(method.as_str().as_bytes())?,
            format!("http://{}{path}", self.registry),
        );
        for (name, value) in headers {
            if name != "host" {
                outgoing = outgoing.header(name.as_str(), value.as_bytes());
            }
        }
        Ok(outgoing.body(body).send().await?)
    }

    /// The registry's answer as the proxy's, its address replaced in headers.
    pub async fn relay(&self, answer: reqwest::Response) -> Reply {
        let proxy = self.proxy.get().cloned().unwrap_or_default();
        let status = answer.status().as_u16();
        let mut owned = Vec::new();
        for (name, value) in answer.headers() {
            let text = value
                .to_str()
                .unwrap_or_default()
                .replace(&self.registry, &proxy);
            if name != "content-length" && name != "transfer-encoding" {
                owned.push((name.to_string(), text));
            }
        }
        let bytes = answer.bytes().await?;
        let headers: Vec<(&str, String)> = owned
            .iter()
            .map(|(name, value)| (name.as_str(), value.clone()))
            .collect();
        reply(status, &headers, bytes)
    }

    /// Passes a whole request on and relays the answer.
    pub async fn forward(&self, request: Request<Incoming>) -> Reply {
        let path = request
            .uri()
            .path_and_query()
            .map(|part| part.to_string())
            .unwrap_or_default();
        let (parts, body) = request.into_parts();
        let body = super::http::read_body(body).await?;
        let answer = self
            .send(&parts.method, &path, &parts.headers, body)
            .await?;
        self.relay(answer).await
    }
}

/// Serves `handler` in front of `registry` until dropped.
pub fn start_proxy<H, F>(registry: &TestRegistry, handler: H) -> TestServer
where
    H: Fn(Arc<Upstream>, Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    // The proxy's own plain-HTTP client still wants a provider named.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream = Arc::new(Upstream {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("proxy client"),
        registry: registry.host(),
        proxy: OnceLock::new(),
    });
    let server = {
        let upstream = upstream.clone();
        TestServer::start(move |request| handler(upstream.clone(), request))
    };
    upstream
        .proxy
        .set(server.host())
        .expect("the proxy's address is set once");
    server
}

/// Counts the requests waiting together at a gate that opens once `count`
/// of them wait (or after a few seconds, so a client that sends one at a
/// time still finishes, and fails its test's assertion instead of hanging).
pub struct Gate {
    count: usize,
    waiting: AtomicUsize,
    most: AtomicUsize,
    open: AtomicBool,
    opened: tokio::sync::Notify,
}

impl Gate {
    pub fn new(count: usize) -> Gate {
        Gate {
            count,
            waiting: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            open: AtomicBool::new(false),
            opened: tokio::sync::Notify::new(),
        }
    }

    /// Waits at the gate until it opens.
    pub async fn pass(&self) {
        let notified = self.opened.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = self.waiting.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        if now >= self.count {
            self.open.store(true, SeqCst);
            self.opened.notify_waiters();
        } else if !self.open.load(SeqCst) {
            let _ = tokio::time::timeout(Duration::from_secs(5), notified).await;
        }
        self.waiting.fetch_sub(1, SeqCst);
    }

    /// The most requests that were ever waiting together.
    pub fn most(&self) -> usize {
        self.most.load(SeqCst)
    }
}
