//! Blob calls of the distribution API, one request each: existence (HEAD),
//! cross-repository mount, upload sessions (POST, PATCH, PUT, status) and
//! downloads that follow redirects to storage hosts without credentials.
//! The upload driver in [`super::upload`] strings them together with retries.

use super::Repository;
use crate::oci::Digest;
use crate::registry::error::{Answer, RegistryError};
use crate::registry::options::MINIMUM_CHUNK;
use crate::registry::transport::{Call, Context, Request, Transport, transport_error};
use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};

/// An upload the registry has opened for us.
#[derive(Clone, Debug)]
pub(crate) struct UploadSession {
    pub location: Url,
    /// `OCI-Chunk-Min-Length`, where the registry sets it.
    pub minimum_chunk: Option<u64>,
}

impl UploadSession {
    /// The size of this upload's chunks: the one asked for, raised to what
    /// every registry takes (ECR refuses smaller ones) and to the minimum
    /// this registry advertises. Only the last chunk may be shorter.
    pub fn chunk_size(&self, asked: u64) -> usize {
        asked
            .max(MINIMUM_CHUNK)
            .max(self.minimum_chunk.unwrap_or(0)) as usize
    }
}

pub(crate) enum MountResult {
    Mounted,
    /// The registry did not mount (no access to the source, or no support)
    /// and opened a normal upload instead.
    Upload(UploadSession),
}

async fn blob_url(repository: &Repository, digest: &Digest) -> Result<String, RegistryError> {
    Ok(format!("{}/blobs/{digest}", repository.api_url().await?))
}

fn parse_url(text: &str, context: &Context) -> Result<Url, RegistryError> {
    Url::parse(text).map_err(|error| RegistryError::Protocol {
        operation: context.operation.clone(),
        target: context.target.clone(),
        detail: format!("bad URL: {error}"),
    })
}

/// The `Location` header resolved against the request URL.
fn location(response: &Response, context: &Context) -> Result<Url, RegistryError> {
    let value = response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| RegistryError::Protocol {
            operation: context.operation.clone(),
            target: context.target.clone(),
            detail: format!("{} without a Location header", response.status()),
        })?;
    response
        .url()
        .join(value)
        .map_err(|error| RegistryError::Protocol {
            operation: context.operation.clone(),
            target: context.target.clone(),
            detail: format!("bad Location `{value}`: {error}"),
        })
}

fn session(response: &Response, context: &Context) -> Result<UploadSession, RegistryError> {
    let minimum_chunk = response
        .headers()
        .get("oci-chunk-min-length")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse().ok());
    Ok(UploadSession {
        location: location(response, context)?,
        minimum_chunk,
    })
}

/// Headers for a body of bytes whose length is not known yet.
fn octet_stream_of_unknown_length() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers
}

fn octet_stream(length: u64) -> HeaderMap {
    let mut headers = octet_stream_of_unknown_length();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers
}

pub(crate) async fn blob_exists(
    repository: &Repository,
    digest: &Digest,
) -> Result<bool, RegistryError> {
    let context = Context::new("checking blob", repository.with_digest(digest));
    let scopes = repository.read_scopes();
    let url = blob_url(repository, digest).await?;
    let request = Request::new(Method::HEAD, &url).allowing(&[StatusCode::NOT_FOUND]);
    let response = repository
        .transport()
        .send(repository.call(&scopes, &context), &request, None)
        .await?;
    Ok(response.status().is_success())
}

