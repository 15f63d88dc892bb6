//! Whole builds. A build is a top-level image (an index or a manifest)
//! with what it lists (platform and attestation manifests); its referrers
//! and signatures are found by [`super::attachments`]. A build that goes
//! takes what it lists along, children after the parent, but never a child
//! an image that stays lists too (a reproducible rebuild shares platform
//! manifests). Top-level images without a tag are found here too, where
//! the registry's API can list manifests without tags (GHCR).

use super::facts::{PrunePolicy, TagFacts};
use super::{ImageRegistry, RetentionError};
use crate::oci::Digest;
use std::collections::HashSet;

/// A top-level image no tag is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UntaggedImage {
    pub digest: Digest,
    /// When the registry says it was pushed (Unix seconds).
    pub created: Option<i64>,
    /// What it lists.
    pub children: Vec<Digest>,
}

/// The untagged top-level images of the repository: the manifests without
/// a tag that no other manifest lists (an untagged platform manifest of a
/// tagged index is part of that build, not a build of its own). `None`
/// when the registry's API cannot list manifests without tags. `tags` is
/// every tag of the repository, as [`super::gather`] read it.
pub fn gather_untagged(
    registry: &dyn ImageRegistry,
    tags: &[TagFacts],
) -> Result<Option<Vec<UntaggedImage>>, RetentionError> {
    let Some(listed) = registry.untagged()? else {
        return Ok(None);
    };
    let tagged: HashSet<&Digest> = tags.iter().map(|facts| &facts.digest).collect();
    let listed: Vec<(Digest, Option<i64>)> = listed
        .into_iter()
        .filter(|(digest, _)| !tagged.contains(digest))
        .collect();
    let workers = registry.requests_at_once();
    let children = crate::parallel::for_each_at_once(&listed, workers, |(digest, _)| {
        registry.children(digest)
    })?;
    let mut listed_by_another: HashSet<Digest> = tags
        .iter()
        .flat_map(|facts| facts.children.iter().cloned())
        .collect();
    listed_by_another.extend(children.iter().flatten().cloned());
    Ok(Some(
        listed
            .into_iter()
            .zip(children)
            .filter(|((digest, _), _)| !listed_by_another.contains(digest))
            .map(|((digest, created), children)| UntaggedImage {
                digest,
                created,
                children,
            })
            .collect(),
    ))
}

/// The untagged images `policy` lets go: every one with `--untagged`, or
/// with `--older-than` too, those pushed before the cutoff. An image whose
/// push time is unknown stays.
pub(super) fn untagged_going(untagged: &[UntaggedImage], policy: &PrunePolicy) -> Vec<Digest> {
    if !policy.untagged {
        return Vec::new();
    }
    untagged
        .iter()
        .filter(|image| match policy.created_before {
            None => true,
            Some(cutoff) => image.created.is_some_and(|created| created < cutoff),
        })
        .map(|image| image.digest.clone())
        .collect()
}

/// What the manifests in `delete` list, as (child, parent), each once:
/// deleted after their parents, except those an image that stays is or
/// lists (tagged, or untagged and not deleted).
pub(super) fn children_going(
    tags: &[TagFacts],
    untagged: &[UntaggedImage],
    delete: &[(Digest, Vec<String>)],
) -> Vec<(Digest, Digest)> {
    let deleted: HashSet<&Digest> = delete.iter().map(|(digest, _)| digest).collect();
    let images = tags
        .iter()
        .map(|facts| (&facts.digest, &facts.children))
        .chain(
            untagged
                .iter()
                .map(|image| (&image.digest, &image.children)),
        );
    let mut staying: HashSet<&Digest> = HashSet::new();
    let mut listing: Vec<(&Digest, &Vec<Digest>)> = Vec::new();
    for (digest, children) in images {
        if deleted.contains(digest) {
            listing.push((digest, children));
        } else {
            staying.insert(digest);
            staying.extend(children.iter());
        }
    }
    let mut seen: HashSet<&Digest> = HashSet::new();
    let mut going = Vec::new();
    for (parent, _) in delete {
        let Some((_, children)) = listing.iter().find(|(digest, _)| *digest == parent) else {
            continue;
        };
        for child in children.iter() {
            if !staying.contains(child) && !deleted.contains(child) && seen.insert(child) {
                going.push((child.clone(), parent.clone()));
            }
        }
    }
    going
}

#[cfg(test)]
mod tests {
    use super::super::fake::{facts, policy};
    use super::*;
    use crate::oci::sha256_digest;

    #[test]
    fn children_go_after_their_parent_unless_an_image_that_stays_lists_them() {
        let shared = sha256_digest(b"amd64, built twice");
        let only_old = sha256_digest(b"arm64 of the old build");
        let attestation = sha256_digest(b"attestation of the old arm64");
        let old = TagFacts {
            children: vec![shared.clone(), only_old.clone(), attestation.clone()],
            ..facts("sha-old", "old", Some(1))
        };
        let new = TagFacts {
            children: vec![shared.clone()],
            ..facts("sha-new", "new", Some(2))
        };
        let delete = [(old.digest.clone(), vec!["sha-old".to_string()])];
        assert_eq!(
            children_going(&[old.clone(), new], &[], &delete),
            [
                (only_old.clone(), old.digest.clone()),
                (attestation, old.digest.clone())
            ]
        );
        // An untagged image that stays keeps what it lists too.
        let untagged = UntaggedImage {
            digest: sha256_digest(b"untagged"),
            created: Some(5),
            children: vec![only_old.clone()],
        };
        let going = children_going(std::slice::from_ref(&old), &[untagged], &delete);
        assert!(
            going.iter().all(|(child, _)| *child != only_old),
            "{going:?}"
        );
    }

    #[test]
    fn untagged_images_go_only_when_asked_and_old_enough() {
        let image = |name: &str, created| UntaggedImage {
            digest: sha256_digest(name.as_bytes()),
            created,
            children: Vec::new(),
        };
        let untagged = [
            image("old", Some(10)),
            image("new", Some(100)),
            image("undated", None),
        ];
        assert!(untagged_going(&untagged, &policy(&[], None, Some(50))).is_empty());
        let asked = PrunePolicy {
            untagged: true,
            ..policy(&[], None, Some(50))
        };
        assert_eq!(
            untagged_going(&untagged, &asked),
            [untagged[0].digest.clone()]
        );
        let all = PrunePolicy {
            untagged: true,
            ..policy(&[], None, None)
        };
        assert_eq!(untagged_going(&untagged, &all).len(), 3);
    }
}
