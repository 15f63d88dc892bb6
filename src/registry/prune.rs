//! Cleaning up old tags without losing a kept one: which of a repository's
//! tags a policy lets go, and which manifests can then be deleted. A
//! registry deletes manifests, not tags, and every tag on a manifest goes
//! with it, so a manifest is deleted only when every tag on it is let go;
//! `latest` pointing at an old `sha-` build keeps that build. A deleted
//! image's referrers (listed by the referrers API where the registry has
//! it, else by the index under its fallback tag) and cosign signatures go
//! with it, and what is attached to those the same ways in turn, unless an
//! image that stays lists the same platform manifest. What
//! `hoist prune` decides before it deletes anything, and what `hoist delete`
//! takes along with the manifest it names.

use super::error::RegistryError;
use super::repository::Repository;
use super::source::RegistrySource;
use crate::oci::Digest;
use crate::source::{Source, SourceError};
use std::collections::{HashMap, HashSet};

/// Which tags may go.
#[derive(Clone, Debug)]
pub struct PrunePolicy {
    /// Tags matching none of these are never touched.
    pub patterns: globset::GlobSet,
    /// Keep this many of the matching tags, the newest by image creation.
    pub keep: Option<usize>,
    /// Let go only of images created before this (Unix seconds).
    pub created_before: Option<i64>,
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
}

/// The outcome of a policy over a repository's tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrunePlan {
    /// Manifests to delete, each with every tag that goes with it.
    pub delete: Vec<(Digest, Vec<String>)>,
    /// Untagged manifests the registry's referrers API lists for a subject
    /// that goes, as (referrer, subject), deleted after `delete`; filled by
    /// [`add_api_referrers`].
    pub referrers: Vec<(Digest, Digest)>,
    /// Matching tags that stay, and why.
    pub kept: Vec<(String, KeptBecause)>,
}

/// Decides what goes. `tags` is every tag of the repository: a manifest is
/// deleted only when all the tags on it, matching or not, are let go.
pub fn plan(tags: &[TagFacts], policy: &PrunePolicy) -> PrunePlan {
    let mut candidates: Vec<&TagFacts> = tags
        .iter()
        .filter(|facts| policy.patterns.is_match(&facts.tag))
        .collect();
    // Newest first; the same time orders by name, newest-looking first.
    candidates.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.tag.cmp(&a.tag)));
    let mut kept = Vec::new();
    let mut let_go: Vec<&TagFacts> = Vec::new();
    let mut dated = 0;
    for facts in candidates {
        let Some(created) = facts.created else {
            kept.push((facts.tag.clone(), KeptBecause::NoCreationTime));
            continue;
        };
        dated += 1;
        if policy.keep.is_some_and(|keep| dated <= keep) {
            kept.push((facts.tag.clone(), KeptBecause::Newest));
        } else if policy
            .created_before
            .is_some_and(|cutoff| created >= cutoff)
        {
            kept.push((facts.tag.clone(), KeptBecause::Recent));
        } else {
            let_go.push(facts);
        }
    }
    let going: HashSet<&str> = let_go.iter().map(|facts| facts.tag.as_str()).collect();
    let on_manifest = tags_on_manifest(tags);
    let mut delete: Vec<(Digest, Vec<String>)> = Vec::new();
    for facts in let_go {
        let all = &on_manifest[&facts.digest];
        let staying: Vec<String> = all
            .iter()
            .filter(|tag| !going.contains(**tag))
            .map(|tag| tag.to_string())
            .collect();
        if !staying.is_empty() {
            kept.push((facts.tag.clone(), KeptBecause::Shared { with: staying }));
        } else if !delete.iter().any(|(digest, _)| *digest == facts.digest) {
            let mut tags: Vec<String> = all.iter().map(|tag| tag.to_string()).collect();
            tags.sort();
            delete.push((facts.digest.clone(), tags));
        }
    }
    let attached = all_attachments_going(tags, &delete, &children_of(tags));
    for attachment in attached {
        // A tag of these matched by `--match` itself is not kept for want
        // of a creation time once its subject goes.
        kept.retain(|(tag, _)| *tag != attachment.1[0]);
        if !delete.iter().any(|(digest, _)| *digest == attachment.0) {
            delete.push(attachment);
        }
    }
    // In the order of their tags' names, so a dry run reads the same each time.
    delete.sort_by(|a, b| a.1.cmp(&b.1));
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    PrunePlan {
        delete,
        referrers: Vec::new(),
        kept,
    }
}

