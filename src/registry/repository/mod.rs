//! One repository of one registry, bound once: its host, its name and what
//! the caller will do there (pull, push, delete), as go-containerregistry's
//! `remote.writer` binds them. Every distribution call of hoist goes
//! through a [`Repository`], so the host, the repository name and the token
//! scopes are decided here, not at each call. The calls themselves are in
//! its child modules [`blobs`], [`manifests`], [`tags`], [`referrers`] and
//! [`upload`], which see only the transport below them; the sink, the
//! source and the stream above hold a handle.

pub(super) mod blobs;
pub(super) mod manifests;
pub mod referrers;
pub mod tags;
pub(super) mod upload;

use self::manifests::FetchedManifest;
use super::client::RegistryClient;
use super::error::RegistryError;
use super::reference::Reference;
use super::transport::{Call, Context, Scopes, Transport};
use crate::image::publish::BlobOutcome;
use crate::image::{Blob, BytesBlob};
use crate::oci::Digest;
use crate::oci::digest::parse_sha256;
use std::fmt;
use std::ops::BitOr;

/// What a [`Repository`] may do: pulling always, pushing and deleting
/// when asked for. `Access::PUSH | Access::DELETE` combines them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    push: bool,
    delete: bool,
}

impl Access {
    /// Reads only.
    pub const PULL: Access = Access {
        push: false,
        delete: false,
    };
    /// Reads and writes: blobs, manifests, tags.
    pub const PUSH: Access = Access {
        push: true,
        delete: false,
    };
    /// Reads and deletes of manifests.
    pub const DELETE: Access = Access {
        push: false,
        delete: true,
    };

    /// True when everything `other` allows, this allows too.
    pub fn contains(self, other: Access) -> bool {
        (self.push || !other.push) && (self.delete || !other.delete)
    }
}

impl BitOr for Access {
    type Output = Access;

    fn bitor(self, other: Access) -> Access {
        Access {
            push: self.push || other.push,
            delete: self.delete || other.delete,
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("pull")?;
        if self.push {
            formatter.write_str(", push")?;
        }
        if self.delete {
            formatter.write_str(", delete")?;
        }
        Ok(())
    }
}

/// A repository of a registry, bound to a client and to what it may do
/// there; cheap to clone, safe to share between threads.
#[derive(Clone, Debug)]
pub struct Repository {
    client: RegistryClient,
    /// The repository, without tag or digest.
    reference: Reference,
    access: Access,
}

impl RegistryClient {
    /// The repository `reference` names (its tag or digest is dropped),
    /// bound to this client and to `access`.
    pub fn repository(&self, reference: &Reference, access: Access) -> Repository {
        Repository {
            client: self.clone(),
            reference: Reference {
                tag: None,
                digest: None,
                ..reference.clone()
            },
            access,
        }
    }
}

impl Repository {
    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// The repository, without tag or digest.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    pub fn access(&self) -> Access {
        self.access
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        self.reference.repository_name()
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.client.transport
    }

    /// The registry's API host (`host:port`).
    pub(crate) fn host(&self) -> &str {
        self.reference.api_host()
    }

    /// The repository's path in API URLs (`owner/app`).
    pub(crate) fn path(&self) -> &str {
        &self.reference.repository
    }

    /// `<base>/v2/<repository>`, the prefix of every URL of this repository.
    pub(crate) async fn api_url(&self) -> Result<String, RegistryError> {
        let base = self.transport().base_url(self.host()).await?;
        Ok(format!("{base}/v2/{}", self.path()))
    }

    /// The token scopes for reading: a handle that pushes reads with its
    /// push token, so a push asks the token service once.
    pub(crate) fn read_scopes(&self) -> Scopes {
        match self.access.push {
            true => Scopes::push(self.path()),
            false => Scopes::pull(self.path()),
        }
    }

    /// The scopes for writing; an error when the handle may not push.
    pub(crate) fn push_scopes(&self, context: &Context) -> Result<Scopes, RegistryError> {
        self.require(Access::PUSH, context)?;
        Ok(Scopes::push(self.path()))
    }

    /// The scopes for mounting a blob from the repository `source` of the
    /// same registry: push here and pull there.
    pub(crate) fn mount_scopes(
        &self,
        source: &str,
        context: &Context,
    ) -> Result<Scopes, RegistryError> {
        self.require(Access::PUSH, context)?;
        Ok(Scopes::mount(self.path(), source))
    }

    /// The scopes for deleting: distribution's token scheme has an action
    /// of its own for it, which a push token does not include.
    pub(crate) fn delete_scopes(&self, context: &Context) -> Result<Scopes, RegistryError> {
        self.require(Access::DELETE, context)?;
        Ok(Scopes::delete(self.path()))
    }

