//! The tag rules as one table: CI provider and event × ref × tag spec ×
//! expected tags (and warnings). Environments go through
//! `CiEnvironment::from_env` and specs through the TOML parser, exactly as a
//! build reads them.

use crate::common::warnings;
use hoist::ci::{
    CiEnvironment, CiError, EventFilter, GitInfo, LatestPolicy, Revision, TagSpec, TagStrategy,
    compute_tags,
};
use hoist::progress::Recorder;
use serde::Deserialize;
use std::collections::HashMap;

const SHA: &str = "3f2a9c1e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a";
/// 2023-11-14T22:13:20Z.
const COMMIT_TIME: i64 = 1_700_000_000;
/// When the run started, for date tags: 2023-11-16T02:00:00Z.
const STARTED: i64 = 1_700_100_000;

/// The `[image]` section as far as tags go.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageSection {
    #[serde(default)]
    tags: TagSpec,
}

fn parse(section: &str) -> Result<TagSpec, toml::de::Error> {
    toml::from_str::<ImageSection>(section).map(|image| image.tags)
}

/// A checkout as CI leaves it: on a branch, or detached, with some tags.
fn checkout(branch: Option<&str>, tags: &[&str]) -> GitInfo {
    GitInfo {
        commit: SHA.to_string(),
        commit_time: COMMIT_TIME,
        branch: branch.map(str::to_string),
        tags: tags.iter().map(|tag| tag.to_string()).collect(),
        remote_url: Some("https://github.com/org/repo.git".to_string()),
        default_branch: None,
        shallow: true,
        dirty: false,
    }
}

