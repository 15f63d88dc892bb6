//! Docker Hub through Hub's API and its registry, as Docker's references
//! have them (docker/docs: `content/reference/api/hub/latest.yaml` for
//! Hub's API, `content/reference/api/registry/latest.yaml` for the
//! registry). Hub's API signs in at `POST /v2/auth/token` (`identifier`,
//! `secret`: the user and the password or personal access token pushes
//! use) for a bearer token that lasts ten minutes, renewed on a 401, and
//! sent to Hub's API alone. It lists a repository's tags from
//! `/v2/namespaces/{namespace}/repositories/{repository}/tags`,
//! `page_size` (at most 100) at a time, the next page at the answer's
//! `next`, each with `tag_last_pushed` (else `last_updated`); the digest a
//! tag points at comes from the answer's `digest` where Hub gives one (the
//! reference's schema has none), else from the registry.
//!
//! Hub's API reference documents no way to delete a tag or an image (its
//! "advanced image management" `delete-images` call is gone from it);
//! tags are deleted with `DELETE /v2/repositories/{namespace}/{repository}/tags/{tag}/`,
//! as Docker's own `hub-tool` does. The registry deletes a manifest by
//! digest (202) once no tag or other image refers to it (else 403; by tag,
//! 405); a 500 means it finishes the delete in the background. So a
//! manifest goes in two steps, its tags through Hub's API and then the
//! manifest through the registry, and what an index lists goes after the
//! index, as retention orders it. What Hub cannot do is list manifests
//! without a tag: `--untagged` finds none here.

use super::super::retention::{Dated, Distribution, ImageRegistry, RetentionError};
use super::super::{Access, Credential, Reference, RegistryClient};
use super::http::{Answer, ApiClient, ApiError};
use super::{ApiEnvironment, RegistryApi};
use crate::oci::Digest;
use reqwest::{Method, StatusCode};
use std::sync::Mutex;

/// Tags per page: the most the API gives.
const PAGE_SIZE: usize = 100;

/// Pages followed at most.
const MAXIMUM_PAGES: usize = 1_000;

const CREDENTIALS_HINT: &str = "log in to docker.io with `hoist login` or give --creds with \
     a user and a personal access token that may delete (Read, Write & Delete)";

/// One tag as Hub lists it.
#[derive(Clone, Debug)]
struct HubTag {
    name: String,
    digest: Digest,
    pushed: Option<i64>,
}

/// A Docker Hub repository, for retention.
pub struct DockerHub {
    name: String,
    /// The registry, opened for deleting manifests.
    distribution: Distribution,
    api: ApiClient,
    /// What signs in again when the token has expired.
    login: serde_json::Value,
    /// `/v2/namespaces/{namespace}/repositories/{repository}/tags`.
    tags_url: String,
    /// `/v2/repositories/{namespace}/{repository}/tags`, where tags are deleted.
    delete_url: String,
    /// The tags as listed, less those deleted since.
    tags: Mutex<Option<Vec<HubTag>>>,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
}

/// A page of tags (the reference's `paginated_tags`).
#[derive(serde::Deserialize)]
struct TagPage {
    next: Option<String>,
    #[serde(default)]
    results: Vec<ApiTag>,
}

/// A tag (the reference's `tag`, and the `digest` Hub adds).
#[derive(serde::Deserialize)]
struct ApiTag {
    name: String,
    digest: Option<String>,
    tag_last_pushed: Option<String>,
    last_updated: Option<String>,
}

