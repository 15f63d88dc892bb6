//! `hoist build --verify`: an image pushed with provenance by one CI run is
//! rebuilt from the same commit in another run and compared, in the real
//! registry: reproduced, or the input that changed is named, or the
//! recorded commit is said to differ from the checkout.

use crate::common::hoist::{HoistOutput, hoist_in};
use crate::common::registry::TestRegistry;
use std::fs;
use std::path::Path;

/// git with a fixed identity and commit time.
fn git(directory: &Path, arguments: &[&str]) -> String {
    crate::common::git_at(directory, arguments, 1_700_000_000)
}

/// A checkout of one commit: a spec pushing `HOST/app` with one file layer.
fn checkout(directory: &Path, registry: &TestRegistry) -> String {
    fs::create_dir_all(directory.join("files")).unwrap();
    fs::write(directory.join("files/app.txt"), "hello\n").unwrap();
    fs::write(
        directory.join("hoist.toml"),
        format!(
            "[[image]]\nname = \"app\"\nrepository = \"{}/app\"\n\
             [image.config]\ncmd = [\"/app/app.txt\"]\n\
             [[image.layer]]\nfiles = [{{ source = \"files/app.txt\", target = \"/app/app.txt\" }}]\n",
            registry.host()
        ),
    )
    .unwrap();
    git(directory, &["init", "-q", "-b", "main"]);
    git(
        directory,
        &["remote", "add", "origin", "https://github.com/org/app"],
    );
    git(directory, &["add", "."]);
    git(directory, &["commit", "-q", "-m", "first"]);
    git(directory, &["rev-parse", "HEAD"])
}

/// `hoist build ARGS` in `checkout` as GitHub Actions run `run` of `commit`.
fn in_run(
    work: &Path,
    checkout: &Path,
    run: &str,
    commit: &str,
    arguments: &[&str],
) -> HoistOutput {
    let mut command = hoist_in(work, ["build"])
        .args(arguments)
        .current_dir(checkout);
    for (key, value) in [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REF", "refs/heads/main"),
        ("GITHUB_REF_NAME", "main"),
        ("GITHUB_SHA", commit),
        ("GITHUB_REPOSITORY", "org/app"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        (
            "GITHUB_WORKFLOW_REF",
            "org/app/.github/workflows/release.yml@refs/heads/main",
        ),
        ("GITHUB_RUN_ID", run),
        ("GITHUB_RUN_NUMBER", run),
    ] {
        command = command.env(key, value);
    }
    command.run()
}

/// Pushes the checkout's image as run 100 and returns `docker://HOST/app:main`.
fn publish(work: &Path, checkout: &Path, commit: &str, registry: &TestRegistry) -> String {
    in_run(work, checkout, "100", commit, &["--push", "--provenance"]).success();
    format!("docker://{}/app:main", registry.host())
}

fn code(output: &HoistOutput) -> i32 {
    output.status.code().expect("hoist exits")
}

#[test]
fn a_rebuild_in_another_run_reproduces_and_a_changed_file_is_named() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let directory = work.path().join("checkout");
    let commit = checkout(&directory, &registry);
    let published = publish(work.path(), &directory, &commit, &registry);

    let verified = in_run(
        work.path(),
        &directory,
        "200",
        &commit,
        &["--verify", &published],
    );
    assert_eq!(code(&verified), 0, "{verified:?}");
    let reproduced = verified
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("reproduced: sha256:"))
        .unwrap_or_else(|| panic!("no `reproduced:` line: {verified:?}"));
    assert_eq!(reproduced.len(), 64);
    assert!(
        verified.stdout.contains(&format!("same commit: {commit}")),
        "{verified:?}"
    );
    // The provenance names the run: its attestation differs, as expected.
    assert!(
        verified.stdout.contains("expected difference"),
        "{verified:?}"
    );
    assert!(
        verified.stdout.contains("index: attestation manifest: "),
        "{verified:?}"
    );
    assert!(verified.stdout.contains("runs/100"), "{verified:?}");

    fs::write(directory.join("files/app.txt"), "hello, changed\n").unwrap();
    let changed = in_run(
        work.path(),
        &directory,
        "200",
        &commit,
        &["--verify", &published],
    );
    assert_eq!(code(&changed), 1, "{changed:?}");
    assert!(changed.stdout.contains("not reproduced"), "{changed:?}");
    assert!(changed.stdout.contains("app/app.txt"), "{changed:?}");
    assert!(changed.stdout.contains("not committed"), "{changed:?}");
}

#[test]
fn another_commit_is_said_to_differ_and_trouble_exits_2() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let directory = work.path().join("checkout");
    let first = checkout(&directory, &registry);
    let published = publish(work.path(), &directory, &first, &registry);

    fs::write(directory.join("README.md"), "not an input\n").unwrap();
    git(&directory, &["add", "README.md"]);
    git(&directory, &["commit", "-q", "-m", "second"]);
    let second = git(&directory, &["rev-parse", "HEAD"]);
    let verified = in_run(
        work.path(),
        &directory,
        "300",
        &second,
        &["--verify", &published],
    );
    assert!(
        verified
            .stdout
            .contains(&format!("commit differs: recorded {first}, here {second}")),
        "{verified:?}"
    );
    // The revision label follows the commit, so the config differs.
    assert_eq!(code(&verified), 1, "{verified:?}");

    let missing = format!("docker://{}/absent:1", registry.host());
    let trouble = in_run(
        work.path(),
        &directory,
        "300",
        &second,
        &["--verify", &missing],
    );
    assert_eq!(code(&trouble), 2, "{trouble:?}");
    assert!(trouble.stderr.contains("absent"), "{trouble:?}");
}

#[test]
fn a_third_party_outside_ci_reproduces_a_release_attested_as_referrers() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let directory = work.path().join("checkout");
    let commit = checkout(&directory, &registry);
    in_run(
        work.path(),
        &directory,
        "100",
        &commit,
        &["--push", "--provenance", "--attach", "referrers"],
    )
    .success();
    let published = format!("docker://{}/app:main", registry.host());

    // No CI variables: a clone on someone's machine, on the same branch.
    let verified = hoist_in(work.path(), ["build", "--verify", &published])
        .current_dir(&directory)
        .run();
    assert_eq!(code(&verified), 0, "{verified:?}");
    assert!(
        verified.stdout.contains(&format!("same commit: {commit}")),
        "{verified:?}"
    );
    assert!(
        verified.stdout.contains("reproduced: sha256:"),
        "{verified:?}"
    );
}
