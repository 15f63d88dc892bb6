//! `hoist login` and `hoist logout` as operations: credentials checked
//! against the registry, then stored where docker and podman keep them, and
//! removed from there.

use crate::progress::{Event, Observer};
use crate::registry::credentials::{self, Credential, CredentialsError};
use crate::registry::{ClientOptions, RegistryClient, RegistryError};
use std::path::PathBuf;

/// Log in to `registry` as `username`.
pub struct LoginRequest {
    /// `ghcr.io`, `docker.io`, `localhost:5000`.
    pub registry: String,
    pub username: String,
    pub password: zeroize::Zeroizing<String>,
    /// How to reach the registry (TLS, insecure registries).
    pub client: ClientOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the password for {registry} is empty")]
    EmptyPassword { registry: String },
    #[error("setting up the registry client")]
    Client(#[source] Box<RegistryError>),
    #[error("logging in to {registry}")]
    Login {
        registry: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error(
        "{registry} is not an ECR registry: give --username and a password, \
         or --registry-api ecr for an ECR registry under another name"
    )]
    NotEcr { registry: String },
    #[error("logging out of {registry}")]
    Logout {
        registry: String,
        #[source]
        source: CredentialsError,
    },
}

/// Log in to the ECR registry `registry` with the password
/// `GetAuthorizationToken` gives for the AWS credentials at hand.
pub struct AwsLoginRequest {
    /// `123456789012.dkr.ecr.us-east-1.amazonaws.com`, or a host the
    /// client's options name as ECR.
    pub registry: String,
    pub client: ClientOptions,
}

/// Asks ECR for a registry password with the AWS credential chain, checks
/// it with the registry and stores it as `docker login` would (it lasts 12
/// hours); reports [`Event::LoggedIn`] and returns the file it is in.
pub fn login_with_aws(
    request: &AwsLoginRequest,
    observer: &dyn Observer,
) -> Result<PathBuf, LoginError> {
    let registry = &request.registry;
    let client = RegistryClient::new(request.client.clone())
        .map_err(|error| LoginError::Client(Box::new(error)))?;
    let login_failed = |source: RegistryError| LoginError::Login {
        registry: registry.clone(),
        source: Box::new(source),
    };
    let Some(Credential::UsernamePassword { username, password }) =
        client.ecr_login(registry).map_err(login_failed)?
    else {
        return Err(LoginError::NotEcr {
            registry: registry.clone(),
        });
    };
    let password = zeroize::Zeroizing::new(password);
    client
        .check_login(registry, &username, &password)
        .map_err(login_failed)?;
    let environment = &client.options().credential_environment;
    let path = credentials::store_in(environment, registry, &username, &password)
        .map_err(|source| login_failed(source.into()))?;
    observer.event(Event::LoggedIn {
        registry: registry.clone(),
        path: path.display().to_string(),
    });
    Ok(path)
}

/// Checks the credentials with the registry and stores them; reports
/// [`Event::LoggedIn`] and returns the file they are in.
pub fn login(request: &LoginRequest, observer: &dyn Observer) -> Result<PathBuf, LoginError> {
    let registry = &request.registry;
    if request.password.is_empty() {
        return Err(LoginError::EmptyPassword {
            registry: registry.clone(),
        });
    }
    let client = RegistryClient::new(request.client.clone())
        .map_err(|error| LoginError::Client(Box::new(error)))?;
    let login_failed = |source: RegistryError| LoginError::Login {
        registry: registry.clone(),
        source: Box::new(source),
    };
    client
        .check_login(registry, &request.username, &request.password)
        .map_err(login_failed)?;
    let environment = &client.options().credential_environment;
    let path = credentials::store_in(environment, registry, &request.username, &request.password)
        .map_err(|source| login_failed(source.into()))?;
    observer.event(Event::LoggedIn {
        registry: registry.clone(),
        path: path.display().to_string(),
    });
    Ok(path)
}

/// Removes the stored credentials for `registry`; reports
/// [`Event::LoggedOut`], and returns whether there were any.
pub fn logout(registry: &str, observer: &dyn Observer) -> Result<bool, LoginError> {
    let removed = credentials::logout(registry).map_err(|source| LoginError::Logout {
        registry: registry.to_string(),
        source,
    })?;
    observer.event(Event::LoggedOut {
        registry: registry.to_string(),
        removed,
    });
    Ok(removed)
}
