//! A repository's tags after the push, through the `hoist` binary against a
//! real `docker-registry`: `hoist ls` (with `--match`), `hoist tag` moving a
//! tag back to an earlier digest without a blob upload, `hoist delete` by
//! tag and by digest, and a registry that refuses deletes. skopeo reads back
//! what the registry holds. Paging through a long tag list is checked
//! against a hand-written server, since this registry answers every tag in
//! one page.

use crate::common;

use crate::common::hoist::{fixture, hoist};
use crate::common::http::{TestServer, error_reply, query_values, reply};
use crate::common::registry::{
    RegistryConfig, TestRegistry, is_gone, push_with_sbom, registry_digest, sign_reference,
    signature_tag, signing_keys, skopeo_tags,
};
use std::sync::{Arc, Mutex};

/// Builds the example image into `reference` and returns its digest.
fn push_hello(reference: &str) -> String {
    hoist(["build", "-q", "--no-cache", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("docker://{reference}"))
        .run()
        .success()
        .last_line_digest()
}

/// Builds a one-file image, different from the example, into `reference`.
fn push_other(reference: &str, content: &str) -> String {
    push_created(reference, content, 1_700_000_000)
}

/// Builds a one-file image created at `epoch` (Unix seconds) into `reference`.
pub(crate) fn push_created(reference: &str, content: &str, epoch: u64) -> String {
    push_created_with(reference, content, epoch, &[])
}

/// As [`push_created`], with more `hoist build` arguments.
pub(crate) fn push_created_with(
    reference: &str,
    content: &str,
    epoch: u64,
    extra: &[&str],
) -> String {
    let image = format!("name = \"other\"\nsource-date-epoch = {epoch}\n");
    push_image(reference, content, &image, extra)
}

/// Builds an image of one file holding `content`, its `[[image]]` keys
/// `image` (TOML lines), into `reference` with `extra` `hoist build`
/// arguments; returns the digest at the top.
pub(crate) fn push_image(reference: &str, content: &str, image: &str, extra: &[&str]) -> String {
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(project.path().join("app")).unwrap();
    std::fs::write(project.path().join("app/content.txt"), content).unwrap();
    std::fs::write(
        project.path().join("hoist.toml"),
        format!("[[image]]\n{image}[[image.layer]]\nsource = \"app\"\ntarget = \"/app\"\n"),
    )
    .unwrap();
    hoist(["build", "-q", "--no-cache", "-o"])
        .arg(format!("docker://{reference}"))
        .args(extra)
        .current_dir(project.path())
        .run()
        .success()
        .last_line_digest()
}

#[test]
fn ls_lists_the_tags_skopeo_sees_and_match_filters_them() {
    let registry = TestRegistry::start();
    let repository = format!("{}/team/app", registry.host());
    push_hello(&format!("{repository}:1.0.0"));
    hoist(["tag", "-q", &format!("{repository}:1.0.0")])
        .args(["latest", "pr-7", "pr-12", "sha-3f2a9c1"])
        .run()
        .success();

    let listed = hoist(["ls", &repository]).run().success();
    assert_eq!(listed.lines(), skopeo_tags(&repository));
    assert_eq!(
        listed.lines(),
        ["1.0.0", "latest", "pr-12", "pr-7", "sha-3f2a9c1"],
        "sorted"
    );

    let matched = hoist(["ls", "--json", "--match", "pr-*", "--match", "sha-*"])
        .arg(format!("docker://{repository}"))
        .run()
        .success();
    let value: serde_json::Value = serde_json::from_str(matched.stdout.trim()).unwrap();
    assert_eq!(value["repository"], repository);
    assert_eq!(
        value["tags"],
        serde_json::json!(["pr-12", "pr-7", "sha-3f2a9c1"])
    );

    // A tag on the repository is a mistake, not a request for `latest`.
    hoist(["ls", &format!("{repository}:latest")])
        .run()
        .failure(1)
        .stderr_mentions(&["without a tag or digest"]);
    hoist(["ls", &format!("{}/team/nothing", registry.host())])
        .run()
        .failure(1)
        .stderr_mentions(&["team/nothing", "404"]);
}

#[test]
fn tag_moves_a_tag_back_to_an_earlier_digest_without_uploading() {
    let registry = TestRegistry::start();
    let repository = format!("{}/team/app", registry.host());
    let first = push_hello(&format!("{repository}:latest"));
    let second = push_other(&format!("{repository}:latest"), "second\n");
    assert_ne!(first, second);
    assert_eq!(registry_digest(&format!("{repository}:latest")), second);

    let uploads_before = registry.count_requests("POST", "/blobs/uploads/");
    let tagged = hoist(["tag", &format!("{repository}@{first}"), "latest", "stable"])
        .run()
        .success();
    assert_eq!(tagged.last_line_digest(), first);
    assert!(
        tagged
            .stdout
            .contains(&format!("{repository}:stable now points at {first}")),
        "{}",
        tagged.stdout
    );
    for tag in ["latest", "stable"] {
        assert_eq!(
            registry_digest(&format!("{repository}:{tag}")),
            first,
            "{tag}"
        );
    }
    assert_eq!(
        registry.count_requests("POST", "/blobs/uploads/"),
        uploads_before,
        "a tag moves no blob"
    );

    // Every new tag is checked before any moves.
    hoist(["tag", &format!("{repository}:latest"), "next", "not a tag"])
        .run()
        .failure(1)
        .stderr_mentions(&["not a tag", "must be 1 to 128 characters"]);
    assert!(is_gone(&format!("{repository}:next")));
    // A source naming neither tag nor digest is refused, not read as latest.
    hoist(["tag", &repository, "next"])
        .run()
        .failure(1)
        .stderr_mentions(&["REPOSITORY:TAG or REPOSITORY@DIGEST"]);
}

#[test]
fn delete_removes_the_manifest_a_tag_or_digest_names_and_nothing_else() {
    let registry = TestRegistry::start();
    let repository = format!("{}/team/app", registry.host());
    let hello = push_hello(&format!("{repository}:pr-7"));
    hoist(["tag", "-q", &format!("{repository}:pr-7"), "pr-7-again"])
        .run()
        .success();
    let kept = push_other(&format!("{repository}:main"), "main\n");
    let old = push_other(&format!("{repository}:pr-8"), "pr-8\n");

    let deleted = hoist(["delete", "-q"])
        .arg(format!("{repository}:pr-7"))
        .arg(format!("docker://{repository}@{old}"))
        .run()
        .success();
    // Each image first, then the platform manifests its index listed.
    let lines = deleted.lines();
    assert_eq!(lines[0], hello, "{}", deleted.stdout);
    assert!(lines.contains(&old.as_str()), "{}", deleted.stdout);
    // The manifest went, and with it every tag that pointed at it.
    for tag in ["pr-7", "pr-7-again", "pr-8"] {
        assert!(is_gone(&format!("{repository}:{tag}")), "{tag}");
    }
    assert!(is_gone(&format!("{repository}@{hello}")));
    assert_eq!(registry_digest(&format!("{repository}:main")), kept);
    assert_eq!(skopeo_tags(&repository), ["main"]);

    hoist(["delete", &format!("{repository}:pr-7")])
        .run()
        .failure(1)
        .stderr_mentions(&["team/app:pr-7", "no such manifest"]);
    // A reference naming neither tag nor digest is refused, not read as latest.
    hoist(["delete", &repository])
        .run()
        .failure(1)
        .stderr_mentions(&["name the manifest to delete"]);
    assert_eq!(registry_digest(&format!("{repository}:main")), kept);
}

#[test]
fn delete_takes_what_is_attached_to_the_image_along_but_not_what_another_shares() {
    // The same files built for two platforms and then for one, each with
    // an SBOM as a referrer of its platform manifests and a cosign
    // signature: the linux/amd64 manifest, and its referrers, are shared.
    let registry = TestRegistry::start();
    let repository = format!("{}/team/app", registry.host());
    let project = tempfile::tempdir().unwrap();
    let keys = signing_keys();
    let push = |tag: &str, platforms: &str, content: &str| -> String {
        let digest = push_with_sbom(&repository, project.path(), tag, platforms, content);
        sign(&repository, tag, &keys);
        digest
    };
    let both = push("both", "\"linux/amd64\", \"linux/arm64\"", "same\n");
    let one = push("one", "\"linux/amd64\"", "same\n");
    let platforms = platform_fallback_tags(&repository, &both);
    let shared = platform_fallback_tags(&repository, &one)[0].1.clone();
    let arm64 = platforms
        .iter()
        .find(|(architecture, _)| architecture == "arm64")
        .unwrap()
        .1
        .clone();

    // --keep-attachments deletes the manifest alone, as crane does.
    let other = push("other", "\"linux/amd64\"", "other\n");
    let other_platform = platform_fallback_tags(&repository, &other)[0].1.clone();
    hoist([
        "delete",
        "--keep-attachments",
        &format!("{repository}:other"),
    ])
    .run()
    .success();
    let left = skopeo_tags(&repository);
    assert!(left.contains(&signature_tag(&other)) && left.contains(&other_platform));

    let deleted = hoist(["delete", &format!("{repository}:both")])
        .run()
        .success();
    assert!(deleted.stdout.contains(&arm64), "{}", deleted.stdout);
    assert!(
        deleted.stdout.contains(&signature_tag(&both)),
        "{}",
        deleted.stdout
    );
    let mut expected = vec![
        "one".to_string(),
        shared,
        signature_tag(&one),
        other_platform,
        signature_tag(&other),
    ];
    expected.sort();
    assert_eq!(skopeo_tags(&repository), expected, "{}", deleted.stdout);
}

#[test]
fn a_registry_that_refuses_deletes_says_how_to_allow_them() {
    let registry = TestRegistry::start_with(RegistryConfig {
        deletes_refused: true,
        ..RegistryConfig::default()
    });
    let repository = format!("{}/team/app", registry.host());
    let digest = push_hello(&format!("{repository}:1"));
    assert_delete_refused(&repository, &digest, "405");
    assert_eq!(registry_digest(&format!("{repository}:1")), digest);
}

/// `hoist delete REPOSITORY:1` fails naming the manifest, the registry's
/// `status` and how to get deletes.
fn assert_delete_refused(repository: &str, digest: &str, status: &str) {
    hoist(["delete", &format!("{repository}:1")])
        .run()
        .failure(1)
        .stderr_mentions(&[
            format!("{repository}@{digest}").as_str(),
            "does not allow deletes",
            status,
            "storage: delete: enabled: true",
            "ECR",
        ]);
}

#[test]
fn a_404_to_the_delete_of_a_manifest_the_registry_has_is_a_refusal() {
    // ECR is reported to answer 404 to the API's DELETE: a proxy in front of
    // the real registry does the same, while HEAD still finds the manifest.
    let registry = TestRegistry::start();
    let proxy = common::proxy::start_proxy(&registry, |upstream, request| async move {
        if request.method() == hyper::Method::DELETE {
            return error_reply(404, "MANIFEST_UNKNOWN", "Requested image not found");
        }
        upstream.forward(request).await
    });
    let repository = format!("{}/team/app", proxy.host());
    let digest = push_other(&format!("{repository}:1"), "kept\n");
    assert_delete_refused(&repository, &digest, "404");
    // A digest the registry does not have is missing, not refused.
    let missing = format!("sha256:{}", "0".repeat(64));
    hoist(["delete", &format!("{repository}@{missing}")])
        .run()
        .failure(1)
        .stderr_mentions(&["no such manifest"]);
}

/// A registry's tag list split into pages of two, each pointing at the next
/// with a `Link` header as GHCR and Docker Hub send it; records the `n` and
/// `last` it was asked for.
fn paging_registry(tags: Vec<String>, asked: Arc<Mutex<Vec<(String, String)>>>) -> TestServer {
    TestServer::start(move |request| {
        let tags = tags.clone();
        let asked = asked.clone();
        async move {
            let path = request.uri().path().to_string();
            if path == "/v2/" {
                return reply(200, &[], "{}");
            }
            if path != "/v2/team/app/tags/list" {
                return error_reply(404, "NAME_UNKNOWN", "no such repository");
            }
            let last = query_values(request.uri(), "last")
                .pop()
                .unwrap_or_default();
            let n = query_values(request.uri(), "n").pop().unwrap_or_default();
            asked.lock().unwrap().push((n, last.clone()));
            let start = tags
                .iter()
                .position(|tag| *tag > last)
                .unwrap_or(tags.len());
            let page: Vec<&String> = tags[start..].iter().take(2).collect();
            let mut headers = vec![("content-type", "application/json".to_string())];
            if start + 2 < tags.len() {
                headers.push((
                    "link",
                    format!(
                        "</v2/team/app/tags/list?last={}&n=2>; rel=\"next\"",
                        page[page.len() - 1]
                    ),
                ));
            }
            let body = serde_json::json!({"name": "team/app", "tags": page}).to_string();
            reply(200, &headers, body)
        }
    })
}

#[test]
fn ls_follows_every_page_of_a_long_tag_list() {
    let tags: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let server = paging_registry(tags.clone(), asked.clone());
    let listed = hoist(["ls", &format!("{}/team/app", server.host())])
        .run()
        .success();
    assert_eq!(listed.lines(), tags);
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        [
            ("1000".to_string(), String::new()),
            ("2".to_string(), "b".to_string()),
            ("2".to_string(), "d".to_string()),
        ],
        "the first request asks for a page, the rest follow the links"
    );
}

