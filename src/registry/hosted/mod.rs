//! Registries that list and delete through an API of their own: which API
//! a repository is cleaned up through ([`RegistryApi`], from its host or as
//! asked), where each API lives ([`ApiEnvironment`]), and [`open`], the
//! [`ImageRegistry`] that `hoist prune` and `hoist delete` work through.
//! GHCR refuses the distribution API's DELETE (405) and deletes package
//! versions through the GitHub REST API; Docker Hub deletes tags through
//! Hub's API and then, untagged, the manifests through its registry; ECR
//! deletes through `BatchDeleteImage`. Manifests themselves are read over
//! the distribution API. Each provider's client names the reference it
//! follows; calls to an API are tried again on 5xx and rate limits as the
//! distribution transport's are ([`retry`]).

pub mod dockerhub;
pub mod github;
mod http;
mod retry;

pub use http::ApiError;

use super::retention::{Distribution, Ecr, ImageRegistry, RetentionError};
use super::{Access, GivenCredentials, Reference, RegistryClient};
use std::fmt;
use std::str::FromStr;

/// The API a repository's images are listed and deleted through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryApi {
    /// GitHub Packages' REST API (GHCR).
    GitHub,
    /// Docker Hub's API.
    DockerHub,
    /// Amazon ECR's API.
    Ecr,
    /// The OCI distribution API.
    Distribution,
}

impl RegistryApi {
    /// The API a registry host is cleaned up through.
    pub fn for_host(host: &str) -> RegistryApi {
        let name = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
        match name.as_str() {
            "ghcr.io" => RegistryApi::GitHub,
            "docker.io" | "registry-1.docker.io" | "index.docker.io" => RegistryApi::DockerHub,
            _ if is_ecr_host(&name) => RegistryApi::Ecr,
            _ => RegistryApi::Distribution,
        }
    }

    /// The name `--registry-api` takes.
    pub fn name(self) -> &'static str {
        match self {
            RegistryApi::GitHub => "github",
            RegistryApi::DockerHub => "dockerhub",
            RegistryApi::Ecr => "ecr",
            RegistryApi::Distribution => "distribution",
        }
    }

    /// Whether the API records when each image was pushed (else images
    /// are dated by their configs' `created`).
    pub fn knows_push_time(self) -> bool {
        !matches!(self, RegistryApi::Distribution)
    }
}

impl fmt::Display for RegistryApi {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            RegistryApi::GitHub => "the GitHub Packages API",
            RegistryApi::DockerHub => "Docker Hub's API",
            RegistryApi::Ecr => "the Amazon ECR API",
            RegistryApi::Distribution => "the OCI distribution API",
        })
    }
}

/// A name `--registry-api` does not know.
#[derive(Debug, thiserror::Error)]
#[error("{0}: the registry API is one of github, dockerhub, ecr, distribution")]
pub struct UnknownApi(String);

impl FromStr for RegistryApi {
    type Err = UnknownApi;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "github" => Ok(RegistryApi::GitHub),
            "dockerhub" => Ok(RegistryApi::DockerHub),
            "ecr" => Ok(RegistryApi::Ecr),
            "distribution" => Ok(RegistryApi::Distribution),
            _ => Err(UnknownApi(text.to_string())),
        }
    }
}

/// `<account>.dkr.ecr.<region>.amazonaws.com` (and `.amazonaws.com.cn`).
fn is_ecr_host(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    labels.len() >= 6
        && labels[1] == "dkr"
        && labels[2] == "ecr"
        && labels[4] == "amazonaws"
        && matches!(labels[5..], ["com"] | ["com", "cn"])
}

/// Where the providers' APIs live and the token GitHub's takes, read from
/// the environment once by the caller, so tests and GitHub Enterprise can
/// point them elsewhere.
#[derive(Clone)]
pub struct ApiEnvironment {
    /// `GITHUB_API_URL` (Actions and GitHub Enterprise set it).
    pub github_url: String,
    /// `HOIST_DOCKERHUB_API_URL`.
    pub dockerhub_url: String,
    /// `GITHUB_TOKEN`, for the GitHub API when `--creds` gives none.
    pub github_token: Option<String>,
}

impl Default for ApiEnvironment {
    fn default() -> Self {
        ApiEnvironment {
            github_url: "https://api.github.com".to_string(),
            dockerhub_url: "https://hub.docker.com".to_string(),
            github_token: None,
        }
    }
}

impl ApiEnvironment {
    /// From `GITHUB_API_URL`, `HOIST_DOCKERHUB_API_URL` and `GITHUB_TOKEN`;
    /// the public APIs where unset.
    pub fn from_process() -> Self {
        let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let defaults = ApiEnvironment::default();
        ApiEnvironment {
            github_url: variable("GITHUB_API_URL").unwrap_or(defaults.github_url),
            dockerhub_url: variable("HOIST_DOCKERHUB_API_URL").unwrap_or(defaults.dockerhub_url),
            github_token: variable("GITHUB_TOKEN"),
        }
    }
}