    /// A call of this repository with `scopes`, doing `context`.
    pub(crate) fn call<'a>(&'a self, scopes: &'a Scopes, context: &'a Context) -> Call<'a> {
        Call::new(self.host(), scopes, context)
    }

    fn require(&self, needed: Access, context: &Context) -> Result<(), RegistryError> {
        if self.access.contains(needed) {
            return Ok(());
        }
        Err(RegistryError::NotOpenedFor {
            operation: context.operation.clone(),
            target: context.target.clone(),
            access: self.access.to_string(),
        })
    }

    /// This repository at `target`, a tag or a digest, for messages.
    pub(crate) fn at(&self, target: &str) -> Result<Reference, RegistryError> {
        if !target.starts_with("sha256:") {
            return Ok(self.reference.with_tag(target));
        }
        let digest = parse_sha256(target).map_err(|error| RegistryError::Protocol {
            operation: "naming manifest".to_string(),
            target: self.name(),
            detail: error.to_string(),
        })?;
        Ok(self.reference.with_digest(digest))
    }

    /// This repository pinned to `digest`.
    pub fn with_digest(&self, digest: &Digest) -> Reference {
        self.reference.with_digest(digest.clone())
    }

    /// True when the repository has the blob `digest` (HEAD).
    pub fn blob_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        self.block_on(blobs::blob_exists(self, digest))
    }

    /// Pushes `blob`: mounted when it came from another repository of the
    /// same registry, else uploaded (see [`super::upload`]).
    pub fn push_blob(&self, blob: &dyn Blob) -> Result<BlobOutcome, RegistryError> {
        upload::push_blob(self, blob)
    }

    /// What `target` (a tag or digest) points at now, by `HEAD`; `None`
    /// when the registry does not have it.
    pub fn manifest_digest(&self, target: &str) -> Result<Option<Digest>, RegistryError> {
        self.block_on(manifests::head_manifest(self, target))
    }

    /// What `target` points at now, by `HEAD`; missing is an error naming it.
    pub fn require_manifest_digest(&self, target: &str) -> Result<Digest, RegistryError> {
        self.block_on(manifests::require_manifest(self, target))
    }

    /// True when the repository has the manifest `digest` (HEAD).
    pub fn has_manifest(&self, digest: &Digest) -> Result<bool, RegistryError> {
        self.block_on(manifests::has_manifest(self, digest))
    }

    /// The manifest `target` (a tag or digest) names, verified against
    /// its digest.
    pub fn get_manifest(&self, target: &str) -> Result<FetchedManifest, RegistryError> {
        self.block_on(manifests::get_manifest(self, target))
    }

    /// Stores `manifest` under `target`: a tag, or its own digest.
    pub fn put_manifest(&self, manifest: &BytesBlob, target: &str) -> Result<(), RegistryError> {
        self.block_on(manifests::put_manifest(self, manifest, target))
    }

    /// Runs `future` to completion on the client's runtime.
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.client.block_on(future)
    }
}

/// What `reference`'s tag (or digest) points at now, by `HEAD`; `None` when
/// the registry does not have it.
pub fn get_manifest_digest(
    client: &RegistryClient,
    reference: &Reference,
) -> Result<Option<Digest>, RegistryError> {
    client
        .repository(reference, Access::PULL)
        .manifest_digest(&reference.manifest_reference())
}

/// What `reference` points at now, by `HEAD`; missing is an error naming it.
pub fn require_manifest_digest(
    client: &RegistryClient,
    reference: &Reference,
) -> Result<Digest, RegistryError> {
    client
        .repository(reference, Access::PULL)
        .require_manifest_digest(&reference.manifest_reference())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_combines_and_contains() {
        let both = Access::PUSH | Access::DELETE;
        assert!(both.contains(Access::PUSH) && both.contains(Access::DELETE));
        assert!(both.contains(Access::PULL));
        assert!(!Access::PUSH.contains(Access::DELETE));
        assert!(!Access::PULL.contains(Access::PUSH));
        assert_eq!(both.to_string(), "pull, push, delete");
    }

    #[test]
    fn a_pull_handle_refuses_to_push_or_delete() {
        let client = RegistryClient::new(crate::registry::options::ClientOptions {
            credential_environment: Default::default(),
            ..Default::default()
        })
        .unwrap();
        let reference: Reference = "ghcr.io/acme/app:1".parse().unwrap();
        let repository = client.repository(&reference, Access::PULL);
        assert_eq!(repository.reference().to_string(), "ghcr.io/acme/app");
        let context = Context::new("pushing manifest", "ghcr.io/acme/app:1");
        let error = repository.push_scopes(&context).unwrap_err();
        assert!(error.to_string().contains("pull only"), "{error}");
        assert!(repository.delete_scopes(&context).is_err());
        assert_eq!(repository.read_scopes(), Scopes::pull("acme/app"));
        let pushing = client.repository(&reference, Access::PUSH);
        assert_eq!(pushing.read_scopes(), Scopes::push("acme/app"));
        assert!(pushing.push_scopes(&context).is_ok());
    }
}