#[test]
fn prune_keeps_the_newest_and_every_manifest_a_kept_tag_points_at() {
    let registry = TestRegistry::start();
    let repository = format!("{}/team/app", registry.host());
    // Four builds by commit time, and an old pull request's.
    let mut digests = std::collections::BTreeMap::new();
    for (tag, epoch) in [
        ("sha-a", 1000),
        ("sha-b", 2000),
        ("sha-c", 3000),
        ("sha-d", 4000),
    ] {
        digests.insert(
            tag,
            push_created(&format!("{repository}:{tag}"), tag, epoch),
        );
    }
    let pull_request = push_created(&format!("{repository}:pr-1"), "pr", 1500);
    // `latest` still points at an older build.
    hoist(["tag", "-q", &format!("{repository}:sha-b"), "latest"])
        .run()
        .success();

    let dry = hoist([
        "prune",
        "--json",
        "--dry-run",
        "--match",
        "sha-*",
        "--keep",
        "1",
    ])
    .arg(&repository)
    .run()
    .success();
    let events: Vec<serde_json::Value> = dry
        .lines()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let would: Vec<(&str, &serde_json::Value)> = events
        .iter()
        .filter(|event| event["event"] == "would-delete" && event.get("child-of").is_none())
        .map(|event| (event["digest"].as_str().unwrap(), &event["tags"]))
        .collect();
    assert_eq!(
        would,
        [
            (digests["sha-a"].as_str(), &serde_json::json!(["sha-a"])),
            (digests["sha-c"].as_str(), &serde_json::json!(["sha-c"])),
        ],
        "{}",
        dry.stdout
    );
    assert!(
        events.iter().any(|event| event["event"] == "kept"
            && event["tag"] == "sha-b"
            && event["reason"].as_str().unwrap().contains("latest")),
        "{}",
        dry.stdout
    );
    assert_eq!(
        skopeo_tags(&repository),
        ["latest", "pr-1", "sha-a", "sha-b", "sha-c", "sha-d"],
        "a dry run deletes nothing"
    );

    let pruned = hoist(["prune", "--match", "sha-*", "--keep", "1"])
        .arg(format!("docker://{repository}"))
        .run()
        .success();
    assert!(
        pruned
            .stdout
            .contains("deleted 2 manifests (2 tags), kept 2 matching tags"),
        "{}",
        pruned.stdout
    );
    assert_eq!(
        skopeo_tags(&repository),
        ["latest", "pr-1", "sha-b", "sha-d"]
    );
    assert_eq!(
        registry_digest(&format!("{repository}:latest")),
        digests["sha-b"]
    );
    assert!(is_gone(&format!("{repository}@{}", digests["sha-a"])));

    // By age: the pull request's image is from 1970.
    let old = hoist(["prune", "-q", "--match", "pr-*", "--older-than", "30d"])
        .arg(&repository)
        .run()
        .success();
    assert_eq!(
        old.lines()[0],
        pull_request,
        "the index, then what it lists"
    );
    assert_eq!(skopeo_tags(&repository), ["latest", "sha-b", "sha-d"]);

    hoist(["prune", "--match", "sha-*", &repository])
        .run()
        .failure(1)
        .stderr_mentions(&["--keep N", "--older-than AGE"]);
    hoist([
        "prune",
        "--match",
        "sha-*",
        "--older-than",
        "30",
        &repository,
    ])
    .run()
    .failure(1)
    .stderr_mentions(&["--older-than 30", "12h, 30d, 8w"]);
    assert_eq!(skopeo_tags(&repository), ["latest", "sha-b", "sha-d"]);
}