impl DockerHub {
    /// `reference`'s repository through Hub's API at
    /// `environment.dockerhub_url`, signed in with the registry's credentials.
    pub fn open(
        client: &RegistryClient,
        reference: &Reference,
        environment: &ApiEnvironment,
    ) -> Result<Self, RetentionError> {
        let name = reference.repository_name();
        let api = ApiClient::new(
            client,
            RegistryApi::DockerHub,
            &environment.dockerhub_url,
            CREDENTIALS_HINT,
        )?;
        let Some(Credential::UsernamePassword { username, password }) =
            client.transport.given_or_stored(reference.api_host())?
        else {
            return Err(ApiError::NoCredentials {
                repository: name,
                api: RegistryApi::DockerHub,
                how: CREDENTIALS_HINT,
            }
            .into());
        };
        let (namespace, repository) = reference
            .repository
            .split_once('/')
            .unwrap_or(("library", reference.repository.as_str()));
        let repository = repository.replace('/', "%2F");
        let tags_url = api.url(&format!(
            "/v2/namespaces/{namespace}/repositories/{repository}/tags"
        ));
        let delete_url = api.url(&format!("/v2/repositories/{namespace}/{repository}/tags"));
        let hub = DockerHub {
            name,
            distribution: Distribution::new(client.repository(reference, Access::DELETE)),
            api,
            login: serde_json::json!({"identifier": username, "secret": password}),
            tags_url,
            delete_url,
            tags: Mutex::new(None),
        };
        hub.sign_in()?;
        Ok(hub)
    }

    /// A new bearer token for the API.
    fn sign_in(&self) -> Result<(), ApiError> {
        let url = self.api.url("/v2/auth/token");
        let answer = self
            .api
            .send_anonymous(Method::POST, &url, Some(&self.login))?;
        let token: TokenAnswer = self.api.parse(&url, &answer.body)?;
        self.api
            .authorize(&format!("Bearer {}", token.access_token));
        Ok(())
    }

    /// A call to the API, signed in again once when the token has expired
    /// (it lasts ten minutes; a long prune outlives it).
    fn call(&self, method: Method, url: &str, allowed: &[StatusCode]) -> Result<Answer, ApiError> {
        match self.api.send(method.clone(), url, None, allowed) {
            Err(error) if error.status() == Some(401) => {
                self.sign_in()?;
                self.api.send(method, url, None, allowed)
            }
            other => other,
        }
    }

    /// The repository's tags, listed on first use.
    fn hub_tags(&self) -> Result<Vec<HubTag>, RetentionError> {
        let mut cached = self
            .tags
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(tags) = cached.as_ref() {
            return Ok(tags.clone());
        }
        let mut tags = Vec::new();
        let mut next = Some(format!("{}?page_size={PAGE_SIZE}", self.tags_url));
        for _ in 0..MAXIMUM_PAGES {
            let Some(url) = next else { break };
            let answer = self.call(Method::GET, &url, &[])?;
            let page: TagPage = self.api.parse(&url, &answer.body)?;
            for tag in page.results {
                if let Some(listed) = self.hub_tag(tag)? {
                    tags.push(listed);
                }
            }
            next = page.next;
        }
        *cached = Some(tags.clone());
        Ok(tags)
    }

    /// A listed tag with the digest it points at: Hub's, else the
    /// registry's; `None` when the registry no longer has the tag.
    fn hub_tag(&self, tag: ApiTag) -> Result<Option<HubTag>, RetentionError> {
        let listed = tag
            .digest
            .as_deref()
            .and_then(|digest| crate::oci::digest::parse_sha256(digest).ok());
        let digest = match listed {
            Some(digest) => digest,
            None => match self.distribution.tag_digest(&tag.name)? {
                Some(digest) => digest,
                None => return Ok(None),
            },
        };
        let pushed = tag
            .tag_last_pushed
            .or(tag.last_updated)
            .and_then(|text| chrono::DateTime::parse_from_rfc3339(&text).ok())
            .map(|time| time.timestamp());
        Ok(Some(HubTag {
            name: tag.name,
            digest,
            pushed,
        }))
    }

    /// The tags on `digest`.
    fn tags_on(&self, digest: &Digest) -> Result<Vec<String>, RetentionError> {
        Ok(self
            .hub_tags()?
            .into_iter()
            .filter(|tag| tag.digest == *digest)
            .map(|tag| tag.name)
            .collect())
    }

    /// Deletes the manifest `digest` from the registry, its tags being
    /// gone; false when the registry no longer has it.
    fn delete_untagged(&self, digest: &Digest) -> Result<bool, RetentionError> {
        let repository = self.distribution.repository();
        let Some(found) = repository.manifest_digest(digest.as_ref())? else {
            return Ok(false);
        };
        repository
            .delete_found_manifest_accepting(&found, &[StatusCode::INTERNAL_SERVER_ERROR])
            .map_err(|source| match source.status() {
                Some(403) => ApiError::ManifestReferenced {
                    repository: self.name.clone(),
                    digest: found.to_string(),
                    source: Box::new(source),
                }
                .into(),
                _ => RetentionError::from(source),
            })?;
        Ok(true)
    }
}

