//! GHCR through the GitHub REST API: a container package's versions (one
//! per manifest, named by its digest, with its tags and creation time) are
//! listed from `/orgs/{org}/packages/container/{package}/versions`, or
//! `/users/{user}/…` when the owner is no organisation, a page at a time
//! by the `Link` header; a manifest is deleted by deleting its version.
//! What a manifest lists is read over the distribution API from the
//! registry. The token (read:packages and delete:packages; in Actions a
//! `GITHUB_TOKEN` with `packages: write`) comes from `--creds` for the
//! registry, `GITHUB_TOKEN`, or the stored login for it.

use super::super::retention::{Dated, Distribution, ImageRegistry, Pushed, RetentionError};
use super::super::{Access, GivenCredentials, Reference, RegistryClient};
use super::http::{ApiClient, ApiError};
use super::{ApiEnvironment, RegistryApi};
use crate::oci::Digest;
use reqwest::{Method, StatusCode};
use std::sync::Mutex;

/// Pages of 100 versions followed at most.
const MAXIMUM_PAGES: usize = 1_000;

/// What a 401 or 403 from the GitHub API calls for.
const TOKEN_HINT: &str = "give a token with read:packages and delete:packages through \
     --creds, GITHUB_TOKEN or `hoist login`; in GitHub Actions, `permissions: packages: write`";

/// One package version: a manifest in the repository.
#[derive(Clone, Debug)]
struct Version {
    id: u64,
    digest: Digest,
    tags: Vec<String>,
    created: Option<i64>,
}

/// A GHCR repository, for retention.
pub struct GitHub {
    name: String,
    distribution: Distribution,
    api: ApiClient,
    /// `…/packages/container/{package}/versions`, once found.
    versions_url: Mutex<Option<String>>,
    /// The versions as listed, less those deleted since.
    versions: Mutex<Option<Vec<Version>>>,
}

impl GitHub {
    /// `reference`'s package through the API at `environment.github_url`.
    pub fn open(
        client: &RegistryClient,
        reference: &Reference,
        environment: &ApiEnvironment,
    ) -> Result<Self, RetentionError> {
        let name = reference.repository_name();
        let api = ApiClient::new(
            client,
            RegistryApi::GitHub,
            &environment.github_url,
            TOKEN_HINT,
        )?;
        let token = token(client, reference, environment)?.ok_or(ApiError::NoCredentials {
            repository: name.clone(),
            api: RegistryApi::GitHub,
            how: TOKEN_HINT,
        })?;
        api.authorize(&format!("Bearer {token}"));
        Ok(GitHub {
            name,
            distribution: Distribution::new(client.repository(reference, Access::PULL)),
            api,
            versions_url: Mutex::new(None),
            versions: Mutex::new(None),
        })
    }

    /// The package versions, listed on first use.
    fn versions(&self) -> Result<Vec<Version>, RetentionError> {
        let mut cached = self
            .versions
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(versions) = cached.as_ref() {
            return Ok(versions.clone());
        }
        let versions = self.list_versions()?;
        *cached = Some(versions.clone());
        Ok(versions)
    }

    /// Every page of the package's versions, from the organisation's
    /// packages, else the user's.
    fn list_versions(&self) -> Result<Vec<Version>, RetentionError> {
        let reference = self.distribution.repository().reference();
        let (owner, package) = reference
            .repository
            .split_once('/')
            .unwrap_or((reference.repository.as_str(), ""));
        // A package name's slashes are part of the name, so encoded.
        let package = package.replace('/', "%2F");
        for kind in ["orgs", "users"] {
            let base = self.api.url(&format!(
                "/{kind}/{owner}/packages/container/{package}/versions"
            ));
            let first = format!("{base}?per_page=100&state=active");
            let answer = self
                .api
                .send(Method::GET, &first, None, &[StatusCode::NOT_FOUND])?;
            if answer.status == StatusCode::NOT_FOUND && kind == "orgs" {
                continue;
            }
            if answer.status == StatusCode::NOT_FOUND {
                // The user's listing answers the 404 the caller should see.
                self.api.send(Method::GET, &first, None, &[])?;
            }
            let mut versions = parse_versions(&self.api, &first, &answer.body)?;
            let mut next = self.api.link_next(&answer.headers);
            for _ in 0..MAXIMUM_PAGES {
                let Some(url) = next else { break };
                let (page, headers) = self.api.get_json::<Vec<ApiVersion>>(&url)?;
                versions.extend(page.into_iter().filter_map(ApiVersion::into_version));
                next = self.api.link_next(&headers);
            }
            *self
                .versions_url
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()) = Some(base);
            return Ok(versions);
        }
        Ok(Vec::new())
    }

    fn version_of(&self, digest: &Digest) -> Result<Option<Version>, RetentionError> {
        Ok(self
            .versions()?
            .into_iter()
            .find(|version| version.digest == *digest))
    }
}

