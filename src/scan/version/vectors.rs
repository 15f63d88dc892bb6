//! The schemes against their reference implementations' published test
//! vectors (`tests/data/scan/versions/`, origins in its README).

use super::{Scheme, VersionError, compare};
use std::cmp::Ordering;

fn vectors(file: &str) -> String {
    let path = format!(
        "{}/tests/data/scan/versions/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn ordering(operator: &str) -> Ordering {
    match operator {
        "<" => Ordering::Less,
        "=" => Ordering::Equal,
        ">" => Ordering::Greater,
        other => panic!("unknown operator {other}"),
    }
}

/// A fixture line and what this comparison gave for it.
type Disagreement = (String, Result<Ordering, VersionError>);

/// osv-scalibr's fixtures: `LEFT OP RIGHT` lines, `#` and `//` comments.
/// Returns how many lines were checked and the lines that disagree, each
/// with what this comparison gave.
fn compare_fixture(scheme: Scheme, file: &str) -> (usize, Vec<Disagreement>) {
    let text = vectors(file);
    let mut disagreements = Vec::new();
    let mut checked = 0;
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# ") || line.starts_with("// ") {
            continue;
        }
        let [left, operator, right] = line.split(' ').collect::<Vec<_>>()[..] else {
            panic!("{file}: malformed line {line}");
        };
        checked += 1;
        let got = compare(scheme, left, right);
        if got != Ok(ordering(operator)) {
            disagreements.push((line.to_string(), got));
        }
    }
    (checked, disagreements)
}

/// A fixture this comparison must agree with line for line.
fn check_comparisons(scheme: Scheme, file: &str) -> usize {
    let (checked, disagreements) = compare_fixture(scheme, file);
    assert!(disagreements.is_empty(), "{file}: {disagreements:#?}");
    checked
}

#[test]
fn dpkg_vectors() {
    assert!(check_comparisons(Scheme::Dpkg, "osv-scalibr-debian-versions.txt") > 20);
    assert!(check_comparisons(Scheme::Dpkg, "osv-scalibr-debian-versions-generated.txt") > 10_000);
}

/// osv-scalibr orders legacy (pre-PEP 440) versions by a fallback;
/// `packaging` 22 and later refuses them, and so does this comparison
/// (`tests/it/scan_versions.rs` checks the refusals against `packaging`).
#[test]
fn pep440_vectors() {
    for (file, legacy_lines) in [
        ("osv-scalibr-pypi-versions.txt", 11),
        ("osv-scalibr-pypi-versions-generated.txt", 69),
    ] {
        let (checked, disagreements) = compare_fixture(Scheme::Pep440, file);
        assert!(checked > 20, "{file}");
        assert_eq!(
            disagreements.len(),
            legacy_lines,
            "{file}: {disagreements:#?}"
        );
        assert!(
            disagreements.iter().all(|(_, got)| got.is_err()),
            "{disagreements:#?}"
        );
    }
}

#[test]
fn pep440_packaging_sort_order() {
    let text = vectors("packaging-VERSIONS.py.txt");
    let versions: Vec<&str> = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix('"')?.strip_suffix("\","))
        .collect();
    assert!(versions.len() > 80, "{} versions", versions.len());
    for (index, left) in versions.iter().enumerate() {
        assert_eq!(
            compare(Scheme::Pep440, left, left),
            Ok(Ordering::Equal),
            "{left}"
        );
        for right in &versions[index + 1..] {
            assert_eq!(
                compare(Scheme::Pep440, left, right),
                Ok(Ordering::Less),
                "{left} < {right}"
            );
        }
    }
    assert!(compare(Scheme::Pep440, "lolwat", "1.0").is_err());
}

#[test]
fn semver_vectors() {
    let (checked, disagreements) =
        compare_fixture(Scheme::Semver, "osv-scalibr-semver-versions.txt");
    assert!(checked > 40);
    // osv-scalibr reads these "semver-like"; npm and Cargo refuse them.
    let refused: Vec<&str> = disagreements
        .iter()
        .map(|(line, _)| line.as_str())
        .collect();
    assert_eq!(
        refused,
        [
            "999999999999999999999999999991 < 999999999999999999999999999999",
            "999999999999999999999999999991.999999999999999999999999999991.999999999999999999999999999991 < 999999999999999999999999999999.999999999999999999999999999991.999999999999999999999999999991",
            "1.1.3.4.5 = 1.1.3.4.5"
        ]
    );
    assert!(disagreements.iter().all(|(_, got)| got.is_err()));
}

