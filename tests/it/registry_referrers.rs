//! A registry with the OCI 1.1 referrers API (Docker Hub, ECR, Harbor, zot
//! and distribution 3 have one; GHCR and distribution 2.8 do not): the
//! hoist binary attaches SBOMs as referrers without a fallback tag, lists
//! them back through the API, and `prune` and `delete` take an image's
//! untagged referrers along (and a signature of one, under its own tag),
//! never those of a platform manifest an image that stays lists too. The
//! API is a thin layer over a real `docker-registry`
//! (tests/common/referrers_api.rs); skopeo reads back what the registry
//! holds.

use crate::common;

use crate::common::hoist::hoist;
use crate::common::referrers_api::ReferrersRegistry;
use crate::common::registry::{
    TestRegistry, is_gone, push_with_sbom, sign_reference, signature_tag, signing_keys, skopeo_raw,
    skopeo_tags,
};

/// The platform manifests of the index `index` in `repository`.
fn platforms(repository: &str, index: &str) -> Vec<String> {
    common::registry::platform_manifests(repository, index)
        .into_iter()
        .map(|(_, digest)| digest)
        .collect()
}

#[test]
fn attestations_go_through_the_api_without_a_fallback_tag() {
    let registry = TestRegistry::start();
    let api = ReferrersRegistry::start(&registry);
    let repository = format!("{}/team/app", api.host());
    let project = tempfile::tempdir().unwrap();
    let index = push_with_sbom(
        &repository,
        project.path(),
        "1",
        "\"linux/amd64\", \"linux/arm64\"",
        "one\n",
    );
    assert!(api.queries() > 0, "the build asked the referrers API");
    // No `sha256-<hex>` tags: the registry indexes referrers itself.
    assert_eq!(skopeo_tags(&repository), ["1"]);
    let platforms = platforms(&repository, &index);
    assert_eq!(platforms.len(), 2);
    for platform in &platforms {
        // Its SBOM and its provenance.
        let types = api.artifact_types_of(platform);
        assert_eq!(types.len(), 2, "{platform}: {types:?}");
        assert!(types.iter().any(|kind| kind.contains("spdx")), "{types:?}");
        for referrer in api.referrers_of(platform) {
            // Stored in the real registry, by digest.
            let raw = skopeo_raw(&format!("{repository}@{referrer}"), &["--tls-verify=false"]);
            let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
            assert_eq!(manifest["subject"]["digest"], platform.as_str());
        }
    }

    let listed = hoist(["attestations", &format!("docker://{repository}:1")])
        .run()
        .success();
    for platform in &platforms {
        assert!(
            listed.stdout.contains(platform.as_str()),
            "{platform} listed with its SBOM:\n{}",
            listed.stdout
        );
    }
    assert!(
        listed.stdout.to_lowercase().contains("spdx"),
        "{}",
        listed.stdout
    );
}

#[test]
fn prune_deletes_the_untagged_referrers_of_what_it_deletes() {
    let registry = TestRegistry::start();
    let api = ReferrersRegistry::start(&registry);
    let repository = format!("{}/team/app", api.host());
    let platform_list = "\"linux/amd64\", \"linux/arm64\"";
    let old = push_with_sbom(
        &repository,
        tempfile::tempdir().unwrap().path(),
        "sha-1",
        platform_list,
        "old\n",
    );
    // Both built at the same epoch: `--keep 1` keeps the later name.
    let new = push_with_sbom(
        &repository,
        tempfile::tempdir().unwrap().path(),
        "sha-2",
        platform_list,
        "new\n",
    );
    let old_referrers: Vec<String> = platforms(&repository, &old)
        .iter()
        .flat_map(|platform| api.referrers_of(platform))
        .collect();
    let new_platforms = platforms(&repository, &new);
    // An SBOM and a provenance statement for each platform.
    assert_eq!(old_referrers.len(), 4);
    // One of the old attestations is signed: its signature sits under a
    // tag naming the attestation, and goes with it.
    let keys = signing_keys();
    sign_reference(&format!("{repository}@{}", old_referrers[0]), &keys);
    let attestation_signature = signature_tag(&old_referrers[0]);
    assert_eq!(skopeo_tags(&repository), {
        let mut tags = vec![
            attestation_signature.clone(),
            "sha-1".into(),
            "sha-2".into(),
        ];
        tags.sort();
        tags
    });

    let dry = hoist([
        "prune",
        "--match",
        "sha-*",
        "--keep",
        "1",
        "--dry-run",
        &repository,
    ])
    .run()
    .success();
    for referrer in &old_referrers {
        assert!(
            dry.stdout
                .contains(&format!("would delete {referrer} (a referrer of")),
            "{}",
            dry.stdout
        );
        assert!(!is_gone(&format!("{repository}@{referrer}")));
    }
    assert!(
        dry.stdout.contains(&format!("({attestation_signature})")),
        "{}",
        dry.stdout
    );
    assert_eq!(api.all_referrers().len(), 8, "a dry run deletes nothing");

    let pruned = hoist(["prune", "--match", "sha-*", "--keep", "1", &repository])
        .run()
        .success();
    assert!(
        pruned.stdout.contains("deleted 6 manifests"),
        "the old index, its four referrers and the signature of one:\n{}",
        pruned.stdout
    );
    for referrer in &old_referrers {
        assert!(is_gone(&format!("{repository}@{referrer}")), "{referrer}");
    }
    assert!(is_gone(&format!("{repository}@{old}")));
    let left: Vec<String> = api.all_referrers().into_iter().map(|(s, _)| s).collect();
    let mut expected: Vec<String> = new_platforms
        .iter()
        .flat_map(|platform| [platform.clone(), platform.clone()])
        .collect();
    expected.sort();
    let mut left_sorted = left.clone();
    left_sorted.sort();
    assert_eq!(left_sorted, expected, "the kept image keeps its SBOMs");
    assert_eq!(skopeo_tags(&repository), ["sha-2"]);
}

