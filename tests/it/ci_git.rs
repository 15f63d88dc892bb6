//! `GitInfo::discover` against real repositories made with the real `git`:
//! branches, tags, detached and unborn HEADs, shallow clones, dirty trees,
//! remotes with credentials, and the tags computed from all of that.
use crate::common;
use crate::common::warnings;

use hoist::ci::{
    CiEnvironment, CiError, GitInfo, ImageLabels, Revision, TagSpec, compute_tags, standard_labels,
};
use hoist::progress::Recorder;
use std::path::Path;
use std::process::Command;

const COMMIT_TIME: i64 = 1_700_000_000;

/// git with this module's commit time.
fn git(dir: &Path, arguments: &[&str]) -> String {
    common::git_at(dir, arguments, COMMIT_TIME)
}

/// A repository on `main` with one commit.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(dir.path().join("hoist.toml"), "[image]\n").unwrap();
    git(dir.path(), &["add", "hoist.toml"]);
    git(dir.path(), &["commit", "--quiet", "-m", "first"]);
    dir
}

fn discover(dir: &Path) -> GitInfo {
    GitInfo::discover(dir)
        .unwrap()
        .expect("a repository with a commit")
}

#[test]
fn branch_commit_and_time() {
    let repository = repository();
    let info = discover(repository.path());
    assert_eq!(info.commit, git(repository.path(), &["rev-parse", "HEAD"]));
    assert_eq!(info.commit.len(), 40);
    assert_eq!(info.commit_time, COMMIT_TIME);
    assert_eq!(info.branch.as_deref(), Some("main"));
    assert!(info.tags.is_empty());
    assert_eq!(info.remote_url, None);
    assert_eq!(info.default_branch, None);
    assert!(!info.shallow);
    assert!(!info.dirty);

    // Discovery works from a subdirectory too.
    let nested = repository.path().join("deep/er");
    std::fs::create_dir_all(&nested).unwrap();
    assert_eq!(discover(&nested).commit, info.commit);
}

#[test]
fn tags_at_head_sorted_and_detached_head() {
    let repository = repository();
    git(repository.path(), &["tag", "v1.2.3"]);
    git(
        repository.path(),
        &["tag", "-a", "-m", "annotated", "v1.10.0"],
    );
    git(repository.path(), &["tag", "nightly"]);
    let info = discover(repository.path());
    assert_eq!(info.tags, ["nightly", "v1.10.0", "v1.2.3"]);

    git(repository.path(), &["checkout", "--quiet", "--detach"]);
    let detached = discover(repository.path());
    assert_eq!(detached.branch, None);
    assert_eq!(detached.commit, info.commit);

    // Outside CI, a detached HEAD at a version tag is a release of it.
    let revision = Revision::resolve(Some(&detached), &CiEnvironment::default());
    let tags = compute_tags(&TagSpec::default(), &revision, &Recorder::default()).unwrap();
    let short = &info.commit[..7];
    assert_eq!(
        tags,
        ["1.10.0", "1.10", "1", &format!("sha-{short}"), "latest"]
    );
}

#[test]
fn dirty_tracks_modified_and_untracked_but_not_ignored_files() {
    let repository = repository();
    std::fs::write(repository.path().join(".gitignore"), "target/\n").unwrap();
    git(repository.path(), &["add", ".gitignore"]);
    git(repository.path(), &["commit", "--quiet", "-m", "ignore"]);
    std::fs::create_dir(repository.path().join("target")).unwrap();
    std::fs::write(repository.path().join("target/out"), "built").unwrap();
    assert!(
        !discover(repository.path()).dirty,
        "ignored files are not dirt"
    );

    std::fs::write(repository.path().join("new.txt"), "x").unwrap();
    assert!(discover(repository.path()).dirty, "untracked file");
    std::fs::remove_file(repository.path().join("new.txt")).unwrap();
    std::fs::write(repository.path().join("hoist.toml"), "[image]\nname = 1\n").unwrap();
    assert!(discover(repository.path()).dirty, "modified file");
}

#[test]
fn remote_credentials_never_come_back() {
    let repository = repository();
    git(
        repository.path(),
        &[
            "remote",
            "add",
            "origin",
            "https://x-access-token:ghs_SECRET@github.com/org/repo.git",
        ],
    );
    let info = discover(repository.path());
    assert_eq!(
        info.remote_url.as_deref(),
        Some("https://github.com/org/repo.git")
    );
    let revision = Revision::resolve(Some(&info), &CiEnvironment::default());
    assert_eq!(
        revision.source_url.as_deref(),
        Some("https://github.com/org/repo")
    );
    assert!(!format!("{info:?}{revision:?}").contains("SECRET"));
}