/// The token for the GitHub API: `--creds` for the registry, else
/// `GITHUB_TOKEN`, else the stored login for the registry.
fn token(
    client: &RegistryClient,
    reference: &Reference,
    environment: &ApiEnvironment,
) -> Result<Option<String>, RetentionError> {
    let host = reference.api_host();
    if let Some(given) = GivenCredentials::choose(&client.options().credentials, host) {
        return Ok(Some(given.password.clone()));
    }
    if let Some(token) = &environment.github_token {
        return Ok(Some(token.clone()));
    }
    Ok(match client.transport.given_or_stored(host)? {
        Some(super::super::Credential::UsernamePassword { password, .. }) => Some(password),
        // A refresh token is for the registry's token realm, not the API.
        Some(super::super::Credential::IdentityToken(_)) | None => None,
    })
}

/// A version as the API lists it.
#[derive(serde::Deserialize)]
struct ApiVersion {
    id: u64,
    name: String,
    created_at: Option<String>,
    #[serde(default)]
    metadata: Option<ApiMetadata>,
}

#[derive(serde::Deserialize)]
struct ApiMetadata {
    container: Option<ApiContainer>,
}

#[derive(serde::Deserialize)]
struct ApiContainer {
    #[serde(default)]
    tags: Vec<String>,
}

impl ApiVersion {
    /// A version whose name is a digest; others are no manifest.
    fn into_version(self) -> Option<Version> {
        let digest = crate::oci::digest::parse_sha256(&self.name).ok()?;
        let created = self
            .created_at
            .and_then(|text| chrono::DateTime::parse_from_rfc3339(&text).ok())
            .map(|time| time.timestamp());
        Some(Version {
            id: self.id,
            digest,
            tags: self
                .metadata
                .and_then(|metadata| metadata.container)
                .map(|container| container.tags)
                .unwrap_or_default(),
            created,
        })
    }
}

fn parse_versions(api: &ApiClient, url: &str, body: &[u8]) -> Result<Vec<Version>, ApiError> {
    let page: Vec<ApiVersion> = api.parse(url, body)?;
    Ok(page
        .into_iter()
        .filter_map(ApiVersion::into_version)
        .collect())
}

impl ImageRegistry for GitHub {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn requests_at_once(&self) -> usize {
        self.distribution.requests_at_once()
    }

    fn tags(&self) -> Result<Vec<String>, RetentionError> {
        Ok(self
            .versions()?
            .into_iter()
            .flat_map(|version| version.tags)
            .collect())
    }

    fn tag_digest(&self, tag: &str) -> Result<Option<Digest>, RetentionError> {
        let named = crate::oci::digest::parse_sha256(tag).ok();
        Ok(self
            .versions()?
            .into_iter()
            .find(|version| {
                Some(&version.digest) == named.as_ref() || version.tags.iter().any(|on| on == tag)
            })
            .map(|version| version.digest))
    }

    fn children(&self, digest: &Digest) -> Result<Vec<Digest>, RetentionError> {
        self.distribution.children(digest)
    }

    /// The version's creation time: when the manifest was pushed.
    fn dated(&self, digest: &Digest) -> Result<Dated, RetentionError> {
        let time = self.version_of(digest)?.and_then(|version| version.created);
        Ok(Dated {
            time,
            children: self.distribution.children(digest)?,
        })
    }

    /// GHCR has no referrers API: referrers sit under their fallback tag.
    fn api_referrers(&self, _subject: &Digest) -> Result<Option<Vec<Digest>>, RetentionError> {
        Ok(None)
    }

    fn untagged(&self) -> Result<Option<Vec<Pushed>>, RetentionError> {
        Ok(Some(
            self.versions()?
                .into_iter()
                .filter(|version| version.tags.is_empty())
                .map(|version| (version.digest, version.created))
                .collect(),
        ))
    }

    fn delete_manifest(&self, digest: &Digest) -> Result<(), RetentionError> {
        if !self.delete_manifest_if_present(digest)? {
            return Err(ApiError::NoSuchManifest {
                repository: self.name.clone(),
                api: RegistryApi::GitHub,
                digest: digest.to_string(),
            }
            .into());
        }
        Ok(())
    }

    fn delete_manifest_if_present(&self, digest: &Digest) -> Result<bool, RetentionError> {
        let Some(version) = self.version_of(digest)? else {
            return Ok(false);
        };
        let base = self
            .versions_url
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
            .unwrap_or_default();
        let url = format!("{base}/{}", version.id);
        let answer = self
            .api
            .send(Method::DELETE, &url, None, &[StatusCode::NOT_FOUND])?;
        if let Some(versions) = self
            .versions
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .as_mut()
        {
            versions.retain(|kept| kept.id != version.id);
        }
        // A 404 to the first attempt: gone meanwhile (deleted with another,
        // or by someone else). After a failed attempt: deleted by it.
        Ok(answer.status != StatusCode::NOT_FOUND || answer.attempts > 1)
    }

    fn delete_tag(&self, _tag: &str) -> Result<(), RetentionError> {
        Err(RetentionError::Unsupported {
            registry: self.name(),
            operation: "deleting a tag without its manifest (the GitHub API deletes versions)",
        })
    }
}
