//! [`ImageRegistry`] over Amazon ECR's own API: the distribution API on ECR
//! refuses DELETE, so images are listed with `DescribeImages` (tags, digest
//! and push time of every image, untagged ones included, in one paged
//! listing read once) and deleted with `BatchDeleteImage`; what a manifest
//! lists and its referrers are read through the distribution API, which
//! ECR serves for reads.

use super::{Dated, Distribution, ImageRegistry, RetentionError};
use crate::oci::Digest;
use crate::oci::digest::parse_sha256;
use crate::registry::aws::ecr::{DeleteFailure, ImageId};
use crate::registry::aws::{AwsError, EcrApi, EcrImage};
use crate::registry::error::RegistryError;
use crate::registry::repository::Repository;
use std::sync::OnceLock;

/// An ECR repository, for retention.
pub struct Ecr {
    /// Reads (manifests, referrers) through the distribution API.
    distribution: Distribution,
    api: EcrApi,
    /// `DescribeImages`, read on first use.
    images: OnceLock<Vec<EcrImage>>,
}

impl Ecr {
    /// The ECR API for `repository`'s registry, with credentials from the
    /// AWS chain; fails when the host is not ECR or no credentials are found.
    pub fn connect(repository: Repository) -> Result<Ecr, RetentionError> {
        let transport = repository.transport();
        let host = repository.host().to_string();
        let registry =
            transport
                .ecr_registry(&host)?
                .ok_or_else(|| RetentionError::Unsupported {
                    registry: repository.name(),
                    operation: "the ECR API (the host is not an ECR registry)",
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
            images: OnceLock::new(),
        })
    }

    fn repository(&self) -> &Repository {
        self.distribution.repository()
    }

    /// Every image of the repository, as `DescribeImages` listed it.
    pub fn images(&self) -> Result<&[EcrImage], RetentionError> {
        if let Some(images) = self.images.get() {
            return Ok(images);
        }
        let path = self.repository().path().to_string();
        let listed = self
            .repository()
            .block_on(self.api.describe_images(&path))
            .map_err(RegistryError::from)?;
        Ok(self.images.get_or_init(|| listed))
    }

    /// The digests of the repository's images that carry no tag.
    pub fn untagged(&self) -> Result<Vec<Digest>, RetentionError> {
        Ok(self
            .images()?
            .iter()
            .filter(|image| image.tags.is_empty())
            .filter_map(|image| parse_sha256(&image.digest).ok())
            .collect())
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
        Ok(self
            .images()?
            .iter()
            .find(|image| image.tags.iter().any(|listed| listed == tag))
            .and_then(|image| parse_sha256(&image.digest).ok()))
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
            None => Ok(()),
        }
    }

    fn delete_manifest_if_present(&self, digest: &Digest) -> Result<bool, RetentionError> {
        let failures = self.delete(&[ImageId::Digest(digest.to_string())])?;
        match failures.into_iter().next() {
            None => Ok(true),
            Some(failure) if failure.code == "ImageNotFound" => Ok(false),
            Some(failure) => Err(self.failed(failure)),
        }
    }

    /// ECR removes a tag alone; the image goes with its last tag.
    fn delete_tag(&self, tag: &str) -> Result<(), RetentionError> {
        let failures = self.delete(&[ImageId::Tag(tag.to_string())])?;
        match failures.into_iter().next() {
            Some(failure) => Err(self.failed(failure)),
            None => Ok(()),
        }
    }
}
