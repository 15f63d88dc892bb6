//! An in-memory registry for the retention tests: tags, manifests with
//! what they list and when they were pushed, and referrers that an API
//! lists (or no referrers API at all), so the policy and the walk run
//! without a server. The cases that need a real registry (the requests
//! themselves) are in `tests/it/registry_tags.rs`.

use super::attachments::attachments_of;
use super::facts::{KeptBecause, PrunePlan, PrunePolicy, TagFacts, gather};
use super::policy::plan;
use super::{Dated, ImageRegistry, Pushed, RetentionError, add_api_referrers, gather_untagged};
use crate::oci::{Digest, sha256_digest};
use crate::registry::repository::referrers::{fallback_tag, signature_tag};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// What a test says of one tag: its manifest is named by `manifest`.
pub(super) fn facts(tag: &str, manifest: &str, created: Option<i64>) -> TagFacts {
    TagFacts {
        tag: tag.to_string(),
        digest: sha256_digest(manifest.as_bytes()),
        created,
        children: Vec::new(),
    }
}

pub(super) fn policy(
    patterns: &[&str],
    keep: Option<usize>,
    created_before: Option<i64>,
) -> PrunePolicy {
    let mut set = globset::GlobSetBuilder::new();
    for pattern in patterns {
        set.add(globset::Glob::new(pattern).unwrap());
    }
    PrunePolicy {
        patterns: set.build().unwrap(),
        keep,
        created_before,
        untagged: false,
    }
}

/// The tags of each manifest a plan deletes, sorted.
pub(super) fn deleted_tags(plan: &PrunePlan) -> Vec<Vec<&str>> {
    let mut tags: Vec<Vec<&str>> = plan
        .delete
        .iter()
        .map(|(_, tags)| tags.iter().map(String::as_str).collect())
        .collect();
    tags.sort();
    tags
}

#[derive(Default)]
struct FakeRegistry {
    tags: BTreeMap<String, Digest>,
    manifests: HashMap<Digest, Dated>,
    /// `None`: the registry has no referrers API.
    referrers: Option<HashMap<Digest, Vec<Digest>>>,
    /// Whether its API lists manifests without tags (as GHCR's does).
    lists_untagged: bool,
    deleted: Mutex<Vec<Digest>>,
}

impl FakeRegistry {
    fn with_referrers_api() -> Self {
        FakeRegistry {
            referrers: Some(HashMap::new()),
            ..FakeRegistry::default()
        }
    }

    /// A manifest named `name`, listing `children`, pushed at `time`.
    fn manifest(&mut self, name: &str, children: &[&Digest], time: Option<i64>) -> Digest {
        let digest = sha256_digest(name.as_bytes());
        let children = children.iter().map(|child| (*child).clone()).collect();
        self.manifests
            .insert(digest.clone(), Dated { time, children });
        digest
    }

    fn tag(&mut self, tag: &str, digest: &Digest) {
        self.tags.insert(tag.to_string(), digest.clone());
    }

    /// `referrer` as the API lists it for `subject`.
    fn refer(&mut self, subject: &Digest, referrer: &Digest) {
        if let Some(listed) = &mut self.referrers {
            listed
                .entry(subject.clone())
                .or_default()
                .push(referrer.clone());
        }
    }

    /// What `prune` decides: every tag read, the policy, then the API's referrers.
    fn prune(&self, policy: &PrunePolicy) -> PrunePlan {
        let facts = gather(self, &self.tags().unwrap(), policy).unwrap();
        let untagged = if policy.untagged {
            gather_untagged(self, &facts).unwrap().unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut planned = plan(&facts, &untagged, policy);
        add_api_referrers(self, &facts, &mut planned).unwrap();
        planned
    }

    fn known(&self, digest: &Digest) -> Result<&Dated, RetentionError> {
        self.manifests
            .get(digest)
            .ok_or(RetentionError::Unsupported {
                registry: "fake".to_string(),
                operation: "reading a manifest it does not have",
            })
    }
}

impl ImageRegistry for FakeRegistry {
    fn name(&self) -> String {
        "fake.example/app".to_string()
    }

    fn requests_at_once(&self) -> usize {
        2
    }

    fn tags(&self) -> Result<Vec<String>, RetentionError> {
        Ok(self.tags.keys().cloned().collect())
    }

    fn tag_digest(&self, tag: &str) -> Result<Option<Digest>, RetentionError> {
        Ok(self.tags.get(tag).cloned())
    }

    fn children(&self, digest: &Digest) -> Result<Vec<Digest>, RetentionError> {
        Ok(self.known(digest)?.children.clone())
    }

