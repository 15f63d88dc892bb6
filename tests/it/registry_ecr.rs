//! Amazon ECR through its own API, against a loopback ECR
//! (`common::ecr`: the real docker-registry for the images, and a fake of
//! the ECR and STS APIs written from AWS's references that checks every
//! SigV4 signature with botocore): pushes that log in with
//! GetAuthorizationToken from keys in the environment, a profile file or a
//! web identity token; `hoist login` without a password; prune by ECR's
//! push times, its dry run, and delete on PR close through DescribeImages
//! and BatchDeleteImage; and AWS secrets going nowhere but the ECR API.

use crate::common::ecr::{self, FakeEcr};
use crate::common::hoist::{Hoist, HoistOutput};
use crate::common::http::{TestServer, reply};
use crate::common::registry::skopeo_raw;
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Writes a one-layer project holding `content` for `platforms`.
fn project(directory: &Path, content: &str, platforms: &str) {
    std::fs::create_dir_all(directory.join("app")).unwrap();
    std::fs::write(directory.join("app/content.txt"), content).unwrap();
    std::fs::write(
        directory.join("hoist.toml"),
        format!(
            "[[image]]\nname = \"app\"\nsource-date-epoch = 1000\nplatforms = [{platforms}]\n\
             [[image.layer]]\nsource = \"app\"\ntarget = \"/app\"\n"
        ),
    )
    .unwrap();
}

/// `hoist build` of a project holding `content`, pushing to `reference`,
/// with no AWS credentials yet.
fn build(fake: &FakeEcr, work: &Path, reference: &str, content: &str) -> Hoist {
    let directory = work.join(format!("project-{}", content.len()));
    project(&directory, content, "\"linux/amd64\"");
    fake.hoist(work, ["build", "-q", "--no-cache", "-o"])
        .arg(format!("docker://{reference}"))
        .current_dir(&directory)
}

/// Builds `content` and pushes it as `reference` with the static keys;
/// returns the pushed digest.
fn push(fake: &FakeEcr, work: &Path, reference: &str, content: &str) -> String {
    push_with(fake, work, reference, content, &[])
}

/// [`push`] with more `hoist build` flags.
fn push_with(
    fake: &FakeEcr,
    work: &Path,
    reference: &str,
    content: &str,
    flags: &[&str],
) -> String {
    build(fake, work, reference, content)
        .args(flags)
        .env("AWS_ACCESS_KEY_ID", ecr::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", ecr::SECRET_KEY)
        .run()
        .success()
        .last_line_digest()
}

fn assert_no_secret(output: &HoistOutput) {
    for secret in [
        ecr::SECRET_KEY,
        ecr::PROFILE_SECRET,
        ecr::ASSUMED_SECRET,
        ecr::ASSUMED_TOKEN,
        ecr::WEB_IDENTITY_TOKEN,
        ecr::REGISTRY_PASSWORD,
    ] {
        assert!(
            !output.stdout.contains(secret) && !output.stderr.contains(secret),
            "a secret appears in the output:\n{}\n{}",
            output.stdout,
            output.stderr
        );
    }
}

/// The access key of each GetAuthorizationToken the API answered.
fn token_requests(fake: &FakeEcr) -> Vec<String> {
    fake.requests()
        .iter()
        .filter(|request| {
            request["target"]
                .as_str()
                .is_some_and(|target| target.ends_with("GetAuthorizationToken"))
        })
        .map(|request| {
            assert_eq!(request["status"], 200, "{request}");
            request["access_key"].as_str().unwrap().to_string()
        })
        .collect()
}

fn skopeo_digest(fake: &FakeEcr, reference: &str) -> String {
    let creds = fake.skopeo_creds();
    let raw = skopeo_raw(reference, &["--tls-verify=false", "--creds", &creds]);
    format!("sha256:{}", crate::common::hoist::sha256_hex(&raw))
}

#[test]
fn a_push_logs_in_with_keys_from_the_environment() {
    let fake = FakeEcr::start(1000);
    let work = tempfile::tempdir().unwrap();
    let reference = format!("{}:v1", fake.repository("app"));
    let digest = push(&fake, work.path(), &reference, "one");
    assert_eq!(skopeo_digest(&fake, &reference), digest);
    // One token for the whole push, asked for with the environment's key.
    assert_eq!(token_requests(&fake), vec![ecr::ACCESS_KEY.to_string()]);
}

#[test]
fn a_push_logs_in_with_a_profile_from_the_shared_files() {
    let fake = FakeEcr::start(1000);
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join(".aws")).unwrap();
    std::fs::write(
        work.path().join(".aws/credentials"),
        format!(
            "[default]\naws_access_key_id = AKIAWRONGDEFAULT\naws_secret_access_key = x\n\
             [ci]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            ecr::PROFILE_KEY,
            ecr::PROFILE_SECRET
        ),
    )
    .unwrap();
    let reference = format!("{}:v1", fake.repository("app"));
    let output = build(&fake, work.path(), &reference, "profile")
        .env("AWS_PROFILE", "ci")
        .run()
        .success();
    assert_no_secret(&output);
    assert_eq!(skopeo_digest(&fake, &reference), output.last_line_digest());
    assert_eq!(token_requests(&fake), vec![ecr::PROFILE_KEY.to_string()]);
}

