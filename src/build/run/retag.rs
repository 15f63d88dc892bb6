//! After publishing: an image `--changed` found unchanged gets this run's
//! tags, pointed at the image it matched (a copy of its manifest under each
//! new tag, no blob moved), so a pipeline that deploys by `sha-…` finds
//! every image at every commit, built or not. Each tag moved is recorded
//! for `--rollback-file` like a pushed one.

use super::RunError;
use crate::build::changes::Skipped;
use crate::build::transport::{Transports, parse_reference};
use crate::ci::RollbackRecord;
use crate::oci::Digest;
use crate::progress::{Event, Observer};

/// Tags each skipped image that has tags to take, and returns what each
/// moved tag pointed at before; a dry run only says what it would push.
pub(super) fn retag_skipped(
    skipped: &[Skipped],
    dry_run: bool,
    transports: &Transports,
    observer: &dyn Observer,
) -> Result<Vec<RollbackRecord>, RunError> {
    let mut rollback = Vec::new();
    for image in skipped {
        let Some(repository) = &image.repository else {
            continue;
        };
        let digest = image.manifest.digest().clone();
        let moves = tags_to_move(image, repository, transports)?;
        let tags: Vec<String> = moves.iter().map(|(tag, _)| tag.clone()).collect();
        if tags.is_empty() {
            continue;
        }
        if dry_run {
            observer.event(Event::WouldPush {
                image: image.name.clone(),
                repository: repository.clone(),
                digest,
                tags,
            });
            continue;
        }
        let source = parse_reference(&format!("{repository}@{digest}"))?;
        let client = transports.registry()?;
        let handle = client.repository(&source, crate::registry::Access::PUSH);
        handle
            .tag_manifest(digest.as_ref(), &tags)
            .map_err(|error| RunError::Publish {
                image: image.name.clone(),
                location: format!("docker://{repository}"),
                source: Box::new(error),
            })?;
        rollback.extend(moves.into_iter().map(|(tag, previous)| {
            RollbackRecord::new(repository, &tag, previous, digest.clone())
        }));
        observer.event(Event::ImageRetagged {
            image: image.name.clone(),
            repository: repository.clone(),
            digest,
            tags,
        });
    }
    Ok(rollback)
}

/// The tags of this run that do not point at the image yet, each with the
/// manifest it points at now (`None` for a new tag): a tag already there is
/// not written again (a registry with immutable tags refuses even the same
/// manifest).
fn tags_to_move(
    image: &Skipped,
    repository: &str,
    transports: &Transports,
) -> Result<Vec<(String, Option<Digest>)>, RunError> {
    let mut tags = Vec::new();
    for tag in image.retag.iter().filter(|tag| **tag != image.tag) {
        let reference = format!("{repository}:{tag}");
        let parsed = parse_reference(&reference)?;
        let current = crate::registry::get_manifest_digest(transports.registry()?, &parsed)
            .map_err(|source| RunError::Rollback {
                reference: reference.clone(),
                source: Box::new(source),
            })?;
        if current.as_ref() != Some(image.manifest.digest()) {
            tags.push((tag.clone(), current));
        }
    }
    Ok(tags)
}
