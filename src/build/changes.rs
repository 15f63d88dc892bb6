//! Before building: each image's tags, its `org.opencontainers.image.*`
//! labels and inputs digest, and, with `--changed` or `skip-unchanged`,
//! whether an image published under a tag that lasts across commits was
//! built from the same inputs (then it is skipped, and the build says so
//! through [`Event::ImageUnchanged`]; with `--push` it gets this run's tags).

use super::metadata::{
    MetadataError, add_inputs_label, add_standard_labels, base_digest, image_inputs_digest,
    published_inputs_digest, revision_is_known,
};
use super::transport::{Transports, parse_reference};
use crate::ci::{CiEnvironment, CiError, GitInfo, Revision, compute_tags, moving_tags, stable_tag};
use crate::image::Manifest;
use crate::layer::TrackedFiles;
use crate::oci::{Digest, Location};
use crate::progress::{Event, Observer};
use crate::spec::{ImagePlan, Plan};
use std::error::Error as StdError;

#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    #[error("reading the revision being built")]
    Revision(#[source] CiError),
    #[error("computing the tags of image `{image}`")]
    Tags {
        image: String,
        #[source]
        source: CiError,
    },
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

/// The revision being built, from git (where the spec lives) and the CI
/// environment, started now (for date tags, which follow the run's clock as
/// docker/metadata-action's do; nothing hashed reads it).
pub fn revision(plan: &Plan) -> Result<Revision, ChangesError> {
    let git = GitInfo::discover(&plan.spec_directory).map_err(ChangesError::Revision)?;
    let environment = CiEnvironment::from_process_env().map_err(ChangesError::Revision)?;
    let mut revision = Revision::resolve(git.as_ref(), &environment);
    revision.started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|elapsed| i64::try_from(elapsed.as_secs()).ok());
    Ok(revision)
}

/// An image's tags: its spec `tags` (the default strategy when absent),
/// then every `--tag`.
pub fn image_tags(
    image: &ImagePlan,
    revision: &Revision,
    extra: &[String],
    observer: &dyn Observer,
) -> Result<Vec<String>, ChangesError> {
    let spec = image.tags.clone().unwrap_or_default();
    let mut tags =
        compute_tags(&spec, revision, observer).map_err(|source| ChangesError::Tags {
            image: image.name.clone(),
            source,
        })?;
    for tag in extra {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    Ok(tags)
}

/// The tags one image of a spec gets (`hoist tags`, one entry of its
/// `--json` array).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ImageTags {
    pub image: String,
    /// `None` when the spec names no repository for the image.
    pub repository: Option<String>,
    pub tags: Vec<String>,
}

/// The tags of every image of a plan, in the plan's order, as
/// [`image_tags`] computes them.
pub fn plan_tags(
    plan: &Plan,
    revision: &Revision,
    extra: &[String],
    observer: &dyn Observer,
) -> Result<Vec<ImageTags>, ChangesError> {
    plan.images
        .iter()
        .map(|image| {
            Ok(ImageTags {
                image: image.name.clone(),
                repository: image.repository.clone(),
                tags: image_tags(image, revision, extra, observer)?,
            })
        })
        .collect()
}

/// Where `--changed` looks for the published image.
pub enum Target {
    /// `repository:tag` in a registry.
    Registry(String),
    /// A layout or archive, with the tag the image gets there.
    Local(Location),
}

impl std::fmt::Display for Target {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Registry(reference) => write!(formatter, "docker://{reference}"),
            Target::Local(location) => write!(formatter, "{location}"),
        }
    }
}

/// An image found unchanged at its target.
pub struct Skipped {
    pub name: String,
    pub manifest: Manifest,
    /// The tag it was found under.
    pub tag: String,
    pub repository: Option<String>,
    /// This run's tags, to point at the image found (with `--push`, unless
    /// `--changed=no-retag`); empty when it keeps the tags it has.
    pub retag: Vec<String>,
}

/// What the plan becomes before building.
pub struct Prepared {
    /// The images to build, labels added.
    pub images: Vec<ImagePlan>,
    pub skipped: Vec<Skipped>,
    /// Each image's tags (only computed when pushing or when the revision
    /// is known), by name.
    pub tags: Vec<(String, Vec<String>)>,
}