/// What goes with the manifests in `delete` (each with every tag on it):
/// the referrers index a registry without the referrers API keeps under a
/// subject's fallback tag (`sha256-<hex>`), and the signatures cosign keeps
/// under `sha256-<hex>.sig`, of each subject that goes
/// ([`subjects_going`]); each as its digest and that one tag, unless
/// another tag is on it too. `tags` is every tag of the repository.
fn attachments_going(
    tags: &[TagFacts],
    delete: &[(Digest, Vec<String>)],
    children_of: &HashMap<&Digest, &[Digest]>,
) -> Vec<(Digest, Vec<String>)> {
    let on_manifest = tags_on_manifest(tags);
    subjects_going(tags, delete, children_of)
        .into_iter()
        .flat_map(|subject| tagged_attachments(subject, tags, &on_manifest))
        .map(|facts| (facts.digest.clone(), vec![facts.tag.clone()]))
        .collect()
}

/// The manifests under `subject`'s attachment tags ([`attachment_tags`]),
/// but not one another tag is on too: that one stays or goes by its tags.
fn tagged_attachments<'a>(
    subject: &Digest,
    tags: &'a [TagFacts],
    on_manifest: &HashMap<&Digest, Vec<&str>>,
) -> Vec<&'a TagFacts> {
    attachment_tags(subject)
        .iter()
        .filter_map(|tag| tags.iter().find(|facts| facts.tag == *tag))
        .filter(|facts| on_manifest[&facts.digest].len() == 1)
        .collect()
}

/// [`attachments_going`] until nothing more turns up: what is attached to
/// an attachment goes with it too (a signature of an attestation sits
/// under the attestation's own signature tag, and an attestation of an
/// SBOM under the SBOM's fallback tag). Each round adds a manifest of
/// `tags` not yet going, so the rounds end.
fn all_attachments_going(
    tags: &[TagFacts],
    delete: &[(Digest, Vec<String>)],
    children_of: &HashMap<&Digest, &[Digest]>,
) -> Vec<(Digest, Vec<String>)> {
    let mut going = delete.to_vec();
    let mut attached = Vec::new();
    loop {
        let found: Vec<(Digest, Vec<String>)> = attachments_going(tags, &going, children_of)
            .into_iter()
            .filter(|(digest, _)| !going.iter().any(|(gone, _)| gone == digest))
            .collect();
        if found.is_empty() {
            return attached;
        }
        going.extend(found.iter().cloned());
        attached.extend(found);
    }
}

/// The manifests whose attachments go with `delete`: each deleted manifest
/// and those it lists (`children_of`), but not one that a manifest that
/// stays is or lists (a reproducible build pushed twice shares its platform
/// manifests, and what is attached to them). Each once, in order.
fn subjects_going<'a>(
    tags: &'a [TagFacts],
    delete: &'a [(Digest, Vec<String>)],
    children_of: &HashMap<&'a Digest, &'a [Digest]>,
) -> Vec<&'a Digest> {
    let deleted: HashSet<&Digest> = delete.iter().map(|(digest, _)| digest).collect();
    let staying: HashSet<&Digest> = tags
        .iter()
        .filter(|facts| !deleted.contains(&facts.digest))
        .flat_map(|facts| std::iter::once(&facts.digest).chain(&facts.children))
        .collect();
    let mut seen = HashSet::new();
    delete
        .iter()
        .flat_map(|(digest, _)| {
            std::iter::once(digest).chain(children_of.get(digest).copied().unwrap_or_default())
        })
        .filter(|subject| !staying.contains(subject) && seen.insert(*subject))
        .collect()
}

