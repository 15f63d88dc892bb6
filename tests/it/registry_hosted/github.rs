//! GHCR through the GitHub REST API (`common::github_api`): a package of
//! an organisation, of the token's user, and of another user (behind a
//! GitHub Enterprise path); every call carries the token, the API version
//! and media type, and asks at most 100 a page; a 503 and a rate limit are
//! tried again; a refusal carries GitHub's message.

use super::{PUSHED, event_digests, listed, push_three_builds};
use crate::common::github_api::{GitHubApi, Seen, Setup};
use crate::common::hoist::{HoistOutput, hoist};
use crate::common::http::{TestServer, rate_limit_spent, reply};
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

/// The requests hoist made, each checked to carry the token, the API
/// version hoist reads, GitHub's media type and a page size GitHub gives;
/// returned as `METHOD path?query`.
fn well_formed(api: &GitHubApi) -> Vec<String> {
    let requests: Vec<Seen> = api.requests();
    for seen in &requests {
        let expected = [
            ("authorization", format!("Bearer {TOKEN}")),
            ("x-github-api-version", "2022-11-28".to_string()),
            ("accept", "application/vnd.github+json".to_string()),
        ];
        for (name, value) in expected {
            assert_eq!(seen.header(name), Some(value.as_str()), "{seen:?}");
        }
        if let Some((_, rest)) = seen.path.split_once("per_page=") {
            let asked: usize = rest.split('&').next().unwrap().parse().unwrap();
            assert!(asked <= 100, "GitHub gives at most 100 a page: {seen:?}");
        }
    }
    requests
        .iter()
        .map(|seen| format!("{} {}", seen.method, seen.path))
        .collect()
}

/// Whether every DELETE among `calls` went to a version under `listing`.
fn deletes_under(calls: &[String], listing: &str) -> bool {
    calls
        .iter()
        .filter(|call| call.starts_with("DELETE"))
        .all(|call| call.starts_with(&format!("DELETE {listing}/")))
}

/// A registry and the fake GitHub API for its package `acme/app`, owned as
/// `setup` says.
struct Ghcr {
    _registry: TestRegistry,
    api: GitHubApi,
    repository: String,
}

impl Ghcr {
    fn start(setup: Setup) -> Ghcr {
        let registry = TestRegistry::start();
        Ghcr {
            api: GitHubApi::start(&registry.host(), "acme/app", TOKEN, setup),
            repository: format!("{}/acme/app", registry.host()),
            _registry: registry,
        }
    }
}

fn organization() -> Setup {
    Setup {
        organization: true,
        login: "octocat".to_string(),
        prefix: String::new(),
    }
}

/// The package is the token's user's own.
fn token_user() -> Setup {
    Setup {
        organization: false,
        login: "acme".to_string(),
        prefix: String::new(),
    }
}

#[test]
fn ghcr_keeps_the_newest_builds_by_push_time_and_deletes_the_rest_whole() {
    let ghcr = Ghcr::start(organization());
    let (api, repository) = (&ghcr.api, &ghcr.repository);
    let builds = push_three_builds(repository, &["main", "run"]);
    for (digest, pushed) in builds.iter().zip(PUSHED) {
        api.pushed_at(digest, &format!("{pushed}T00:00:00Z"));
    }
    let prune = ["prune", "--json", "--match", "sha-*", "--match", "main-*"];
    let prune: Vec<&str> = prune
        .into_iter()
        .chain(["--match", "run-*", "--keep", "1", repository])
        .collect();
    let mut dry = prune.clone();
    dry.push("--dry-run");
    let planned = through_github(api, &dry).success();
    assert!(
        planned.stdout.contains("\"api\":\"github\"") && planned.stdout.contains("push-time"),
        "{}",
        planned.stdout
    );
    assert_eq!(
        skopeo_tags(repository).len(),
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

    let pruned = through_github(api, &prune).success();
    assert_eq!(
        event_digests(&pruned, "deleted"),
        would,
        "the plan is what goes"
    );
    assert_eq!(skopeo_tags(repository), ["main-1", "run-1", "sha-1"]);
    for digest in &children {
        assert!(is_gone(&format!("{repository}@{digest}")), "{digest}");
    }
    // The organisation's listing, pages followed, versions deleted there.
    let calls = well_formed(api);
    let listing = "/orgs/acme/packages/container/app/versions";
    assert!(
        calls.contains(&format!("GET {listing}?per_page=100&state=active")),
        "{calls:?}"
    );
    assert!(
        calls.iter().any(|call| call.contains("&page=2")),
        "{calls:?}"
    );
    let deletes: Vec<&String> = calls
        .iter()
        .filter(|call| call.starts_with("DELETE"))
        .collect();
    assert_eq!(deletes.len(), would.len(), "{calls:?}");
    assert!(
        deletes
            .iter()
            .all(|call| call.starts_with(&format!("DELETE {listing}/"))),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|call| call.contains("/user")),
        "{calls:?}"
    );
}