pub struct PrepareOptions<'a> {
    /// Pushing (or a dry run of it): tags matter, warnings about them show.
    pub pushing: bool,
    /// `--changed`: every image is checked, not just `skip-unchanged` ones.
    pub changed: bool,
    /// A skipped image gets this run's tags (`--changed=no-retag` says no).
    pub retag: bool,
    pub extra_tags: &'a [String],
    /// Where a local build writes first, for `--changed` without `--push`.
    pub first_output: Option<&'a Location>,
    /// What git tracks, shared with the build that follows.
    pub tracked: &'a TrackedFiles,
}

/// Adds labels and the inputs digest to each image and drops the images
/// whose published inputs digest matches. The inputs digest is a label
/// under the same condition as the other labels (git or CI, or the spec's
/// `skip-unchanged`), never because of `--changed`: the bytes of an image
/// do not depend on the flag, so turning it on later finds images pushed
/// without it.
pub fn prepare(
    plan: &Plan,
    revision: &Revision,
    options: &PrepareOptions,
    transports: &Transports,
    observer: &dyn Observer,
) -> Result<Prepared, ChangesError> {
    let known = revision_is_known(revision);
    let mut prepared = Prepared {
        images: Vec::new(),
        skipped: Vec::new(),
        tags: Vec::new(),
    };
    for image in &plan.images {
        let mut image = image.clone();
        let tags = if options.pushing {
            image_tags(&image, revision, options.extra_tags, observer)?
        } else {
            Vec::new()
        };
        // `ref.name` takes a tag the commit and the event fix, never a date
        // or run-number tag, which would put the clock into the config.
        let ref_name = if known {
            stable_tag(&image.tags.clone().unwrap_or_default(), revision)
                .map_err(|source| tags_error(&image, source))?
        } else {
            None
        };
        let detect = options.changed || image.skip_unchanged;
        let labelled = known || image.skip_unchanged;
        let base = if labelled || detect {
            base_digest(&image, transports)?
        } else {
            None
        };
        add_standard_labels(&mut image, revision, ref_name.as_deref(), base.as_ref())?;
        if labelled || detect {
            let inputs = image_inputs_digest(&image, base.as_ref(), options.tracked, observer)?;
            if labelled {
                add_inputs_label(&mut image, &inputs);
            }
            if detect {
                let lookup = Lookup {
                    image: &image,
                    inputs: &inputs,
                    tags: &tags,
                    revision,
                    options,
                };
                if let Some(skipped) = lookup.unchanged(transports, observer)? {
                    prepared.skipped.push(skipped);
                    continue;
                }
            }
        }
        prepared.tags.push((image.name.clone(), tags));
        prepared.images.push(image);
    }
    Ok(prepared)
}

fn tags_error(image: &ImagePlan, source: CiError) -> ChangesError {
    ChangesError::Tags {
        image: image.name.clone(),
        source,
    }
}

/// One image's search for a published image built from the same inputs.
struct Lookup<'a> {
    image: &'a ImagePlan,
    inputs: &'a Digest,
    /// This run's tags for the image (when pushing).
    tags: &'a [String],
    revision: &'a Revision,
    options: &'a PrepareOptions<'a>,
}