/// Signs `repository:tag` with the key of [`signing_keys`].
fn sign(repository: &str, tag: &str, keys: &tempfile::TempDir) {
    sign_reference(&format!("{repository}:{tag}"), keys);
}

/// The digests of the manifests the index `reference` lists.
fn listed_digests(reference: &str) -> Vec<String> {
    let index: serde_json::Value = serde_json::from_slice(&common::registry::skopeo_raw(
        reference,
        &["--tls-verify=false"],
    ))
    .unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|listed| listed["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Each platform of the index `index` in `repository`, as (architecture,
/// the fallback tag its referrers are listed under).
fn platform_fallback_tags(repository: &str, index: &str) -> Vec<(String, String)> {
    common::registry::platform_manifests(repository, index)
        .into_iter()
        .map(|(architecture, digest)| (architecture, digest.replacen(':', "-", 1)))
        .collect()
}

#[test]
fn prune_takes_a_deleted_images_referrers_and_signatures_along() {
    // This registry has no referrers API: an SBOM attached as a referrer of
    // a platform manifest is listed by an index under that manifest's
    // fallback tag, `sha256-<hex>`; cosign signatures of the index sit
    // under `sha256-<hex>.sig`.
    let registry = TestRegistry::start();
    let repository = format!("{}/team/app", registry.host());
    let attach = ["--sbom", "--attach", "referrers"];
    let old = push_created_with(&format!("{repository}:sha-old"), "old", 1000, &attach);
    let new = push_created_with(&format!("{repository}:sha-new"), "new", 2000, &attach);
    let keys = signing_keys();
    for tag in ["sha-old", "sha-new"] {
        sign(&repository, tag, &keys);
    }
    // Each image's SBOM attestation is signed too: the signature's tag
    // names the attestation, not the image, and still goes with the image.
    let attestations = |index: &str| -> Vec<String> {
        platform_fallback_tags(&repository, index)
            .into_iter()
            .flat_map(|(_, fallback)| listed_digests(&format!("{repository}:{fallback}")))
            .collect()
    };
    for index in [&old, &new] {
        for attestation in attestations(index) {
            sign_reference(&format!("{repository}@{attestation}"), &keys);
        }
    }
    let attestation_signatures = |index: &str| -> Vec<String> {
        attestations(index)
            .iter()
            .map(|attestation| signature_tag(attestation))
            .collect()
    };
    let fallback_tags = |index: &str| -> Vec<String> {
        platform_fallback_tags(&repository, index)
            .into_iter()
            .map(|(_, tag)| tag)
            .chain([signature_tag(index)])
            .chain(attestation_signatures(index))
            .collect()
    };
    let (old_referrers, new_referrers) = (fallback_tags(&old), fallback_tags(&new));
    let mut expected: Vec<String> = ["sha-new", "sha-old"].map(String::from).to_vec();
    expected.extend(old_referrers.iter().chain(&new_referrers).cloned());
    expected.sort();
    assert_eq!(
        skopeo_tags(&repository),
        expected,
        "one fallback tag per platform, one signature tag per image and per attestation"
    );

    let pruned = hoist(["prune", "--match", "sha-*", "--keep", "1", &repository])
        .run()
        .success();
    for tag in &old_referrers {
        assert!(
            pruned.stdout.contains(&format!("({tag})")),
            "{}",
            pruned.stdout
        );
    }
    let mut expected: Vec<String> = vec!["sha-new".to_string()];
    expected.extend(new_referrers);
    expected.sort();
    assert_eq!(skopeo_tags(&repository), expected);
}

#[test]
fn prune_keeps_the_referrers_of_a_platform_a_kept_image_shares() {
    // The same files and epoch built for two platforms and then for one:
    // two indexes, one linux/amd64 manifest in both, and its SBOM a
    // referrer under one fallback tag.
    let registry = TestRegistry::start();
    let repository = format!("{}/team/app", registry.host());
    let project = tempfile::tempdir().unwrap();
    let old = push_with_sbom(
        &repository,
        project.path(),
        "sha-1",
        "\"linux/amd64\", \"linux/arm64\"",
        "same\n",
    );
    let new = push_with_sbom(
        &repository,
        project.path(),
        "sha-2",
        "\"linux/amd64\"",
        "same\n",
    );
    assert_ne!(old, new);
    let (old_platforms, new_platforms) = (
        platform_fallback_tags(&repository, &old),
        platform_fallback_tags(&repository, &new),
    );
    let shared = &new_platforms[0].1;
    assert!(
        old_platforms.iter().any(|(_, tag)| tag == shared),
        "{old_platforms:?}"
    );
    let arm64 = &old_platforms
        .iter()
        .find(|(architecture, _)| architecture == "arm64")
        .unwrap()
        .1;

    // Created at the same time, the newer-looking name is kept.
    let pruned = hoist(["prune", "--match", "sha-*", "--keep", "1", &repository])
        .run()
        .success();
    assert!(
        pruned.stdout.contains(&format!("({arm64})")),
        "{}",
        pruned.stdout
    );
    let mut expected = vec!["sha-2".to_string(), shared.clone()];
    expected.sort();
    assert_eq!(skopeo_tags(&repository), expected, "{}", pruned.stdout);
}

#[test]
fn prune_passes_over_a_tag_deleted_since_the_listing() {
    // A proxy adds a tag to the registry's list that no longer resolves, as
    // when another job deleted it between the listing and the lookups.
    let registry = TestRegistry::start();
    let proxy = common::proxy::start_proxy(&registry, |upstream, request| async move {
        if !request.uri().path().ends_with("/tags/list") {
            return upstream.forward(request).await;
        }
        let path = request.uri().path_and_query().unwrap().to_string();
        let answer = upstream
            .send(
                request.method(),
                &path,
                request.headers(),
                bytes::Bytes::new(),
            )
            .await?;
        let mut listed: serde_json::Value = serde_json::from_slice(&answer.bytes().await?)?;
        listed["tags"]
            .as_array_mut()
            .unwrap()
            .push("sha-gone".into());
        reply(
            200,
            &[("content-type", "application/json".to_string())],
            listed.to_string(),
        )
    });
    let repository = format!("{}/team/app", proxy.host());
    let old = push_created(&format!("{repository}:sha-1"), "one", 1000);
    push_created(&format!("{repository}:sha-2"), "two", 2000);
    let pruned = hoist([
        "prune",
        "-q",
        "--match",
        "sha-*",
        "--keep",
        "1",
        &repository,
    ])
    .run()
    .success();
    assert_eq!(pruned.lines()[0], old, "the index, then what it lists");
    assert_eq!(
        skopeo_tags(&format!("{}/team/app", registry.host())),
        ["sha-2"]
    );
}

#[test]
fn digest_prints_what_a_reference_points_at_and_one_platforms_manifest() {
    let registry = TestRegistry::start();
    let repository = format!("{}/team/app", registry.host());
    let index = push_hello(&format!("{repository}:1"));
    let other = push_other(&format!("{repository}:2"), "two\n");
    let printed = hoist(["digest", &format!("{repository}:1")])
        .arg(format!("docker://{repository}:2"))
        .run()
        .success();
    assert_eq!(printed.lines(), [index.as_str(), other.as_str()]);

    let raw = common::registry::skopeo_raw(&format!("{repository}:1"), &["--tls-verify=false"]);
    let listed: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let arm64 = listed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|child| child["platform"]["architecture"] == "arm64")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let platform = hoist([
        "digest",
        "--platform",
        "linux/arm64",
        &format!("{repository}:1"),
    ])
    .run()
    .success();
    assert_eq!(platform.lines(), [arm64.as_str()]);

    hoist(["digest", &format!("{repository}:missing")])
        .run()
        .failure(1)
        .stderr_mentions(&["team/app:missing", "no such manifest"]);
    hoist([
        "digest",
        "--platform",
        "linux/s390x",
        &format!("{repository}:1"),
    ])
    .run()
    .failure(1)
    .stderr_mentions(&["linux/s390x"]);
}
