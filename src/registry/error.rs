//! What can go wrong talking to a registry, each case naming the reference or
//! host involved and what the user can do about it. No variant carries a
//! credential or a header value.

use super::credentials::CredentialsError;
use super::reference::ReferenceError;
use crate::oci::Digest;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    #[error(transparent)]
    Credentials(#[from] CredentialsError),

    #[error(transparent)]
    Aws(#[from] super::aws::AwsError),

    #[error("reading CA certificate {path}: {reason}")]
    CaCertificate { path: PathBuf, reason: String },

    #[error("setting up TLS")]
    TlsSetup(#[source] rustls::Error),

    #[error("setting up the HTTP client")]
    ClientSetup(#[source] reqwest::Error),

    #[error("starting the registry client's I/O threads")]
    Runtime(#[source] std::io::Error),

    #[error(
        "{host}: the TLS certificate is not trusted; pass the registry's CA with --ca-cert FILE (or SSL_CERT_FILE)"
    )]
    Certificate {
        host: String,
        #[source]
        source: reqwest::Error,
    },

    #[error(
        "{host} does not answer in TLS (is it a plain HTTP registry?); hoist speaks plain HTTP only to loopback addresses and to registries named with --insecure-registry {host}"
    )]
    NotTls {
        host: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("{host}: no such host; check the registry name in the reference")]
    UnknownHost {
        host: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("{operation} {target}: connection failed")]
    Transport {
        operation: String,
        target: String,
        #[source]
        source: reqwest::Error,
    },

    #[error(
        "{host} would be reached over plain HTTP ({url}); that is allowed only for loopback addresses and registries listed with --insecure-registry"
    )]
    InsecureRefused { host: String, url: String },

    #[error(
        "{host} is spoken to over HTTPS but sent hoist to plain HTTP ({url}); refusing to follow it"
    )]
    Downgrade { host: String, url: String },

    #[error(
        "{operation} {target}: the registry's next page is on another server ({url}); hoist lists only what the registry itself answers"
    )]
    ForeignPage {
        operation: String,
        target: String,
        url: String,
    },

    #[error("{operation} {target}: the registry answered {answer}")]
    Status {
        operation: String,
        target: String,
        answer: Box<Answer>,
        /// From `Retry-After`, for 429 and 503.
        retry_after: Option<Duration>,
    },

    #[error(
        "{operation} {target}: not authorized by {host} ({answer}); check the credentials (`hoist login {host}`, --creds) and that they may {action}"
    )]
    Unauthorized {
        operation: String,
        target: String,
        host: String,
        answer: Box<Answer>,
        action: &'static str,
    },

    #[error(
        "{host} asks for credentials but none are configured: run `hoist login {host}` or pass --creds"
    )]
    NoCredentials { host: String },

    #[error("{host}: the token service at {realm} answered {status}{}", .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Token {
        host: String,
        realm: String,
        status: u16,
        message: Option<String>,
    },

    #[error("{host}: cannot use the authentication challenge `{challenge}`: {reason}")]
    Challenge {
        host: String,
        challenge: String,
        reason: String,
    },

    #[error("{target}: no such {what} in the registry")]
    NotFound { what: &'static str, target: String },

    #[error(
        "deleting {target}: the registry does not allow deletes through the distribution API ({answer}); on a distribution registry set `storage: delete: enabled: true` (REGISTRY_STORAGE_DELETE_ENABLED=true), elsewhere (GHCR, Docker Hub, ECR) delete through the registry's own API"
    )]
    DeleteRefused { target: String, answer: Box<Answer> },

    #[error("{what} {target} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        what: &'static str,
        target: String,
        expected: Box<Digest>,
        actual: Box<Digest>,
    },

    #[error("{operation} {target}: unexpected response: {detail}")]
    Protocol {
        operation: String,
        target: String,
        detail: String,
    },

    #[error(
        "{operation} {target}: {what} at {url} goes past {limit} bytes, the most hoist reads into memory for it; a registry that sends more is broken or hostile"
    )]
    TooLarge {
        operation: String,
        target: String,
        what: &'static str,
        url: String,
        limit: usize,
    },

    #[error(
        "{operation} {target}: hoist opened this repository for {access} only; this is a bug in hoist, please report it"
    )]
    NotOpenedFor {
        operation: String,
        target: String,
        access: String,
    },

    #[error("{what} {target} is not valid JSON")]
    Json {
        what: &'static str,
        target: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("reading blob {digest} to upload it")]
    BlobRead {
        digest: Digest,
        #[source]
        source: std::io::Error,
    },

    #[error("streaming a blob to {target}: {reason}")]
    Stream { target: String, reason: String },

    #[error("{operation} {target}: gave up after {attempts} attempts")]
    GaveUp {
        operation: String,
        target: String,
        attempts: u32,
        #[source]
        source: Box<RegistryError>,
    },
}

/// What a registry answered to a failed request: the HTTP status and the
/// first entry of its `{"errors":[...]}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub code: Option<String>,
    pub message: Option<String>,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.status)?;
        if let Some(code) = &self.code {
            write!(formatter, " {code}")?;
        }
        if let Some(message) = &self.message {
            write!(formatter, ": {message}")?;
        }
        Ok(())
    }
}

impl RegistryError {
    /// True for failures that a later attempt may not meet: 5xx, 429,
    /// resets and timeouts. 4xx and certificate problems are final.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Status { answer, .. } => answer.status >= 500 || answer.status == 429,
            RegistryError::Transport { source, .. } => !source.is_builder(),
            RegistryError::Token { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// How long the registry asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RegistryError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status the registry answered, where there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Status { answer, .. } | RegistryError::Unauthorized { answer, .. } => {
                Some(answer.status)
            }
            RegistryError::Token { status, .. } => Some(*status),
            RegistryError::GaveUp { source, .. } => source.status(),
            _ => None,
        }
    }
}
