//! Docker Hub through Hub's API and registry (`common::hub_api`): tags go
//! through the API, then the untagged manifests through the registry,
//! which refuses any a tag or another manifest still refers to; the
//! password goes to the token endpoint alone; a 429 is tried again and an
//! expired token renewed.

use super::{PUSHED, event_digests, listed, push_three_builds};
use crate::common::hoist::{HoistOutput, hoist};
use crate::common::http::rate_limit_spent;
use crate::common::hub_api::HubApi;
use crate::common::registry::{
    TestRegistry, is_gone, registry_digest, sign_reference, signature_tag, signing_keys,
    skopeo_tags,
};
use crate::registry_tags::push_created;

/// `hoist ARGUMENTS` against the fake Hub, signed in as `user:secret`.
fn through_hub(api: &HubApi, arguments: &[&str]) -> HoistOutput {
    hoist(arguments)
        .env("HOIST_DOCKERHUB_API_URL", api.url())
        .args(["--registry-api", "dockerhub", "--creds", "user:secret"])
        .run()
}

/// A registry, the fake Hub in front of it, where tests push (the
/// registry itself) and the repository hoist cleans up (through Hub).
struct Hub {
    _registry: TestRegistry,
    api: HubApi,
    pushed_to: String,
    repository: String,
}

impl Hub {
    fn start() -> Hub {
        let registry = TestRegistry::start();
        let api = HubApi::start(&registry, "acme/app", "user", "secret");
        Hub {
            pushed_to: format!("{}/acme/app", registry.host()),
            repository: format!("{}/acme/app", api.registry_host()),
            _registry: registry,
            api,
        }
    }
}

/// The API requests as `METHOD path?query`, each checked: the password
/// only to the token endpoint, Hub's token on the rest, and pages of at
/// most 100 tags.
fn well_formed(api: &HubApi) -> Vec<String> {
    let requests = api.requests();
    for (method, path, authorization) in &requests {
        if path == "/v2/auth/token" {
            assert_eq!(method, "POST");
            assert!(authorization.is_none(), "{path}");
        } else {
            assert!(
                authorization
                    .as_deref()
                    .is_some_and(|value| value.starts_with("Bearer hub-access-token-")),
                "{method} {path}: {authorization:?}"
            );
        }
        if path.contains("/tags?") {
            assert!(path.contains("page_size=100"), "{path}");
        }
    }
    requests
        .iter()
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect()
}

#[test]
fn dockerhub_keeps_the_newest_builds_by_push_time_and_deletes_the_rest_whole() {
    let hub = Hub::start();
    let (api, pushed_to, repository) = (&hub.api, &hub.pushed_to, &hub.repository);
    api.list_digests();
    let builds = push_three_builds(pushed_to, &["main"]);
    for (number, pushed) in (1..=3).zip(PUSHED) {
        for family in ["sha", "main"] {
            api.pushed_at(
                &format!("{family}-{number}"),
                &format!("{pushed}T00:00:00.000000Z"),
            );
        }
    }
    let kept_children = listed(&format!("{pushed_to}@{}", builds[0]));
    let children: Vec<String> = listed(&format!("{pushed_to}@{}", builds[1]))
        .into_iter()
        .chain(listed(&format!("{pushed_to}@{}", builds[2])))
        .collect();
    let prune = [
        "prune", "--json", "--match", "sha-*", "--match", "main-*", "--keep", "1",
    ];
    let mut prune: Vec<&str> = prune.to_vec();
    prune.push(repository);
    let mut dry = prune.clone();
    dry.push("--dry-run");
    let planned = through_hub(api, &dry).success();
    assert!(
        planned.stdout.contains("\"api\":\"dockerhub\""),
        "{}",
        planned.stdout
    );
    assert!(api.deleted().is_empty(), "a dry run deletes nothing");
    let would = event_digests(&planned, "would-delete");
    let mut expected: Vec<String> = builds[1..].iter().chain(&children).cloned().collect();
    expected.sort();
    assert_eq!(would, expected, "{}", planned.stdout);

    let pruned = through_hub(api, &prune).success();
    assert_eq!(
        event_digests(&pruned, "deleted"),
        would,
        "the plan is what goes"
    );
    assert_eq!(api.deleted(), ["main-2", "main-3", "sha-2", "sha-3"]);
    for digest in &would {
        assert!(is_gone(&format!("{pushed_to}@{digest}")), "{digest}");
    }
    for digest in std::iter::once(&builds[0]).chain(&kept_children) {
        assert!(!is_gone(&format!("{pushed_to}@{digest}")), "{digest} stays");
    }
    assert_eq!(skopeo_tags(repository), ["main-1", "sha-1"]);
    // Each manifest went once, untagged and listed by nothing by then.
    let deletes = api.manifest_deletes();
    assert_eq!(deletes.len(), would.len(), "{deletes:?}");
    assert!(
        deletes.iter().all(|(_, status)| *status == 202),
        "{deletes:?}"
    );
    let calls = well_formed(api);
    assert!(
        calls.iter().any(|call| call.contains("/tags?page=2&")),
        "the next page was followed: {calls:?}"
    );
    // Hub cannot list untagged manifests, and says so.
    through_hub(api, &["prune", "--untagged", repository])
        .success()
        .stderr_mentions(&["cannot list images without a tag"]);
}