/// Fills `plan.referrers`: on a registry with the referrers API, what it
/// lists for each subject that goes with `plan.delete`. Referrers there
/// carry no tag, so nothing else would find them. One request tells a
/// registry without the API, which keeps them under tags instead.
pub fn add_api_referrers(
    repository: &Repository,
    tags: &[TagFacts],
    plan: &mut PrunePlan,
) -> Result<(), PruneError> {
    let children = children_of(tags);
    let subjects = subjects_going(tags, &plan.delete, &children);
    let listed = untagged(api_referrers(repository, &subjects)?, tags);
    let known: HashSet<Digest> = plan
        .delete
        .iter()
        .map(|(digest, _)| digest.clone())
        .chain(subjects.into_iter().cloned())
        .collect();
    let beneath = beneath_referrers(repository, tags, listed, known)?;
    plan.referrers = beneath.referrers;
    for attachment in beneath.tagged {
        plan.kept.retain(|(tag, _)| *tag != attachment.1[0]);
        plan.delete.push(attachment);
    }
    Ok(())
}

/// What goes along with the referrers the API listed, level by level.
struct Beneath {
    /// `first` and the untagged referrers the API lists for them in turn.
    referrers: Vec<(Digest, Digest)>,
    /// What sits under their attachment tags (a signed attestation's
    /// `.sig`), each with that one tag.
    tagged: Vec<(Digest, Vec<String>)>,
}

/// Follows the referrers `first` down: what the API lists for each and
/// what is under its attachment tags, then the same for those, until a
/// level finds nothing. `known` is what already goes; each digest is
/// taken once, so the levels end.
fn beneath_referrers(
    repository: &Repository,
    tags: &[TagFacts],
    first: Vec<(Digest, Digest)>,
    mut known: HashSet<Digest>,
) -> Result<Beneath, PruneError> {
    let on_manifest = tags_on_manifest(tags);
    let mut beneath = Beneath {
        referrers: Vec::new(),
        tagged: Vec::new(),
    };
    let mut level: Vec<Digest> = Vec::new();
    for (referrer, subject) in first {
        if known.insert(referrer.clone()) {
            level.push(referrer.clone());
            beneath.referrers.push((referrer, subject));
        }
    }
    while !level.is_empty() {
        let mut next = Vec::new();
        for subject in &level {
            for facts in tagged_attachments(subject, tags, &on_manifest) {
                if known.insert(facts.digest.clone()) {
                    beneath
                        .tagged
                        .push((facts.digest.clone(), vec![facts.tag.clone()]));
                    next.push(facts.digest.clone());
                }
            }
        }
        let subjects: Vec<&Digest> = level.iter().collect();
        for (referrer, subject) in untagged(api_referrers(repository, &subjects)?, tags) {
            if known.insert(referrer.clone()) {
                next.push(referrer.clone());
                beneath.referrers.push((referrer, subject));
            }
        }
        level = next;
    }
    Ok(beneath)
}

/// What the referrers API lists for each of `subjects`, as (referrer,
/// subject); empty when the registry has no such API, which the first
/// subject's answer tells.
fn api_referrers(
    repository: &Repository,
    subjects: &[&Digest],
) -> Result<Vec<(Digest, Digest)>, PruneError> {
    let Some((first, rest)) = subjects.split_first() else {
        return Ok(Vec::new());
    };
    let Some(first_listed) = repository.referrers_api(first)? else {
        return Ok(Vec::new());
    };
    let workers = repository.client().options().jobs;
    let mut listings = vec![Some(first_listed)];
    listings.extend(crate::parallel::for_each_at_once(
        rest,
        workers,
        |subject| repository.referrers_api(subject),
    )?);
    Ok(subjects
        .iter()
        .zip(listings)
        .flat_map(|(subject, listed)| {
            listed
                .unwrap_or_default()
                .into_iter()
                .map(|descriptor| (descriptor.digest().clone(), (*subject).clone()))
        })
        .collect())
}

/// The referrers in `found` that no tag is on (a tagged one goes or stays
/// by its tags), each once.
fn untagged(found: Vec<(Digest, Digest)>, tags: &[TagFacts]) -> Vec<(Digest, Digest)> {
    let tagged: HashSet<&Digest> = tags.iter().map(|facts| &facts.digest).collect();
    let mut seen = HashSet::new();
    found
        .into_iter()
        .filter(|(referrer, _)| !tagged.contains(referrer) && seen.insert(referrer.clone()))
        .collect()
}

