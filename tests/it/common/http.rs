//! A tiny HTTP/1.1 server on hyper for what no real tool here does: token
//! realms, fault injection, registry quirks. Listens on 127.0.0.1 only and
//! stops when dropped. A handler that returns `Err` makes hyper drop the
//! connection without an answer, which the client sees as a reset.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;
pub type Reply = Result<Response<Full<Bytes>>, HandlerError>;
type Handler = Arc<
    dyn Fn(Request<Incoming>) -> std::pin::Pin<Box<dyn Future<Output = Reply> + Send>>
        + Send
        + Sync,
>;

/// Why a handler hung up; a concrete type keeps hyper's error bounds simple.
#[derive(Debug)]
struct Hangup(String);

impl std::fmt::Display for Hangup {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for Hangup {}

pub struct TestServer {
    address: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Serves `handler` on a free loopback port until dropped.
    pub fn start<H, F>(handler: H) -> TestServer
    where
        H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
        F: Future<Output = Reply> + Send + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let address = listener.local_addr().expect("address");
        let (shutdown, mut stopped) = tokio::sync::oneshot::channel::<()>();
        // Erased to one concrete type so hyper's service bounds resolve.
        let handler: Handler = Arc::new(move |request| Box::pin(handler(request)));
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let (stream, _) = tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => match accepted {
                            Ok(pair) => pair,
                            Err(_) => continue,
                        },
                    };
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let answer = handler(request);
                            async move { answer.await.map_err(|error| Hangup(error.to_string())) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            runtime.shutdown_background();
        });
        TestServer {
            address,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.address.to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A response with `status`, `headers` and `body`.
pub fn reply(status: u16, headers: &[(&str, String)], body: impl Into<Bytes>) -> Reply {
    let mut builder = Response::builder().status(StatusCode::from_u16(status)?);
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    Ok(builder.body(Full::new(body.into()))?)
}

/// A distribution-style error body.
pub fn error_reply(status: u16, code: &str, message: &str) -> Reply {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string();
    reply(
        status,
        &[("content-type", "application/json".to_string())],
        body,
    )
}

/// Reads a whole request body.
pub async fn read_body(body: Incoming) -> Result<Bytes, HandlerError> {
    Ok(body.collect().await?.to_bytes())
}

/// The value of query parameter `name`, percent-decoded.
pub fn query_values(uri: &hyper::Uri, name: &str) -> Vec<String> {
    let Some(query) = uri.query() else {
        return Vec::new();
    };
    let url = reqwest::Url::parse(&format!("http://x/?{query}")).expect("query parses");
    url.query_pairs()
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .collect()
}

/// The page (`page`, from 1) and page size (`size`, else `default`) a
/// listing request asks for; `None` when either is not a number.
pub fn paging(uri: &hyper::Uri, size: &str, default: usize) -> Option<(usize, usize)> {
    let number = |name: &str, default: usize| {
        query_values(uri, name)
            .first()
            .map_or(Some(default), |value| value.parse().ok())
    };
    Some((number("page", 1)?, number(size, default)?))
}

/// The value of `request`'s header `name`, if it is text.
pub fn request_header(request: &Request<Incoming>, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

/// Seconds since the Unix epoch: what rate-limit headers name a reset by.
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_secs()
}

/// The headers of a rate limit of `limit` calls that is spent until now.
pub fn rate_limit_spent(limit: u32) -> Vec<(&'static str, String)> {
    vec![
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", "0".to_string()),
        ("x-ratelimit-reset", unix_seconds().to_string()),
    ]
}

/// An answer a fake serves instead of the next request that matches.
pub struct Fault {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// The error message, in the fake's error body.
    pub text: String,
    method: String,
    path_part: String,
}

/// The faults a test queued for a fake.
#[derive(Default)]
pub struct Faults(Mutex<Vec<Fault>>);

impl Faults {
    /// Answers the next `method` request whose path contains `path_part`
    /// with `status`, `headers` and `text`.
    pub fn push(
        &self,
        method: &str,
        path_part: &str,
        status: u16,
        headers: &[(&'static str, String)],
        text: &str,
    ) {
        self.0.lock().unwrap().push(Fault {
            status,
            headers: headers.to_vec(),
            text: text.to_string(),
            method: method.to_string(),
            path_part: path_part.to_string(),
        });
    }

    /// The fault for a `method` request to `path`, if one was queued.
    pub fn take(&self, method: &str, path: &str) -> Option<Fault> {
        let mut faults = self.0.lock().unwrap();
        let index = faults
            .iter()
            .position(|fault| fault.method == method && path.contains(&fault.path_part))?;
        Some(faults.remove(index))
    }
}