#[test]
fn dockerhub_delete_on_pr_close_takes_the_image_and_its_signature() {
    // Tags listed without digests, as Hub's reference has them: hoist
    // asks the registry.
    let hub = Hub::start();
    let (api, pushed_to, repository) = (&hub.api, &hub.pushed_to, &hub.repository);
    let keys = signing_keys();
    let digest = push_created(&format!("{pushed_to}:pr-42"), "pr\n", 1000);
    sign_reference(&format!("{pushed_to}:pr-42"), &keys);
    let signature = registry_digest(&format!("{pushed_to}:{}", signature_tag(&digest)));
    push_created(&format!("{pushed_to}:main"), "main\n", 2000);
    through_hub(api, &["delete", &format!("{repository}:pr-42")]).success();
    assert_eq!(api.deleted(), ["pr-42".to_string(), signature_tag(&digest)]);
    assert!(is_gone(&format!("{pushed_to}@{digest}")));
    assert!(is_gone(&format!("{pushed_to}@{signature}")));
    assert!(!is_gone(&format!("{pushed_to}:main")));
    well_formed(api);
    through_hub(api, &["delete", &format!("{repository}:pr-42")])
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

#[test]
fn dockerhub_tries_a_rate_limit_again_and_signs_in_again_when_the_token_ends() {
    let hub = Hub::start();
    let (api, pushed_to, repository) = (&hub.api, &hub.pushed_to, &hub.repository);
    let digest = push_created(&format!("{pushed_to}:pr-1"), "one\n", 1000);
    push_created(&format!("{pushed_to}:pr-2"), "two\n", 2000);
    let mut limited = vec![("retry-after", "0".to_string())];
    limited.extend(rate_limit_spent(180));
    let faults = api.faults();
    faults.push("GET", "/tags", 429, &limited, "Rate limit exceeded");
    let ended = "Authentication credentials were not provided.";
    faults.push("DELETE", "/tags/pr-1/", 401, &[], ended);
    through_hub(api, &["delete", &format!("{repository}:pr-1")]).success();
    assert_eq!(api.deleted(), ["pr-1"]);
    assert!(is_gone(&format!("{pushed_to}@{digest}")));
    assert!(!is_gone(&format!("{pushed_to}:pr-2")));
    let calls = well_formed(api);
    let count = |wanted: &str| calls.iter().filter(|call| call.starts_with(wanted)).count();
    assert_eq!(count("POST /v2/auth/token"), 2, "{calls:?}");
    assert_eq!(
        count("GET /v2/namespaces/acme/repositories/app/tags?page_size=100"),
        2,
        "{calls:?}"
    );
    assert_eq!(
        count("DELETE /v2/repositories/acme/app/tags/pr-1/"),
        2,
        "{calls:?}"
    );
}
