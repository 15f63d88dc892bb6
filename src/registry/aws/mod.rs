//! Amazon ECR beside the distribution API: the registry's own API
//! (`DescribeImages`, `BatchDeleteImage`, `GetAuthorizationToken`) for
//! retention and for logging in, signed with SigV4 ([`sigv4`]) using
//! credentials from the standard AWS chain ([`credentials`]: environment,
//! web identity through STS ([`sts`]), shared config and credentials files).
//! The transport asks [`ecr::EcrLogins`] for a registry password when an
//! ECR host wants one and none was given or stored; `retention::Ecr` lists
//! and deletes through [`ecr::EcrApi`].
//!
//! AWS credentials and signatures go only to the ECR and STS endpoints of
//! the registry's region (or the SDK-standard `AWS_ENDPOINT_URL_*`
//! overrides), over HTTPS, or plain HTTP to loopback.

pub mod credentials;
pub mod ecr;
mod environment;
pub mod sigv4;
mod sts;

pub use credentials::AwsCredentials;
pub use ecr::{EcrApi, EcrImage, EcrLogins};
pub use environment::{AwsEnvironment, EcrHost, Service, ecr_host};

use std::path::PathBuf;

/// Talking to AWS failed. No variant carries a secret, a signature or a
/// token: only names of variables, files, profiles and endpoints.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error(
        "no AWS credentials for {registry}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
         AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or a profile in ~/.aws (AWS_PROFILE)"
    )]
    NoCredentials { registry: String },
    #[error(
        "no AWS region for {registry}: its name carries none; set AWS_REGION or a profile's region"
    )]
    NoRegion { registry: String },
    #[error("{variable} is set but {missing} is not; set both or neither")]
    Incomplete {
        variable: &'static str,
        missing: &'static str,
    },
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("profile {profile} is not in {files}; set AWS_PROFILE to one that is")]
    NoProfile { profile: String, files: String },
    #[error(
        "profile {profile} in {path} has {key}, which hoist does not support; \
         use static keys, a web identity token file, or export credentials to the environment"
    )]
    UnsupportedProfile {
        profile: String,
        path: PathBuf,
        key: String,
    },
    #[error(
        "{variable} is {url}: AWS credentials go only over https (plain http only to loopback)"
    )]
    InsecureEndpoint { variable: String, url: String },
    #[error("{variable} is not a URL ({url}): {reason}")]
    BadEndpoint {
        variable: String,
        url: String,
        reason: String,
    },
    #[error("signing a request to {endpoint}: {reason}")]
    Signing { endpoint: String, reason: String },
    #[error("{operation} at {endpoint}: connection failed")]
    Transport {
        operation: &'static str,
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{operation} at {endpoint} failed with HTTP {status}: {code}: {message}")]
    Api {
        operation: &'static str,
        endpoint: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{operation} at {endpoint}: the answer is larger than {limit} bytes")]
    TooLarge {
        operation: &'static str,
        endpoint: String,
        limit: usize,
    },
    #[error("{operation} at {endpoint}: unexpected answer: {detail}")]
    Protocol {
        operation: &'static str,
        endpoint: String,
        detail: String,
    },
    #[error("{registry}: deleting {image} failed: {code}: {reason}")]
    DeleteFailed {
        registry: String,
        image: String,
        code: String,
        reason: String,
    },
}

/// The largest AWS API answer read into memory: a `DescribeImages` page of
/// 1000 images is a few hundred KiB.
const MAXIMUM_ANSWER: usize = 16 * 1024 * 1024;

/// An answer from an AWS endpoint: its status and whole body.
pub(crate) struct Answer {
    pub status: reqwest::StatusCode,
    pub body: bytes::Bytes,
}

/// Sends `request` (built for `endpoint`) and reads its answer under
/// [`MAXIMUM_ANSWER`]; `operation` names the call in errors.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    operation: &'static str,
    endpoint: &reqwest::Url,
) -> Result<Answer, AwsError> {
    let transport_failed = |source| AwsError::Transport {
        operation,
        endpoint: endpoint.to_string(),
        source,
    };
    let response = request.send().await.map_err(transport_failed)?;
    let status = response.status();
    let capped = crate::registry::capped::read_at_most(response, MAXIMUM_ANSWER)
        .await
        .map_err(transport_failed)?;
    if !capped.complete {
        return Err(AwsError::TooLarge {
            operation,
            endpoint: endpoint.to_string(),
            limit: MAXIMUM_ANSWER,
        });
    }
    Ok(Answer {
        status,
        body: capped.bytes,
    })
}

/// The `Host` header value for `url`, as the server sees it (the port only
/// when not the scheme's own), which SigV4 signs.
pub(crate) fn host_header(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}