    fn dated(&self, digest: &Digest) -> Result<Dated, RetentionError> {
        self.known(digest).cloned()
    }

    fn api_referrers(&self, subject: &Digest) -> Result<Option<Vec<Digest>>, RetentionError> {
        Ok(self
            .referrers
            .as_ref()
            .map(|listed| listed.get(subject).cloned().unwrap_or_default()))
    }

    fn untagged(&self) -> Result<Option<Vec<Pushed>>, RetentionError> {
        if !self.lists_untagged {
            return Ok(None);
        }
        let mut listed: Vec<(Digest, Option<i64>)> = self
            .manifests
            .iter()
            .filter(|(digest, _)| !self.tags.values().any(|tagged| tagged == *digest))
            .map(|(digest, dated)| (digest.clone(), dated.time))
            .collect();
        listed.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        Ok(Some(listed))
    }

    fn delete_manifest(&self, digest: &Digest) -> Result<(), RetentionError> {
        self.known(digest)?;
        self.deleted.lock().unwrap().push(digest.clone());
        Ok(())
    }

    fn delete_manifest_if_present(&self, digest: &Digest) -> Result<bool, RetentionError> {
        self.delete_manifest(digest).map(|()| true)
    }

    fn delete_tag(&self, tag: &str) -> Result<(), RetentionError> {
        Err(RetentionError::Unsupported {
            registry: format!("{}:{tag}", self.name()),
            operation: "deleting a tag",
        })
    }
}

/// A multi-platform build: an index over `platforms`, pushed at `time`.
fn build(registry: &mut FakeRegistry, name: &str, platforms: &[&Digest], time: i64) -> Digest {
    registry.manifest(name, platforms, Some(time))
}

/// An old build (`sha-old`) and a new one (`sha-new`) that share their
/// amd64 manifest (a reproducible rebuild); the old one has an arm64 of
/// its own. Returns (shared, only old).
fn rebuilt_with_a_shared_platform(registry: &mut FakeRegistry) -> (Digest, Digest) {
    let shared = registry.manifest("amd64 built twice", &[], None);
    let only_old = registry.manifest("arm64 of the old build", &[], None);
    let old = build(registry, "old", &[&shared, &only_old], 1);
    let new = build(registry, "new", &[&shared], 2);
    registry.tag("sha-old", &old);
    registry.tag("sha-new", &new);
    (shared, only_old)
}

#[test]
fn a_kept_tag_keeps_its_build_and_only_whole_builds_go() {
    let mut registry = FakeRegistry::default();
    let old_platform = registry.manifest("old amd64", &[], None);
    let old = build(&mut registry, "old", &[&old_platform], 100);
    let middle = build(&mut registry, "middle", &[], 200);
    let new = build(&mut registry, "new", &[], 300);
    registry.tag("sha-old", &old);
    registry.tag("sha-middle", &middle);
    registry.tag("stable", &middle);
    registry.tag("sha-new", &new);
    let planned = registry.prune(&policy(&["sha-*"], Some(1), None));
    assert_eq!(deleted_tags(&planned), [vec!["sha-old"]]);
    assert!(planned.referrers.is_empty(), "no referrers API here");
    assert!(
        planned.kept.iter().any(|(tag, _)| tag == "sha-middle"),
        "{:?}",
        planned.kept
    );
    // The platform manifest goes with its index, not on its own.
    assert!(
        planned
            .delete
            .iter()
            .all(|(digest, _)| *digest != old_platform)
    );
}

#[test]
fn the_fallback_index_of_a_shared_platform_stays() {
    let mut registry = FakeRegistry::default();
    let (shared, only_old) = rebuilt_with_a_shared_platform(&mut registry);
    for (subject, name) in [(&shared, "sbom of shared"), (&only_old, "sbom of old")] {
        let index = registry.manifest(name, &[], None);
        registry.tag(&fallback_tag(subject), &index);
    }
    let planned = registry.prune(&policy(&["sha-*"], Some(1), None));
    let only_old_fallback = fallback_tag(&only_old);
    assert_eq!(
        deleted_tags(&planned),
        [vec!["sha-old"], vec![only_old_fallback.as_str()]]
    );
}

#[test]
fn signatures_of_attestations_go_however_deep() {
    let mut registry = FakeRegistry::default();
    let platform = registry.manifest("old amd64", &[], None);
    let old = build(&mut registry, "old", &[&platform], 1);
    let new = build(&mut registry, "new", &[], 2);
    let attestation = registry.manifest("attestation of old amd64", &[], None);
    let fallback = registry.manifest("fallback of old amd64", &[&attestation], None);
    let signed_attestation = registry.manifest("signature of the attestation", &[], None);
    let signed_signature = registry.manifest("signature of that signature", &[], None);
    let signed_new = registry.manifest("signature of new", &[], None);
    registry.tag("sha-old", &old);
    registry.tag("sha-new", &new);
    registry.tag(&fallback_tag(&platform), &fallback);
    registry.tag(&signature_tag(&attestation), &signed_attestation);
    registry.tag(&signature_tag(&signed_attestation), &signed_signature);
    registry.tag(&signature_tag(&new), &signed_new);
    let planned = registry.prune(&policy(&["sha-*"], Some(1), None));
    let mut gone = vec![
        vec!["sha-old".to_string()],
        vec![fallback_tag(&platform)],
        vec![signature_tag(&attestation)],
        vec![signature_tag(&signed_attestation)],
    ];
    gone.sort();
    let planned_tags: Vec<Vec<String>> = deleted_tags(&planned)
        .into_iter()
        .map(|tags| tags.into_iter().map(str::to_string).collect())
        .collect();
    assert_eq!(planned_tags, gone);
}

#[test]
fn untagged_referrers_the_api_lists_go_after_their_subject() {
    let mut registry = FakeRegistry::with_referrers_api();
    let (shared, only_old) = rebuilt_with_a_shared_platform(&mut registry);
    let sbom = registry.manifest("sbom of arm64", &[], None);
    let review = registry.manifest("review of that sbom", &[], None);
    let signed_review = registry.manifest("signature of the review", &[], None);
    let kept_sbom = registry.manifest("sbom of the shared amd64", &[], None);
    registry.refer(&only_old, &sbom);
    registry.refer(&sbom, &review);
    registry.refer(&shared, &kept_sbom);
    registry.tag(&signature_tag(&review), &signed_review);
    let planned = registry.prune(&policy(&["sha-*"], Some(1), None));
    assert_eq!(
        planned.referrers,
        [(sbom.clone(), only_old.clone()), (review.clone(), sbom)],
        "a referrer of a referrer goes too; the shared platform's stays"
    );
    assert_eq!(
        deleted_tags(&planned),
        [vec!["sha-old"], vec![signature_tag(&review).as_str()]]
    );
}

#[test]
fn deleting_one_image_finds_what_is_attached_to_it_and_its_platforms() {
    let mut registry = FakeRegistry::with_referrers_api();
    let platform = registry.manifest("amd64", &[], None);
    let image = build(&mut registry, "image", &[&platform], 1);
    let signature = registry.manifest("signature of image", &[], None);
    let sbom = registry.manifest("sbom of amd64", &[], None);
    registry.tag(&signature_tag(&image), &signature);
    registry.refer(&platform, &sbom);
    // `hoist delete` reads what the image lists, deletes it, then asks.
    let listed = registry.children(&image).unwrap();
    registry.delete_manifest(&image).unwrap();
    let attached = attachments_of(&registry, &image, &listed).unwrap();
    assert_eq!(
        attached.tagged,
        [(signature.clone(), vec![signature_tag(&image)])]
    );
    assert_eq!(attached.referrers, [(sbom, platform)]);
    // An image with nothing attached costs no listing of the tags.
    let bare = registry.manifest("bare", &[], None);
    assert_eq!(
        attachments_of(&registry, &bare, &[]).unwrap(),
        super::Attached::default()
    );
    assert_eq!(*registry.deleted.lock().unwrap(), [image]);
}

#[test]
fn keep_counts_builds_however_many_tag_families_each_carries() {
    let mut registry = FakeRegistry::default();
    let mut builds = Vec::new();
    for number in 1..=4 {
        let platform = registry.manifest(&format!("amd64 of build {number}"), &[], None);
        let index = build(
            &mut registry,
            &format!("build {number}"),
            &[&platform],
            number,
        );
        for family in ["sha", "main", "run"] {
            registry.tag(&format!("{family}-{number}"), &index);
        }
        builds.push((index, platform));
    }
    let planned = registry.prune(&policy(&["sha-*", "main-*", "run-*"], Some(2), None));
    assert_eq!(
        deleted_tags(&planned),
        [
            vec!["main-1", "run-1", "sha-1"],
            vec!["main-2", "run-2", "sha-2"]
        ],
        "two builds of three tags each stay, not two tags"
    );
    assert_eq!(planned.kept.len(), 6);
    assert_eq!(
        planned.children,
        [
            (builds[0].1.clone(), builds[0].0.clone()),
            (builds[1].1.clone(), builds[1].0.clone())
        ],
        "each deleted build's platform manifest goes after it"
    );
}

#[test]
fn untagged_builds_go_whole_and_a_platform_a_kept_one_lists_stays() {
    let mut registry = FakeRegistry {
        lists_untagged: true,
        ..FakeRegistry::default()
    };
    let shared = registry.manifest("amd64 built twice", &[], Some(1));
    let only_old = registry.manifest("arm64 of the old build", &[], Some(1));
    let attestation = registry.manifest("attestation of the old arm64", &[], Some(1));
    let old = build(
        &mut registry,
        "untagged old",
        &[&shared, &only_old, &attestation],
        1,
    );
    let recent = build(&mut registry, "untagged recent", &[&shared], 100);
    let tagged_platform = registry.manifest("amd64 of the tagged build", &[], Some(1));
    let tagged = build(&mut registry, "tagged", &[&tagged_platform], 1);
    registry.tag("sha-tagged", &tagged);
    let asked = PrunePolicy {
        untagged: true,
        ..policy(&[], None, Some(50))
    };
    let planned = registry.prune(&asked);
    assert_eq!(planned.delete, [(old.clone(), Vec::<String>::new())]);
    assert_eq!(
        planned.children,
        [(only_old, old.clone()), (attestation, old)],
        "the shared amd64 stays with the recent build; the tagged build's platform is no build of its own"
    );
    assert!(planned.delete.iter().all(|(digest, _)| *digest != recent));
    // A registry that cannot list untagged manifests deletes nothing.
    registry.lists_untagged = false;
    assert_eq!(registry.prune(&asked), PrunePlan::default());
}

#[test]
fn a_kept_top_that_a_deleted_index_lists_stays_with_what_is_attached_to_it() {
    // A single-platform rebuild pushes as its top the very manifest the
    // old index lists as its linux/amd64: the kept image IS that child.
    let mut registry = FakeRegistry::with_referrers_api();
    let shared = registry.manifest("amd64 built twice", &[], Some(2));
    let only_old = registry.manifest("arm64 of the old build", &[], None);
    let old = build(&mut registry, "old", &[&shared, &only_old], 1);
    registry.tag("sha-old", &old);
    registry.tag("sha-new", &shared);
    let signature = registry.manifest("signature of the rebuild", &[], None);
    registry.tag(&signature_tag(&shared), &signature);
    let sbom = registry.manifest("sbom of the rebuild", &[], None);
    registry.refer(&shared, &sbom);
    let planned = registry.prune(&policy(&["sha-*"], Some(1), None));
    assert_eq!(deleted_tags(&planned), [vec!["sha-old"]]);
    assert_eq!(planned.children, [(only_old.clone(), old.clone())]);
    assert!(planned.referrers.is_empty(), "{:?}", planned.referrers);
    // `hoist delete` of the old build leaves it too.
    let listed = registry.children(&old).unwrap();
    registry.tags.remove("sha-old");
    registry.delete_manifest(&old).unwrap();
    let attached = attachments_of(&registry, &old, &listed).unwrap();
    assert_eq!(attached.children, [(only_old, old.clone())]);
    assert!(attached.tagged.is_empty() && attached.referrers.is_empty());
    // Untagged old builds where the API lists them (GHCR) keep it as well.
    registry.lists_untagged = true;
    let asked = PrunePolicy {
        untagged: true,
        ..policy(&[], None, Some(50))
    };
    let planned = registry.prune(&asked);
    assert_eq!(planned.delete, [(old.clone(), Vec::<String>::new())]);
    assert!(planned.children.iter().all(|(child, _)| *child != shared));
}

#[test]
fn an_old_top_that_a_kept_index_lists_is_not_deleted() {
    // The old build was one platform; the new one adds arm64, and its
    // index lists the very manifest the old tag points at.
    let mut registry = FakeRegistry::default();
    let amd64 = registry.manifest("amd64 built twice", &[], Some(1));
    let arm64 = registry.manifest("arm64 of the new build", &[], None);
    let new = build(&mut registry, "new", &[&amd64, &arm64], 2);
    registry.tag("sha-old", &amd64);
    registry.tag("sha-new", &new);
    let planned = registry.prune(&policy(&["sha-*"], Some(1), None));
    assert!(planned.delete.is_empty(), "{:?}", planned.delete);
    assert!(planned.children.is_empty(), "{:?}", planned.children);
    assert!(planned.kept.contains(&(
        "sha-old".to_string(),
        KeptBecause::Listed {
            by: vec!["sha-new".to_string()]
        }
    )));
    // Once the index goes too, so does the old build.
    let planned = registry.prune(&policy(&["sha-*"], Some(0), None));
    assert_eq!(deleted_tags(&planned), [vec!["sha-new"], vec!["sha-old"]]);
}
