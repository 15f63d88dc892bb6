//! A registry as a [`Sink`]: what `publish` writes to for `docker://` outputs.
//! Blobs are checked with HEAD, mounted or uploaded; child manifests go by
//! digest, the top one by each tag (or by digest when untagged).

use super::client::RegistryClient;
use super::reference::Reference;
use super::repository::{Access, Repository};
use crate::image::publish::{BlobOutcome, ManifestRole, Sink, SinkError};
use crate::image::{Blob, BytesBlob};
use oci_spec::image::Descriptor;

/// Publishes into one repository of a registry.
#[derive(Clone, Debug)]
pub struct RegistrySink {
    repository: Repository,
    /// As given, for [`RegistrySink::reference`].
    reference: Reference,
}

impl RegistrySink {
    /// The tag or digest in `reference` is ignored: `publish` passes the tags.
    pub fn new(client: RegistryClient, reference: Reference) -> Self {
        RegistrySink {
            repository: client.repository(&reference, Access::PUSH),
            reference,
        }
    }

    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    pub fn client(&self) -> &RegistryClient {
        self.repository.client()
    }

    /// The repository it publishes into, bound for pushing.
    pub fn repository(&self) -> &Repository {
        &self.repository
    }
}

impl Sink for RegistrySink {
    fn describe(&self) -> String {
        format!("docker://{}", self.reference.repository_name())
    }

    fn has_blob(&self, descriptor: &Descriptor) -> Result<bool, SinkError> {
        self.repository
            .blob_exists(descriptor.digest())
            .map_err(|error| {
                SinkError::new(self.describe(), "checking blob", descriptor.digest(), error)
            })
    }

    fn put_blob(&self, blob: &dyn Blob) -> Result<BlobOutcome, SinkError> {
        self.repository
            .push_blob(blob)
            .map_err(|error| SinkError::new(self.describe(), "pushing blob", blob.digest(), error))
    }

    fn has_manifest(&self, descriptor: &Descriptor) -> Result<bool, SinkError> {
        self.repository
            .has_manifest(descriptor.digest())
            .map_err(|error| {
                SinkError::new(
                    self.describe(),
                    "checking manifest",
                    descriptor.digest(),
                    error,
                )
            })
    }

    fn put_manifest(&self, manifest: &BytesBlob, role: ManifestRole<'_>) -> Result<(), SinkError> {
        let target = match role {
            ManifestRole::Top { tag: Some(tag) } => tag.to_string(),
            ManifestRole::Child | ManifestRole::Top { tag: None } => manifest.digest().to_string(),
        };
        self.repository
            .put_manifest(manifest, &target)
            .map_err(|error| SinkError::new(self.describe(), "pushing manifest", target, error))
    }

    fn finish(&self) -> Result<(), SinkError> {
        // Every manifest is live once its PUT succeeds; nothing to commit.
        Ok(())
    }

    /// As many as the client lets through at once (`--jobs`, at least 4):
    /// transfers wait on round trips, not on the cores.
    fn transfers(&self) -> usize {
        self.client().options().jobs
    }

    /// Each tag is its own PUT; the registry keeps no order among them.
    fn tags_at_once(&self) -> bool {
        true
    }
}
