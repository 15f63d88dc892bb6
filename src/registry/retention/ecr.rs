//! [`ImageRegistry`] over Amazon ECR's own API: the distribution API on ECR
//! refuses DELETE, so images are listed with `DescribeImages` (tags, digest
//! and push time of every image, untagged ones included, in one paged
//! listing read once) and deleted with `BatchDeleteImage`; what a manifest
//! lists and its referrers are read through the distribution API, which
//! ECR serves for reads.

use super::{Dated, Distribution, ImageRegistry, Pushed, RetentionError};
use crate::oci::Digest;
use crate::oci::digest::parse_sha256;
use crate::registry::aws::ecr::{DeleteFailure, ImageId};
use crate::registry::aws::{AwsError, EcrApi, EcrImage};
use crate::registry::error::RegistryError;
use crate::registry::repository::Repository;
use std::sync::Mutex;

/// An ECR repository, for retention.
pub struct Ecr {
    /// Reads (manifests, referrers) through the distribution API.
    distribution: Distribution,
    api: EcrApi,
    /// `DescribeImages`, read on first use and kept up to date with what
    /// this handle deletes (the policy asks after its own deletes which
    /// images stay).
    images: Mutex<Option<Vec<EcrImage>>>,
}

impl Ecr {
    /// The ECR API for `repository`'s registry, with credentials from the
    /// AWS chain; fails when the host is not ECR (by its name, unless
    /// `forced`) or no credentials are found.
    pub fn connect(repository: Repository, forced: bool) -> Result<Ecr, RetentionError> {
        let transport = repository.transport();
        let host = repository.host().to_string();
        let registry = transport.ecr_registry_as(&host, forced)?.ok_or_else(|| {
            RetentionError::Unsupported {
                registry: repository.name(),
                operation: "the ECR API (the host is not an ECR registry)",
            }
        })?;
        let api = repository
            .block_on(EcrApi::connect(
                &transport.http,
                &transport.options.aws,
                &host,
                &registry,
            ))
            .map_err(RegistryError::from)?;
        Ok(Ecr {
            distribution: Distribution::new(repository),
            api,
            images: Mutex::new(None),
        })
    }

    fn repository(&self) -> &Repository {
        self.distribution.repository()
    }

    /// Every image of the repository, as `DescribeImages` listed it less
    /// what was deleted since.
    pub fn images(&self) -> Result<Vec<EcrImage>, RetentionError> {
        if let Some(images) = self.lock_images().as_ref() {
            return Ok(images.clone());
        }
        let path = self.repository().path().to_string();
        let listed = self
            .repository()
            .block_on(self.api.describe_images(&path))
            .map_err(RegistryError::from)?;
        Ok(self.lock_images().get_or_insert(listed).clone())
    }

    fn lock_images(&self) -> std::sync::MutexGuard<'_, Option<Vec<EcrImage>>> {
        self.images
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Records in the listing that the image `digest` is gone.
    fn forget_image(&self, digest: &Digest) {
        let digest = digest.to_string();
        if let Some(images) = self.lock_images().as_mut() {
            images.retain(|image| image.digest != digest);
        }
    }

    /// Records in the listing that `tag` is gone, and its image with it
    /// when it was the image's last tag (as ECR does).
    fn forget_tag(&self, tag: &str) {
        if let Some(images) = self.lock_images().as_mut() {
            images.retain_mut(|image| {
                let had = image.tags.len();
                image.tags.retain(|listed| listed != tag);
                !(had > 0 && image.tags.is_empty())
            });
        }
    }

    /// `BatchDeleteImage` of `ids`; the failures ECR reports.
    fn delete(&self, ids: &[ImageId]) -> Result<Vec<DeleteFailure>, RetentionError> {
        let path = self.repository().path().to_string();
        Ok(self
            .repository()
            .block_on(self.api.batch_delete_image(&path, ids))
            .map_err(RegistryError::from)?)
    }

    fn failed(&self, failure: DeleteFailure) -> RetentionError {
        RetentionError::Registry(RegistryError::from(AwsError::DeleteFailed {
            registry: self.name(),
            image: failure.image,
            code: failure.code,
            reason: failure.reason,
        }))
    }
}

impl ImageRegistry for Ecr {
    fn name(&self) -> String {
        self.distribution.name()
    }

    fn requests_at_once(&self) -> usize {
        // ECR's API is rate-limited per account and region (DescribeImages
        // and BatchDeleteImage at a few to tens of calls a second).
        self.distribution.requests_at_once().min(4)
    }

    fn tags(&self) -> Result<Vec<String>, RetentionError> {
        let mut tags: Vec<String> = self
            .images()?
            .iter()
            .flat_map(|image| image.tags.iter().cloned())
            .collect();
        tags.sort();
        Ok(tags)
    }

    fn tag_digest(&self, tag: &str) -> Result<Option<Digest>, RetentionError> {
        // A digest names itself, when ECR lists it.
        let named = |image: &&EcrImage| {
            image.digest == tag || image.tags.iter().any(|listed| listed == tag)
        };
        Ok(self
            .images()?
            .iter()
            .find(named)
            .and_then(|image| parse_sha256(&image.digest).ok()))
    }

    /// DescribeImages lists untagged images with their push times.
    fn untagged(&self) -> Result<Option<Vec<Pushed>>, RetentionError> {
        Ok(Some(
            self.images()?
                .iter()
                .filter(|image| image.tags.is_empty())
                .filter_map(|image| Some((parse_sha256(&image.digest).ok()?, image.pushed_at)))
                .collect(),
        ))
    }

    fn children(&self, digest: &Digest) -> Result<Vec<Digest>, RetentionError> {
        self.distribution.children(digest)
    }

    /// ECR's push time when it lists the image, else the configs' `created`.
    fn dated(&self, digest: &Digest) -> Result<Dated, RetentionError> {
        let pushed = self
            .images()?
            .iter()
            .find(|image| image.digest == digest.to_string())
            .and_then(|image| image.pushed_at);
        match pushed {
            Some(time) => Ok(Dated {
                time: Some(time),
                children: self.children(digest)?,
            }),
            None => self.distribution.dated(digest),
        }
    }

    fn api_referrers(&self, subject: &Digest) -> Result<Option<Vec<Digest>>, RetentionError> {
        self.distribution.api_referrers(subject)
    }

    fn delete_manifest(&self, digest: &Digest) -> Result<(), RetentionError> {
        let failures = self.delete(&[ImageId::Digest(digest.to_string())])?;
        match failures.into_iter().next() {
            Some(failure) => Err(self.failed(failure)),
            None => {
                self.forget_image(digest);
                Ok(())
            }
        }
    }

    fn delete_manifest_if_present(&self, digest: &Digest) -> Result<bool, RetentionError> {
        let failures = self.delete(&[ImageId::Digest(digest.to_string())])?;
        match failures.into_iter().next() {
            None => {
                self.forget_image(digest);
                Ok(true)
            }
            Some(failure) if failure.code == "ImageNotFound" => {
                self.forget_image(digest);
                Ok(false)
            }
            Some(failure) => Err(self.failed(failure)),
        }
    }

    /// ECR removes a tag alone; the image goes with its last tag.
    fn delete_tag(&self, tag: &str) -> Result<(), RetentionError> {
        let failures = self.delete(&[ImageId::Tag(tag.to_string())])?;
        match failures.into_iter().next() {
            Some(failure) => Err(self.failed(failure)),
            None => {
                self.forget_tag(tag);
                Ok(())
            }
        }
    }
}