impl ImageRegistry for DockerHub {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn requests_at_once(&self) -> usize {
        self.distribution.requests_at_once()
    }

    fn tags(&self) -> Result<Vec<String>, RetentionError> {
        Ok(self.hub_tags()?.into_iter().map(|tag| tag.name).collect())
    }

    fn tag_digest(&self, tag: &str) -> Result<Option<Digest>, RetentionError> {
        let named = crate::oci::digest::parse_sha256(tag).ok();
        if let Some(digest) = named {
            // An untagged manifest names itself too: the registry knows.
            return self.distribution.tag_digest(digest.as_ref());
        }
        Ok(self
            .hub_tags()?
            .into_iter()
            .find(|listed| listed.name == tag)
            .map(|listed| listed.digest))
    }

    fn children(&self, digest: &Digest) -> Result<Vec<Digest>, RetentionError> {
        self.distribution.children(digest)
    }

    /// The latest push of a tag on it.
    fn dated(&self, digest: &Digest) -> Result<Dated, RetentionError> {
        let time = self
            .hub_tags()?
            .into_iter()
            .filter(|tag| tag.digest == *digest)
            .filter_map(|tag| tag.pushed)
            .max();
        Ok(Dated {
            time,
            children: self.distribution.children(digest)?,
        })
    }

    /// Hub's registry reference documents no referrers API: referrers sit
    /// under their fallback tag.
    fn api_referrers(&self, _subject: &Digest) -> Result<Option<Vec<Digest>>, RetentionError> {
        Ok(None)
    }

    fn delete_manifest(&self, digest: &Digest) -> Result<(), RetentionError> {
        if !self.delete_manifest_if_present(digest)? {
            return Err(ApiError::NoSuchManifest {
                repository: self.name.clone(),
                api: RegistryApi::DockerHub,
                digest: digest.to_string(),
            }
            .into());
        }
        Ok(())
    }

    /// Deletes every tag on `digest` through Hub's API, then the manifest
    /// through the registry, which deletes none a tag is on.
    fn delete_manifest_if_present(&self, digest: &Digest) -> Result<bool, RetentionError> {
        for tag in self.tags_on(digest)? {
            self.delete_tag(&tag)?;
        }
        self.delete_untagged(digest)
    }

    fn delete_tag(&self, tag: &str) -> Result<(), RetentionError> {
        let url = format!("{}/{tag}/", self.delete_url);
        self.call(Method::DELETE, &url, &[StatusCode::NOT_FOUND])?;
        if let Some(tags) = self
            .tags
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .as_mut()
        {
            tags.retain(|listed| listed.name != tag);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_page_parses_with_or_without_hub_s_digest() {
        // The reference's `tag`: `images` an object, no digest, as the
        // reference has it; then as Hub answers, a list and a digest.
        let body = br#"{"count": 2, "next": "https://hub.docker.com/v2/namespaces/acme/repositories/app/tags?page=2&page_size=100",
          "previous": null, "results": [
          {"id": 1, "name": "v1", "images": {"architecture": "amd64", "digest": "sha256:aa"},
           "last_updated": "2021-01-05T21:06:53.506400Z", "status": "active",
           "tag_last_pushed": "2021-01-05T21:06:53.506400Z"},
          {"id": 2, "name": "v2", "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000002",
           "images": [{"architecture": "amd64", "digest": "sha256:bb"}],
           "last_updated": "2021-01-06T00:00:00Z"}
        ]}"#;
        let page: TagPage = serde_json::from_slice(body).unwrap();
        assert!(page.next.unwrap().ends_with("page=2&page_size=100"));
        assert_eq!(page.results[0].name, "v1");
        assert!(page.results[0].digest.is_none());
        assert_eq!(
            page.results[1].digest.as_deref(),
            Some("sha256:0000000000000000000000000000000000000000000000000000000000000002")
        );
        assert!(page.results[1].tag_last_pushed.is_none());
        assert!(page.results[1].last_updated.is_some());
    }
}
