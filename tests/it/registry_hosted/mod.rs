//! Cleanup through the hosted registries' own APIs, each served by a
//! loopback server written from the provider's API reference (the fakes
//! name the reference and commit they follow) and backed by a real
//! `docker-registry` for the manifests: GHCR through the GitHub REST API
//! (`github`, over `common::github_api`), Docker Hub through Hub's API and
//! registry (`hub`, over `common::hub_api`), and the distribution API
//! here. Whole builds are kept or deleted together; the dry-run plan is
//! what a run then deletes; a provider's token reaches its API's origin
//! and no other; a 5xx or rate limit is tried again.

mod github;
mod hub;

use crate::common::hoist::{HoistOutput, hoist};
use crate::common::registry::{TestRegistry, is_gone, sign_reference, signing_keys, skopeo_tags};
use crate::registry_tags::{push_created_with, push_image};

/// The digests of the events of `kind` in `--json` output, sorted.
pub(crate) fn event_digests(output: &HoistOutput, kind: &str) -> Vec<String> {
    let mut digests: Vec<String> = output
        .lines()
        .iter()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|event| event["event"] == kind)
        .map(|event| event["digest"].as_str().unwrap().to_string())
        .collect();
    digests.sort();
    digests
}

/// The manifests `repository@digest` lists if it is an index; a platform
/// manifest at the top of a build is its own one platform.
pub(crate) fn listed(reference: &str) -> Vec<String> {
    let raw = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    let top: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    match top["manifests"].as_array() {
        Some(children) => children
            .iter()
            .map(|child| child["digest"].as_str().unwrap().to_string())
            .collect(),
        None => {
            assert!(
                top["config"].is_object(),
                "neither index nor manifest: {top}"
            );
            let (_, digest) = reference.rsplit_once('@').unwrap();
            vec![digest.to_string()]
        }
    }
}

/// Build N of three is pushed as `sha-N` at these times, the first the
/// newest (each created in the other order, so the push time decides).
pub(crate) const PUSHED: [&str; 3] = ["2024-03-03", "2024-03-02", "2024-03-01"];

/// Pushes three builds of one file to `repository`, each an index (`--sbom`
/// puts attestations in it, so a build lists more than its platform),
/// build N created at 1000 N seconds as `sha-N` and tagged `FAMILY-N` for
/// each of `families` too; returns their digests.
pub(crate) fn push_three_builds(repository: &str, families: &[&str]) -> Vec<String> {
    (1..=3)
        .map(|number| {
            let digest = push_created_with(
                &format!("{repository}:sha-{number}"),
                &format!("build {number}\n"),
                1000 * number,
                &["--sbom"],
            );
            hoist(["tag", "-q", &format!("{repository}:sha-{number}")])
                .args(families.iter().map(|family| format!("{family}-{number}")))
                .run()
                .success();
            digest
        })
        .collect()
}

/// Builds `content` for `platforms` with SBOM attestation manifests in the
/// index (as BuildKit stores them), pushes it as `repository:tag` and
/// returns the index digest.
fn push_attested(repository: &str, tag: &str, platforms: &str, content: &str) -> String {
    let image = format!("name = \"app\"\nsource-date-epoch = 1000\nplatforms = [{platforms}]\n");
    push_image(&format!("{repository}:{tag}"), content, &image, &["--sbom"])
}

#[test]
fn distribution_prunes_whole_builds_and_the_plan_is_what_goes() {
    let registry = TestRegistry::start();
    let repository = format!("{}/acme/app", registry.host());
    let keys = signing_keys();
    // An old multi-platform build with attestations and a signature, and
    // a newer rebuild of the same files for one platform: they share
    // linux/amd64. Each carries three tags.
    let old = push_attested(
        &repository,
        "sha-1",
        "\"linux/amd64\", \"linux/arm64\"",
        "same\n",
    );
    sign_reference(&format!("{repository}:sha-1"), &keys);
    let new = push_attested(&repository, "sha-2", "\"linux/amd64\"", "same\n");
    for (number, _) in [(1, &old), (2, &new)] {
        hoist(["tag", "-q", &format!("{repository}:sha-{number}")])
            .args([format!("main-{number}"), format!("run-{number}")])
            .run()
            .success();
    }
    let kept_children = listed(&format!("{repository}@{new}"));
    let old_children = listed(&format!("{repository}@{old}"));
    let prune = [
        "prune",
        "--json",
        "--match",
        "sha-*",
        "--match",
        "main-*",
        "--match",
        "run-*",
        "--keep",
        "1",
        &repository,
    ];
    let mut dry = prune.to_vec();
    dry.push("--dry-run");
    let planned = hoist(&dry).run().success();
    assert!(
        planned.stdout.contains("\"dated_by\":\"created\""),
        "{}",
        planned.stdout
    );
    let would = event_digests(&planned, "would-delete");
    let pruned = hoist(prune).run().success();
    assert_eq!(
        event_digests(&pruned, "deleted"),
        would,
        "the plan is what goes"
    );

    assert!(would.contains(&old), "{}", planned.stdout);
    for child in &old_children {
        let shared = kept_children.contains(child);
        assert_eq!(
            is_gone(&format!("{repository}@{child}")),
            !shared,
            "{child}"
        );
    }
    for child in &kept_children {
        assert!(
            !is_gone(&format!("{repository}@{child}")),
            "{child} of the kept build"
        );
    }
    assert_eq!(skopeo_tags(&repository), ["main-2", "run-2", "sha-2"]);
}
