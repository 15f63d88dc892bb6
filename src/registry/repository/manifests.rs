//! Manifest calls: GET with the Accept list (verified against the digest),
//! HEAD for what a tag points at, PUT with the manifest's own media type.

use super::Repository;
use crate::image::{Blob, BytesBlob};
use crate::oci::digest::parse_sha256;
use crate::oci::{Digest, media_type, sha256_digest};
use crate::registry::error::RegistryError;
use crate::registry::transport::{Context, MAXIMUM_MANIFEST, Request};
use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};

/// A manifest as fetched: bytes, media type and verified digest.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: Digest,
}

/// Where `target` (a tag or a digest) of `repository` is.
pub(super) async fn manifest_url(
    repository: &Repository,
    target: &str,
) -> Result<String, RegistryError> {
    Ok(format!(
        "{}/manifests/{target}",
        repository.api_url().await?
    ))
}

fn accept_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static(
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json",
        ),
    );
    debug_assert_eq!(
        headers[header::ACCEPT].to_str().ok(),
        Some(media_type::MANIFEST_ACCEPT.join(", ").as_str())
    );
    headers
}

fn content_digest(headers: &HeaderMap) -> Option<Digest> {
    headers
        .get("docker-content-digest")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| parse_sha256(text.trim()).ok())
}

/// GETs `target` (tag or digest) in `repository`.
pub(crate) async fn get_manifest(
    repository: &Repository,
    target: &str,
) -> Result<FetchedManifest, RegistryError> {
    let transport = repository.transport();
    let shown = repository.at(target)?;
    let context = Context::new("reading manifest", &shown);
    let scopes = repository.read_scopes();
    let call = repository.call(&scopes, &context);
    let url = manifest_url(repository, target).await?;
    let request = Request::new(Method::GET, &url).with_headers(accept_headers());
    let response = transport.send(call, &request, None).await?;
    let header_digest = content_digest(response.headers());
    let header_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|text| text.split(';').next().unwrap_or(text).trim().to_string());
    let bytes = transport
        .read_capped(call, response, MAXIMUM_MANIFEST, "the manifest")
        .await?;
    let actual = sha256_digest(&bytes);
    let expected = match target.starts_with("sha256:") {
        true => parse_sha256(target).ok(),
        false => header_digest,
    };
    if let Some(expected) = expected
        && expected != actual
    {
        return Err(RegistryError::DigestMismatch {
            what: "manifest",
            target: shown.to_string(),
            expected: Box::new(expected),
            actual: Box::new(actual),
        });
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    let probe: Probe = serde_json::from_slice(&bytes).map_err(|source| RegistryError::Json {
        what: "manifest",
        target: shown.to_string(),
        source,
    })?;
    let media_type = probe
        .media_type
        .or(header_type)
        .unwrap_or_else(|| media_type::OCI_MANIFEST.to_string());
    Ok(FetchedManifest {
        bytes,
        media_type,
        digest: actual,
    })
}

/// HEADs `target` (tag or digest); `None` on 404.
pub(crate) async fn head_manifest(
    repository: &Repository,
    target: &str,
) -> Result<Option<Digest>, RegistryError> {
    let context = Context::new("checking manifest", repository.at(target)?);
    let scopes = repository.read_scopes();
    let url = manifest_url(repository, target).await?;
    let request = Request::new(Method::HEAD, &url)
        .with_headers(accept_headers())
        .allowing(&[StatusCode::NOT_FOUND]);
    let response = repository
        .transport()
        .send(repository.call(&scopes, &context), &request, None)
        .await?;
    if response.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    match content_digest(response.headers()) {
        Some(digest) => Ok(Some(digest)),
        // Some registries leave the header off HEAD answers; GET tells.
        None => Ok(Some(get_manifest(repository, target).await?.digest)),
    }
}

/// What `target` points at now, by `HEAD`; missing is an error naming it.
pub(crate) async fn require_manifest(
    repository: &Repository,
    target: &str,
) -> Result<Digest, RegistryError> {
    head_manifest(repository, target)
        .await?
        .ok_or_else(|| RegistryError::NotFound {
            what: "manifest",
            target: repository
                .at(target)
                .map_or_else(|_| repository.name(), |shown| shown.to_string()),
        })
}

/// True when `repository` has the manifest with this digest.
pub(crate) async fn has_manifest(
    repository: &Repository,
    digest: &Digest,
) -> Result<bool, RegistryError> {
    let context = Context::new("checking manifest", repository.with_digest(digest));
    let scopes = repository.read_scopes();
    let url = manifest_url(repository, digest.as_ref()).await?;
    let request = Request::new(Method::HEAD, &url)
        .with_headers(accept_headers())
        .allowing(&[StatusCode::NOT_FOUND]);
    let response = repository
        .transport()
        .send(repository.call(&scopes, &context), &request, None)
        .await?;
    Ok(response.status().is_success())
}

/// PUTs `manifest` under `target` (a tag or its digest).
pub(crate) async fn put_manifest(
    repository: &Repository,
    manifest: &BytesBlob,
    target: &str,
) -> Result<(), RegistryError> {
    let shown = if target.starts_with("sha256:") {
        repository.with_digest(manifest.digest())
    } else {
        repository.reference().with_tag(target)
    };
    let context = Context::new("pushing manifest", &shown);
    let media_type = manifest.descriptor().media_type().to_string();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&media_type).map_err(|_| RegistryError::Protocol {
            operation: context.operation.clone(),
            target: context.target.clone(),
            detail: format!("media type `{media_type}` cannot be sent as a header"),
        })?,
    );
    let scopes = repository.push_scopes(&context)?;
    let url = manifest_url(repository, target).await?;
    let request = Request::new(Method::PUT, &url).with_headers(headers);
    let response = repository
        .transport()
        .send(
            repository.call(&scopes, &context),
            &request,
            Some(Bytes::copy_from_slice(manifest.bytes())),
        )
        .await?;
    if let Some(returned) = content_digest(response.headers())
        && &returned != manifest.digest()
    {
        return Err(RegistryError::DigestMismatch {
            what: "stored manifest",
            target: shown.to_string(),
            expected: Box::new(manifest.digest().clone()),
            actual: Box::new(returned),
        });
    }
    Ok(())
}
