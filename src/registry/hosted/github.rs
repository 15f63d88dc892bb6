//! GHCR through the GitHub REST API, as GitHub's OpenAPI description has it
//! (github/rest-api-description, `descriptions/api.github.com/api.github.com.yaml`,
//! the "packages" operations): a container package's versions, one per
//! manifest, named by its digest, with `metadata.container.tags` and
//! `created_at`, are listed `per_page` (at most 100) at a time, the next
//! page where the `Link: <…>; rel="next"` header says, and a manifest is
//! deleted by deleting its version (204).
//!
//! A package is owned by an organisation
//! (`/orgs/{org}/packages/container/{package}/versions`, with
//! `state=active`) or a user. The user's own packages, private ones too,
//! are listed under `/user/packages/…` by the user's token; another user's
//! under `/users/{username}/packages/…`, which the description gives no
//! query parameters beyond GitHub's general `per_page`. So hoist asks the
//! organisation listing first and, on 404, `GET /user` for whose token it
//! holds (an installation token such as Actions' `GITHUB_TOKEN` may not
//! ask: then the owner's listing). A package name's slashes are part of the
//! name (`acme/api` is `acme%2Fapi`). Every call sends `Accept:
//! application/vnd.github+json` and `X-GitHub-Api-Version: 2022-11-28`,
//! the version the answers here are read as; GitHub Enterprise Server
//! serves the same API under `https://HOST/api/v3` (`GITHUB_API_URL`).
//!
//! What a manifest lists is read over the distribution API from the
//! registry. The token (read:packages and delete:packages; in Actions a
//! `GITHUB_TOKEN` with `packages: write`) comes from `--creds` for the
//! registry, `GITHUB_TOKEN`, or the stored login for it.

use super::super::retention::{Dated, Distribution, ImageRegistry, Pushed, RetentionError};
use super::super::{Access, GivenCredentials, Reference, RegistryClient};
use super::http::{Answer, ApiClient, ApiError};
use super::{ApiEnvironment, RegistryApi};
use crate::oci::Digest;
use reqwest::header::{self, HeaderName};
use reqwest::{Method, StatusCode};
use std::sync::Mutex;

/// The REST API version whose answers this reads.
pub const API_VERSION: &str = "2022-11-28";

/// Versions per page: the most the API gives.
const PAGE_SIZE: usize = 100;

/// Pages followed at most.
const MAXIMUM_PAGES: usize = 1_000;

/// What a 401 or 403 from the GitHub API calls for.
const TOKEN_HINT: &str = "give a token with read:packages and delete:packages through \
     --creds, GITHUB_TOKEN or `hoist login`; in GitHub Actions, `permissions: packages: write`";

/// What a refused version delete may mean besides the token.
const DOWNLOADS_HINT: &str = "GitHub deletes no version of a public package that was \
     downloaded more than 5,000 times; GitHub support can";

