//! Cleanup through the hosted registries' own APIs, each served by a
//! loopback server written from the provider's API reference and backed by
//! a real `docker-registry` for the manifests: GHCR through the GitHub
//! REST API (`common::github_api`), Docker Hub through Hub's API
//! (`common::hub_api`). Whole builds are kept or deleted
//! together; the dry-run plan is what a run then deletes; a provider's
//! token reaches its API's origin and no other.

use crate::common::github_api::GitHubApi;
use crate::common::hoist::{HoistOutput, hoist};
use crate::common::http::{TestServer, reply};
use crate::common::hub_api::HubApi;
use crate::common::registry::{
    TestRegistry, is_gone, push_with_sbom, sign_reference, signature_tag, signing_keys, skopeo_tags,
};
use crate::registry_tags::{push_created, push_created_with};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "ghp_test-token";

/// `hoist ARGUMENTS` against the fake GitHub API, with its token.
fn through_github(api: &GitHubApi, arguments: &[&str]) -> HoistOutput {
    hoist(arguments)
        .env("GITHUB_API_URL", api.url())
        .env("GITHUB_TOKEN", TOKEN)
        .args(["--registry-api", "github"])
        .run()
}

/// The digests of the events of `kind` in `--json` output, sorted.
fn event_digests(output: &HoistOutput, kind: &str) -> Vec<String> {
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
fn listed(reference: &str) -> Vec<String> {
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

#[test]
fn ghcr_keeps_the_newest_builds_by_push_time_and_deletes_the_rest_whole() {
    let registry = TestRegistry::start();
    let repository = format!("{}/acme/app", registry.host());
    let api = GitHubApi::start(&registry.host(), "acme/app", TOKEN);
    // Created in one order, pushed in the other: the push time decides.
    let mut builds = Vec::new();
    for (number, pushed) in [(1, "2024-03-03"), (2, "2024-03-02"), (3, "2024-03-01")] {
        // `--sbom` puts attestations in an index, so each build lists more.
        let digest = push_created_with(
            &format!("{repository}:sha-{number}"),
            &format!("build {number}\n"),
            1000 * number,
            &["--sbom"],
        );
        hoist(["tag", "-q", &format!("{repository}:sha-{number}")])
            .args([format!("main-{number}"), format!("run-{number}")])
            .run()
            .success();
        api.pushed_at(&digest, &format!("{pushed}T00:00:00Z"));
        builds.push(digest);
    }
    let prune = ["prune", "--json", "--match", "sha-*", "--match", "main-*"];
    let prune: Vec<&str> = prune
        .into_iter()
        .chain(["--match", "run-*", "--keep", "1", &repository])
        .collect();
    let mut dry = prune.clone();
    dry.push("--dry-run");
    let planned = through_github(&api, &dry).success();
    assert!(
        planned.stdout.contains("\"api\":\"github\"") && planned.stdout.contains("push-time"),
        "{}",
        planned.stdout
    );
    assert_eq!(
        skopeo_tags(&repository).len(),
        9,
        "a dry run deletes nothing"
    );
    let would = event_digests(&planned, "would-delete");
    let children: Vec<String> = listed(&format!("{repository}@{}", builds[1]))
        .into_iter()
        .chain(listed(&format!("{repository}@{}", builds[2])))
        .collect();
    for digest in builds[1..].iter().chain(&children) {
        assert!(would.contains(digest), "{digest} in {}", planned.stdout);
    }

    let pruned = through_github(&api, &prune).success();
    assert_eq!(
        event_digests(&pruned, "deleted"),
        would,
        "the plan is what goes"
    );
    assert_eq!(skopeo_tags(&repository), ["main-1", "run-1", "sha-1"]);
    for digest in &children {
        assert!(is_gone(&format!("{repository}@{digest}")), "{digest}");
    }
    // Every call to the API carried the token; nothing else asked.
    assert!(
        api.requests()
            .iter()
            .all(|(_, _, authorization)| authorization.as_deref()
                == Some(&format!("Bearer {TOKEN}"))),
        "{:?}",
        api.requests()
    );
}

#[test]
fn ghcr_delete_on_pr_close_takes_the_whole_build_but_not_a_shared_platform() {
    let registry = TestRegistry::start();
    let repository = format!("{}/acme/app", registry.host());
    let api = GitHubApi::start(&registry.host(), "acme/app", TOKEN);
    let project = tempfile::tempdir().unwrap();
    let keys = signing_keys();
    let both = push_with_sbom(
        &repository,
        project.path(),
        "pr-42",
        "\"linux/amd64\", \"linux/arm64\"",
        "same\n",
    );
    sign_reference(&format!("{repository}:pr-42"), &keys);
    // A rebuild of the same files for one platform shares linux/amd64.
    let main = push_with_sbom(
        &repository,
        project.path(),
        "main",
        "\"linux/amd64\"",
        "same\n",
    );
    let shared = listed(&format!("{repository}@{main}"));
    let platforms = listed(&format!("{repository}@{both}"));
    assert!(platforms.contains(&shared[0]));
    let only_pr = platforms
        .iter()
        .find(|digest| **digest != shared[0])
        .unwrap();

    let deleted = through_github(&api, &["delete", &format!("{repository}:pr-42")]).success();
    assert!(deleted.stdout.contains("GitHub") || deleted.stdout.contains("github"));
    assert!(is_gone(&format!("{repository}@{both}")));
    assert!(
        is_gone(&format!("{repository}@{only_pr}")),
        "{}",
        deleted.stdout
    );
    assert!(
        !is_gone(&format!("{repository}@{}", shared[0])),
        "the shared platform stays"
    );
    let tags = skopeo_tags(&repository);
    assert!(tags.contains(&"main".to_string()), "{tags:?}");
    assert!(
        !tags.contains(&signature_tag(&both)),
        "the signature went: {tags:?}"
    );
    assert!(!tags.contains(&"pr-42".to_string()));
    // Deleting it again names what is missing.
    through_github(&api, &["delete", &format!("{repository}:pr-42")])
        .failure(1)
        .stderr_mentions(&["pr-42", "no such manifest"]);
}

#[test]
fn ghcr_untagged_builds_older_than_a_week_go_whole() {
    let registry = TestRegistry::start();
    let repository = format!("{}/acme/app", registry.host());
    let api = GitHubApi::start(&registry.host(), "acme/app", TOKEN);
    // Pushing `nightly` again leaves the build before without a tag.
    // `--sbom` puts attestations in an index: the old build lists them.
    let old = push_created_with(&format!("{repository}:nightly"), "old\n", 1000, &["--sbom"]);
    let recent = push_created(&format!("{repository}:nightly"), "recent\n", 2000);
    let current = push_created(&format!("{repository}:nightly"), "current\n", 3000);
    api.add_untagged(&old);
    api.add_untagged(&recent);
    api.pushed_at(&old, "2020-01-01T00:00:00Z");
    api.pushed_at(&recent, "2999-01-01T00:00:00Z");
    api.pushed_at(&current, "2020-01-01T00:00:00Z");
    let old_platforms = listed(&format!("{repository}@{old}"));
    let pruned = through_github(
        &api,
        &[
            "prune",
            "--json",
            "--untagged",
            "--older-than",
            "7d",
            &repository,
        ],
    )
    .success();
    let mut expected: Vec<String> = std::iter::once(old.clone()).chain(old_platforms).collect();
    expected.sort();
    assert_eq!(
        event_digests(&pruned, "deleted"),
        expected,
        "{}",
        pruned.stdout
    );
    assert!(!is_gone(&format!("{repository}@{recent}")));
    assert!(!is_gone(&format!("{repository}:nightly")));
}

#[test]
fn ghcr_without_a_token_says_which_scopes_to_give() {
    let registry = TestRegistry::start();
    let repository = format!("{}/acme/app", registry.host());
    let api = GitHubApi::start(&registry.host(), "acme/app", TOKEN);
    push_created(&format!("{repository}:pr-1"), "one\n", 1000);
    hoist([
        "delete",
        "--registry-api",
        "github",
        &format!("{repository}:pr-1"),
    ])
    .env("GITHUB_API_URL", api.url())
    .env("GITHUB_TOKEN", "ghp_wrong")
    .run()
    .failure(1)
    .stderr_mentions(&["401", "Bad credentials", "read:packages", "delete:packages"]);
    assert!(!is_gone(&format!("{repository}:pr-1")));
}

#[test]
fn a_github_token_never_reaches_another_origin() {
    // The API's next page points at another server: hoist refuses it
    // rather than send the token there.
    let elsewhere_seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = elsewhere_seen.clone();
    let elsewhere = TestServer::start(move |request| {
        let seen = seen.clone();
        async move {
            let authorization = request
                .headers()
                .get("authorization")
                .map(|value| value.to_str().unwrap().to_string());
            seen.lock().unwrap().push(authorization);
            reply(
                200,
                &[("content-type", "application/json".to_string())],
                "[]",
            )
        }
    });
    let next = format!(
        "http://{}/users/acme/packages/container/app/versions?page=2",
        elsewhere.host()
    );
    let api = TestServer::start(move |_request| {
        let next = next.clone();
        async move {
            reply(
                200,
                &[
                    ("content-type", "application/json".to_string()),
                    ("link", format!("<{next}>; rel=\"next\"")),
                ],
                "[]",
            )
        }
    });
    let registry = TestRegistry::start();
    hoist([
        "prune",
        "--registry-api",
        "github",
        "--match",
        "pr-*",
        "--keep",
        "1",
    ])
    .arg(format!("{}/acme/app", registry.host()))
    .env("GITHUB_API_URL", format!("http://{}", api.host()))
    .env("GITHUB_TOKEN", TOKEN)
    .run()
    .failure(1)
    .stderr_mentions(&["is not on", "refused"]);
    assert!(
        elsewhere_seen.lock().unwrap().iter().all(Option::is_none),
        "{:?}",
        elsewhere_seen.lock().unwrap()
    );
}

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
    let mut builds = Vec::new();
    for (number, pushed) in [(1, "2024-03-03"), (2, "2024-03-02"), (3, "2024-03-01")] {
        // `--sbom` puts attestations in an index, so each build lists more.
        let digest = push_created_with(
            &format!("{repository}:sha-{number}"),
            &format!("build {number}\n"),
            1000 * number,
            &["--sbom"],
        );
        hoist(["tag", "-q", &format!("{repository}:sha-{number}")])
            .arg(format!("main-{number}"))
            .run()
            .success();
        for family in ["sha", "main"] {
            api.pushed_at(
                &format!("{family}-{number}"),
                &format!("{pushed}T00:00:00.000000Z"),
            );
        }
        builds.push(digest);
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

/// Builds `content` for `platforms` with SBOM attestation manifests in the
/// index (as BuildKit stores them), pushes it as `repository:tag` and
/// returns the index digest.
fn push_attested(repository: &str, tag: &str, platforms: &str, content: &str) -> String {
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(project.path().join("app")).unwrap();
    std::fs::write(project.path().join("app/content.txt"), content).unwrap();
    std::fs::write(
        project.path().join("hoist.toml"),
        format!(
            "[[image]]\nname = \"app\"\nsource-date-epoch = 1000\nplatforms = [{platforms}]\n\
             [[image.layer]]\nsource = \"app\"\ntarget = \"/app\"\n"
        ),
    )
    .unwrap();
    hoist(["build", "-q", "--no-cache", "--sbom", "-o"])
        .arg(format!("docker://{repository}:{tag}"))
        .current_dir(project.path())
        .run()
        .success()
        .last_line_digest()
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
