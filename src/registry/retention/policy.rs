//! The tag policy: which of a repository's builds may go, and which
//! manifests can then be deleted. `--keep N` counts builds (the manifests
//! matching tags point at), not tags: a build tagged `sha-…`, `main` and
//! `1.2` is one. A registry deletes manifests, not tags, and every tag on
//! a manifest goes with it, so a manifest is deleted only when every tag
//! on it is let go; `latest` pointing at an old `sha-` build keeps that
//! build. Nor is a manifest an image that stays lists: a single-platform
//! build pushes its platform manifest, which a later index may list too.
//! What is attached to a manifest that goes is found by
//! [`super::attachments`], what it lists by [`super::builds`].

use super::attachments::all_attachments_going;
use super::builds::{UntaggedImage, children_going, untagged_going};
use super::facts::{KeptBecause, PrunePlan, PrunePolicy, TagFacts};
use crate::oci::Digest;
use std::collections::{HashMap, HashSet};

/// The matching tags the policy lets go, newest build first, and those
/// it keeps with why; whether their manifests can go is [`plan`]'s
/// question. Builds are counted, not tags: every matching tag on one
/// manifest stays or goes together.
fn let_go<'a>(
    tags: &'a [TagFacts],
    policy: &PrunePolicy,
) -> (Vec<&'a TagFacts>, Vec<(String, KeptBecause)>) {
    let mut builds: Vec<(&Digest, Option<i64>, Vec<&TagFacts>)> = Vec::new();
    for facts in tags
        .iter()
        .filter(|facts| policy.patterns.is_match(&facts.tag))
    {
        match builds
            .iter_mut()
            .find(|(digest, _, _)| **digest == facts.digest)
        {
            Some((_, _, on_build)) => on_build.push(facts),
            None => builds.push((&facts.digest, facts.created, vec![facts])),
        }
    }
    // Newest first; the same time orders by name, newest-looking first.
    let newest_name = |on_build: &[&TagFacts]| on_build.iter().map(|facts| facts.tag.clone()).max();
    builds.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| newest_name(&b.2).cmp(&newest_name(&a.2)))
    });
    let mut kept = Vec::new();
    let mut let_go: Vec<&TagFacts> = Vec::new();
    let mut dated = 0;
    for (_, created, on_build) in builds {
        let why = match created {
            None => Some(KeptBecause::NoCreationTime),
            Some(created) => {
                dated += 1;
                if policy.keep.is_some_and(|keep| dated <= keep) {
                    Some(KeptBecause::Newest)
                } else if policy
                    .created_before
                    .is_some_and(|cutoff| created >= cutoff)
                {
                    Some(KeptBecause::Recent)
                } else {
                    None
                }
            }
        };
        match why {
            Some(why) => kept.extend(
                on_build
                    .iter()
                    .map(|facts| (facts.tag.clone(), why.clone())),
            ),
            None => let_go.extend(on_build),
        }
    }
    (let_go, kept)
}

/// Decides what goes. `tags` is every tag of the repository: a manifest is
/// deleted only when all the tags on it, matching or not, are let go.
/// `untagged` are the top-level images without a tag, where the registry
/// can list them ([`super::gather_untagged`]).
pub fn plan(tags: &[TagFacts], untagged: &[UntaggedImage], policy: &PrunePolicy) -> PrunePlan {
    let (let_go, mut kept) = let_go(tags, policy);
    let going: HashSet<&str> = let_go.iter().map(|facts| facts.tag.as_str()).collect();
    let on_manifest = super::attachments::tags_on_manifest(tags);
    let listers = listed_by_staying(tags, &going);
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
        } else if let Some(by) = listers.get(&facts.digest) {
            kept.push((facts.tag.clone(), KeptBecause::Listed { by: by.clone() }));
        } else if !delete.iter().any(|(digest, _)| *digest == facts.digest) {
            let mut tags: Vec<String> = all.iter().map(|tag| tag.to_string()).collect();
            tags.sort();
            delete.push((facts.digest.clone(), tags));
        }
    }
    for digest in untagged_going(untagged, policy) {
        delete.push((digest, Vec::new()));
    }
    let attached = all_attachments_going(tags, &delete, &super::attachments::children_of(tags));
    for attachment in attached {
        // A tag of these matched by `--match` itself is not kept for want
        // of a creation time once its subject goes.
        kept.retain(|(tag, _)| *tag != attachment.1[0]);
        if !delete.iter().any(|(digest, _)| *digest == attachment.0) {
            delete.push(attachment);
        }
    }
    // In the order of their tags' names, so a dry run reads the same each time.
    delete.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.as_ref().cmp(b.0.as_ref())));
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    PrunePlan {
        children: children_going(tags, untagged, &delete),
        delete,
        referrers: Vec::new(),
        kept,
    }
}

/// For each manifest an image under a tag that stays lists, those tags,
/// sorted: deleting such a manifest would break the image that lists it.
fn listed_by_staying<'a>(
    tags: &'a [TagFacts],
    going: &HashSet<&str>,
) -> HashMap<&'a Digest, Vec<String>> {
    let mut listers: HashMap<&Digest, Vec<String>> = HashMap::new();
    for facts in tags
        .iter()
        .filter(|facts| !going.contains(facts.tag.as_str()))
    {
        for child in &facts.children {
            listers.entry(child).or_default().push(facts.tag.clone());
        }
    }
    for by in listers.values_mut() {
        by.sort();
        by.dedup();
    }
    listers
}

#[cfg(test)]
mod tests {
    use super::super::fake::{deleted_tags, facts, policy};
    use super::*;
    use crate::oci::sha256_digest;

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
        let planned = plan(&tags, &[], &policy(&["sha-*"], Some(1), None));
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
                &crate::registry::repository::referrers::fallback_tag(&platform),
                "referrers of old",
                None,
            ),
            facts(
                &crate::registry::repository::referrers::signature_tag(&old.digest),
                "signature of old",
                None,
            ),
            facts(
                &crate::registry::repository::referrers::signature_tag(&kept.digest),
                "signature of new",
                None,
            ),
            facts(
                &crate::registry::repository::referrers::fallback_tag(&kept.digest),
                "referrers of new",
                None,
            ),
            old.clone(),
            kept,
        ];
        let planned = plan(&tags, &[], &policy(&["sha-*"], Some(1), None));
        let old_referrers = crate::registry::repository::referrers::fallback_tag(&platform);
        let old_signature = crate::registry::repository::referrers::signature_tag(&old.digest);
        let gone = [
            vec!["sha-old"],
            vec![old_referrers.as_str()],
            vec![old_signature.as_str()],
        ];
        assert_eq!(deleted_tags(&planned), gone);
        // Matched by the pattern too (`sha*`), they are not also listed as kept.
        let planned = plan(&tags, &[], &policy(&["sha*"], Some(1), None));
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
        use crate::registry::repository::referrers::{fallback_tag, signature_tag};
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
        let planned = plan(&tags, &[], &policy(&["sha-*"], Some(1), None));
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
        let fallback = crate::registry::repository::referrers::fallback_tag;
        let tags = [
            facts(&fallback(&shared), "referrers of the shared platform", None),
            facts(&fallback(&only_old), "referrers of the old platform", None),
            old,
            new,
        ];
        let planned = plan(&tags, &[], &policy(&["sha-*"], Some(1), None));
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
        let planned = plan(&tags, &[], &policy(&["pr-*"], None, Some(15)));
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
        let planned = plan(&tags, &[], &policy(&["v*"], Some(1), Some(150)));
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
            plan(&tags, &[], &policy(&["pr-*"], Some(0), None)),
            PrunePlan::default()
        );
    }
}