#[test]
fn delete_takes_referrers_along_but_not_those_of_a_shared_platform() {
    // The same files and epoch built for two platforms and then for one:
    // two indexes sharing one linux/amd64 manifest and its SBOM.
    let registry = TestRegistry::start();
    let api = ReferrersRegistry::start(&registry);
    let repository = format!("{}/team/app", api.host());
    let project = tempfile::tempdir().unwrap();
    let old = push_with_sbom(
        &repository,
        project.path(),
        "old",
        "\"linux/amd64\", \"linux/arm64\"",
        "same\n",
    );
    let new = push_with_sbom(
        &repository,
        project.path(),
        "new",
        "\"linux/amd64\"",
        "same\n",
    );
    let shared = platforms(&repository, &new);
    assert_eq!(shared.len(), 1);
    let only_old: Vec<String> = platforms(&repository, &old)
        .into_iter()
        .filter(|platform| !shared.contains(platform))
        .collect();
    assert_eq!(only_old.len(), 1);
    let shared_attached = api.referrers_of(&shared[0]);
    let old_attached = api.referrers_of(&only_old[0]);
    assert_eq!((shared_attached.len(), old_attached.len()), (2, 2));
    // A signed attestation of each: the shared one's signature stays with
    // it, the old one's goes with it.
    let keys = signing_keys();
    for attestation in [&shared_attached[0], &old_attached[0]] {
        sign_reference(&format!("{repository}@{attestation}"), &keys);
    }

    let deleted = hoist(["delete", &format!("{repository}:old")])
        .run()
        .success();
    assert!(
        deleted.stdout.contains(&format!(
            "{repository}:{} (",
            signature_tag(&old_attached[0])
        )),
        "{}",
        deleted.stdout
    );
    assert_eq!(
        skopeo_tags(&repository),
        ["new", signature_tag(&shared_attached[0]).as_str()],
        "the shared attestation keeps its signature"
    );
    assert!(
        deleted
            .stdout
            .contains(&format!("a referrer of {}", only_old[0])),
        "{}",
        deleted.stdout
    );
    for referrer in &old_attached {
        assert!(is_gone(&format!("{repository}@{referrer}")));
    }
    for referrer in &shared_attached {
        assert!(!is_gone(&format!("{repository}@{referrer}")));
    }
    assert_eq!(api.referrers_of(&shared[0]), shared_attached);

    // --keep-attachments leaves them.
    let again = push_with_sbom(
        &repository,
        project.path(),
        "again",
        "\"linux/arm64\"",
        "again\n",
    );
    let again_platform = platforms(&repository, &again);
    hoist([
        "delete",
        "--keep-attachments",
        &format!("{repository}:again"),
    ])
    .run()
    .success();
    assert_eq!(api.referrers_of(&again_platform[0]).len(), 2);
}

#[test]
fn referrers_a_registry_deleted_with_their_subject_are_not_an_error() {
    // Some registries take a deleted manifest's referrers, and those of the
    // untagged manifests it listed, along: those prune planned to delete
    // are gone when it comes to them.
    let registry = TestRegistry::start();
    let api = ReferrersRegistry::start_with(&registry, true);
    let repository = format!("{}/team/app", api.host());
    let platform = "\"linux/amd64\"";
    let old = push_with_sbom(
        &repository,
        tempfile::tempdir().unwrap().path(),
        "sha-1",
        platform,
        "old\n",
    );
    push_with_sbom(
        &repository,
        tempfile::tempdir().unwrap().path(),
        "sha-2",
        platform,
        "new\n",
    );
    let old_platform = platforms(&repository, &old);
    let old_referrers = api.referrers_of(&old_platform[0]);
    assert_eq!(old_referrers.len(), 2);
    let pruned = hoist(["prune", "--match", "sha-*", "--keep", "1", &repository])
        .run()
        .success();
    for referrer in &old_referrers {
        assert!(
            pruned.stdout.contains(&format!(
                "{referrer} (a referrer of {}) went with it",
                old_platform[0]
            )),
            "{}",
            pruned.stdout
        );
        assert!(is_gone(&format!("{repository}@{referrer}")));
    }
    assert!(
        pruned.stdout.contains("deleted 1 manifests"),
        "only the index was deleted by hoist:\n{}",
        pruned.stdout
    );
    assert_eq!(skopeo_tags(&repository), ["sha-2"]);
}
