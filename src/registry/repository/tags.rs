//! Tags after the push: listing a repository's tags, pointing tags at a
//! manifest the repository already holds (a rollback by digest moves no
//! blobs), and deleting manifests. What `hoist ls`, `hoist tag` and `hoist
//! delete` do.

use super::Repository;
use super::manifests;
use crate::image::BytesBlob;
use crate::oci::Digest;
use crate::registry::error::RegistryError;
use crate::registry::pages;
use crate::registry::reference::Reference;
use crate::registry::transport::{Context, MAXIMUM_TAG_PAGE, Request};
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

impl Repository {
    /// Every tag of the repository, in the registry's order (sorted, for
    /// distribution), page after page. A next page on another server is
    /// an error, not followed: its tags would not be the registry's.
    pub fn tags(&self) -> Result<Vec<String>, RegistryError> {
        self.block_on(list_tags(self))
    }

    /// Points each of `tags` at the manifest `target` (a tag or digest)
    /// names: one GET, then a PUT of the same bytes per tag, so the digest
    /// cannot change and no blob moves. Returns that digest.
    pub fn tag_manifest(&self, target: &str, tags: &[String]) -> Result<Digest, RegistryError> {
        self.block_on(async {
            let fetched = manifests::get_manifest(self, target).await?;
            let manifest = BytesBlob::new(
                MediaType::from(fetched.media_type.as_str()),
                fetched.bytes.to_vec(),
            );
            for tag in tags {
                manifests::put_manifest(self, &manifest, tag).await?;
            }
            Ok(fetched.digest)
        })
    }

    /// Deletes the manifest `target` (a tag or digest) names and returns
    /// its digest. A tag is first resolved to its digest: registries
    /// delete manifests by digest, and with the manifest go every tag that
    /// points at it. A registry that answers the DELETE with 405
    /// (distribution without deletes, GHCR, Docker Hub) or 404 for a
    /// manifest it has (ECR) does not delete through this API.
    pub fn delete_manifest(&self, target: &str) -> Result<Digest, RegistryError> {
        // Asked for first, by tag or digest, so that a 404 to the DELETE
        // means the registry will not delete (ECR answers so), not that
        // the manifest is missing.
        let digest = self.require_manifest_digest(target)?;
        self.delete_found_manifest(&digest)?;
        Ok(digest)
    }

    /// Deletes the manifest `digest` if the registry still has it; false
    /// when it has not (some registries delete a manifest's referrers
    /// along with it, so one listed before that delete may be gone).
    pub fn delete_manifest_if_present(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let Some(digest) = self.manifest_digest(digest.as_ref())? else {
            return Ok(false);
        };
        self.delete_found_manifest(&digest)?;
        Ok(true)
    }

    /// Deletes the manifest `digest`, which the registry has just said it
    /// holds: a 404 is a refusal, as for [`Repository::delete_manifest`].
    pub fn delete_found_manifest(&self, digest: &Digest) -> Result<(), RegistryError> {
        self.block_on(delete_by_digest(self, digest, &[]))
    }

    /// As [`Repository::delete_found_manifest`], taking an answer with a
    /// status in `accepted` as the delete done, without another attempt:
    /// Docker Hub answers 500 to a delete it finishes in the background.
    pub fn delete_found_manifest_accepting(
        &self,
        digest: &Digest,
        accepted: &[StatusCode],
    ) -> Result<(), RegistryError> {
        self.block_on(delete_by_digest(self, digest, accepted))
    }
}

async fn list_tags(repository: &Repository) -> Result<Vec<String>, RegistryError> {
    let transport = repository.transport();
    let base = transport.base_url(repository.host()).await?;
    let shown = repository.name();
    let context = Context::new("listing tags of", &shown);
    let scopes = repository.read_scopes();
    let call = repository.call(&scopes, &context);
    let mut url = format!("{}/tags/list?n={PAGE_SIZE}", repository.api_url().await?);
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
}

async fn delete_by_digest(
    repository: &Repository,
    digest: &Digest,
    accepted: &[StatusCode],
) -> Result<(), RegistryError> {
    let pinned: Reference = repository.with_digest(digest);
    let context = Context::new("deleting", &pinned);
    let scopes = repository.delete_scopes(&context)?;
    let url = manifests::manifest_url(repository, digest.as_ref()).await?;
    repository
        .transport()
        .send(
            repository.call(&scopes, &context),
            &Request::new(Method::DELETE, &url).allowing(accepted),
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
}