impl fmt::Debug for ApiEnvironment {
    // By hand, so the token never reaches a log.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ApiEnvironment")
            .field("github_url", &self.github_url)
            .field("dockerhub_url", &self.dockerhub_url)
            .field(
                "github_token",
                &self.github_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// In GitHub Actions (`GITHUB_ACTIONS=true`), the workflow's
/// `GITHUB_TOKEN` as the credentials for `ghcr.io` (user `GITHUB_ACTOR`),
/// when neither `--creds` (`given`) nor a stored login has one: what
/// `docker/login-action` would otherwise be needed for. `variable` reads
/// the environment; `stored` says whether a login for `ghcr.io` is stored.
pub fn actions_ghcr_credentials(
    variable: impl Fn(&str) -> Option<String>,
    given: &[GivenCredentials],
    stored: impl FnOnce() -> bool,
) -> Option<GivenCredentials> {
    if variable("GITHUB_ACTIONS").as_deref() != Some("true") {
        return None;
    }
    let token = variable("GITHUB_TOKEN").filter(|token| !token.is_empty())?;
    let named = given
        .iter()
        .any(|credentials| credentials.registry.as_deref() == Some(GHCR));
    if named || stored() {
        return None;
    }
    let actor = variable("GITHUB_ACTOR").unwrap_or_else(|| "github-actions".to_string());
    Some(GivenCredentials::for_registry(GHCR, &actor, &token))
}

/// GitHub's container registry.
pub const GHCR: &str = "ghcr.io";

/// Which API to use: `api` as asked (`--registry-api`), else the one the
/// registry's host implies.
#[derive(Clone, Debug, Default)]
pub struct ApiChoice {
    pub api: Option<RegistryApi>,
    pub environment: ApiEnvironment,
}

impl ApiChoice {
    /// The API for `reference`, and whether it was asked for.
    pub fn api_for(&self, reference: &Reference) -> (RegistryApi, bool) {
        match self.api {
            Some(api) => (api, true),
            None => (RegistryApi::for_host(&reference.registry), false),
        }
    }
}

/// A repository opened for listing and deleting through `api`.
pub fn open(
    client: &RegistryClient,
    reference: &Reference,
    api: RegistryApi,
    environment: &ApiEnvironment,
) -> Result<Box<dyn ImageRegistry>, RetentionError> {
    match api {
        RegistryApi::Distribution => Ok(Box::new(Distribution::new(
            client.repository(reference, Access::DELETE),
        ))),
        RegistryApi::GitHub => Ok(Box::new(github::GitHub::open(
            client,
            reference,
            environment,
        )?)),
        RegistryApi::DockerHub => Ok(Box::new(dockerhub::DockerHub::open(
            client,
            reference,
            environment,
        )?)),
        // Asked for by name, a host of another name is ECR too.
        RegistryApi::Ecr => Ok(Box::new(Ecr::connect(
            client.repository(reference, Access::DELETE),
            true,
        )?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_follows_the_host() {
        for (host, api) in [
            ("ghcr.io", RegistryApi::GitHub),
            ("GHCR.io", RegistryApi::GitHub),
            ("docker.io", RegistryApi::DockerHub),
            ("registry-1.docker.io", RegistryApi::DockerHub),
            ("index.docker.io", RegistryApi::DockerHub),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                RegistryApi::Ecr,
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                RegistryApi::Ecr,
            ),
            ("dkr.ecr.amazonaws.com.example", RegistryApi::Distribution),
            ("localhost:5000", RegistryApi::Distribution),
            ("quay.io", RegistryApi::Distribution),
        ] {
            assert_eq!(RegistryApi::for_host(host), api, "{host}");
        }
    }

    #[test]
    fn every_api_parses_from_its_name() {
        for api in [
            RegistryApi::GitHub,
            RegistryApi::DockerHub,
            RegistryApi::Ecr,
            RegistryApi::Distribution,
        ] {
            assert_eq!(api.name().parse::<RegistryApi>().unwrap(), api);
        }
        assert!("gitlab".parse::<RegistryApi>().is_err());
    }

    #[test]
    fn in_actions_the_workflow_token_logs_in_to_ghcr_unless_another_does() {
        let environment = |actions: &'static str| {
            move |name: &str| match name {
                "GITHUB_ACTIONS" => Some(actions.to_string()),
                "GITHUB_TOKEN" => Some("ghs_workflow".to_string()),
                "GITHUB_ACTOR" => Some("octocat".to_string()),
                _ => None,
            }
        };
        let used = actions_ghcr_credentials(environment("true"), &[], || false).unwrap();
        assert_eq!(used.registry.as_deref(), Some(GHCR));
        assert_eq!(
            (used.username.as_str(), used.password.as_str()),
            ("octocat", "ghs_workflow")
        );
        assert!(actions_ghcr_credentials(environment("false"), &[], || false).is_none());
        assert!(actions_ghcr_credentials(environment("true"), &[], || true).is_none());
        let given = [GivenCredentials::for_registry(GHCR, "bot", "pat")];
        assert!(actions_ghcr_credentials(environment("true"), &given, || false).is_none());
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let environment = ApiEnvironment {
            github_token: Some("ghp_secret".to_string()),
            ..ApiEnvironment::default()
        };
        assert!(!format!("{environment:?}").contains("ghp_secret"));
    }
}