struct Case {
    name: &'static str,
    environment: &'static [(&'static str, &'static str)],
    /// `None`: not a git checkout.
    git: Option<(Option<&'static str>, &'static [&'static str])>,
    /// The `[image]` section's TOML (empty: tags left out).
    spec: &'static str,
    expected: &'static [&'static str],
    /// A fragment one of the warnings must contain.
    warning: Option<&'static str>,
}

const GITHUB: (&str, &str) = ("GITHUB_ACTIONS", "true");
const GITLAB: (&str, &str) = ("GITLAB_CI", "true");

const FULL_STRATEGY: &str = r#"
[tags]
sha = true
sha-length = 7
branch = true
pr = true
semver = ["{major}.{minor}.{patch}", "{major}.{minor}", "{major}"]
date = "%Y%m%d"
latest = "release"
raw = ["stable-{short_sha}"]
"#;

const CASES: &[Case] = &[
    Case {
        name: "github push to main",
        environment: &[
            GITHUB,
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_SHA", SHA),
        ],
        git: Some((Some("main"), &[])),
        spec: "",
        expected: &["main", "sha-3f2a9c1"],
        warning: None,
    },
    Case {
        name: "github push to a branch with a slash",
        environment: &[
            GITHUB,
            ("GITHUB_REF", "refs/heads/feature/Cool_Thing"),
            ("GITHUB_SHA", SHA),
        ],
        git: Some((Some("feature/Cool_Thing"), &[])),
        spec: "",
        expected: &["feature-Cool_Thing", "sha-3f2a9c1"],
        warning: None,
    },
    Case {
        name: "github release tag: semver, no branch tag, latest",
        environment: &[
            GITHUB,
            ("GITHUB_REF", "refs/tags/v1.2.3"),
            ("GITHUB_REF_TYPE", "tag"),
            ("GITHUB_SHA", SHA),
        ],
        git: Some((None, &["v1.2.3"])),
        spec: "",
        expected: &["1.2.3", "1.2", "1", "sha-3f2a9c1", "latest"],
        warning: None,
    },
    Case {
        name: "github pre-release tag: only the full version, no latest",
        environment: &[
            GITHUB,
            ("GITHUB_REF", "refs/tags/v2.0.0-rc.1"),
            ("GITHUB_SHA", SHA),
        ],
        git: Some((None, &["v2.0.0-rc.1"])),
        spec: "",
        expected: &["2.0.0-rc.1", "sha-3f2a9c1"],
        warning: None,
    },
    Case {
        name: "github tag with build metadata: + is not a tag character",
        environment: &[GITHUB, ("GITHUB_REF", "refs/tags/v1.2.3+build.7")],
        git: Some((None, &[])),
        spec: r#"tags = { semver = ["{version}", "{major}"], sha = false }"#,
        expected: &["1.2.3-build.7", "1", "latest"],
        warning: None,
    },
    Case {
        name: "github tag that is not a version: its name, with a warning",
        environment: &[
            GITHUB,
            ("GITHUB_REF", "refs/tags/release-2024"),
            ("GITHUB_SHA", SHA),
        ],
        git: Some((None, &["release-2024"])),
        spec: "",
        expected: &["release-2024", "sha-3f2a9c1"],
        warning: Some("not a semantic version"),
    },
    Case {
        name: "github pull request: pr tag, no branch tag",
        environment: &[
            GITHUB,
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_REF", "refs/pull/123/merge"),
            ("GITHUB_HEAD_REF", "feature/x"),
            ("GITHUB_BASE_REF", "main"),
            ("GITHUB_SHA", SHA),
        ],
        git: Some((None, &[])),
        spec: "",
        expected: &["pr-123", "sha-3f2a9c1"],
        warning: None,
    },
    Case {
        name: "github tag with the full strategy: date from the run start, raw template",
        environment: &[
            GITHUB,
            ("GITHUB_REF", "refs/tags/v1.2.3"),
            ("GITHUB_SHA", SHA),
        ],
        git: Some((None, &["v1.2.3"])),
        spec: FULL_STRATEGY,
        expected: &[
            "1.2.3",
            "1.2",
            "1",
            "20231116",
            "stable-3f2a9c1",
            "sha-3f2a9c1",
            "latest",
        ],
        warning: None,
    },
    Case {
        name: "github branch with the full strategy",
        environment: &[
            GITHUB,
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_SHA", SHA),
        ],
        git: Some((Some("main"), &[])),
        spec: FULL_STRATEGY,
        expected: &["main", "20231116", "stable-3f2a9c1", "sha-3f2a9c1"],
        warning: None,
    },
    Case {
        name: "latest on the default branch",
        environment: &[
            GITLAB,
            ("CI_COMMIT_BRANCH", "trunk"),
            ("CI_DEFAULT_BRANCH", "trunk"),
            ("CI_COMMIT_SHA", SHA),
        ],
        git: Some((None, &[])),
        spec: "tags = { latest = \"default-branch\" }",
        expected: &["trunk", "sha-3f2a9c1", "latest"],
        warning: None,
    },
    Case {
        name: "no latest on another branch with default-branch",
        environment: &[
            GITLAB,
            ("CI_COMMIT_BRANCH", "dev"),
            ("CI_DEFAULT_BRANCH", "trunk"),
            ("CI_COMMIT_SHA", SHA),
        ],
        git: Some((None, &[])),
        spec: "tags = { latest = \"default-branch\" }",
        expected: &["dev", "sha-3f2a9c1"],
        warning: None,
    },
    Case {
        name: "no latest on a release with default-branch",
        environment: &[
            GITLAB,
            ("CI_COMMIT_TAG", "v1.0.0"),
            ("CI_DEFAULT_BRANCH", "main"),
            ("CI_COMMIT_SHA", SHA),
        ],
        git: Some((None, &["v1.0.0"])),
        spec: "tags = { latest = \"default-branch\" }",
        expected: &["1.0.0", "1.0", "1", "sha-3f2a9c1"],
        warning: None,
    },
    Case {
        name: "latest = false",
        environment: &[
            GITHUB,
            ("GITHUB_REF", "refs/tags/v1.0.0"),
            ("GITHUB_SHA", SHA),
        ],
        git: Some((None, &[])),
        spec: "tags = { latest = false }",
        expected: &["1.0.0", "1.0", "1", "sha-3f2a9c1"],
        warning: None,
    },
    Case {
        name: "default-branch unknown: no latest, with a warning",
        environment: &[],
        git: Some((Some("main"), &[])),
        spec: "tags = { latest = \"default-branch\", sha = false }",
        expected: &["main"],
        warning: Some("default branch unknown"),
    },
    Case {
        name: "gitlab merge request",
        environment: &[
            GITLAB,
            ("CI_MERGE_REQUEST_IID", "31"),
            ("CI_COMMIT_REF_NAME", "feature"),
            ("CI_COMMIT_SHA", SHA),
        ],
        git: Some((Some("feature"), &[])),
        spec: "",
        expected: &["pr-31", "sha-3f2a9c1"],
        warning: None,
    },
    Case {
        name: "ci commit wins over git's",
        environment: &[
            GITLAB,
            ("CI_COMMIT_BRANCH", "main"),
            ("CI_COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ],
        git: Some((Some("main"), &[])),
        spec: "",
        expected: &["main", "sha-0123456"],
        warning: None,
    },
    Case {
        name: "sha-length",
        environment: &[
            GITHUB,
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_SHA", SHA),
        ],
        git: Some((Some("main"), &[])),
        spec: "tags = { sha-length = 12, branch = false }",
        expected: &["sha-3f2a9c1e5b7d"],
        warning: None,
    },
    Case {
        name: "local branch with a version tag at HEAD",
        environment: &[],
        git: Some((Some("main"), &["v0.3.0"])),
        spec: "",
        expected: &["0.3.0", "0.3", "0", "main", "sha-3f2a9c1", "latest"],
        warning: None,
    },
    Case {
        name: "local detached HEAD in a shallow clone without tags: sha only",
        environment: &[],
        git: Some((None, &[])),
        spec: "",
        expected: &["sha-3f2a9c1"],
        warning: Some("git fetch --tags"),
    },
    Case {
        name: "not a git checkout, no CI: only the run's date, with a warning",
        environment: &[],
        git: None,
        spec: FULL_STRATEGY,
        expected: &["20231116"],
        warning: Some("no commit known"),
    },
    Case {
        name: "not a git checkout, no CI, no date: nothing, with a warning",
        environment: &[],
        git: None,
        spec: "",
        expected: &[],
        warning: Some("published by digest only"),
    },
    Case {
        name: "branch that sanitizes to nothing is skipped with a warning",
        environment: &[
            GITHUB,
            ("GITHUB_REF", "refs/heads/---"),
            ("GITHUB_SHA", SHA),
        ],
        git: Some((None, &[])),
        spec: "",
        expected: &["sha-3f2a9c1"],
        warning: Some("no valid tag after sanitizing"),
    },
    Case {
        name: "plain list: templates expanded, duplicates dropped",
        environment: &[
            GITHUB,
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_RUN_NUMBER", "42"),
            ("GITHUB_SHA", SHA),
        ],
        git: Some((Some("main"), &[])),
        spec: r#"tags = ["latest", "build-{run_number}", "{branch}", "main", "{date}"]"#,
        expected: &["latest", "build-42", "main", "20231116"],
        warning: None,
    },
    Case {
        name: "template that no event it applies on can fill warns",
        environment: &[
            GITHUB,
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_SHA", SHA),
        ],
        git: Some((Some("main"), &[])),
        spec: r#"tags = { raw = [{ value = "pr-{pr}", on = ["branch"] }, "edge"], sha = false }"#,
        expected: &["main", "edge"],
        warning: Some("can never give a tag: {pr}"),
    },
    Case {
        name: "raw templates over every value on a tag build",
        environment: &[
            GITHUB,
            ("GITHUB_REF", "refs/tags/v4.5.6"),
            ("GITHUB_RUN_NUMBER", "7"),
            ("GITHUB_SHA", SHA),
        ],
        git: Some((None, &[])),
        spec: r#"tags = { raw = ["{version}-{run_number}", "{major}.{minor}-{date}", "{sha}"], date = "%Y-%m" }"#,
        expected: &[
            "4.5.6",
            "4.5",
            "4",
            "2023-11",
            "4.5.6-7",
            "4.5-2023-11",
            SHA,
            "sha-3f2a9c1",
            "latest",
        ],
        warning: None,
    },
    Case {
        name: "tag longer than 128 characters is cut",
        environment: &[
            GITHUB,
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_SHA", SHA),
        ],
        git: Some((Some("main"), &[])),
        spec: r#"tags = ["{sha}{sha}{sha}{sha}"]"#,
        expected: &[
            "3f2a9c1e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a3f2a9c1e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a3f2a9c1e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a3f2a9c1e",
        ],
        warning: None,
    },
];

#[test]
fn tag_table() {
    let mut failures = Vec::new();
    for case in CASES {
        let environment: HashMap<&str, &str> = case.environment.iter().copied().collect();
        let lookup = |name: &str| environment.get(name).map(|value| value.to_string());
        let ci = CiEnvironment::from_env(&lookup).unwrap();
        let git = case.git.map(|(branch, tags)| checkout(branch, tags));
        let mut revision = Revision::resolve(git.as_ref(), &ci);
        revision.started = Some(STARTED);
        let spec = parse(case.spec).unwrap_or_else(|error| panic!("{}: {error}", case.name));
        let recorder = Recorder::default();
        let tags = compute_tags(&spec, &revision, &recorder)
            .unwrap_or_else(|error| panic!("{}: {error}", case.name));
        if tags != case.expected {
            failures.push(format!(
                "{}: got {tags:?}, expected {:?}",
                case.name, case.expected
            ));
        }
        let warnings = warnings(&recorder);
        match case.warning {
            Some(fragment) if !warnings.iter().any(|warning| warning.contains(fragment)) => {
                failures.push(format!(
                    "{}: no warning containing {fragment:?} in {warnings:?}",
                    case.name
                ))
            }
            None if !warnings.is_empty() => {
                failures.push(format!("{}: unexpected warnings {warnings:?}", case.name))
            }
            _ => {}
        }
        for tag in &tags {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !valid {
                failures.push(format!("{}: invalid tag {tag:?}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn tags_absent_means_the_default_strategy() {
    let spec = parse("").unwrap();
    assert_eq!(spec, TagSpec::Strategy(TagStrategy::default()));
    let TagSpec::Strategy(strategy) = spec else {
        unreachable!()
    };
    assert_eq!(
        [&strategy.sha, &strategy.branch, &strategy.pr],
        [&EventFilter::Default; 3]
    );
    assert_eq!(strategy.sha_length, 7);
    assert_eq!(strategy.date, None);
    assert!(strategy.raw.is_empty());
    assert_eq!(strategy.latest, LatestPolicy::Release);
    assert_eq!(
        strategy.semver,
        ["{major}.{minor}.{patch}", "{major}.{minor}", "{major}"]
    );
}

#[test]
fn spec_errors_name_what_is_wrong() {
    let unknown_key = parse("[tags]\nsha = true\nshas = true\n")
        .unwrap_err()
        .to_string();
    assert!(unknown_key.contains("shas"), "{unknown_key}");
    assert!(unknown_key.contains("line 3"), "{unknown_key}");

    let wrong_type = parse("tags = { sha = \"yes\" }").unwrap_err().to_string();
    assert!(
        wrong_type.contains("true, false or a list of events"),
        "{wrong_type}"
    );

    let latest_true = parse("tags = { latest = true }").unwrap_err().to_string();
    assert!(latest_true.contains("default-branch"), "{latest_true}");
    let latest_other = parse("tags = { latest = \"always\" }")
        .unwrap_err()
        .to_string();
    assert!(latest_other.contains("always"), "{latest_other}");

    let not_a_list = parse("tags = \"latest\"").unwrap_err().to_string();
    assert!(
        not_a_list.contains("list of tags or a table"),
        "{not_a_list}"
    );
}

#[test]
fn bad_templates_fail_every_build_not_only_the_one_that_expands_them() {
    let lookup = |name: &str| match name {
        "GITHUB_ACTIONS" => Some("true".to_string()),
        "GITHUB_REF" => Some("refs/heads/main".to_string()),
        _ => None,
    };
    let ci = CiEnvironment::from_env(&lookup).unwrap();
    let revision = Revision::resolve(Some(&checkout(Some("main"), &[])), &ci);
    type Case<'a> = (&'a str, fn(&CiError) -> bool, &'a [&'a str]);
    let cases: &[Case] = &[
        (
            r#"tags = { semver = ["{major}.{minr}"] }"#,
            |error| matches!(error, CiError::UnknownPlaceholder { .. }),
            &["{minr}", "{major}", "{run_number}"],
        ),
        (
            r#"tags = ["pr-{number}"]"#,
            |error| matches!(error, CiError::UnknownPlaceholder { .. }),
            &["{number}", "{pr}"],
        ),
        (
            r#"tags = ["x-{sha"]"#,
            |error| matches!(error, CiError::UnclosedPlaceholder { .. }),
            &["x-{sha"],
        ),
        (
            r#"tags = { date = "%Y%!" }"#,
            |error| matches!(error, CiError::InvalidDateFormat { .. }),
            &["%Y%!"],
        ),
        (
            "tags = { sha-length = 0 }",
            |error| matches!(error, CiError::InvalidShaLength { .. }),
            &["sha-length 0"],
        ),
        (
            "tags = { sha-length = 41 }",
            |error| matches!(error, CiError::InvalidShaLength { .. }),
            &["41"],
        ),
    ];
    for (section, is_expected, fragments) in cases {
        let spec = parse(section).unwrap();
        let validation = spec.validate().unwrap_err();
        assert!(is_expected(&validation), "{section}: {validation}");
        let error = compute_tags(&spec, &revision, &Recorder::default()).unwrap_err();
        let message = error.to_string();
        for fragment in *fragments {
            assert!(message.contains(fragment), "{section}: {message}");
        }
    }
}

#[test]
fn same_inputs_same_tags() {
    let spec = parse(FULL_STRATEGY).unwrap();
    let git = checkout(Some("main"), &["v1.0.0", "v0.9.0"]);
    let revision = Revision::resolve(Some(&git), &CiEnvironment::default());
    let first = compute_tags(&spec, &revision, &Recorder::default()).unwrap();
    let mut reordered = git.clone();
    reordered.tags.reverse();
    let revision = Revision::resolve(Some(&reordered), &CiEnvironment::default());
    let second = compute_tags(&spec, &revision, &Recorder::default()).unwrap();
    assert_eq!(first, second);
    assert_eq!(first[0], "1.0.0");
}