#[test]
fn ghcr_delete_on_pr_close_takes_the_whole_build_but_not_a_shared_platform() {
    // The token's user owns the package: its own listing has it.
    let ghcr = Ghcr::start(token_user());
    let (api, repository) = (&ghcr.api, &ghcr.repository);
    let project = tempfile::tempdir().unwrap();
    let keys = signing_keys();
    let both = push_with_sbom(
        repository,
        project.path(),
        "pr-42",
        "\"linux/amd64\", \"linux/arm64\"",
        "same\n",
    );
    sign_reference(&format!("{repository}:pr-42"), &keys);
    // A rebuild of the same files for one platform shares linux/amd64.
    let main = push_with_sbom(
        repository,
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

    let deleted = through_github(api, &["delete", &format!("{repository}:pr-42")]).success();
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
    let tags = skopeo_tags(repository);
    assert!(tags.contains(&"main".to_string()), "{tags:?}");
    assert!(
        !tags.contains(&signature_tag(&both)),
        "the signature went: {tags:?}"
    );
    assert!(!tags.contains(&"pr-42".to_string()));
    let calls = well_formed(api);
    let own = "/user/packages/container/app/versions";
    assert!(calls.contains(&"GET /user".to_string()), "{calls:?}");
    assert!(
        calls.contains(&format!("GET {own}?per_page=100&state=active")),
        "{calls:?}"
    );
    assert!(deletes_under(&calls, own), "{calls:?}");
    // Deleting it again names what is missing.
    through_github(api, &["delete", &format!("{repository}:pr-42")])
        .failure(1)
        .stderr_mentions(&["pr-42", "no such manifest"]);
}

#[test]
fn ghcr_untagged_builds_older_than_a_week_go_whole() {
    // Another user's package, behind GitHub Enterprise Server's path.
    let ghcr = Ghcr::start(Setup {
        organization: false,
        login: "octocat".to_string(),
        prefix: "/api/v3".to_string(),
    });
    let (api, repository) = (&ghcr.api, &ghcr.repository);
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
        api,
        &[
            "prune",
            "--json",
            "--untagged",
            "--older-than",
            "7d",
            repository,
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
    assert!(!is_gone(&format!("{repository}@{current}")));
    let calls = well_formed(api);
    let theirs = "/api/v3/users/acme/packages/container/app/versions";
    // The user listing takes no `state`.
    assert!(
        calls.contains(&format!("GET {theirs}?per_page=100")),
        "{calls:?}"
    );
    assert!(deletes_under(&calls, theirs), "{calls:?}");
}

#[test]
fn ghcr_tries_a_503_and_a_rate_limit_again_and_reports_a_refusal() {
    let ghcr = Ghcr::start(organization());
    let (api, repository) = (&ghcr.api, &ghcr.repository);
    let first = push_created(&format!("{repository}:pr-1"), "one\n", 1000);
    let second = push_created(&format!("{repository}:pr-2"), "two\n", 2000);
    let faults = api.faults();
    let wait_nothing = [("retry-after", "0".to_string())];
    faults.push(
        "GET",
        "/versions?",
        503,
        &wait_nothing,
        "Service Unavailable",
    );
    let spent = rate_limit_spent(5000);
    let message = "API rate limit exceeded for user ID 1.";
    faults.push("DELETE", "/versions/", 403, &spent, message);
    through_github(api, &["delete", &format!("{repository}:pr-1")]).success();
    assert!(is_gone(&format!("{repository}@{first}")));
    let calls = well_formed(api);
    let first_page = "GET /orgs/acme/packages/container/app/versions?per_page=100&state=active";
    assert_eq!(
        calls.iter().filter(|call| *call == first_page).count(),
        2,
        "{calls:?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|call| call.starts_with("DELETE"))
            .count(),
        2,
        "{calls:?}"
    );

    // A refusal is no rate limit: said once, with GitHub's message.
    api.downloaded_often(&second);
    through_github(api, &["delete", &format!("{repository}:pr-2")])
        .failure(1)
        .stderr_mentions(&["400", "more than 5000 downloads", "GitHub support"]);
    assert!(!is_gone(&format!("{repository}@{second}")));
    assert_eq!(
        well_formed(api)
            .iter()
            .filter(|call| call.starts_with("DELETE"))
            .count(),
        3
    );
}

#[test]
fn ghcr_without_a_token_says_which_scopes_to_give() {
    let ghcr = Ghcr::start(token_user());
    let (api, repository) = (&ghcr.api, &ghcr.repository);
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
        "http://{}/orgs/acme/packages/container/app/versions?page=2",
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
