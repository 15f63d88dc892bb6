//! The attachment walk: what goes with a manifest that is deleted. Its
//! referrers (listed by the referrers API where the registry has it, else
//! by the index under its fallback tag `sha256-<hex>`) and its cosign
//! signatures (`sha256-<hex>.sig`) go with it, and what is attached to
//! those the same ways in turn, unless an image that stays is or lists the
//! same platform manifest. Used by [`super::policy::plan`] for `hoist
//! prune` and by [`attachments_of`] for `hoist delete`.

use super::facts::{PrunePlan, PrunePolicy, TagFacts, gather};
use super::{ImageRegistry, RetentionError};
use crate::oci::Digest;
use std::collections::{HashMap, HashSet};

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
pub(super) fn all_attachments_going(
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
    registry: &dyn ImageRegistry,
    tags: &[TagFacts],
    plan: &mut PrunePlan,
) -> Result<(), RetentionError> {
    let children = children_of(tags);
    let subjects = subjects_going(tags, &plan.delete, &children);
    let listed = untagged(api_referrers(registry, &subjects)?, tags);
    let known: HashSet<Digest> = plan
        .delete
        .iter()
        .map(|(digest, _)| digest.clone())
        .chain(subjects.into_iter().cloned())
        .collect();
    let beneath = beneath_referrers(registry, tags, listed, known)?;
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
    registry: &dyn ImageRegistry,
    tags: &[TagFacts],
    first: Vec<(Digest, Digest)>,
    mut known: HashSet<Digest>,
) -> Result<Beneath, RetentionError> {
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
        for (referrer, subject) in untagged(api_referrers(registry, &subjects)?, tags) {
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
    registry: &dyn ImageRegistry,
    subjects: &[&Digest],
) -> Result<Vec<(Digest, Digest)>, RetentionError> {
    let Some((first, rest)) = subjects.split_first() else {
        return Ok(Vec::new());
    };
    let Some(first_listed) = registry.api_referrers(first)? else {
        return Ok(Vec::new());
    };
    let workers = registry.requests_at_once();
    let mut listings = vec![Some(first_listed)];
    listings.extend(crate::parallel::for_each_at_once(
        rest,
        workers,
        |subject| registry.api_referrers(subject),
    )?);
    Ok(subjects
        .iter()
        .zip(listings)
        .flat_map(|(subject, listed)| {
            listed
                .unwrap_or_default()
                .into_iter()
                .map(|referrer| (referrer, (*subject).clone()))
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
        super::super::referrers::fallback_tag(subject),
        super::super::referrers::signature_tag(subject),
    ]
}

/// The tags on each manifest.
pub(super) fn tags_on_manifest(tags: &[TagFacts]) -> HashMap<&Digest, Vec<&str>> {
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
pub(super) fn children_of(tags: &[TagFacts]) -> HashMap<&Digest, &[Digest]> {
    tags.iter()
        .map(|facts| (&facts.digest, facts.children.as_slice()))
        .collect()
}

/// What goes with the manifest `digest`, which has just been deleted and
/// listed `listed` (read before, with [`ImageRegistry::children`]), under
/// the rule `prune` follows. Asked after the
/// delete, so a registry that refuses it costs no more reads; the
/// repository's tags are read only when the manifest or one it listed has
/// an attachment at all, so deleting an image without any costs a few
/// HEADs and one referrers query.
pub fn attachments_of(
    registry: &dyn ImageRegistry,
    digest: &Digest,
    listed: &[Digest],
) -> Result<Attached, RetentionError> {
    let subjects: Vec<&Digest> = std::iter::once(digest).chain(listed).collect();
    let candidates: Vec<String> = subjects
        .iter()
        .flat_map(|subject| attachment_tags(subject))
        .collect();
    let workers = registry.requests_at_once();
    let found =
        crate::parallel::for_each_at_once(&candidates, workers, |tag| registry.tag_digest(tag))?;
    let referrers = api_referrers(registry, &subjects)?;
    if found.iter().all(Option::is_none) && referrers.is_empty() && listed.is_empty() {
        return Ok(Attached::default());
    }
    let tags = registry.tags()?;
    let nothing_matches = PrunePolicy {
        patterns: globset::GlobSet::empty(),
        keep: None,
        created_before: None,
        untagged: false,
    };
    let facts = gather(registry, &tags, &nothing_matches)?;
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
    let beneath = beneath_referrers(registry, &facts, untagged(referrers, &facts), known)?;
    tagged.extend(beneath.tagged);
    // What it and its tagged attachments listed, less what stays listed.
    let mut parents = vec![(digest.clone(), Vec::new())];
    parents.extend(tagged.iter().cloned());
    let mut with_deleted = facts.clone();
    with_deleted.push(TagFacts {
        tag: String::new(),
        digest: digest.clone(),
        created: None,
        children: listed.to_vec(),
    });
    let children = super::builds::children_going(&with_deleted, &[], &parents);
    Ok(Attached {
        tagged,
        children,
        referrers: beneath.referrers,
    })
}

/// What was attached to a deleted manifest, to delete after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attached {
    /// Under an attachment tag (a referrers fallback index, cosign
    /// signatures): each digest with that tag.
    pub tagged: Vec<(Digest, Vec<String>)>,
    /// What those listed (platform and attestation manifests, a fallback
    /// index's referrers) that no image that stays lists: (child, parent).
    pub children: Vec<(Digest, Digest)>,
    /// Listed by the referrers API, untagged: (referrer, subject).
    pub referrers: Vec<(Digest, Digest)>,
}

#[cfg(test)]
mod tests {
    use super::super::fake::facts;
    use super::*;
    use crate::oci::sha256_digest;

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
}