impl Lookup<'_> {
    /// The image found unchanged, or `None` when it is to be built (with
    /// an event or a warning that says why).
    fn unchanged(
        &self,
        transports: &Transports,
        observer: &dyn Observer,
    ) -> Result<Option<Skipped>, ChangesError> {
        let image = self.image;
        let candidates = self.candidates()?;
        if candidates.is_empty() {
            observer.event(Event::Warning {
                message: format!(
                    "image `{}`: no tag that lasts across commits (a branch tag, `latest`, a rule of fixed text) to compare with, so it is built",
                    image.name
                ),
            });
            return Ok(None);
        }
        let found = candidates.iter().find_map(|(target, tag)| {
            published(target, transports, observer).map(|manifest| (target, tag, manifest))
        });
        let Some((target, tag, manifest)) = found else {
            let looked_for: Vec<String> = candidates
                .iter()
                .map(|(target, _)| target.to_string())
                .collect();
            observer.event(Event::Warning {
                message: format!(
                    "image `{}`: nothing to compare with at {}, so it is built",
                    image.name,
                    looked_for.join(", ")
                ),
            });
            return Ok(None);
        };
        if published_inputs_digest(&manifest).as_deref() != Some(self.inputs.to_string().as_str()) {
            observer.event(Event::ImageChanged {
                image: image.name.clone(),
                target: target.to_string(),
                inputs: self.inputs.clone(),
            });
            return Ok(None);
        }
        observer.event(Event::ImageUnchanged {
            image: image.name.clone(),
            target: target.to_string(),
            inputs: self.inputs.clone(),
            digest: manifest.digest().clone(),
        });
        let registry = matches!(target, Target::Registry(_));
        let retag = if registry && self.options.pushing && self.options.retag {
            self.tags.to_vec()
        } else {
            Vec::new()
        };
        Ok(Some(Skipped {
            name: image.name.clone(),
            manifest,
            tag: tag.clone(),
            repository: registry.then(|| image.repository.clone()).flatten(),
            retag,
        }))
    }

    /// Where to look, in order. Pushing: the image's repository under each
    /// of this run's tags that last across commits (the branch, `pr-N`,
    /// `latest`, fixed text), then every `--tag`; a date, run-number or
    /// sha tag cannot be there before this run. Otherwise the first
    /// output's tag for the image.
    fn candidates(&self) -> Result<Vec<(Target, String)>, ChangesError> {
        let image = self.image;
        if self.options.pushing {
            let Some(repository) = &image.repository else {
                return Ok(Vec::new());
            };
            let mut tags = moving_tags(&image.tags.clone().unwrap_or_default(), self.revision)
                .map_err(|source| tags_error(image, source))?;
            for tag in self.options.extra_tags {
                if !tags.contains(tag) {
                    tags.push(tag.clone());
                }
            }
            return Ok(tags
                .into_iter()
                .map(|tag| (Target::Registry(format!("{repository}:{tag}")), tag))
                .collect());
        }
        Ok(local_target(image, self.options).into_iter().collect())
    }
}

/// The first output's tag for the image, when not pushing.
fn local_target(image: &ImagePlan, options: &PrepareOptions) -> Option<(Target, String)> {
    match options.first_output? {
        local @ (Location::Layout { .. } | Location::OciArchive { .. }) => {
            let tag = local
                .tag()
                .map_or_else(|| image.name.clone(), str::to_string);
            Some((Target::Local(local.with_tag(&tag)), tag))
        }
        Location::Registry { reference } => {
            let tag = crate::build::transport::destination_tag(&Location::Registry {
                reference: reference.clone(),
            })
            .ok()??;
            Some((Target::Registry(reference.clone()), tag))
        }
        // A docker archive is rewritten whole by every build.
        Location::DockerArchive { .. } => None,
    }
}

/// The image published at `target`, or `None` when there is none (or it
/// cannot be read: then the image is built, with a warning).
fn published(
    target: &Target,
    transports: &Transports,
    observer: &dyn Observer,
) -> Option<Manifest> {
    let location = match target {
        Target::Registry(reference) => {
            let present = || -> Result<_, Box<dyn StdError>> {
                let parsed = parse_reference(reference)?;
                let client = transports.registry()?;
                Ok(crate::registry::get_manifest_digest(client, &parsed)?)
            };
            match present() {
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(error) => {
                    observer.event(Event::Warning {
                        message: format!(
                            "cannot check {target} for changes, building: {}",
                            error_chain(error.as_ref())
                        ),
                    });
                    return None;
                }
            }
            Location::Registry {
                reference: reference.clone(),
            }
        }
        Target::Local(location) => {
            let exists = match location {
                Location::Layout { path, .. } => path.join("index.json").exists(),
                Location::OciArchive { path, .. } => path.exists(),
                _ => true,
            };
            if !exists {
                return None;
            }
            location.clone()
        }
    };
    match transports
        .source(&location)
        .and_then(|source| source.resolve())
    {
        Ok(manifest) => Some(manifest),
        Err(error) => {
            if matches!(target, Target::Registry(_)) {
                observer.event(Event::Warning {
                    message: format!(
                        "cannot read {target} to check for changes, building: {}",
                        error_chain(&error)
                    ),
                });
            }
            None
        }
    }
}

/// `error: cause: cause`, as the binary prints an error, for a warning that
/// does not stop the build.
fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
