//! The OCI distribution API client: where `docker://` outputs go and base
//! images come from. A thin async core on reqwest and rustls (auth, retries,
//! streaming uploads, cross-repository mounts, registry quirks) behind
//! synchronous faces: [`RegistrySink`] for the publish driver and
//! [`RegistrySource`] for reading images back. Only this module speaks HTTP.

pub mod aws;
mod blobs;
mod client;
pub mod credentials;
mod error;
pub mod hosted;
mod manifests;
mod pages;
mod reference;
pub mod referrers;
mod repository;
pub mod retention;
mod sink;
mod source;
mod stream;
pub mod tags;
mod transport;
mod upload;

pub use client::{
    ClientOptions, GivenCredentials, MINIMUM_CHUNK, RegistryClient, RetryPolicy,
    get_manifest_digest, require_manifest_digest,
};
pub use credentials::{Credential, CredentialEnvironment};
pub use error::{Answer, RegistryError};
pub use manifests::FetchedManifest;
pub use reference::{DOCKER_HUB, DOCKER_HUB_API_HOST, Reference, ReferenceError, api_host};
pub use repository::{Access, Repository};
pub use sink::RegistrySink;
pub use source::{RegistryBlob, RegistrySource};
pub use stream::StreamPiece;