#[test]
fn shallow_clone_without_tags() {
    let origin = repository();
    std::fs::write(origin.path().join("second"), "2").unwrap();
    git(origin.path(), &["add", "second"]);
    git(origin.path(), &["commit", "--quiet", "-m", "second"]);
    git(origin.path(), &["tag", "v3.0.0"]);
    let parent = tempfile::tempdir().unwrap();
    let url = format!("file://{}", origin.path().display());
    git(
        parent.path(),
        &[
            "clone",
            "--quiet",
            "--depth",
            "1",
            "--no-tags",
            &url,
            "clone",
        ],
    );
    let clone = parent.path().join("clone");
    let info = discover(&clone);
    assert!(info.shallow);
    assert!(info.tags.is_empty());
    assert_eq!(info.branch.as_deref(), Some("main"));
    assert_eq!(info.default_branch.as_deref(), Some("main"));
    assert_eq!(info.remote_url.as_deref(), Some(url.as_str()));

    // Without tags there is no version, and the user is told why.
    let recorder = Recorder::default();
    let revision = Revision::resolve(Some(&info), &CiEnvironment::default());
    let tags = compute_tags(&TagSpec::default(), &revision, &recorder).unwrap();
    assert_eq!(
        tags,
        ["main".to_string(), format!("sha-{}", &info.commit[..7])]
    );
    let warnings = warnings(&recorder);
    assert!(
        warnings
            .iter()
            .any(|warning| warning.contains("git fetch --tags")),
        "{warnings:?}"
    );

    // On a CI tag event the version comes from the ref, shallow or not.
    let lookup = |name: &str| match name {
        "GITHUB_ACTIONS" => Some("true".to_string()),
        "GITHUB_REF" => Some("refs/tags/v3.0.0".to_string()),
        _ => None,
    };
    let ci = CiEnvironment::from_env(&lookup).unwrap();
    let revision = Revision::resolve(Some(&info), &ci);
    let tags = compute_tags(&TagSpec::default(), &revision, &Recorder::default()).unwrap();
    assert_eq!(
        tags[..4],
        ["3.0.0", "3.0", "3", &format!("sha-{}", &info.commit[..7])]
    );
    assert_eq!(tags[4], "latest");
}

#[test]
fn not_a_repository_and_unborn_head_fall_back() {
    let plain = tempfile::tempdir().unwrap();
    assert_eq!(GitInfo::discover(plain.path()).unwrap(), None);

    let unborn = tempfile::tempdir().unwrap();
    git(unborn.path(), &["init", "--quiet"]);
    assert_eq!(GitInfo::discover(unborn.path()).unwrap(), None);

    let bare = tempfile::tempdir().unwrap();
    git(bare.path(), &["init", "--quiet", "--bare"]);
    assert_eq!(GitInfo::discover(bare.path()).unwrap(), None);

    // No git and no CI: labels and tags still work, with what is known.
    let recorder = Recorder::default();
    let revision = Revision::resolve(None, &CiEnvironment::default());
    let tags = compute_tags(&TagSpec::default(), &revision, &recorder).unwrap();
    assert!(tags.is_empty());
    assert!(
        warnings(&recorder)
            .iter()
            .any(|warning| warning.contains("no sha tag")),
        "{:?}",
        warnings(&recorder)
    );
}

#[test]
fn missing_directory_is_an_error_naming_the_command() {
    let error = GitInfo::discover(Path::new("/nonexistent/checkout")).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, CiError::GitCommand { .. }), "{message}");
    assert!(message.contains("/nonexistent/checkout"), "{message}");
    assert!(message.contains("rev-parse"), "{message}");
}

#[test]
fn checkout_owned_by_another_user_says_how_to_trust_it() {
    // Only root can hand a directory to another user.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let repository = repository();
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(repository.path())
        .status()
        .unwrap();
    assert!(status.success());
    // Skip on machines whose global config already trusts every directory.
    let trusted = Command::new("git")
        .args(["config", "--get-all", "safe.directory"])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&trusted.stdout)
        .lines()
        .any(|line| line == "*")
    {
        return;
    }
    let error = GitInfo::discover(repository.path()).unwrap_err();
    assert!(
        matches!(error, CiError::GitDubiousOwnership { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("safe.directory"), "{error}");
}

#[test]
fn labels_from_a_real_checkout() {
    let repository = repository();
    git(
        repository.path(),
        &[
            "remote",
            "add",
            "origin",
            "git@gitlab.example.com:group/web.git",
        ],
    );
    git(repository.path(), &["tag", "v1.4.0"]);
    let info = discover(repository.path());
    let revision = Revision::resolve(Some(&info), &CiEnvironment::default());
    // The epoch defaults to the commit time, so `created` is reproducible.
    let labels = standard_labels(&revision, info.commit_time, &ImageLabels::default()).unwrap();
    let label = |key: &str| labels[&format!("org.opencontainers.image.{key}")].as_str();
    assert_eq!(label("created"), "2023-11-14T22:13:20Z");
    assert_eq!(label("revision"), info.commit);
    assert_eq!(label("source"), "https://gitlab.example.com/group/web");
    assert_eq!(label("version"), "1.4.0");
    assert_eq!(labels.len(), 5, "{labels:?}");
}
