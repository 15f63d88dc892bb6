//! Version ordering against the real implementations: `dpkg
//! --compare-versions`, Python's `packaging`, node's `semver` (installed by
//! `scripts/install-test-tools.sh`) and the `semver` crate Cargo uses. Each
//! test generates a bounded set of pairs from a fixed seed, from real
//! versions in the published fixtures and from random ones, and asks the
//! implementation once for the whole batch.

use crate::common::{assert_agrees, root};
use hoist::scan::version::{Scheme, compare};
use std::cmp::Ordering;
use std::io::Write;
use std::process::{Command, Stdio};

/// Where `scripts/install-test-tools.sh` installs node's `semver`.
const NODE_MODULES: &str = "/usr/local/lib/hoist-test-tools/node_modules";

fn fixture_versions(file: &str, limit: usize) -> Vec<String> {
    let path = root().join("tests/data/scan/versions").join(file);
    let text = std::fs::read_to_string(&path).expect("fixture reads");
    let mut versions: Vec<String> = text
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with("//"))
        .flat_map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            [words[0].to_string(), words[words.len() - 1].to_string()]
        })
        .collect();
    versions.sort();
    versions.dedup();
    let step = (versions.len() / limit).max(1);
    versions.into_iter().step_by(step).take(limit).collect()
}

/// A random string over `pieces`, `length` pieces long.
fn random_version(random: &mut fastrand::Rng, pieces: &[&str], length: usize) -> String {
    (0..length)
        .map(|_| pieces[random.usize(..pieces.len())])
        .collect()
}

/// `count` random versions: a number (below `first_below`), then pieces.
fn random_versions(
    random: &mut fastrand::Rng,
    pieces: &[&str],
    first_below: usize,
    count: usize,
) -> Vec<String> {
    (0..count)
        .map(|_| {
            let length = random.usize(1..8);
            format!(
                "{}{}",
                random.usize(0..first_below),
                random_version(random, pieces, length)
            )
        })
        .collect()
}

/// Pairs: neighbours in sorted order (close versions decide ranges) and random pairs.
fn pairs(versions: &[String], random: &mut fastrand::Rng, count: usize) -> Vec<(String, String)> {
    let mut sorted = versions.to_vec();
    sorted.sort();
    let mut pairs: Vec<(String, String)> = sorted
        .windows(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    while pairs.len() < count {
        let left = &versions[random.usize(..versions.len())];
        let right = &versions[random.usize(..versions.len())];
        pairs.push((left.clone(), right.clone()));
    }
    pairs.truncate(count);
    pairs
}

/// Runs `program` with the pairs on stdin, one `LEFT\tRIGHT` a line, and
/// returns its answer lines (`<`, `=`, `>` or `invalid`).
fn ask(command: &mut Command, pairs: &[(String, String)]) -> Vec<String> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{command:?}: {error}; run scripts/install-test-tools.sh"));
    let mut input = String::new();
    for (left, right) in pairs {
        input.push_str(&format!("{left}\t{right}\n"));
    }
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("reference runs");
    writer.join().expect("writer").expect("stdin written");
    assert!(output.status.success(), "{command:?} failed");
    let answers: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(answers.len(), pairs.len(), "one answer per pair");
    answers
}

fn ours(scheme: Scheme, left: &str, right: &str) -> &'static str {
    match compare(scheme, left, right) {
        Ok(Ordering::Less) => "<",
        Ok(Ordering::Equal) => "=",
        Ok(Ordering::Greater) => ">",
        Err(_) => "invalid",
    }
}

/// Asserts every answer matches, listing the disagreements; returns how
/// many pairs both sides could order, so a test can insist on enough.
fn agree(scheme: Scheme, pairs: &[(String, String)], answers: &[String]) -> usize {
    let disagreements: Vec<String> = pairs
        .iter()
        .zip(answers)
        .filter(|((left, right), answer)| ours(scheme, left, right) != answer.as_str())
        .map(|((left, right), answer)| {
            format!(
                "{left} vs {right}: reference {answer}, hoist {}",
                ours(scheme, left, right)
            )
        })
        .collect();
    assert_agrees(&disagreements);
    answers.iter().filter(|answer| *answer != "invalid").count()
}

