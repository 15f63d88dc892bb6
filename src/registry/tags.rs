//! Tags after the push: listing a repository's tags, pointing tags at a
//! manifest the repository already holds (a rollback by digest moves no
//! blobs), and deleting manifests. What `hoist ls`, `hoist tag` and `hoist
//! delete` do.

use super::client::RegistryClient;
use super::error::RegistryError;
use super::manifests;
use super::pages;
use super::reference::Reference;
use super::transport::{Call, Context, MAXIMUM_TAG_PAGE, Request, Scopes};
use crate::image::BytesBlob;
use crate::oci::Digest;
use oci_spec::image::MediaType;
use reqwest::{Method, StatusCode};

/// Tags asked for per page. Registries cap it (distribution at 1,000
/// unless configured otherwise) and say where the next page is.
const PAGE_SIZE: usize = 1000;

#[derive(serde::Deserialize)]
struct TagPage {
    /// `null` for a repository without tags.
    tags: Option<Vec<String>>,
}

/// Every tag of `reference`'s repository, in the registry's order (sorted,
/// for distribution), page after page. A next page on another server is
/// an error, not followed: its tags would not be the registry's.
pub fn list_tags(
    client: &RegistryClient,
    reference: &Reference,
) -> Result<Vec<String>, RegistryError> {
    client.block_on(async {
        let transport = &client.transport;
        let host = reference.api_host();
        let base = transport.base_url(host).await?;
        let shown = reference.repository_name();
        let context = Context::new("listing tags of", &shown);
        let scopes = Scopes::pull(&reference.repository);
        let call = Call::new(host, &scopes, &context);
        let mut url = format!("{base}/v2/{}/tags/list?n={PAGE_SIZE}", reference.repository);
        let mut tags = Vec::new();
        for _ in 0..pages::MAXIMUM_PAGES {
            let response = transport
                .send(call, &Request::new(Method::GET, &url), None)
                .await?;
            let next = pages::next_page(transport, call, response.headers(), &base)?;
            let bytes = transport
                .read_capped(call, response, MAXIMUM_TAG_PAGE, "the tag list")
                .await?;
            let page: TagPage =
                serde_json::from_slice(&bytes).map_err(|source| RegistryError::Json {
                    what: "tag list",
                    target: shown.clone(),
                    source,
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(next) if next != url => url = next,
                _ => return Ok(tags),
            }
        }
        Err(RegistryError::Protocol {
            operation: context.operation,
            target: context.target,
            detail: format!("the tag list goes on past {} pages", pages::MAXIMUM_PAGES),
        })
    })
}

/// Points each of `tags` in `source`'s repository at the manifest `source`
/// names (by tag or digest): one GET, then a PUT of the same bytes per tag,
/// so the digest cannot change and no blob moves. Returns that digest.
pub fn tag_manifest(
    client: &RegistryClient,
    source: &Reference,
    tags: &[String],
) -> Result<Digest, RegistryError> {
    client.block_on(async {
        let transport = &client.transport;
        let fetched =
            manifests::get_manifest(transport, source, &source.manifest_reference()).await?;
        let manifest = BytesBlob::new(
            MediaType::from(fetched.media_type.as_str()),
            fetched.bytes.to_vec(),
        );
        for tag in tags {
            manifests::put_manifest(transport, source, &manifest, tag).await?;
        }
        Ok(fetched.digest)
    })
}

/// Deletes the manifest `reference` names and returns its digest. A tag is
/// first resolved to its digest: registries delete manifests by digest,
/// and with the manifest go every tag that points at it. A registry that
/// answers the DELETE with 405 (distribution without deletes, GHCR, Docker
/// Hub) or 404 for a manifest it has (ECR) does not delete through this API.
pub fn delete_manifest(
    client: &RegistryClient,
    reference: &Reference,
) -> Result<Digest, RegistryError> {
    // Asked for first, by tag or digest, so that a 404 to the DELETE means
    // the registry will not delete (ECR answers so), not that the manifest
    // is missing.
    let digest = client.block_on(manifests::require_manifest(&client.transport, reference))?;
    delete_found_manifest(client, reference, &digest)?;
    Ok(digest)
}

/// Deletes the manifest `reference` names if the registry still has it;
/// false when it has not (some registries delete a manifest's referrers
/// along with it, so one listed before that delete may be gone).
pub fn delete_manifest_if_present(
    client: &RegistryClient,
    reference: &Reference,
) -> Result<bool, RegistryError> {
    let Some(digest) = super::get_manifest_digest(client, reference)? else {
        return Ok(false);
    };
    delete_found_manifest(client, reference, &digest)?;
    Ok(true)
}

/// Deletes the manifest `digest` of `reference`'s repository, which the
/// registry has just said it holds: a 404 is a refusal, as for
/// [`delete_manifest`].
pub fn delete_found_manifest(
    client: &RegistryClient,
    reference: &Reference,
    digest: &Digest,
) -> Result<(), RegistryError> {
    client.block_on(async {
        let transport = &client.transport;
        let pinned = reference.with_digest(digest.clone());
        let host = reference.api_host();
        let base = transport.base_url(host).await?;
        let context = Context::new("deleting", &pinned);
        let scopes = Scopes::delete(&reference.repository);
        let url = manifests::manifest_url(&base, &reference.repository, digest.as_ref());
        transport
            .send(
                Call::new(host, &scopes, &context),
                &Request::new(Method::DELETE, &url),
                None,
            )
            .await
            .map_err(|error| match error {
                RegistryError::Status { answer, .. }
                    if answer.status == StatusCode::METHOD_NOT_ALLOWED.as_u16()
                        || answer.status == StatusCode::NOT_FOUND.as_u16() =>
                {
                    RegistryError::DeleteRefused {
                        target: pinned.to_string(),
                        answer,
                    }
                }
                other => other,
            })?;
        Ok(())
    })
}
