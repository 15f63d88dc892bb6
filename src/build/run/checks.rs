//! Where a build's images go: the outputs, checked before anything is
//! built, and what goes to each (top manifest and tags).

use super::RunError;
use crate::build::BuiltImage;
use crate::build::transport::{destination_tag, own_registries};
use crate::image::Manifest;
use crate::oci::Location;
use crate::spec::Plan;
use std::path::PathBuf;

/// An output with the images it receives: a fixed location, or the image's
/// own repository (`--push`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Location(Location),
    Push,
}

impl Output {
    pub fn location(&self) -> Option<&Location> {
        match self {
            Output::Location(location) => Some(location),
            Output::Push => None,
        }
    }
}

/// Rejects output combinations that cannot work, before anything is built.
pub(super) fn check_outputs(plan: &Plan, outputs: &[Output]) -> Result<(), RunError> {
    for output in outputs {
        let location = match output {
            Output::Location(location) => location,
            Output::Push => {
                if let Some(image) = plan.images.iter().find(|image| image.repository.is_none()) {
                    return Err(RunError::PushWithoutRepository {
                        image: image.name.clone(),
                        spec: plan.spec_path.display().to_string(),
                    });
                }
                continue;
            }
        };
        check_location(plan, location)?;
    }
    Ok(())
}

/// The plan builds several images where `location` takes one.
pub(super) fn one_image_only(plan: &Plan, location: &Location) -> RunError {
    RunError::OneImageOnly {
        location: location.to_string(),
        count: plan.images.len(),
        names: plan
            .images
            .iter()
            .map(|image| image.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn check_location(plan: &Plan, location: &Location) -> Result<(), RunError> {
    // A malformed reference fails now, not after the build.
    if let Location::Registry { .. } = location {
        destination_tag(location).map_err(|source| RunError::Destination {
            location: location.to_string(),
            source: Box::new(source),
        })?;
    }
    let holds_one = matches!(
        location,
        Location::OciArchive { .. } | Location::DockerArchive { .. } | Location::Registry { .. }
    ) || location.tag().is_some();
    if plan.images.len() > 1 && holds_one {
        return Err(one_image_only(plan, location));
    }
    if let Location::DockerArchive { .. } = location
        && let Some(image) = plan.images.iter().find(|image| image.platforms.len() > 1)
    {
        return Err(RunError::OnePlatformOnly {
            location: location.to_string(),
            image: image.name.clone(),
            platforms: image
                .platforms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(())
}

/// What goes to an output, and under which tags: layouts and OCI archives
/// get the index tagged with the output's tag (else the image's name);
/// docker archives get the single manifest as `REF` (else `NAME:latest`);
/// registries get the index under the reference's tag (else `latest`).
pub(super) fn top_and_tags(
    image: &BuiltImage,
    location: &Location,
    extra: &[String],
) -> Result<(Manifest, Vec<String>), RunError> {
    let top = match location {
        Location::DockerArchive { .. } => Manifest::Image(image.platforms[0].image.clone()),
        _ => image.top(),
    };
    let mut tags: Vec<String> = match location {
        Location::Registry { .. } => destination_tag(location)?.into_iter().collect(),
        Location::DockerArchive { reference, .. } => {
            vec![
                reference
                    .clone()
                    .unwrap_or_else(|| format!("{}:latest", image.name)),
            ]
        }
        _ => vec![
            location
                .tag()
                .map_or_else(|| image.name.clone(), str::to_string),
        ],
    };
    for tag in extra {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    Ok((top, tags))
}

/// The full reference each tag of a local output stands for, which a layout
/// records beside the tag for loaders (`ctr images import` names the image
/// by it): the spec's `repository`, else `localhost/NAME` as podman names
/// local images, with the tag; the image's name standing in for a tag the
/// output did not give is `latest`, and a tag that is a full reference
/// already (`oci-archive:app.tar:ghcr.io/acme/app:1.0`) is its own.
pub(super) fn full_names(
    plan: &Plan,
    image: &BuiltImage,
    location: &Location,
    tags: &[String],
) -> Vec<(String, String)> {
    let repository = plan
        .images
        .iter()
        .find(|candidate| candidate.name == image.name)
        .and_then(|candidate| candidate.repository.clone())
        .unwrap_or_else(|| format!("localhost/{}", image.name));
    tags.iter()
        .map(|tag| {
            let full = if tag.contains('/') {
                tag.clone()
            } else if location.tag().is_none() && *tag == image.name {
                format!("{repository}:latest")
            } else {
                format!("{repository}:{tag}")
            };
            (tag.clone(), full)
        })
        .collect()
}

/// The registry location an image goes to when that is its only output.
pub(super) fn only_registry_output(
    plan: &Plan,
    outputs: &[Output],
    image: &str,
) -> Option<Location> {
    match outputs {
        [Output::Location(location @ Location::Registry { .. })] => Some(location.clone()),
        [Output::Push] => plan
            .images
            .iter()
            .find(|candidate| candidate.name == image)
            .and_then(|candidate| candidate.repository.clone())
            .map(|reference| Location::Registry { reference }),
        _ => None,
    }
}

/// The `--push` tags computed for the image called `name` (none when it is
/// not pushed).
pub(super) fn push_tags_of<'a>(push_tags: &'a [(String, Vec<String>)], name: &str) -> &'a [String] {
    push_tags
        .iter()
        .find(|(image, _)| image == name)
        .map_or(&[], |(_, tags)| tags.as_slice())
}

/// Where layer blobs are built when the cache is not used: beside the
/// first layout output when its directory exists, so they are hard-linked
/// into it instead of copied and hashed again from another filesystem (and
/// a tmpfs `/tmp` does not hold every layer in memory meanwhile); else the
/// system's temporary directory.
pub(super) fn blob_parent(first_output: Option<&Location>) -> PathBuf {
    if let Some(Location::Layout { path, .. }) = first_output {
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if parent.is_dir() {
            return parent;
        }
    }
    std::env::temp_dir()
}

/// The outputs asked for, or the spec's `output`, or `oci:hoist-out`.
pub(super) fn resolve_outputs(plan: &Plan, outputs: &[Output]) -> Vec<Output> {
    if !outputs.is_empty() {
        return outputs.to_vec();
    }
    let default = Location::Layout {
        path: PathBuf::from("hoist-out"),
        tag: None,
    };
    vec![Output::Location(plan.output.clone().unwrap_or(default))]
}

/// The registries the build pushes to, or, when it pushes nowhere, those its
/// bases come from: where credentials given for every registry go.
pub(super) fn build_registries(plan: &Plan, outputs: &[Output]) -> Vec<String> {
    let mut written = Vec::new();
    for output in outputs {
        match output {
            Output::Location(location) => written.push(location.clone()),
            Output::Push => written.extend(plan.images.iter().filter_map(|image| {
                image
                    .repository
                    .clone()
                    .map(|reference| Location::Registry { reference })
            })),
        }
    }
    let bases = plan.images.iter().filter_map(|image| match &image.base {
        crate::spec::BaseImage::Location(location) => Some(location),
        crate::spec::BaseImage::Scratch => None,
    });
    own_registries(&written, bases)
}

/// Whether the run talks to a registry: an output or a base is in one.
pub(super) fn needs_registry(plan: &Plan, outputs: &[Output]) -> bool {
    outputs.iter().any(|output| {
        matches!(
            output,
            Output::Push | Output::Location(Location::Registry { .. })
        )
    }) || plan.images.iter().any(|image| {
        matches!(
            image.base,
            crate::spec::BaseImage::Location(Location::Registry { .. })
        )
    })
}
