//! OCI 1.1 referrers: what `--attach referrers` records after pushing an
//! artifact manifest whose `subject` is an image, and what `hoist
//! attestations` reads back. A registry with the referrers API indexes
//! subjects itself; for one without, the client keeps the fallback index
//! tagged `sha256-<hex>` (distribution-spec "referrers tag schema").
//!
//! Support is found out by asking the API (a `GET` that answers an index),
//! never from the `OCI-Subject` header, which some registries send without
//! serving the API.

use super::Repository;
use super::manifests;
use crate::image::{Blob, BytesBlob};
use crate::oci::{Digest, media_type, to_canonical_json};
use crate::registry::error::RegistryError;
use crate::registry::pages;
use crate::registry::transport::{Call, Context, MAXIMUM_MANIFEST, Request};
use oci_spec::image::{Descriptor, ImageIndex, MediaType};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};

/// Where a registry keeps the referrers of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Referrers {
    /// The registry has the referrers API; these are what it lists.
    Api(Vec<Descriptor>),
    /// No referrers API: the fallback tag index lists these (empty when the
    /// tag does not exist yet).
    FallbackTag {
        tag: String,
        listed: Vec<Descriptor>,
    },
}

impl Referrers {
    pub fn descriptors(&self) -> &[Descriptor] {
        match self {
            Referrers::Api(listed) | Referrers::FallbackTag { listed, .. } => listed,
        }
    }
}

/// The fallback tag of `subject`: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm(), subject.digest())
}

/// The tag cosign stores a manifest's signatures under: `sha256-<hex>.sig`.
pub fn signature_tag(subject: &Digest) -> String {
    format!("{}.sig", fallback_tag(subject))
}

impl Repository {
    /// Lists the referrers of `subject`, through the API where the
    /// registry has it, else through the fallback tag.
    pub fn referrers(&self, subject: &Digest) -> Result<Referrers, RegistryError> {
        self.block_on(async {
            if let Some(listed) = query_api(self, subject).await? {
                return Ok(Referrers::Api(listed));
            }
            let tag = fallback_tag(subject);
            let listed = fallback_index(self, &tag)
                .await?
                .map(|index| index.manifests().clone())
                .unwrap_or_default();
            Ok(Referrers::FallbackTag { tag, listed })
        })
    }

    /// What the referrers API lists for `subject`; `None` when the
    /// registry has no such API (its referrers, if any, are under the
    /// fallback tag).
    pub fn referrers_api(
        &self,
        subject: &Digest,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        self.block_on(query_api(self, subject))
    }

    /// Records `referrer` (an artifact manifest already pushed, its
    /// descriptor carrying `artifactType` and annotations) as a referrer of
    /// `subject`. With the API nothing is left to do; without it the
    /// fallback index is fetched, the descriptor added (once) and the index
    /// pushed back.
    pub fn record_referrer(
        &self,
        subject: &Digest,
        referrer: &Descriptor,
    ) -> Result<Referrers, RegistryError> {
        let current = self.referrers(subject)?;
        let Referrers::FallbackTag { tag, mut listed } = current else {
            return Ok(current);
        };
        if listed
            .iter()
            .any(|descriptor| descriptor.digest() == referrer.digest())
        {
            return Ok(Referrers::FallbackTag { tag, listed });
        }
        listed.push(referrer.clone());
        let mut index = ImageIndex::default();
        index.set_schema_version(2);
        index.set_media_type(Some(MediaType::ImageIndex));
        index.set_manifests(listed.clone());
        let bytes = to_canonical_json(&index).map_err(|source| RegistryError::Json {
            what: "referrers index",
            target: self.reference().with_tag(&tag).to_string(),
            source,
        })?;
        let blob = BytesBlob::new(MediaType::ImageIndex, bytes);
        self.put_manifest(&blob, &tag)?;
        tracing::debug!(
            "recorded referrer {} of {subject} in the fallback tag {tag} ({})",
            referrer.digest(),
            blob.digest()
        );
        Ok(Referrers::FallbackTag { tag, listed })
    }
}

/// `GET /v2/<name>/referrers/<digest>`, page after page: `Some` with the
/// listed descriptors when the answer is an index, `None` when the
/// registry has no such API. A next page on another server is an error.
async fn query_api(
    repository: &Repository,
    subject: &Digest,
) -> Result<Option<Vec<Descriptor>>, RegistryError> {
    let transport = repository.transport();
    let base = transport.base_url(repository.host()).await?;
    let context = Context::new("listing referrers of", repository.with_digest(subject));
    let scopes = repository.read_scopes();
    let call = repository.call(&scopes, &context);
    let mut url = format!("{}/referrers/{subject}", repository.api_url().await?);
    let mut listed = Vec::new();
    for _ in 0..pages::MAXIMUM_PAGES {
        let Some(page) = query_page(repository, call, &url).await? else {
            return Ok(None);
        };
        let (descriptors, response_headers) = page;
        listed.extend(descriptors);
        match pages::next_page(transport, call, &response_headers, &base)? {
            Some(next) if next != url => url = next,
            _ => return Ok(Some(listed)),
        }
    }
    Err(RegistryError::Protocol {
        operation: context.operation,
        target: context.target,
        detail: format!(
            "the referrers list goes on past {} pages",
            pages::MAXIMUM_PAGES
        ),
    })
}

/// One page of the referrers API at `url`: its descriptors and the
/// answer's headers (for the next page), or `None` when the answer is not
/// the API's.
async fn query_page(
    repository: &Repository,
    call: Call<'_>,
    url: &str,
) -> Result<Option<(Vec<Descriptor>, HeaderMap)>, RegistryError> {
    let transport = repository.transport();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static(media_type::OCI_INDEX),
    );
    let request = Request::new(Method::GET, url)
        .with_headers(headers)
        // Registries without the API answer 404 for the unknown route;
        // some answer 405 or 400.
        .allowing(&[
            StatusCode::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::BAD_REQUEST,
        ]);
    let response = transport.send(call, &request, None).await?;
    if !response.status().is_success() {
        return Ok(None);
    }
    let response_headers = response.headers().clone();
    let bytes = transport
        // The API answers an index: a manifest's cap.
        .read_capped(call, response, MAXIMUM_MANIFEST, "the referrers list")
        .await?;
    // A 200 that is not an index is some other page, not the API.
    match serde_json::from_slice::<ImageIndex>(&bytes) {
        Ok(index) => Ok(Some((index.manifests().clone(), response_headers))),
        Err(_) => Ok(None),
    }
}

/// The fallback index at `tag`, or `None` when the tag does not exist.
async fn fallback_index(
    repository: &Repository,
    tag: &str,
) -> Result<Option<ImageIndex>, RegistryError> {
    let fetched = match manifests::get_manifest(repository, tag).await {
        Ok(fetched) => fetched,
        Err(error) if error.status() == Some(404) => return Ok(None),
        Err(error) => return Err(error),
    };
    let index: ImageIndex =
        serde_json::from_slice(&fetched.bytes).map_err(|source| RegistryError::Json {
            what: "referrers index",
            target: repository.reference().with_tag(tag).to_string(),
            source,
        })?;
    Ok(Some(index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_tag_is_algorithm_dash_hex() {
        let digest = crate::oci::sha256_digest(b"subject");
        assert_eq!(fallback_tag(&digest), format!("sha256-{}", digest.digest()));
    }
}
