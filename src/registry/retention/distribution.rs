//! [`ImageRegistry`] over the OCI distribution API: a [`Repository`]
//! opened for deleting. Tags are listed and resolved with HEAD, what a
//! manifest lists with one GET, times from the images' configs (the API
//! records no push time), referrers from the referrers API, and manifests
//! deleted by digest (which takes every tag on them along). The API cannot
//! remove a tag alone.

use super::{Dated, ImageRegistry, RetentionError};
use crate::image::Manifest;
use crate::oci::Digest;
use crate::registry::repository::Repository;
use crate::registry::source::RegistrySource;
use crate::source::Source;

/// A distribution registry's repository, for retention.
#[derive(Clone, Debug)]
pub struct Distribution {
    repository: Repository,
}

impl Distribution {
    /// `repository` should be opened with [`crate::registry::Access::DELETE`]
    /// for the deletes; reading works with any access.
    pub fn new(repository: Repository) -> Self {
        Distribution { repository }
    }

    pub fn repository(&self) -> &Repository {
        &self.repository
    }
}

impl ImageRegistry for Distribution {
    fn name(&self) -> String {
        self.repository.name()
    }

    fn requests_at_once(&self) -> usize {
        self.repository.client().options().jobs
    }

    fn tags(&self) -> Result<Vec<String>, RetentionError> {
        Ok(self.repository.tags()?)
    }

    fn tag_digest(&self, tag: &str) -> Result<Option<Digest>, RetentionError> {
        Ok(self.repository.manifest_digest(tag)?)
    }

    fn children(&self, digest: &Digest) -> Result<Vec<Digest>, RetentionError> {
        let fetched = self.repository.get_manifest(digest.as_ref())?;
        #[derive(serde::Deserialize)]
        struct Listing {
            #[serde(default)]
            manifests: Vec<Listed>,
        }
        #[derive(serde::Deserialize)]
        struct Listed {
            digest: String,
        }
        // Anything else is not a list of manifests: nothing to keep for it.
        let listing: Listing = serde_json::from_slice(&fetched.bytes).unwrap_or(Listing {
            manifests: Vec::new(),
        });
        Ok(listing
            .manifests
            .iter()
            .filter_map(|listed| crate::oci::digest::parse_sha256(&listed.digest).ok())
            .collect())
    }

    /// The newest `created` among the images `digest` names: the
    /// distribution API keeps no push time.
    fn dated(&self, digest: &Digest) -> Result<Dated, RetentionError> {
        let pinned = self.repository.with_digest(digest);
        let manifest = RegistrySource::new(self.repository.client().clone(), pinned).resolve()?;
        let children = match &manifest {
            Manifest::Index(index) => index
                .children
                .iter()
                .map(|child| child.digest().clone())
                .collect(),
            Manifest::Image(_) => Vec::new(),
        };
        let time = manifest
            .images()
            .iter()
            .filter_map(|image| {
                let config: serde_json::Value =
                    serde_json::from_slice(image.config.bytes()).ok()?;
                let text = config.get("created")?.as_str()?;
                chrono::DateTime::parse_from_rfc3339(text)
                    .ok()
                    .map(|time| time.timestamp())
            })
            .max();
        Ok(Dated { time, children })
    }

    fn api_referrers(&self, subject: &Digest) -> Result<Option<Vec<Digest>>, RetentionError> {
        let listed = self.repository.referrers_api(subject)?;
        Ok(listed.map(|descriptors| {
            descriptors
                .iter()
                .map(|descriptor| descriptor.digest().clone())
                .collect()
        }))
    }

    fn delete_manifest(&self, digest: &Digest) -> Result<(), RetentionError> {
        self.repository.delete_manifest(digest.as_ref())?;
        Ok(())
    }

    fn delete_manifest_if_present(&self, digest: &Digest) -> Result<bool, RetentionError> {
        Ok(self.repository.delete_manifest_if_present(digest)?)
    }

    fn delete_tag(&self, _tag: &str) -> Result<(), RetentionError> {
        Err(RetentionError::Unsupported {
            registry: self.name(),
            operation: "deleting a tag without its manifest",
        })
    }
}