/// The tags what is attached to `subject` sits under: its referrers
/// fallback index and its cosign signatures.
fn attachment_tags(subject: &Digest) -> [String; 2] {
    [
        super::referrers::fallback_tag(subject),
        super::referrers::signature_tag(subject),
    ]
}

/// The tags on each manifest.
fn tags_on_manifest(tags: &[TagFacts]) -> HashMap<&Digest, Vec<&str>> {
    let mut on_manifest: HashMap<&Digest, Vec<&str>> = HashMap::new();
    for facts in tags {
        on_manifest
            .entry(&facts.digest)
            .or_default()
            .push(&facts.tag);
    }
    on_manifest
}

/// The manifests each tagged index lists.
fn children_of(tags: &[TagFacts]) -> HashMap<&Digest, &[Digest]> {
    tags.iter()
        .map(|facts| (&facts.digest, facts.children.as_slice()))
        .collect()
}

/// What goes with the manifest `digest` of `repository`, which has just
/// been deleted and listed `listed` (read before, with
/// [`listed_manifests`]), under the rule `prune` follows. Asked after the
/// delete, so a registry that refuses it costs no more reads; the
/// repository's tags are read only when the manifest or one it listed has
/// an attachment at all, so deleting an image without any costs a few
/// HEADs and one referrers query.
pub fn attachments_of(
    repository: &Repository,
    digest: &Digest,
    listed: &[Digest],
) -> Result<Attached, PruneError> {
    let subjects: Vec<&Digest> = std::iter::once(digest).chain(listed).collect();
    let candidates: Vec<String> = subjects
        .iter()
        .flat_map(|subject| attachment_tags(subject))
        .collect();
    let workers = repository.client().options().jobs;
    let found = crate::parallel::for_each_at_once(&candidates, workers, |tag| {
        repository.manifest_digest(tag)
    })?;
    let referrers = api_referrers(repository, &subjects)?;
    if found.iter().all(Option::is_none) && referrers.is_empty() {
        return Ok(Attached::default());
    }
    let tags = repository.tags()?;
    let nothing_matches = PrunePolicy {
        patterns: globset::GlobSet::empty(),
        keep: None,
        created_before: None,
    };
    let facts = gather(repository, &tags, &nothing_matches)?;
    // The deleted manifest took its tags along; what it listed is known.
    let mut children = children_of(&facts);
    children.insert(digest, listed);
    let delete = [(digest.clone(), Vec::new())];
    let going: HashSet<&Digest> = subjects_going(&facts, &delete, &children)
        .into_iter()
        .collect();
    let referrers = referrers
        .into_iter()
        .filter(|(_, subject)| going.contains(subject))
        .collect();
    let mut tagged = all_attachments_going(&facts, &delete, &children);
    let known: HashSet<Digest> = going
        .into_iter()
        .cloned()
        .chain(tagged.iter().map(|(attached, _)| attached.clone()))
        .chain([digest.clone()])
        .collect();
    let beneath = beneath_referrers(repository, &facts, untagged(referrers, &facts), known)?;
    tagged.extend(beneath.tagged);
    Ok(Attached {
        tagged,
        referrers: beneath.referrers,
    })
}

/// What was attached to a deleted manifest, to delete after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attached {
    /// Under an attachment tag (a referrers fallback index, cosign
    /// signatures): each digest with that tag.
    pub tagged: Vec<(Digest, Vec<String>)>,
    /// Listed by the referrers API, untagged: (referrer, subject).
    pub referrers: Vec<(Digest, Digest)>,
}

/// Reading the tags' facts failed.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Reading an image to learn when it was created.
    #[error(transparent)]
    Read(#[from] SourceError),
}

