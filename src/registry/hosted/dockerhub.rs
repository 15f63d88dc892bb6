//! Docker Hub through Hub's API: a repository's tags, each with the digest
//! it points at and when it was last pushed, are listed from
//! `/v2/namespaces/{namespace}/repositories/{repository}/tags` a page at a
//! time (the answer's `next`), and tags are deleted one by one. Hub's API
//! deletes tags, not manifests: a manifest whose tags are all deleted
//! stays in the repository untagged, as do the platform and attestation
//! manifests an index lists, and Hub's API cannot list or delete those.
//! It signs in at `/v2/auth/token` with the credentials pushes use (a
//! password or a personal access token) and sends the token it gets to
//! Hub's API alone. What a manifest lists is read from the registry.

use super::super::retention::{Dated, Distribution, ImageRegistry, RetentionError};
use super::super::{Access, Credential, Reference, RegistryClient};
use super::http::{ApiClient, ApiError};
use super::{ApiEnvironment, RegistryApi};
use crate::oci::Digest;
use reqwest::{Method, StatusCode};
use std::sync::Mutex;

/// Pages of 100 tags followed at most.
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
    distribution: Distribution,
    api: ApiClient,
    /// `/v2/namespaces/{namespace}/repositories/{repository}/tags`.
    tags_url: String,
    /// The tags as listed, less those deleted since.
    tags: Mutex<Option<Vec<HubTag>>>,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
}

#[derive(serde::Deserialize)]
struct TagPage {
    next: Option<String>,
    #[serde(default)]
    results: Vec<ApiTag>,
}

#[derive(serde::Deserialize)]
struct ApiTag {
    name: String,
    digest: Option<String>,
    tag_last_pushed: Option<String>,
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
        let url = api.url("/v2/auth/token");
        let body = serde_json::json!({"identifier": username, "secret": password});
        let answer = api.send(Method::POST, &url, Some(&body), &[])?;
        let token: TokenAnswer = api.parse(&url, &answer.body)?;
        api.authorize(&format!("Bearer {}", token.access_token));
        let (namespace, repository) = reference
            .repository
            .split_once('/')
            .unwrap_or(("library", reference.repository.as_str()));
        let tags_url = api.url(&format!(
            "/v2/namespaces/{namespace}/repositories/{}/tags",
            repository.replace('/', "%2F")
        ));
        Ok(DockerHub {
            name,
            distribution: Distribution::new(client.repository(reference, Access::PULL)),
            api,
            tags_url,
            tags: Mutex::new(None),
        })
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
        let mut next = Some(format!("{}?page_size=100", self.tags_url));
        for _ in 0..MAXIMUM_PAGES {
            let Some(url) = next else { break };
            let (page, _) = self.api.get_json::<TagPage>(&url)?;
            tags.extend(page.results.into_iter().filter_map(|tag| {
                let digest = crate::oci::digest::parse_sha256(tag.digest.as_deref()?).ok()?;
                let pushed = tag
                    .tag_last_pushed
                    .and_then(|text| chrono::DateTime::parse_from_rfc3339(&text).ok())
                    .map(|time| time.timestamp());
                Some(HubTag {
                    name: tag.name,
                    digest,
                    pushed,
                })
            }));
            next = page.next;
        }
        *cached = Some(tags.clone());
        Ok(tags)
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
        Ok(self
            .hub_tags()?
            .into_iter()
            .find(|listed| listed.name == tag || Some(&listed.digest) == named.as_ref())
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

    fn api_referrers(&self, _subject: &Digest) -> Result<Option<Vec<Digest>>, RetentionError> {
        Ok(None)
    }

    fn deletes_untagged(&self) -> bool {
        false
    }

    /// Deletes every tag on `digest`: the manifest stays, untagged.
    fn delete_manifest(&self, digest: &Digest) -> Result<(), RetentionError> {
        if !self.delete_manifest_if_present(digest)? {
            return Err(RetentionError::Unsupported {
                registry: format!("{}@{digest}", self.name),
                operation: "deleting a manifest without a tag (Hub's API deletes tags only)",
            });
        }
        Ok(())
    }

    fn delete_manifest_if_present(&self, digest: &Digest) -> Result<bool, RetentionError> {
        let tags = self.tags_on(digest)?;
        for tag in &tags {
            self.delete_tag(tag)?;
        }
        Ok(!tags.is_empty())
    }

    fn delete_tag(&self, tag: &str) -> Result<(), RetentionError> {
        let url = format!("{}/{tag}", self.tags_url);
        self.api
            .send(Method::DELETE, &url, None, &[StatusCode::NOT_FOUND])?;
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
