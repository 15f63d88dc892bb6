//! The OCI distribution API client: where `docker://` outputs go and base
//! images come from. A thin async core on reqwest and rustls (auth, retries,
//! streaming uploads, cross-repository mounts, registry quirks) behind
//! synchronous faces: [`RegistrySink`] for the publish driver and
//! [`RegistrySource`] for reading images back. Only this module speaks HTTP.

pub mod aws;
mod capped;
mod client;
pub mod credentials;
mod error;
pub mod hosted;
pub mod layer_cache;
mod options;
mod pages;
mod reference;
mod repository;
pub mod retention;
mod sink;
mod source;
mod stream;
mod transport;

pub use client::RegistryClient;
pub use credentials::{Credential, CredentialEnvironment};
pub use error::{Answer, RegistryError};
pub use options::{ClientOptions, GivenCredentials, MINIMUM_CHUNK, RetryPolicy};
pub use reference::{DOCKER_HUB, DOCKER_HUB_API_HOST, Reference, ReferenceError, api_host};
pub use repository::manifests::FetchedManifest;
pub use repository::{
    Access, Repository, get_manifest_digest, referrers, require_manifest_digest, tags,
};
pub use sink::RegistrySink;
pub use source::{RegistryBlob, RegistrySource};
pub use stream::StreamPiece;