#[test]
fn rpm_vectors() {
    assert!(check_comparisons(Scheme::Rpm, "osv-scalibr-redhat-versions.txt") > 100);
}

#[test]
fn rpmvercmp_vectors() {
    let text = vectors("rpm-rpmvercmp.at");
    let mut checked = 0;
    for line in text.lines() {
        let Some(arguments) = line
            .strip_prefix("RPMVERCMP(")
            .and_then(|rest| rest.strip_suffix(')'))
        else {
            continue;
        };
        let [left, right, expected] = arguments.split(", ").collect::<Vec<_>>()[..] else {
            panic!("malformed {line}");
        };
        let expected = match expected {
            "-1" => Ordering::Less,
            "0" => Ordering::Equal,
            "1" => Ordering::Greater,
            other => panic!("unexpected result {other}"),
        };
        assert_eq!(super::rpm::rpmvercmp(left, right), expected, "{line}");
        checked += 1;
    }
    assert!(checked > 80, "{checked}");
}

/// apk-tools' own `version.data`: `V1 OP V2`, `V1 !OP V2`, `V` (valid),
/// `!V` (invalid), `#` comments.
#[test]
fn apk_tools_vectors() {
    let text = vectors("apk-tools-version.data");
    let mut checked = 0;
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        checked += 1;
        let words: Vec<&str> = line.split(' ').collect();
        let passed = match words[..] {
            [left, operator, right] => {
                let (inverted, operator) = match operator.strip_prefix('!') {
                    Some(operator) => (true, operator),
                    None => (false, operator),
                };
                let fuzzy = operator.contains('~');
                let order = super::apk::compare_unchecked(left, right, fuzzy);
                let matches = match order {
                    Ordering::Less => operator.contains('<'),
                    Ordering::Equal => operator.contains('=') || operator.contains('~'),
                    Ordering::Greater => operator.contains('>'),
                };
                matches != inverted
            }
            [version] => match version.strip_prefix('!') {
                Some(version) => !super::apk::validate(version),
                None => super::apk::validate(version),
            },
            _ => panic!("malformed line {raw}"),
        };
        assert!(passed, "apk-tools vector failed: {raw}");
    }
    assert!(checked > 700, "{checked}");
}

#[test]
fn apk_vectors() {
    let (checked, disagreements) =
        compare_fixture(Scheme::Apk, "osv-scalibr-alpine-versions-generated.txt");
    assert!(checked > 10_000);
    // apk-tools 3 stops reading at a digit after a letter (`6.6.1p1`, from
    // Alpine releases before 3.4) and then takes both sides as equal, where
    // osv-scalibr orders them as apk-tools 2 did; this port follows apk.
    assert_eq!(disagreements.len(), 32, "{disagreements:#?}");
    for (line, got) in &disagreements {
        assert_eq!(*got, Ok(Ordering::Equal), "{line}");
        assert!(line.contains("p1-r") || line.contains("p2-r"), "{line}");
    }
}

/// golang.org/x/mod/semver's table: in order, equal where canonical forms are.
#[test]
fn go_vectors() {
    let text = vectors("golang-mod-semver-tests.go.txt");
    let table: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|line| {
            let inner = line.trim().strip_prefix("{\"")?.strip_suffix("\"},")?;
            inner.split_once("\", \"")
        })
        .collect();
    assert!(table.len() > 30, "{}", table.len());
    for (index, (left, left_canonical)) in table.iter().enumerate() {
        for (other, (right, right_canonical)) in table.iter().enumerate() {
            let expected = if left_canonical == right_canonical {
                Ordering::Equal
            } else {
                index.cmp(&other)
            };
            assert_eq!(
                super::go::compare_lenient(left, right),
                expected,
                "{left} vs {right}"
            );
        }
    }
    assert_eq!(
        compare(
            Scheme::Go,
            "0.0.0-20191109021931-daa7c04131f5",
            "v0.0.0-20200101000000-aaaaaaaaaaaa"
        ),
        Ok(Ordering::Less)
    );
    assert_eq!(
        compare(Scheme::Go, "v2.0.0+incompatible", "2.0.0"),
        Ok(Ordering::Equal)
    );
    assert_eq!(
        compare(Scheme::Go, "v1.2.3-pre", "1.2.3"),
        Ok(Ordering::Less)
    );
}
