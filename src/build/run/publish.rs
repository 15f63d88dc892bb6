//! The last step of a build: each built image to each of its outputs, its
//! attestations beside it, and a record of what went where for the
//! metadata and rollback files.

use super::RunError;
use super::checks::{Output, full_names, push_tags_of, top_and_tags};
use crate::build::BuiltImage;
use crate::build::attest::{Referrer, publish_referrers};
use crate::build::stream::{RegistryStream, StreamedSink};
use crate::build::transport::Transports;
use crate::ci::{ImageMetadata, ImageStatus, RollbackRecord};
use crate::image::{Manifest, publish};
use crate::oci::Location;
use crate::progress::{Event, Observer};
use crate::spec::Plan;
use std::sync::Arc;

/// How many images go to registries at once. Each keeps its own blob
/// uploads in flight too, so a few images fill a connection pool.
const IMAGES_AT_ONCE: usize = 4;

/// Everything publishing needs besides the images themselves.
pub(super) struct Publishing<'a> {
    pub plan: &'a Plan,
    pub outputs: &'a [Output],
    /// `--tag`: added to every output.
    pub extra_tags: &'a [String],
    /// Each image's `--push` tags, by name.
    pub push_tags: &'a [(String, Vec<String>)],
    pub dry_run: bool,
    /// `--rollback-file`: read what each pushed tag pointed to first.
    pub record_rollback: bool,
    pub transports: &'a Transports,
    pub pool: &'a rayon::ThreadPool,
    pub observer: &'a dyn Observer,
}

/// One built image with what goes beside it.
pub(super) struct ToPublish<'a> {
    pub image: &'a BuiltImage,
    pub referrers: &'a [Referrer],
    /// The stream its layers went up by, when its only output is a registry.
    pub stream: Option<&'a Arc<RegistryStream>>,
}

/// What publishing one image wrote.
#[derive(Default)]
pub(super) struct Published {
    pub metadata: Option<ImageMetadata>,
    pub rollback: Vec<RollbackRecord>,
    /// The digest of what went to the first output.
    pub first_digest: Option<String>,
}

impl Publishing<'_> {
    /// Publishes every image, results in the order given. Images go side by
    /// side when every output is a registry, where each image has its own
    /// repository and the tail of a push is round trips; to a local output
    /// they go one after another, since images written to one layout share
    /// its `index.json`.
    pub fn all(&self, images: &[ToPublish<'_>]) -> Result<Vec<Published>, RunError> {
        let remote_only = self
            .outputs
            .iter()
            .all(|output| matches!(output, Output::Push));
        let workers = if remote_only { IMAGES_AT_ONCE } else { 1 };
        crate::parallel::for_each_at_once(images, workers, |image| self.image(image))
    }

    /// One image to each output in turn.
    fn image(&self, to_publish: &ToPublish<'_>) -> Result<Published, RunError> {
        let image = to_publish.image;
        let mut published = Published::default();
        for output in self.outputs {
            let Some((location, top, tags)) = self.destination(image, output, &mut published)?
            else {
                continue;
            };
            if published.metadata.is_none() {
                published.metadata = Some(ImageMetadata::from_manifest(
                    &image.name,
                    None,
                    &top,
                    &tags,
                )?);
            }
            let publish_error =
                |source: Box<dyn std::error::Error + Send + Sync>| RunError::Publish {
                    image: image.name.clone(),
                    location: location.to_string(),
                    source,
                };
            let sink = self
                .transports
                .sink(&location)
                .map_err(|error| publish_error(Box::new(error)))?;
            sink.name_tags(&full_names(self.plan, image, &location, &tags));
            let sink = StreamedSink::new(sink.as_ref(), to_publish.stream.map(Arc::as_ref));
            let report = self
                .run_for(&location, || publish(&top, &sink, &tags, self.observer))
                .map_err(|error| publish_error(Box::new(error)))?;
            let streamed = to_publish
                .stream
                .map_or_else(Vec::new, |stream| stream.streamed());
            if !to_publish.referrers.is_empty() {
                self.run_for(&location, || {
                    publish_referrers(
                        &image.name,
                        to_publish.referrers,
                        &location,
                        self.transports,
                        self.observer,
                    )
                })?;
            }
            self.observer.event(Event::ImageWritten {
                image: image.name.clone(),
                output: location.to_string(),
                registry: matches!(location, Location::Registry { .. }),
                digest: top.digest().clone(),
                tags: tags.clone(),
                uploaded: report.uploaded.len(),
                bytes: report.bytes_sent,
                mounted: report.mounted.len(),
                existed: report.existed.len(),
                streamed: streamed.len(),
            });
            published
                .first_digest
                .get_or_insert_with(|| top.digest().to_string());
        }
        Ok(published)
    }

    /// Runs `work`, which writes to `location`. A local sink stores as many
    /// blobs at once as the worker pool has threads, so it runs there; a
    /// registry's transfers wait on round trips on threads of their own, and
    /// an image pushing to one should not hold a worker another image needs.
    fn run_for<R: Send>(&self, location: &Location, work: impl FnOnce() -> R + Send) -> R {
        match location {
            Location::Registry { .. } => work(),
            _ => self.pool.install(work),
        }
    }

    /// Where `image` goes for `output`, what goes there and under which
    /// tags; `None` for a dry run of `--push`, which only says what it would
    /// do. `--push` records the image's metadata with its repository and,
    /// with `--rollback-file`, what its tags pointed to before.
    fn destination(
        &self,
        image: &BuiltImage,
        output: &Output,
        published: &mut Published,
    ) -> Result<Option<(Location, Manifest, Vec<String>)>, RunError> {
        let repository = match output {
            Output::Location(location) => {
                let (top, tags) = top_and_tags(image, location, self.extra_tags)?;
                return Ok(Some((location.clone(), top, tags)));
            }
            Output::Push => self
                .plan
                .images
                .iter()
                .find(|candidate| candidate.name == image.name)
                .and_then(|candidate| candidate.repository.as_deref())
                .ok_or_else(|| RunError::PushWithoutRepository {
                    image: image.name.clone(),
                    spec: self.plan.spec_path.display().to_string(),
                })?,
        };
        let tags = push_tags_of(self.push_tags, &image.name).to_vec();
        let top = image.top();
        let mut metadata =
            ImageMetadata::from_manifest(&image.name, Some(repository), &top, &tags)?;
        metadata.status = if self.dry_run {
            ImageStatus::DryRun
        } else {
            ImageStatus::Pushed
        };
        published.metadata = Some(metadata);
        if self.dry_run {
            self.observer.event(Event::WouldPush {
                image: image.name.clone(),
                repository: repository.to_string(),
                digest: top.digest().clone(),
                tags: tags.clone(),
            });
            published
                .first_digest
                .get_or_insert_with(|| top.digest().to_string());
            return Ok(None);
        }
        if self.record_rollback {
            let client = self.transports.registry()?;
            for tag in &tags {
                let reference = format!("{repository}:{tag}");
                let parsed = crate::build::transport::parse_reference(&reference)?;
                let previous =
                    crate::registry::get_manifest_digest(client, &parsed).map_err(|source| {
                        RunError::Rollback {
                            reference: reference.clone(),
                            source: Box::new(source),
                        }
                    })?;
                published.rollback.push(RollbackRecord::new(
                    repository,
                    tag,
                    previous,
                    top.digest().clone(),
                ));
            }
        }
        let location = Location::Registry {
            reference: repository.to_string(),
        };
        Ok(Some((location, top, tags)))
    }
}