#[test]
fn a_push_logs_in_with_a_web_identity_token_file() {
    let fake = FakeEcr::start(1000);
    let work = tempfile::tempdir().unwrap();
    let token_file = work.path().join("token");
    std::fs::write(&token_file, ecr::WEB_IDENTITY_TOKEN).unwrap();
    let reference = format!("{}:v1", fake.repository("app"));
    let output = build(&fake, work.path(), &reference, "web identity")
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file)
        .env("AWS_ROLE_ARN", ecr::ROLE_ARN)
        .run()
        .success();
    assert_no_secret(&output);
    assert_eq!(skopeo_digest(&fake, &reference), output.last_line_digest());
    let requests = fake.requests();
    let sts: Vec<&Value> = requests
        .iter()
        .filter(|request| request["service"] == "sts")
        .collect();
    assert_eq!(sts.len(), 1, "{requests:?}");
    assert_eq!(sts[0]["action"], "AssumeRoleWithWebIdentity");
    assert_eq!(
        sts[0]["signed"], false,
        "the token is the proof, no signature"
    );
    // Signed with the role's temporary key and its session token.
    assert_eq!(token_requests(&fake), vec![ecr::ASSUMED_KEY.to_string()]);
}

#[test]
fn without_aws_credentials_a_push_says_what_to_set() {
    let fake = FakeEcr::start(1000);
    let work = tempfile::tempdir().unwrap();
    let reference = format!("{}:v1", fake.repository("app"));
    build(&fake, work.path(), &reference, "nothing")
        .run()
        .failure(1)
        .stderr_mentions(&["AWS_ACCESS_KEY_ID", "AWS_WEB_IDENTITY_TOKEN_FILE"]);
}

#[test]
fn login_asks_ecr_for_the_password_and_stores_it() {
    let fake = FakeEcr::start(1000);
    let work = tempfile::tempdir().unwrap();
    let output = fake
        .hoist_with_keys(work.path(), ["login", &fake.registry.host()])
        .run()
        .success();
    assert_no_secret(&output);
    let config: Value =
        serde_json::from_slice(&std::fs::read(work.path().join("docker/config.json")).unwrap())
            .unwrap();
    assert!(
        config["auths"][fake.registry.host()]["auth"].is_string(),
        "{config}"
    );
    // The stored login serves a push with no AWS credentials at all.
    let reference = format!("{}:v1", fake.repository("app"));
    build(&fake, work.path(), &reference, "stored")
        .run()
        .success();
    assert_eq!(token_requests(&fake).len(), 1, "only the login asked");
}

/// The digests of the events named `kind` in JSON lines.
fn digests_of(output: &HoistOutput, kind: &str) -> Vec<String> {
    let mut digests: Vec<String> = output
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["event"] == kind)
        .map(|event| event["digest"].as_str().unwrap().to_string())
        .collect();
    digests.sort();
    digests
}