/// Asks the registry to mount `digest` from the repository `from` of the
/// same registry into `repository`.
pub(crate) async fn mount_blob(
    repository: &Repository,
    digest: &Digest,
    from: &str,
    context: &Context,
) -> Result<MountResult, RegistryError> {
    let scopes = repository.mount_scopes(from, context)?;
    let uploads = format!("{}/blobs/uploads/", repository.api_url().await?);
    let mut url = parse_url(&uploads, context)?;
    url.query_pairs_mut()
        .append_pair("mount", digest.as_ref())
        .append_pair("from", from);
    let request = Request::new(Method::POST, url.as_str()).with_headers(octet_stream(0));
    let response = repository
        .transport()
        .send(repository.call(&scopes, context), &request, None)
        .await?;
    match response.status() {
        StatusCode::CREATED => Ok(MountResult::Mounted),
        StatusCode::ACCEPTED => Ok(MountResult::Upload(session(&response, context)?)),
        status => Err(RegistryError::Protocol {
            operation: context.operation.clone(),
            target: context.target.clone(),
            detail: format!("mount answered {status}, expected 201 or 202"),
        }),
    }
}

/// Opens an upload in `repository`; `call` is one of its push calls.
pub(crate) async fn start_upload(
    repository: &Repository,
    call: Call<'_>,
) -> Result<UploadSession, RegistryError> {
    let context = call.context;
    let url = format!("{}/blobs/uploads/", repository.api_url().await?);
    let request = Request::new(Method::POST, &url).with_headers(octet_stream(0));
    let response = repository.transport().send(call, &request, None).await?;
    if response.status() != StatusCode::ACCEPTED {
        return Err(RegistryError::Protocol {
            operation: context.operation.clone(),
            target: context.target.clone(),
            detail: format!(
                "starting an upload answered {}, expected 202",
                response.status()
            ),
        });
    }
    session(&response, context)
}

fn with_digest(location: &Url, digest: &Digest) -> Url {
    let mut url = location.clone();
    url.query_pairs_mut().append_pair("digest", digest.as_ref());
    url
}

/// Completes an upload with a PUT carrying `body` (the whole blob, the
/// last chunk, or nothing). One attempt: the body may be a one-shot stream.
pub(crate) async fn finish_upload(
    transport: &Transport,
    call: Call<'_>,
    location: &Url,
    digest: &Digest,
    length: u64,
    body: reqwest::Body,
) -> Result<(), RegistryError> {
    let url = with_digest(location, digest);
    let request = Request::new(Method::PUT, url.as_str()).with_headers(octet_stream(length));
    let response = transport.attempt(call, request, Some(body)).await?;
    if response.status().is_success() {
        return Ok(());
    }
    Err(transport.error_from_response(call, response).await)
}

