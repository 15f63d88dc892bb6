//! The GitHub Action (`action.yml`) and the script it installs hoist with
//! (`scripts/install.sh`), run against a release directory this test makes
//! from the real release and serves from a loopback HTTP server
//! (`python3 -m http.server`): good sums install, a bad sum is refused with
//! nothing installed, a missing version is named.
use crate::common;

use crate::common::release::{release_directory, sums};
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// `python3 -m http.server` on a free loopback port, serving `directory`;
/// killed when dropped.
struct StaticServer {
    child: Child,
    url: String,
}

impl StaticServer {
    fn start(directory: &Path) -> StaticServer {
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                "0",
                "--directory",
            ])
            .arg(directory)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server starts");
        // It prints `Serving HTTP on 127.0.0.1 port N (http://127.0.0.1:N/) ...`.
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the server says where it listens");
        let port = line
            .split_whitespace()
            .skip_while(|word| *word != "port")
            .nth(1)
            .unwrap_or_else(|| panic!("no port in `{line}`"));
        StaticServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A release tree as GitHub serves one: `v1.2.3/` with the real release's
/// files, and `v1.2.4/` whose SHA256SUMS names another binary's checksum.
fn make_releases(root: &Path) {
    let good = root.join("v1.2.3");
    let tampered = root.join("v1.2.4");
    fs::create_dir_all(&good).unwrap();
    fs::create_dir_all(&tampered).unwrap();
    for entry in fs::read_dir(release_directory()).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), good.join(entry.file_name())).unwrap();
        fs::copy(entry.path(), tampered.join(entry.file_name())).unwrap();
    }
    let bad_sums: String = sums()
        .iter()
        .map(|(name, digest)| {
            let digest = if name == "hoist-linux-amd64" {
                common::hoist::sha256_hex(b"another binary")
            } else {
                digest.clone()
            };
            format!("{digest}  {name}\n")
        })
        .collect();
    fs::write(tampered.join("SHA256SUMS"), bad_sums).unwrap();
}

/// `scripts/install.sh VERSION DIR` against `url`, as the action runs it.
fn install(url: &str, version: &str, directory: &Path, github_path: &Path) -> Output {
    Command::new(common::root().join("scripts/install.sh"))
        .arg(version)
        .arg(directory)
        .env("HOIST_RELEASE_URL", url)
        .env("HOIST_ARCH", "amd64")
        .env("GITHUB_PATH", github_path)
        .output()
        .expect("scripts/install.sh runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_install_script_installs_a_release_whose_sums_match() {
    let work = tempfile::tempdir().expect("temp dir");
    make_releases(&work.path().join("releases"));
    let server = StaticServer::start(&work.path().join("releases"));
    let directory = work.path().join("tool-cache/hoist/1.2.3/X64");
    let github_path = work.path().join("github-path");

    let output = install(&server.url, "v1.2.3", &directory, &github_path);
    assert!(output.status.success(), "{}", stderr(&output));
    let installed = directory.join("hoist");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        installed.to_str().unwrap()
    );
    assert_eq!(
        fs::read(&installed).unwrap(),
        fs::read(release_directory().join("hoist-linux-amd64")).unwrap()
    );
    let version = common::run(Command::new(&installed).arg("--version"));
    assert_eq!(
        version.trim(),
        format!("hoist {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        fs::read_to_string(&github_path).unwrap(),
        format!("{}\n", directory.display())
    );

    // A cache restored the binary: it is checked, not downloaded again.
    fs::remove_file(work.path().join("releases/v1.2.3/hoist-linux-amd64")).unwrap();
    let again = install(&server.url, "1.2.3", &directory, &github_path);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("already in"), "{}", stderr(&again));
}

#[test]
fn the_install_script_refuses_a_binary_whose_sum_differs() {
    let work = tempfile::tempdir().expect("temp dir");
    make_releases(&work.path().join("releases"));
    let server = StaticServer::start(&work.path().join("releases"));
    let directory = work.path().join("bin");
    let github_path = work.path().join("github-path");

    let output = install(&server.url, "1.2.4", &directory, &github_path);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("hoist-linux-amd64") && message.contains("not installed"),
        "{message}"
    );
    assert!(
        !directory.join("hoist").exists(),
        "a refused binary was installed"
    );
    assert!(
        !directory.exists() || fs::read_dir(&directory).unwrap().next().is_none(),
        "the refused download left files in {}",
        directory.display()
    );
    assert!(!github_path.exists(), "a refused install was put on PATH");
}

#[test]
fn the_install_script_names_a_missing_version() {
    let work = tempfile::tempdir().expect("temp dir");
    make_releases(&work.path().join("releases"));
    let server = StaticServer::start(&work.path().join("releases"));
    let directory = work.path().join("bin");
    let github_path = work.path().join("github-path");

    let output = install(&server.url, "9.9.9", &directory, &github_path);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("hoist 9.9.9") && message.contains("check the version"),
        "{message}"
    );
    assert!(
        message.contains(&format!("{}/v9.9.9/SHA256SUMS", server.url)),
        "{message}"
    );
    assert!(!directory.join("hoist").exists());
    assert!(!github_path.exists());
}

#[test]
fn the_action_is_valid_against_githubs_action_schema() {
    let output = Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.github-actions"])
        .arg(common::root().join("action.yml"))
        .output()
        .expect("check-jsonschema runs (scripts/install-test-tools.sh installs it)");
    assert!(
        output.status.success(),
        "action.yml is not a valid action:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    // The action installs through the script tested above.
    let action = fs::read_to_string(common::root().join("action.yml")).unwrap();
    assert!(action.contains("scripts/install.sh"));
}