/// Whose packages the versions are listed among.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// `/orgs/{org}/packages/…`.
    Organization,
    /// `/user/packages/…`: the token's own user.
    TokenUser,
    /// `/users/{username}/packages/…`.
    OtherUser,
}

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
    /// The package's owner and its name, slashes encoded.
    owner: String,
    package: String,
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
        )?
        .with_header(header::ACCEPT, "application/vnd.github+json")
        .with_header(HeaderName::from_static("x-github-api-version"), API_VERSION);
        let token = token(client, reference, environment)?.ok_or(ApiError::NoCredentials {
            repository: name.clone(),
            api: RegistryApi::GitHub,
            how: TOKEN_HINT,
        })?;
        api.authorize(&format!("Bearer {token}"));
        let (owner, package) = reference
            .repository
            .split_once('/')
            .unwrap_or((reference.repository.as_str(), ""));
        Ok(GitHub {
            name,
            distribution: Distribution::new(client.repository(reference, Access::PULL)),
            api,
            owner: owner.to_string(),
            package: package_segment(package),
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

    /// `…/packages/container/{package}/versions` under `owner`.
    fn versions_path(&self, owner: Owner) -> String {
        let under = match owner {
            Owner::Organization => format!("/orgs/{}", self.owner),
            Owner::TokenUser => "/user".to_string(),
            Owner::OtherUser => format!("/users/{}", self.owner),
        };
        self.api.url(&format!(
            "{under}/packages/container/{}/versions",
            self.package
        ))
    }

    /// The first page's URL: `state` is a parameter of the organisation's
    /// and the token user's listings only.
    fn first_page(&self, owner: Owner) -> String {
        let base = self.versions_path(owner);
        match owner {
            Owner::Organization | Owner::TokenUser => {
                format!("{base}?per_page={PAGE_SIZE}&state=active")
            }
            Owner::OtherUser => format!("{base}?per_page={PAGE_SIZE}"),
        }
    }

    /// Every page of the package's versions, from the organisation's
    /// packages, else the user's.
    fn list_versions(&self) -> Result<Vec<Version>, RetentionError> {
        let organization = self.first_page(Owner::Organization);
        let answer = self
            .api
            .send(Method::GET, &organization, None, &[StatusCode::NOT_FOUND])?;
        let (owner, first, answer) = if answer.status == StatusCode::NOT_FOUND {
            let owner = self.user_kind()?;
            let first = self.first_page(owner);
            let answer = self
                .api
                .send(Method::GET, &first, None, &[StatusCode::NOT_FOUND])?;
            if answer.status == StatusCode::NOT_FOUND {
                return Err(ApiError::NoPackage {
                    repository: self.name.clone(),
                    api: RegistryApi::GitHub,
                    owner: self.owner.clone(),
                    package: self.package.replace("%2F", "/"),
                    url: first,
                    hint: TOKEN_HINT,
                }
                .into());
            }
            (owner, first, answer)
        } else {
            (Owner::Organization, organization, answer)
        };
        let mut versions = parse_versions(&self.api, &first, &answer)?;
        let mut next = self.api.link_next(&answer.headers);
        for _ in 0..MAXIMUM_PAGES {
            let Some(url) = next else { break };
            let answer = self.api.send(Method::GET, &url, None, &[])?;
            versions.extend(parse_versions(&self.api, &url, &answer)?);
            next = self.api.link_next(&answer.headers);
        }
        *self
            .versions_url
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(self.versions_path(owner));
        Ok(versions)
    }

    /// Whether the owner, not an organisation, is the token's user: `GET
    /// /user` names it, or refuses an installation token (403).
    fn user_kind(&self) -> Result<Owner, ApiError> {
        #[derive(serde::Deserialize)]
        struct User {
            login: String,
        }
        let url = self.api.url("/user");
        let answer = self.api.send(
            Method::GET,
            &url,
            None,
            &[StatusCode::FORBIDDEN, StatusCode::NOT_FOUND],
        )?;
        if !answer.status.is_success() {
            return Ok(Owner::OtherUser);
        }
        let user: User = self.api.parse(&url, &answer.body)?;
        Ok(if user.login.eq_ignore_ascii_case(&self.owner) {
            Owner::TokenUser
        } else {
            Owner::OtherUser
        })
    }

    fn version_of(&self, digest: &Digest) -> Result<Option<Version>, RetentionError> {
        Ok(self
            .versions()?
            .into_iter()
            .find(|version| version.digest == *digest))
    }
}

/// A package name as one path segment: its slashes are part of the name.
fn package_segment(package: &str) -> String {
    package.replace('/', "%2F")
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

/// A version as the API lists it (the description's `package-version`).
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

fn parse_versions(api: &ApiClient, url: &str, answer: &Answer) -> Result<Vec<Version>, ApiError> {
    Ok(manifest_versions(api.parse(url, &answer.body)?))
}

/// The versions of a page that are manifests.
fn manifest_versions(page: Vec<ApiVersion>) -> Vec<Version> {
    page.into_iter()
        .filter_map(ApiVersion::into_version)
        .collect()
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
            .send(Method::DELETE, &url, None, &[StatusCode::NOT_FOUND])
            .map_err(|error| match error.status() {
                Some(400 | 403 | 422) => error.with_hint(DOWNLOADS_HINT),
                _ => error,
            })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_name_keeps_its_slashes_encoded_in_one_segment() {
        for (name, segment) in [
            ("api", "api"),
            ("acme/api", "acme%2Fapi"),
            ("a/b/c", "a%2Fb%2Fc"),
        ] {
            assert_eq!(package_segment(name), segment);
        }
    }

    #[test]
    fn versions_parse_as_the_description_has_them() {
        let body = br#"[
          {"id": 786068, "name": "sha256:0000000000000000000000000000000000000000000000000000000000000001",
           "url": "https://api.github.com/orgs/github/packages/container/super-linter/versions/786068",
           "package_html_url": "https://github.com/orgs/github/packages/container/package/super-linter",
           "created_at": "2011-04-10T20:09:31Z", "updated_at": "2014-03-03T18:58:10Z",
           "metadata": {"package_type": "container", "container": {"tags": ["latest", "v1"]}}},
          {"id": 2, "name": "1.0.0", "url": "u", "package_html_url": "p",
           "created_at": "2011-04-10T20:09:31Z", "updated_at": "2011-04-10T20:09:31Z",
           "metadata": {"package_type": "npm"}}
        ]"#;
        let versions = manifest_versions(serde_json::from_slice(body).unwrap());
        assert_eq!(
            versions.len(),
            1,
            "a version named other than by digest is no manifest"
        );
        assert_eq!(versions[0].id, 786068);
        assert_eq!(versions[0].tags, ["latest", "v1"]);
        assert_eq!(versions[0].created, Some(1_302_466_171));
    }
}
