//! A blocking HTTP/1.1 server on a std listener, for answers the hyper test
//! server cannot give: bodies that never end (chunked, bounded only by a
//! total far past any cap hoist has) and HTTPS with a CA made in the test.
//! One request per connection (`Connection: close`); every request is
//! logged; listens on 127.0.0.1 only and stops when dropped.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Request heads longer than this are refused.
const MAXIMUM_HEAD: usize = 16 * 1024;
/// Bytes of an endless body sent per chunk.
const ENDLESS_CHUNK: usize = 64 * 1024;

/// What a request asked, as the server saw it.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// How to answer a request.
pub enum RawAnswer {
    Fixed {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A 200 with `headers` whose chunked body starts with `prefix` and
    /// goes on with `x` until `total` bytes or until the client hangs up.
    Endless {
        headers: Vec<(String, String)>,
        prefix: Vec<u8>,
        total: u64,
    },
}

impl RawAnswer {
    pub fn status(status: u16, headers: &[(&str, String)]) -> RawAnswer {
        RawAnswer::Fixed {
            status,
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.clone()))
                .collect(),
            body: Vec::new(),
        }
    }

    pub fn body(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> RawAnswer {
        RawAnswer::Fixed {
            status,
            headers: vec![("content-type".to_string(), content_type.to_string())],
            body: body.into(),
        }
    }
}

type Handler = Arc<dyn Fn(&RawRequest) -> RawAnswer + Send + Sync>;

pub struct RawServer {
    port: u16,
    log: Arc<Mutex<Vec<RawRequest>>>,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl RawServer {
    /// Plain HTTP.
    pub fn start(handler: impl Fn(&RawRequest) -> RawAnswer + Send + Sync + 'static) -> Self {
        Self::serve(None, Arc::new(handler))
    }

    /// HTTPS with the certificate and key at these paths (PEM).
    pub fn start_tls(
        certificate: &Path,
        key: &Path,
        handler: impl Fn(&RawRequest) -> RawAnswer + Send + Sync + 'static,
    ) -> Self {
        let certificates = CertificateDer::pem_file_iter(certificate)
            .expect("certificate file")
            .collect::<Result<Vec<_>, _>>()
            .expect("certificates");
        let key = PrivateKeyDer::from_pem_file(key).expect("key file");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(certificates, key)
            .expect("server certificate");
        Self::serve(Some(Arc::new(config)), Arc::new(handler))
    }

    fn serve(tls: Option<Arc<rustls::ServerConfig>>, handler: Handler) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let log = log.clone();
            let stopping = stopping.clone();
            std::thread::spawn(move || {
                while !stopping.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (tls, handler, log) = (tls.clone(), handler.clone(), log.clone());
                            std::thread::spawn(move || {
                                let _ = connection(stream, tls, &handler, &log);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        RawServer {
            port,
            log,
            stopping,
            acceptor: Some(acceptor),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every request so far, in order of arrival.
    pub fn requests(&self) -> Vec<RawRequest> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn connection(
    stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: &Handler,
    log: &Mutex<Vec<RawRequest>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    match tls {
        None => exchange(stream, handler, log),
        Some(config) => {
            let session = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
            exchange(rustls::StreamOwned::new(session, stream), handler, log)
        }
    }
}

/// Reads one request, logs it, answers it.
fn exchange(
    mut stream: impl Read + Write,
    handler: &Handler,
    log: &Mutex<Vec<RawRequest>>,
) -> std::io::Result<()> {
    let (request, rest) = read_head(&mut stream)?;
    skip_body(&mut stream, &request, rest)?;
    log.lock().unwrap().push(request.clone());
    match handler(&request) {
        RawAnswer::Fixed {
            status,
            headers,
            body,
        } => {
            let mut head = format!("HTTP/1.1 {status} X\r\nconnection: close\r\n");
            for (name, value) in &headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
            stream.write_all(head.as_bytes())?;
            stream.write_all(&body)?;
        }
        RawAnswer::Endless {
            headers,
            prefix,
            total,
        } => {
            let mut head = "HTTP/1.1 200 OK\r\nconnection: close\r\ntransfer-encoding: chunked\r\n"
                .to_string();
            for (name, value) in &headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes())?;
            write_chunk(&mut stream, &prefix)?;
            let filler = vec![b'x'; ENDLESS_CHUNK];
            let mut sent = prefix.len() as u64;
            // Ends when the client hangs up (a write fails) or at `total`.
            while sent < total {
                write_chunk(&mut stream, &filler)?;
                sent += filler.len() as u64;
            }
            stream.write_all(b"0\r\n\r\n")?;
        }
    }
    stream.flush()
}

fn write_chunk(stream: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(format!("{:x}\r\n", bytes.len()).as_bytes())?;
    stream.write_all(bytes)?;
    stream.write_all(b"\r\n")
}

/// The request head, and the bytes read past it.
fn read_head(stream: &mut impl Read) -> std::io::Result<(RawRequest, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut piece = [0u8; 4096];
    let end = loop {
        // A TLS handshake to a plain server (hoist probing for HTTPS) gets
        // the connection closed, as a real HTTP server would answer it.
        if buffer.first() == Some(&0x16) {
            return Err(std::io::Error::other("a TLS handshake on plain HTTP"));
        }
        if let Some(position) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break position;
        }
        if buffer.len() > MAXIMUM_HEAD {
            return Err(std::io::Error::other("request head too long"));
        }
        let count = stream.read(&mut piece)?;
        if count == 0 {
            return Err(std::io::Error::other("closed before the head ended"));
        }
        buffer.extend_from_slice(&piece[..count]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let request = RawRequest {
        method,
        path,
        headers,
    };
    Ok((request, buffer[end + 4..].to_vec()))
}

/// Reads and drops the request body: `Content-Length` bytes, or chunks up
/// to the closing empty one.
fn skip_body(
    stream: &mut impl Read,
    request: &RawRequest,
    mut read: Vec<u8>,
) -> std::io::Result<()> {
    let mut piece = [0u8; 16 * 1024];
    if let Some(length) = request.header("content-length") {
        let length: usize = length.parse().unwrap_or(0);
        let mut seen = read.len();
        while seen < length {
            let count = stream.read(&mut piece)?;
            if count == 0 {
                break;
            }
            seen += count;
        }
    } else if request.header("transfer-encoding") == Some("chunked") {
        while !read.ends_with(b"0\r\n\r\n") {
            let count = stream.read(&mut piece)?;
            if count == 0 {
                break;
            }
            // Only the tail matters for finding the end.
            read.extend_from_slice(&piece[..count]);
            let keep = read.len().saturating_sub(8);
            read.drain(..keep);
        }
    }
    Ok(())
}
