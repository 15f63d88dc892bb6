//! Retention: which of a repository's manifests a tag policy lets go, and
//! what is attached to a manifest that goes (referrers, the referrers
//! fallback index, cosign signatures, and what is attached to those in
//! turn). What `hoist prune` decides before it deletes anything, and what
//! `hoist delete` takes along with the manifest it names.
//!
//! The policy ([`policy`]) and the attachment walk ([`attachments`]) speak
//! to a registry only through [`ImageRegistry`], a few operations every
//! registry that hosts images offers in some form: the distribution API
//! ([`Distribution`], over a [`super::Repository`]) implements it here;
//! hosted registries whose deletes go through an API of their own (GHCR
//! deletes package versions by id, Docker Hub deletes tags and then the
//! untagged manifests, ECR deletes digests in batches, and all three
//! record push times) implement the
//! same trait, so the rules run unchanged over each and are unit-tested
//! over an in-memory registry.

pub mod attachments;
pub mod builds;
mod distribution;
mod ecr;
mod facts;
#[cfg(test)]
mod fake;
pub mod policy;

pub use attachments::{Attached, add_api_referrers, attachments_of};
pub use builds::{UntaggedImage, gather_untagged};
pub use distribution::Distribution;
pub use ecr::Ecr;
pub use facts::{KeptBecause, PrunePlan, PrunePolicy, TagFacts, gather};
pub use policy::plan;

use super::error::RegistryError;
use crate::oci::Digest;
use crate::source::SourceError;

/// The registry operations retention needs, for one repository. Every
/// manifest is named by its digest: a registry that deletes by another id
/// (GHCR's package versions) or in batches (ECR) maps digests to its own
/// calls behind this trait. Calls may come from several threads at once
/// (up to [`ImageRegistry::requests_at_once`]).
pub trait ImageRegistry: Sync {
    /// `registry/repository`, for messages.
    fn name(&self) -> String;

    /// How many of these calls may be in flight at once.
    fn requests_at_once(&self) -> usize;

    /// Every tag of the repository.
    fn tags(&self) -> Result<Vec<String>, RetentionError>;

    /// The manifest `tag` points at now; `None` when the tag is gone. A
    /// digest (`sha256:…`) names itself: `None` when the registry lacks it.
    fn tag_digest(&self, tag: &str) -> Result<Option<Digest>, RetentionError>;

    /// The manifests the one with `digest` lists (an index's platforms and
    /// attestations); none for an image or an artifact.
    fn children(&self, digest: &Digest) -> Result<Vec<Digest>, RetentionError>;

    /// When the image `digest` came to be, in Unix seconds, with what it
    /// lists: the registry's push or creation time where it records one
    /// (GHCR, Docker Hub, ECR), else the newest `created` of its images'
    /// configs; `None` when nothing says.
    fn dated(&self, digest: &Digest) -> Result<Dated, RetentionError>;

    /// What the registry's referrers API lists for `subject`; `None` when
    /// it has no such API (its referrers are then under tags).
    fn api_referrers(&self, subject: &Digest) -> Result<Option<Vec<Digest>>, RetentionError>;

    /// Deletes the manifest `digest`, which the registry holds, and every
    /// tag on it; missing or refused is an error.
    fn delete_manifest(&self, digest: &Digest) -> Result<(), RetentionError>;

    /// Deletes the manifest `digest` if the registry still has it; false
    /// when it has not (a registry may delete referrers with their subject).
    fn delete_manifest_if_present(&self, digest: &Digest) -> Result<bool, RetentionError>;

    /// Every manifest no tag is on, with its push time, where the API can
    /// list them (GHCR's package versions); `None` where it cannot (the
    /// distribution API lists tags only).
    fn untagged(&self) -> Result<Option<Vec<Pushed>>, RetentionError> {
        Ok(None)
    }

    /// Removes `tag` alone, leaving its manifest (as Docker Hub's API does);
    /// a registry that cannot says so with [`RetentionError::Unsupported`].
    fn delete_tag(&self, tag: &str) -> Result<(), RetentionError>;
}

/// A manifest and when the registry says it was pushed (Unix seconds).
pub type Pushed = (Digest, Option<i64>);

/// When an image came to be, and what it lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dated {
    /// Unix seconds; `None` when neither the registry nor a config says.
    pub time: Option<i64>,
    pub children: Vec<Digest>,
}

/// Reading what retention needs, or deleting, failed.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Reading an image to learn when it was created.
    #[error(transparent)]
    Read(#[from] SourceError),
    /// A provider's own API (GitHub's, Docker Hub's); boxed so retention,
    /// which the provider clients implement, does not depend on them.
    #[error(transparent)]
    Api(Box<dyn std::error::Error + Send + Sync>),
    #[error("{registry}: {operation} is not something this registry's API can do")]
    Unsupported {
        registry: String,
        operation: &'static str,
    },
}