#[test]
fn prune_keeps_the_newest_by_ecr_push_time_and_its_dry_run_is_exact() {
    // Two images a page, so that DescribeImages pages.
    let fake = FakeEcr::start(2);
    let work = tempfile::tempdir().unwrap();
    let repository = fake.repository("app");
    // Every image has the same `created` (one epoch): only ECR's push time
    // orders them. By name the newest two would be pr-7-2 and pr-7-1.
    let mut pushed = Vec::new();
    for (index, tag) in ["main-1", "pr-7-1", "main-2", "pr-7-2", "main-3"]
        .iter()
        .enumerate()
    {
        if index > 0 {
            // ECR's push times count seconds.
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        let content = "x".repeat(index + 1);
        // With an SBOM in the index, each build is an index over its
        // platform manifest and its attestation manifest.
        pushed.push(push_with(
            &fake,
            work.path(),
            &format!("{repository}:{tag}"),
            &content,
            &["--sbom"],
        ));
    }
    let prune = |extra: &[&str]| {
        fake.hoist_with_keys(
            work.path(),
            ["prune", &repository, "--match", "main-*", "--match", "pr-*"],
        )
        .args(["--keep", "2", "--json"])
        .args(extra)
        .run()
        .success()
    };
    let planned = digests_of(&prune(&["--dry-run"]), "would-delete");
    assert!(
        fake.operations()
            .iter()
            .all(|operation| operation != "BatchDeleteImage")
    );
    let output = prune(&[]);
    assert_no_secret(&output);
    let deleted = digests_of(&output, "deleted");
    // The three oldest builds go whole: each index, its platform manifest
    // and its attestation manifest.
    assert_eq!(planned.len(), 9, "{planned:?}");
    for oldest in &pushed[..3] {
        assert!(planned.contains(oldest), "{oldest} in {planned:?}");
    }
    for newest in &pushed[3..] {
        assert!(!planned.contains(newest), "{newest} in {planned:?}");
    }
    assert_eq!(deleted, planned, "what was deleted is what was planned");
    for tag in ["main-1", "pr-7-1", "main-2"] {
        assert!(
            is_gone_with_creds(&fake, &format!("{repository}:{tag}")),
            "{tag}"
        );
    }
    assert_eq!(
        skopeo_digest(&fake, &format!("{repository}:main-3")),
        pushed[4]
    );
    assert_eq!(
        skopeo_digest(&fake, &format!("{repository}:pr-7-2")),
        pushed[3]
    );
    let operations = fake.operations();
    let pages = operations.iter().filter(|o| *o == "DescribeImages").count();
    assert!(pages >= 6, "two prunes of three pages each: {operations:?}");
    assert!(operations.iter().any(|o| o == "BatchDeleteImage"));
}

fn is_gone_with_creds(fake: &FakeEcr, reference: &str) -> bool {
    !std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", "--creds"])
        .arg(fake.skopeo_creds())
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn delete_on_pr_close_removes_the_image_through_batch_delete() {
    let fake = FakeEcr::start(1000);
    let work = tempfile::tempdir().unwrap();
    let repository = fake.repository("app");
    let directory = work.path().join("project");
    project(
        &directory,
        "pull request",
        "\"linux/amd64\", \"linux/arm64\"",
    );
    let index = fake
        .hoist_with_keys(work.path(), ["build", "-q", "--no-cache", "--sbom", "-o"])
        .arg(format!("docker://{repository}:pr-42"))
        .current_dir(&directory)
        .run()
        .success()
        .last_line_digest();
    let creds = fake.skopeo_creds();
    let raw = skopeo_raw(
        &format!("{repository}@{index}"),
        &["--tls-verify=false", "--creds", &creds],
    );
    let listed: Value = serde_json::from_slice(&raw).unwrap();
    let children: Vec<String> = listed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|child| child["digest"].as_str().unwrap().to_string())
        .collect();
    assert!(children.len() >= 2, "{listed}");
    let kept = push(&fake, work.path(), &format!("{repository}:main"), "main");
    let output = fake
        .hoist_with_keys(work.path(), ["delete", "--json"])
        .arg(format!("{repository}:pr-42"))
        .run()
        .success();
    assert_no_secret(&output);
    assert!(digests_of(&output, "deleted").contains(&index));
    assert!(is_gone_with_creds(&fake, &format!("{repository}@{index}")));
    assert!(is_gone_with_creds(&fake, &format!("{repository}:pr-42")));
    // The whole build: every manifest the index listed went after it
    // (the fake, as ECR, refuses a manifest an index still lists).
    for child in &children {
        assert!(
            is_gone_with_creds(&fake, &format!("{repository}@{child}")),
            "{child}"
        );
    }
    assert_eq!(skopeo_digest(&fake, &format!("{repository}:main")), kept);
    assert!(fake.operations().iter().any(|o| o == "BatchDeleteImage"));
}

#[test]
fn aws_secrets_go_only_to_the_ecr_api() {
    let fake = FakeEcr::start(1000);
    // The registry: a server that asks for Basic credentials and records
    // every Authorization header it is sent.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorder = seen.clone();
    let registry = TestServer::start(move |request| {
        let recorder = recorder.clone();
        async move {
            let headers: Vec<String> = request
                .headers()
                .iter()
                .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("")))
                .collect();
            recorder.lock().unwrap().extend(headers.clone());
            let authorized = headers.iter().any(|h| h.starts_with("authorization:"));
            if authorized {
                reply(404, &[], "{}")
            } else {
                reply(
                    401,
                    &[("www-authenticate", "Basic realm=\"ecr\"".to_string())],
                    "",
                )
            }
        }
    });
    // Temporary credentials with a session token, from a web identity.
    let work = tempfile::tempdir().unwrap();
    let token_file = work.path().join("token");
    std::fs::write(&token_file, ecr::WEB_IDENTITY_TOKEN).unwrap();
    let output = fake
        .hoist(work.path(), ["ls"])
        .arg(format!("{}/app", registry.host()))
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file)
        .env("AWS_ROLE_ARN", ecr::ROLE_ARN)
        .run();
    assert_no_secret(&output);
    let seen = seen.lock().unwrap().join("\n");
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("AWS:{}", ecr::REGISTRY_PASSWORD));
    assert!(
        seen.contains(&format!("Basic {basic}")),
        "{seen}\n{}\n{}",
        output.stdout,
        output.stderr
    );
    for leak in [
        "AWS4-HMAC-SHA256",
        ecr::ASSUMED_KEY,
        ecr::ASSUMED_SECRET,
        ecr::ASSUMED_TOKEN,
        ecr::WEB_IDENTITY_TOKEN,
        "x-amz-",
    ] {
        assert!(!seen.contains(leak), "{leak} reached the registry:\n{seen}");
    }
    // The token request itself went to the ECR API and was signed there.
    assert_eq!(fake.operations(), vec!["GetAuthorizationToken".to_string()]);
}