#[test]
fn dpkg_orders_as_dpkg_compare_versions() {
    let mut random = fastrand::Rng::with_seed(0x0d9c);
    let mut versions = fixture_versions("osv-scalibr-debian-versions-generated.txt", 250);
    let pieces = [
        "0", "1", "2", "9", "10", ".", "+", "~", "-", "a", "b", "z", "deb12u1", "ubuntu", ":", "00",
    ];
    versions.extend(random_versions(&mut random, &pieces, 3, 250));
    let pairs = pairs(&versions, &mut random, 700);
    let script = r#"while IFS=$'\t' read -r left right; do
        if ! dpkg --validate-version "$left" 2>/dev/null || ! dpkg --validate-version "$right" 2>/dev/null; then echo invalid
        elif dpkg --compare-versions "$left" lt "$right" 2>/dev/null; then echo '<'
        elif dpkg --compare-versions "$left" eq "$right" 2>/dev/null; then echo '='
        else echo '>'; fi
    done"#;
    let answers = ask(Command::new("bash").arg("-c").arg(script), &pairs);
    assert!(agree(Scheme::Dpkg, &pairs, &answers) > 400);
}

#[test]
fn pep440_orders_as_python_packaging() {
    let mut random = fastrand::Rng::with_seed(0x0440);
    let mut versions = fixture_versions("osv-scalibr-pypi-versions-generated.txt", 300);
    let pieces = [
        "0", "1", "2", "10", "01", ".", "-", "_", "a", "b", "rc", "c", "alpha", "Beta", "pre",
        "preview", "post", "rev", "r", "dev", "+", "local", "!", "v", "x",
    ];
    versions.extend(random_versions(&mut random, &pieces, 20, 300));
    let pairs = pairs(&versions, &mut random, 1500);
    let script = r#"
import sys
from packaging.version import Version, InvalidVersion
for line in sys.stdin:
    left, right = line.rstrip("\n").split("\t")
    try:
        a, b = Version(left), Version(right)
    except InvalidVersion:
        print("invalid")
        continue
    print("<" if a < b else "=" if a == b else ">")
"#;
    let answers = ask(Command::new("python3").arg("-c").arg(script), &pairs);
    assert!(agree(Scheme::Pep440, &pairs, &answers) > 600);
}

fn semver_candidates(random: &mut fastrand::Rng) -> Vec<String> {
    let mut versions = fixture_versions("osv-scalibr-semver-versions.txt", 120);
    let numbers = ["0", "1", "2", "10", "01", "99"];
    let identifiers = [
        "alpha", "beta", "rc", "0", "1", "11", "01", "x-y", "A", "a1", "",
    ];
    for _ in 0..300 {
        let mut version = format!(
            "{}.{}.{}",
            numbers[random.usize(..numbers.len())],
            numbers[random.usize(..numbers.len())],
            numbers[random.usize(..numbers.len())]
        );
        if random.bool() {
            let count = random.usize(1..4);
            let parts: Vec<&str> = (0..count)
                .map(|_| identifiers[random.usize(..identifiers.len())])
                .collect();
            version = format!("{version}-{}", parts.join("."));
        }
        if random.usize(..4) == 0 {
            version.push_str("+build.5");
        }
        if random.usize(..8) == 0 {
            version.insert(0, 'v');
        }
        versions.push(version);
    }
    versions
}

#[test]
fn semver_orders_as_node_semver() {
    let mut random = fastrand::Rng::with_seed(0x0de5);
    let versions = semver_candidates(&mut random);
    let pairs = pairs(&versions, &mut random, 1500);
    let script = r#"
const semver = require("semver");
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
for (const line of lines) {
  const [left, right] = line.split("\t");
  if (!semver.valid(left) || !semver.valid(right)) { console.log("invalid"); continue; }
  const order = semver.compare(left, right);
  console.log(order < 0 ? "<" : order > 0 ? ">" : "=");
}
"#;
    let answers = ask(
        Command::new("node")
            .env("NODE_PATH", NODE_MODULES)
            .arg("-e")
            .arg(script),
        &pairs,
    );
    assert!(agree(Scheme::Semver, &pairs, &answers) > 300);
}

/// Cargo's own `semver` crate, by precedence (build metadata ignored).
#[test]
fn semver_orders_as_cargo_semver() {
    let mut random = fastrand::Rng::with_seed(0xca60);
    let versions: Vec<String> = semver_candidates(&mut random)
        .into_iter()
        .filter(|version| !version.starts_with('v'))
        .collect();
    let pairs = pairs(&versions, &mut random, 1500);
    let mut ordered = 0;
    for (left, right) in &pairs {
        let (Ok(a), Ok(b)) = (semver::Version::parse(left), semver::Version::parse(right)) else {
            assert!(
                compare(Scheme::Semver, left, right).is_err(),
                "{left} vs {right}: Cargo refuses one, hoist orders them"
            );
            continue;
        };
        assert_eq!(
            compare(Scheme::Semver, left, right),
            Ok(a.cmp_precedence(&b)),
            "{left} vs {right}"
        );
        ordered += 1;
    }
    assert!(ordered > 300, "{ordered}");
}
