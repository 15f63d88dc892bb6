//! What prune and delete know of a repository before deciding anything:
//! the policy asked for, the facts of each tag read from the registry, and
//! the plan that comes out. Below the policy, the build walk and the
//! attachment walk, which all read and write these.

use super::{ImageRegistry, RetentionError};
use crate::oci::Digest;
use std::collections::{HashMap, HashSet};

/// Which tags may go.
#[derive(Clone, Debug)]
pub struct PrunePolicy {
    /// Tags matching none of these are never touched.
    pub patterns: globset::GlobSet,
    /// Keep this many of the builds matching tags point at, the newest by
    /// push time where the registry records it, else by image creation.
    pub keep: Option<usize>,
    /// Let go only of images created (or pushed) before this (Unix seconds).
    pub created_before: Option<i64>,
    /// Delete top-level images without a tag too (older than
    /// `created_before` when that is given).
    pub untagged: bool,
}

/// What the registry says of one tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagFacts {
    pub tag: String,
    pub digest: Digest,
    /// The image's creation time (Unix seconds), the newest of an index's
    /// platforms; `None` when no config says. Only looked up for tags the
    /// policy could let go.
    pub created: Option<i64>,
    /// The manifests `digest` lists (an index's platforms): their referrers
    /// go with it, unless a manifest that stays lists them too.
    pub children: Vec<Digest>,
}

/// Why a matching tag stays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeptBecause {
    /// Among the newest `keep`.
    Newest,
    /// Created at or after the cutoff.
    Recent,
    /// No creation time to order it by.
    NoCreationTime,
    /// Its manifest also carries these tags, which stay.
    Shared { with: Vec<String> },
    /// Its manifest is one that images under these tags, which stay, list
    /// (a single-platform build is the platform manifest of an index).
    Listed { by: Vec<String> },
}

/// The outcome of a policy over a repository's tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrunePlan {
    /// Manifests to delete, each with every tag that goes with it (none
    /// for an untagged image).
    pub delete: Vec<(Digest, Vec<String>)>,
    /// What those list (platform and attestation manifests) that no image
    /// that stays lists, as (child, parent), deleted after `delete`.
    pub children: Vec<(Digest, Digest)>,
    /// Untagged manifests the registry's referrers API lists for a subject
    /// that goes, as (referrer, subject), deleted after `delete`; filled by
    /// [`add_api_referrers`].
    pub referrers: Vec<(Digest, Digest)>,
    /// Matching tags that stay, and why.
    pub kept: Vec<(String, KeptBecause)>,
}

/// Reads what the policy needs: the digest of every tag, the time of each
/// manifest a matching tag points at, and what every tagged index lists
/// (so the referrers of a platform a kept index shares stay).
pub fn gather(
    registry: &dyn ImageRegistry,
    tags: &[String],
    policy: &PrunePolicy,
) -> Result<Vec<TagFacts>, RetentionError> {
    let workers = registry.requests_at_once();
    let digests = crate::parallel::for_each_at_once(tags, workers, |tag| registry.tag_digest(tag))?;
    // A tag deleted since the listing has nothing left to keep or delete.
    let (tags, digests): (Vec<&String>, Vec<Digest>) = tags
        .iter()
        .zip(digests)
        .filter_map(|(tag, digest)| Some((tag, digest?)))
        .unzip();
    let mut seen = HashSet::new();
    let wanted: Vec<&Digest> = tags
        .iter()
        .zip(&digests)
        .filter(|(tag, digest)| policy.patterns.is_match(tag) && seen.insert(*digest))
        .map(|(_, digest)| digest)
        .collect();
    let read =
        crate::parallel::for_each_at_once(&wanted, workers, |digest| registry.dated(digest))?;
    let mut read: HashMap<Digest, super::Dated> = wanted.into_iter().cloned().zip(read).collect();
    // The others only for what they list: one manifest GET each.
    let others: Vec<&Digest> = digests
        .iter()
        .filter(|digest| seen.insert(*digest))
        .collect();
    let listed =
        crate::parallel::for_each_at_once(&others, workers, |digest| registry.children(digest))?;
    read.extend(
        others
            .into_iter()
            .cloned()
            .zip(listed)
            .map(|(digest, children)| {
                (
                    digest,
                    super::Dated {
                        time: None,
                        children,
                    },
                )
            }),
    );
    Ok(tags
        .iter()
        .zip(digests)
        .map(|(tag, digest)| {
            let dated = read.get(&digest).cloned().unwrap_or_default();
            TagFacts {
                tag: tag.to_string(),
                digest,
                created: dated.time,
                children: dated.children,
            }
        })
        .collect())
}