#[test]
fn an_ecr_endpoint_over_plain_http_elsewhere_is_refused() {
    let fake = FakeEcr::start(1000);
    let work = tempfile::tempdir().unwrap();
    fake.hoist_with_keys(work.path(), ["ls"])
        .arg(fake.repository("app"))
        .env("AWS_ENDPOINT_URL_ECR", "http://ecr.example.com")
        .run()
        .failure(1)
        .stderr_mentions(&["AWS_ENDPOINT_URL_ECR", "https"]);
    assert!(fake.operations().is_empty());
}

#[test]
fn prune_untagged_deletes_the_image_a_tag_moved_away_from() {
    let fake = FakeEcr::start(1000);
    let work = tempfile::tempdir().unwrap();
    let repository = fake.repository("app");
    let old = push(&fake, work.path(), &format!("{repository}:main"), "old");
    let new = push(&fake, work.path(), &format!("{repository}:main"), "newer");
    let prune = |extra: &[&str]| {
        fake.hoist_with_keys(work.path(), ["prune", &repository, "--untagged", "--json"])
            .args(extra)
            .run()
            .success()
    };
    let planned = digests_of(&prune(&["--dry-run"]), "would-delete");
    assert!(planned.contains(&old), "{planned:?}");
    assert!(!planned.contains(&new), "{planned:?}");
    let deleted = digests_of(&prune(&[]), "deleted");
    assert_eq!(deleted, planned);
    assert!(is_gone_with_creds(&fake, &format!("{repository}@{old}")));
    assert_eq!(skopeo_digest(&fake, &format!("{repository}:main")), new);
}