/// Sends one chunk at `offset`; returns where the next one goes. Accepts
/// 202 (the spec) and 201 or 204 (ECR and others).
pub(crate) async fn patch_chunk(
    transport: &Transport,
    call: Call<'_>,
    location: &Url,
    offset: u64,
    chunk: Bytes,
) -> Result<Url, RegistryError> {
    let length = chunk.len() as u64;
    let mut headers = octet_stream(length);
    if length > 0 {
        let range = format!("{offset}-{}", offset + length - 1);
        if let Ok(value) = HeaderValue::from_str(&range) {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    patch(
        transport,
        call,
        location,
        headers,
        reqwest::Body::from(chunk),
    )
    .await
}

/// Sends one chunk whose bytes are still being produced: no length and no
/// range, so the body goes out in HTTP chunks as it arrives and the
/// registry appends it at the offset it holds (as `docker push` does).
/// Returns where the next chunk goes.
pub(crate) async fn patch_streamed(
    transport: &Transport,
    call: Call<'_>,
    location: &Url,
    body: reqwest::Body,
) -> Result<Url, RegistryError> {
    let headers = octet_stream_of_unknown_length();
    patch(transport, call, location, headers, body).await
}

async fn patch(
    transport: &Transport,
    call: Call<'_>,
    location: &Url,
    headers: HeaderMap,
    body: reqwest::Body,
) -> Result<Url, RegistryError> {
    let request = Request::new(Method::PATCH, location.as_str()).with_headers(headers);
    let response = transport.attempt(call, request, Some(body)).await?;
    if !response.status().is_success() {
        return Err(transport.error_from_response(call, response).await);
    }
    match response.headers().get(header::LOCATION) {
        Some(_) => self::location(&response, call.context),
        None => Ok(location.clone()),
    }
}

/// Cancels an upload the client will not finish, so the registry can drop
/// what it holds of it now instead of when its stale uploads are purged.
/// One attempt, and any failure is only logged: this tidies up after
/// another error, which is the one to report.
pub(crate) async fn cancel_upload(transport: &Transport, call: Call<'_>, location: &Url) {
    let context = call.context;
    let answer = transport
        .attempt(call, Request::new(Method::DELETE, location.as_str()), None)
        .await;
    match answer {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => tracing::debug!(
            "cancelling the upload to {} answered {}",
            context.target,
            response.status()
        ),
        Err(error) => tracing::debug!("cancelling the upload to {}: {error}", context.target),
    }
}

/// Asks how much of an upload the registry holds: the offset of the next
/// byte it expects and the location to continue at, or `None` when the
/// upload is gone or the answer is unclear (the caller restarts).
pub(crate) async fn upload_offset(
    transport: &Transport,
    call: Call<'_>,
    location: &Url,
) -> Result<Option<(u64, Url)>, RegistryError> {
    let context = call.context;
    let request = Request::new(Method::GET, location.as_str()).allowing(&[StatusCode::NOT_FOUND]);
    let response = transport.send(call, &request, None).await?;
    if !response.status().is_success() {
        return Ok(None);
    }
    let next = match response.headers().get(header::RANGE) {
        None => Some(0),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().strip_prefix("bytes=").or(Some(text.trim())))
            .and_then(|text| text.split_once('-'))
            .and_then(|(start, end)| Some((start.parse::<u64>().ok()?, end.parse::<u64>().ok()?)))
            // "0-0" means nothing or one byte depending on the registry.
            .and_then(|(start, end)| (start == 0 && end > 0).then_some(end + 1)),
    };
    let Some(next) = next else {
        return Ok(None);
    };
    let continue_at = match response.headers().get(header::LOCATION) {
        Some(_) => self::location(&response, context)?,
        None => location.clone(),
    };
    Ok(Some((next, continue_at)))
}

/// Starts a blob download, following redirects (at most five). Credentials
/// go only to the registry's own origin (storage hosts get none), and a
/// redirect from HTTPS to plain HTTP is refused.
pub(crate) async fn open_blob(
    repository: &Repository,
    digest: &Digest,
    context: &Context,
) -> Result<Response, RegistryError> {
    let transport = repository.transport();
    let host = repository.host();
    let scopes = repository.read_scopes();
    let call = repository.call(&scopes, context);
    let url = blob_url(repository, digest).await?;
    let mut response = transport
        .send(call, &Request::new(Method::GET, &url), None)
        .await?;
    for _ in 0..5 {
        if !response.status().is_redirection() {
            return Ok(response);
        }
        let next = location(&response, context)?;
        transport.refuse_downgrade(host, &next)?;
        response = if transport.is_registry_origin(host, &next) {
            transport
                .send(call, &Request::new(Method::GET, next.as_str()), None)
                .await?
        } else {
            let answer = transport
                .http
                .get(next.clone())
                .send()
                .await
                .map_err(|source| transport_error(host, context, source))?;
            if !(answer.status().is_success() || answer.status().is_redirection()) {
                return Err(RegistryError::Status {
                    operation: context.operation.clone(),
                    target: format!(
                        "{} (redirected to {})",
                        context.target,
                        next.host_str().unwrap_or_default()
                    ),
                    answer: Box::new(Answer {
                        status: answer.status().as_u16(),
                        code: None,
                        message: None,
                    }),
                    retry_after: None,
                });
            }
            answer
        };
    }
    Err(RegistryError::Protocol {
        operation: context.operation.clone(),
        target: context.target.clone(),
        detail: "more than five redirects".to_string(),
    })
}