/// Reads what the policy needs: the digest of every tag, the creation time
/// of each manifest a matching tag points at, and the platforms every
/// tagged index lists (so the referrers of one a kept index shares stay).
pub fn gather(
    repository: &Repository,
    tags: &[String],
    policy: &PrunePolicy,
) -> Result<Vec<TagFacts>, PruneError> {
    let workers = repository.client().options().jobs;
    let digests =
        crate::parallel::for_each_at_once(tags, workers, |tag| repository.manifest_digest(tag))?;
    // A tag deleted since the listing has nothing left to keep or delete.
    let (tags, digests): (Vec<&String>, Vec<Digest>) = tags
        .iter()
        .zip(digests)
        .filter_map(|(tag, digest)| Some((tag, digest?)))
        .unzip();
    let mut seen = std::collections::HashSet::new();
    let wanted: Vec<&Digest> = tags
        .iter()
        .zip(&digests)
        .filter(|(tag, digest)| policy.patterns.is_match(tag) && seen.insert(*digest))
        .map(|(_, digest)| digest)
        .collect();
    let read = crate::parallel::for_each_at_once(&wanted, workers, |digest| {
        read_manifest(repository, digest)
    })?;
    let mut read: HashMap<Digest, (Option<i64>, Vec<Digest>)> =
        wanted.into_iter().cloned().zip(read).collect();
    // The others only for what they list: one manifest GET each.
    let others: Vec<&Digest> = digests
        .iter()
        .filter(|digest| seen.insert(*digest))
        .collect();
    let listed = crate::parallel::for_each_at_once(&others, workers, |digest| {
        listed_manifests(repository, digest)
    })?;
    read.extend(
        others
            .into_iter()
            .cloned()
            .zip(listed)
            .map(|(digest, children)| (digest, (None, children))),
    );
    Ok(tags
        .iter()
        .zip(digests)
        .map(|(tag, digest)| {
            let (created, children) = read.get(&digest).cloned().unwrap_or_default();
            TagFacts {
                tag: tag.to_string(),
                digest,
                created,
                children,
            }
        })
        .collect())
}

