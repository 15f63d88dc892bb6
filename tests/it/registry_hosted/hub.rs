//! Docker Hub through Hub's API (`common::hub_api`): tags go through the
//! API; the password goes to the token endpoint alone.

use super::{PUSHED, event_digests, push_three_builds};
use crate::common::hoist::{HoistOutput, hoist};
use crate::common::hub_api::HubApi;
use crate::common::registry::{TestRegistry, sign_reference, signature_tag, signing_keys};
use crate::registry_tags::push_created;

/// `hoist ARGUMENTS` against the fake Hub API, signed in as `user:secret`.
fn through_hub(api: &HubApi, arguments: &[&str]) -> HoistOutput {
    hoist(arguments)
        .env("HOIST_DOCKERHUB_API_URL", api.url())
        .args(["--registry-api", "dockerhub", "--creds", "user:secret"])
        .run()
}

#[test]
fn dockerhub_keeps_the_newest_builds_by_push_time_and_deletes_their_tags() {
    let registry = TestRegistry::start();
    let repository = format!("{}/acme/app", registry.host());
    let api = HubApi::start(&registry.host(), "acme/app", "user", "secret");
    let builds = push_three_builds(&repository, &["main"]);
    for (number, pushed) in (1..=3).zip(PUSHED) {
        for family in ["sha", "main"] {
            api.pushed_at(
                &format!("{family}-{number}"),
                &format!("{pushed}T00:00:00.000000Z"),
            );
        }
    }
    let prune = [
        "prune", "--json", "--match", "sha-*", "--match", "main-*", "--keep", "1",
    ];
    let mut prune: Vec<&str> = prune.to_vec();
    prune.push(&repository);
    let mut dry = prune.clone();
    dry.push("--dry-run");
    let planned = through_hub(&api, &dry).success();
    assert!(
        planned.stdout.contains("\"api\":\"dockerhub\""),
        "{}",
        planned.stdout
    );
    assert!(api.deleted().is_empty(), "a dry run deletes nothing");
    let would = event_digests(&planned, "would-delete");
    let mut expected = builds[1..].to_vec();
    expected.sort();
    assert_eq!(would, expected, "{}", planned.stdout);
    assert!(
        planned.stdout.contains("deletes tags only"),
        "{}",
        planned.stdout
    );

    let pruned = through_hub(&api, &prune).success();
    assert_eq!(
        event_digests(&pruned, "deleted"),
        would,
        "the plan is what goes"
    );
    assert_eq!(api.deleted(), ["main-2", "main-3", "sha-2", "sha-3"]);
    // The password went to the token endpoint alone; the rest carried Hub's token.
    for (method, path, authorization) in api.requests() {
        if path == "/v2/auth/token" {
            assert_eq!(method, "POST");
        } else {
            assert_eq!(
                authorization.as_deref(),
                Some("Bearer hub-access-token"),
                "{path}"
            );
        }
    }
    // Hub cannot list untagged manifests, and says so.
    through_hub(&api, &["prune", "--untagged", &repository])
        .success()
        .stderr_mentions(&["cannot list images without a tag"]);
}

#[test]
fn dockerhub_delete_on_pr_close_takes_the_signature_tag_along() {
    let registry = TestRegistry::start();
    let repository = format!("{}/acme/app", registry.host());
    let api = HubApi::start(&registry.host(), "acme/app", "user", "secret");
    let keys = signing_keys();
    let digest = push_created(&format!("{repository}:pr-42"), "pr\n", 1000);
    sign_reference(&format!("{repository}:pr-42"), &keys);
    push_created(&format!("{repository}:main"), "main\n", 2000);
    through_hub(&api, &["delete", &format!("{repository}:pr-42")]).success();
    assert_eq!(api.deleted(), ["pr-42".to_string(), signature_tag(&digest)]);
    through_hub(&api, &["delete", &format!("{repository}:pr-42")])
        .failure(1)
        .stderr_mentions(&["pr-42", "no such manifest"]);
    hoist([
        "delete",
        "--registry-api",
        "dockerhub",
        "--creds",
        "user:wrong",
    ])
    .arg(format!("{repository}:main"))
    .env("HOIST_DOCKERHUB_API_URL", api.url())
    .run()
    .failure(1)
    .stderr_mentions(&[
        "401",
        "Incorrect authentication credentials",
        "personal access token",
    ]);
}
