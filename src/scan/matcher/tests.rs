use super::*;
use crate::attest::{Inventory, Package};
use crate::scan::osv::Database;

fn database(records: &[&str]) -> Database {
    Database::from_records(
        records
            .iter()
            .map(|text| serde_json::from_str(text).expect("record parses"))
            .collect(),
    )
}

fn package(ecosystem: Ecosystem, name: &str, version: &str, purl: &str, location: &str) -> Package {
    Package {
        name: name.into(),
        version: version.into(),
        ecosystem,
        purl: purl.into(),
        licenses: Default::default(),
        architecture: None,
        source_package: None,
        locations: [location.to_string()].into(),
    }
}

fn npm(version: &str) -> Inventory {
    Inventory {
        packages: vec![package(
            Ecosystem::Npm,
            "left-pad",
            version,
            &format!("pkg:npm/left-pad@{version}"),
            "app/node_modules/left-pad/package.json",
        )],
        ..Default::default()
    }
}

fn advisories(outcome: &MatchOutcome) -> Vec<(&str, Option<&str>)> {
    outcome
        .findings
        .iter()
        .map(|finding| (finding.advisory.as_str(), finding.fixed.as_deref()))
        .collect()
}

const TWO_INTERVALS: &str = r#"{"id": "GHSA-aaaa", "modified": "2026-01-01T00:00:00Z",
  "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "2.0.0-rc.1"}, {"fixed": "2.0.1"},
                                             {"introduced": "1.0.0"}, {"fixed": "1.3.1"}]}]}]}"#;

#[test]
fn ranges_with_two_intervals_in_any_event_order() {
    let database = database(&[TWO_INTERVALS]);
    for (version, expected) in [
        ("0.9.0", None),
        ("1.0.0", Some("1.3.1")),
        ("1.3.0", Some("1.3.1")),
        ("1.3.1", None),
        ("1.9.9", None),
        ("2.0.0-rc.0", None),
        ("2.0.0-rc.1", Some("2.0.1")),
        ("2.0.0", Some("2.0.1")),
        ("2.0.1", None),
    ] {
        let outcome = match_inventory(&database, &npm(version));
        let found: Vec<_> = advisories(&outcome)
            .into_iter()
            .map(|(_, fixed)| fixed)
            .collect();
        match expected {
            Some(fixed) => assert_eq!(found, [Some(fixed)], "{version}"),
            None => assert!(found.is_empty(), "{version}: {found:?}"),
        }
    }
}

#[test]
fn last_affected_limit_and_version_lists() {
    let database = database(&[
        r#"{"id": "GHSA-last", "modified": "2026-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"last_affected": "1.2.0"}]}]}]}"#,
        r#"{"id": "GHSA-limit", "modified": "2026-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"limit": "1.1.0"}]}]}]}"#,
        r#"{"id": "GHSA-list", "modified": "2026-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"},
            "versions": ["1.2.5"]}]}"#,
    ]);
    let ids = |version| -> Vec<String> {
        match_inventory(&database, &npm(version))
            .findings
            .into_iter()
            .map(|finding| finding.advisory)
            .collect()
    };
    assert_eq!(ids("1.0.5"), ["GHSA-last", "GHSA-limit"]);
    assert_eq!(ids("1.2.0"), ["GHSA-last"]);
    assert!(ids("1.2.1").is_empty());
    assert_eq!(ids("1.2.5"), ["GHSA-list"]);
}

#[test]
fn aliases_merge_and_lend_their_severity() {
    let database = database(&[
        r#"{"id": "GHSA-jjg7-2v4v-x38h", "modified": "2024-07-08T14:35:53Z", "aliases": ["CVE-2024-3651"],
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}],
            "affected": [{"package": {"ecosystem": "PyPI", "name": "idna"},
              "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.7"}]}]}]}"#,
        r#"{"id": "PYSEC-2024-60", "modified": "2024-07-11T17:21:37Z", "aliases": ["CVE-2024-3651"],
            "affected": [{"package": {"ecosystem": "PyPI", "name": "IDNA"},
              "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0.1"}, {"fixed": "3.7"}]}]}]}"#,
    ]);
    let pip = package(
        Ecosystem::Python,
        "idna",
        "3.3",
        "pkg:pypi/idna@3.3",
        "usr/local/lib/python3.11/dist-packages/idna-3.3.dist-info/METADATA",
    );
    let dpkg = package(
        Ecosystem::Python,
        "idna",
        "3.3",
        "pkg:pypi/idna@3.3",
        "usr/lib/python3/dist-packages/idna-3.3.egg-info/PKG-INFO",
    );
    let inventory = Inventory {
        packages: vec![pip, dpkg],
        ..Default::default()
    };
    let outcome = match_inventory(&database, &inventory);
    assert_eq!(outcome.findings.len(), 1, "{:#?}", outcome.findings);
    let finding = &outcome.findings[0];
    assert_eq!(finding.advisory, "CVE-2024-3651");
    assert_eq!(
        finding
            .records
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["GHSA-jjg7-2v4v-x38h", "PYSEC-2024-60"]
    );
    assert_eq!(finding.fixed.as_deref(), Some("3.7"));
    assert_eq!(
        (finding.severity, finding.severity_source),
        (Severity::Medium, "cvss")
    );
}

#[test]
fn an_uncomparable_version_is_a_warning_not_a_finding() {
    let database = database(&[TWO_INTERVALS]);
    let outcome = match_inventory(&database, &npm("not-a-version"));
    assert!(outcome.findings.is_empty());
    assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    assert!(
        outcome.warnings[0].contains("GHSA-aaaa"),
        "{}",
        outcome.warnings[0]
    );
}

/// A record whose only vector is CVSS v4.0 is rated by it, and a record
/// with both a v3.1 and a v4.0 vector by the v4.0 one.
#[test]
fn cvss4_vectors_rate_a_record_before_cvss3_ones() {
    let record = |id: &str, severities: &str| {
        format!(
            r#"{{"id": "{id}", "modified": "2026-01-01T00:00:00Z", "severity": [{severities}],
              "affected": [{{"package": {{"ecosystem": "npm", "name": "left-pad"}},
                "ranges": [{{"type": "SEMVER", "events": [{{"introduced": "0"}}, {{"fixed": "2.0.0"}}]}}]}}]}}"#
        )
    };
    // 9.8 critical in v3.1; 6.9 medium in v4.0.
    let version3 =
        r#"{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}"#;
    let version4 = r#"{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N"}"#;
    let only4 = record("GHSA-only4", version4);
    let both = record("GHSA-both", &format!("{version3}, {version4}"));
    let only3 = record("GHSA-only3", version3);
    let database = database(&[&only4, &both, &only3]);
    let severities: Vec<(String, Severity, &str)> = match_inventory(&database, &npm("1.0.0"))
        .findings
        .into_iter()
        .map(|finding| (finding.advisory, finding.severity, finding.severity_source))
        .collect();
    assert_eq!(
        severities,
        [
            ("GHSA-both".to_string(), Severity::Medium, "cvss"),
            ("GHSA-only3".to_string(), Severity::Critical, "cvss"),
            ("GHSA-only4".to_string(), Severity::Medium, "cvss"),
        ]
    );
}