/// The manifests the one with `digest` lists: an index's children, none for
/// an image or an artifact.
pub fn listed_manifests(
    repository: &Repository,
    digest: &Digest,
) -> Result<Vec<Digest>, PruneError> {
    let fetched = repository.get_manifest(digest.as_ref())?;
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

/// The newest `created` among the images `reference` names, and the
/// manifests it lists.
fn read_manifest(
    repository: &Repository,
    digest: &Digest,
) -> Result<(Option<i64>, Vec<Digest>), PruneError> {
    let manifest = RegistrySource::new(repository.client().clone(), repository.with_digest(digest))
        .resolve()?;
    let children = match &manifest {
        crate::image::Manifest::Index(index) => index
            .children
            .iter()
            .map(|child| child.digest().clone())
            .collect(),
        crate::image::Manifest::Image(_) => Vec::new(),
    };
    let created = manifest
        .images()
        .iter()
        .filter_map(|image| {
            let config: serde_json::Value = serde_json::from_slice(image.config.bytes()).ok()?;
            let text = config.get("created")?.as_str()?;
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|time| time.timestamp())
        })
        .max();
    Ok((created, children))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::sha256_digest;

    fn facts(tag: &str, manifest: &str, created: Option<i64>) -> TagFacts {
        TagFacts {
            tag: tag.to_string(),
            digest: sha256_digest(manifest.as_bytes()),
            created,
            children: Vec::new(),
        }
    }

    fn policy(patterns: &[&str], keep: Option<usize>, created_before: Option<i64>) -> PrunePolicy {
        let mut set = globset::GlobSetBuilder::new();
        for pattern in patterns {
            set.add(globset::Glob::new(pattern).unwrap());
        }
        PrunePolicy {
            patterns: set.build().unwrap(),
            keep,
            created_before,
        }
    }

    fn deleted_tags(plan: &PrunePlan) -> Vec<Vec<&str>> {
        let mut tags: Vec<Vec<&str>> = plan
            .delete
            .iter()
            .map(|(_, tags)| tags.iter().map(String::as_str).collect())
            .collect();
        tags.sort();
        tags
    }

    #[test]
    fn the_newest_stay_and_a_manifest_with_a_kept_tag_is_not_deleted() {
        let tags = [
            facts("sha-a", "a", Some(100)),
            facts("sha-b", "b", Some(200)),
            facts("latest", "b", Some(200)),
            facts("sha-c", "c", Some(300)),
            facts("sha-d", "d", Some(400)),
            facts("pr-1", "p", Some(50)),
        ];
        let planned = plan(&tags, &policy(&["sha-*"], Some(1), None));
        assert_eq!(deleted_tags(&planned), [vec!["sha-a"], vec!["sha-c"]]);
        assert_eq!(
            planned.kept,
            [
                (
                    "sha-b".to_string(),
                    KeptBecause::Shared {
                        with: vec!["latest".to_string()]
                    }
                ),
                ("sha-d".to_string(), KeptBecause::Newest),
            ]
        );
    }

    #[test]
    fn a_deleted_image_takes_its_referrers_and_signature_along() {
        // Attestations are referrers of an index's platform manifest.
        let platform = sha256_digest(b"old linux/amd64");
        let old = TagFacts {
            children: vec![platform.clone()],
            ..facts("sha-old", "old", Some(1))
        };
        let kept = facts("sha-new", "new", Some(2));
        let tags = [
            facts(
                &crate::registry::referrers::fallback_tag(&platform),
                "referrers of old",
                None,
            ),
            facts(
                &crate::registry::referrers::signature_tag(&old.digest),
                "signature of old",
                None,
            ),
            facts(
                &crate::registry::referrers::signature_tag(&kept.digest),
                "signature of new",
                None,
            ),
            facts(
                &crate::registry::referrers::fallback_tag(&kept.digest),
                "referrers of new",
                None,
            ),
            old.clone(),
            kept,
        ];
        let planned = plan(&tags, &policy(&["sha-*"], Some(1), None));
        let old_referrers = crate::registry::referrers::fallback_tag(&platform);
        let old_signature = crate::registry::referrers::signature_tag(&old.digest);
        let gone = [
            vec!["sha-old"],
            vec![old_referrers.as_str()],
            vec![old_signature.as_str()],
        ];
        assert_eq!(deleted_tags(&planned), gone);
        // Matched by the pattern too (`sha*`), they are not also listed as kept.
        let planned = plan(&tags, &policy(&["sha*"], Some(1), None));
        assert_eq!(deleted_tags(&planned), gone);
        assert!(
            planned
                .kept
                .iter()
                .all(|(tag, _)| *tag != old_referrers && *tag != old_signature),
            "{:?}",
            planned.kept
        );
    }

    #[test]
    fn what_is_attached_to_an_attachment_goes_too() {
        use crate::registry::referrers::{fallback_tag, signature_tag};
        let platform = sha256_digest(b"old linux/amd64");
        let old = TagFacts {
            children: vec![platform.clone()],
            ..facts("sha-old", "old", Some(1))
        };
        // The platform's referrers index lists an SBOM attestation, which
        // is signed and has an attestation of its own.
        let attestation = sha256_digest(b"sbom of old linux/amd64");
        let referrers = TagFacts {
            children: vec![attestation.clone()],
            ..facts(&fallback_tag(&platform), "referrers of old", None)
        };
        let review = sha256_digest(b"review of the sbom");
        let attestation_referrers = TagFacts {
            children: vec![review.clone()],
            ..facts(&fallback_tag(&attestation), "referrers of the sbom", None)
        };
        let attestation_signature = facts(&signature_tag(&attestation), "signed sbom", None);
        // The review's own signature, three levels down.
        let review_signature = facts(&signature_tag(&review), "signed review", None);
        let kept = facts("sha-new", "new", Some(2));
        let unrelated = facts(
            &signature_tag(&sha256_digest(b"elsewhere")),
            "signature of something else",
            None,
        );
        let tags = [
            old,
            referrers.clone(),
            attestation_referrers.clone(),
            attestation_signature.clone(),
            review_signature.clone(),
            kept,
            unrelated,
        ];
        let planned = plan(&tags, &policy(&["sha-*"], Some(1), None));
        let mut gone = vec![
            vec!["sha-old"],
            vec![referrers.tag.as_str()],
            vec![attestation_referrers.tag.as_str()],
            vec![attestation_signature.tag.as_str()],
            vec![review_signature.tag.as_str()],
        ];
        gone.sort();
        assert_eq!(deleted_tags(&planned), gone);
    }

    #[test]
    fn subjects_going_are_the_deleted_and_what_they_list_less_what_stays() {
        let shared = sha256_digest(b"linux/amd64, built twice");
        let only_old = sha256_digest(b"linux/arm64 of the old build");
        let old = TagFacts {
            children: vec![shared.clone(), only_old.clone(), only_old.clone()],
            ..facts("sha-old", "old", Some(1))
        };
        let new = TagFacts {
            children: vec![shared.clone()],
            ..facts("sha-new", "new", Some(2))
        };
        let tags = [old.clone(), new];
        let delete = [(old.digest.clone(), vec!["sha-old".to_string()])];
        let children = children_of(&tags);
        assert_eq!(
            subjects_going(&tags, &delete, &children),
            [&old.digest, &only_old],
            "the shared platform stays, and each subject is asked once"
        );
    }

    #[test]
    fn api_referrers_with_a_tag_are_left_to_their_tags() {
        let tagged = facts("sbom", "a tagged referrer", None);
        let untagged_referrer = sha256_digest(b"an untagged referrer");
        let subject = sha256_digest(b"subject");
        let found = vec![
            (tagged.digest.clone(), subject.clone()),
            (untagged_referrer.clone(), subject.clone()),
            // Listed again under another subject: deleted once.
            (untagged_referrer.clone(), sha256_digest(b"another subject")),
        ];
        assert_eq!(untagged(found, &[tagged]), [(untagged_referrer, subject)]);
    }

    #[test]
    fn referrers_of_a_platform_a_kept_index_also_lists_stay() {
        // The same platform manifest in an old index and in the kept one
        // (a reproducible build pushed again with another index): its
        // attestations still describe the kept image.
        let shared = sha256_digest(b"linux/amd64, built twice");
        let only_old = sha256_digest(b"linux/arm64 of the old build");
        let old = TagFacts {
            children: vec![shared.clone(), only_old.clone()],
            ..facts("sha-old", "old", Some(1))
        };
        let new = TagFacts {
            children: vec![shared.clone()],
            ..facts("sha-new", "new", Some(2))
        };
        let fallback = crate::registry::referrers::fallback_tag;
        let tags = [
            facts(&fallback(&shared), "referrers of the shared platform", None),
            facts(&fallback(&only_old), "referrers of the old platform", None),
            old,
            new,
        ];
        let planned = plan(&tags, &policy(&["sha-*"], Some(1), None));
        assert_eq!(
            deleted_tags(&planned),
            [vec!["sha-old"], vec![fallback(&only_old).as_str()]]
        );
    }

    #[test]
    fn two_let_go_tags_on_one_manifest_delete_it_once() {
        let tags = [
            facts("pr-1", "x", Some(10)),
            facts("pr-1-rebuilt", "x", Some(10)),
            facts("pr-2", "y", Some(20)),
        ];
        let planned = plan(&tags, &policy(&["pr-*"], None, Some(15)));
        assert_eq!(deleted_tags(&planned), [vec!["pr-1", "pr-1-rebuilt"]]);
        assert_eq!(planned.kept, [("pr-2".to_string(), KeptBecause::Recent)]);
    }

    #[test]
    fn both_limits_must_let_a_tag_go_and_undated_tags_stay() {
        let tags = [
            facts("v1", "1", Some(100)),
            facts("v2", "2", Some(200)),
            facts("v3", "3", Some(300)),
            facts("v0", "0", None),
        ];
        // v1 and v2 are beyond the newest one, but only v1 is older than 150.
        let planned = plan(&tags, &policy(&["v*"], Some(1), Some(150)));
        assert_eq!(deleted_tags(&planned), [vec!["v1"]]);
        assert_eq!(
            planned.kept,
            [
                ("v0".to_string(), KeptBecause::NoCreationTime),
                ("v2".to_string(), KeptBecause::Recent),
                ("v3".to_string(), KeptBecause::Newest),
            ]
        );
        // Nothing matches: nothing moves.
        assert_eq!(
            plan(&tags, &policy(&["pr-*"], Some(0), None)),
            PrunePlan::default()
        );
    }
}
