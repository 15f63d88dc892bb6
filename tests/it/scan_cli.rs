//! `hoist scan` end to end on the Debian fixture, as a directory and as an
//! image in an OCI layout: the table, `--json`, SARIF validated against the
//! official 2.1.0 schema, the threshold's exit status, and ignores.

use crate::common::assert_valid_json;
use crate::common::hoist::{HoistOutput, debian_rootfs, hoist};
use crate::common::root;
use serde_json::Value;
use std::fs;

/// `failure` insists on an `error:` line; a failed gate is a result, not an error.
trait Exits {
    fn exits(self, code: i32) -> Self;
}

impl Exits for HoistOutput {
    fn exits(self, code: i32) -> Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "{}\n{}\n{}",
            self.description,
            self.stdout,
            self.stderr
        );
        self
    }
}

fn database() -> String {
    root().join("tests/data/scan/osv").display().to_string()
}

#[test]
fn threshold_decides_the_exit_status() {
    let rootfs = debian_rootfs();
    let cache = tempfile::tempdir().expect("cache");
    let scan = |extra: &[&str]| {
        hoist(["scan"])
            .arg(&rootfs)
            .args(["--db", &database()])
            .args(extra)
            .env("HOIST_CACHE", cache.path())
    };
    // Two critical (libc6, libc-bin) and two high findings; bash and six are unknown.
    let failed = scan(&["--fail-on", "high"]).run().exits(1);
    let header = failed.stdout.lines().next().unwrap_or_default();
    for column in [
        "PACKAGE",
        "INSTALLED",
        "FIXED IN",
        "ADVISORY",
        "SEVERITY",
        "PLATFORM",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(
        failed.stdout.contains("CVE-2099-0001") && failed.stdout.contains("2.37-1"),
        "{}",
        failed.stdout
    );
    assert!(
        failed
            .stderr
            .contains("gate failed: 4 finding(s) at or above high"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("newest record 2026-02-01T00:00:00Z"),
        "{}",
        failed.stderr
    );
    scan(&[
        "--fail-on",
        "critical",
        "--ignore-unfixed",
        "--severity",
        "low,medium",
    ])
    .run()
    .success();
    scan(&[]).run().success();
    scan(&["--fail-on", "critical", "--ignore-unfixed"])
        .run()
        .exits(1);
    // Unknown severity fails only when asked.
    scan(&["--fail-on", "low", "--severity", "unknown"])
        .run()
        .exits(0);
    scan(&["--fail-on-unknown", "--severity", "unknown"])
        .run()
        .exits(1);
    scan(&["--fail-on", "low", "--db", "/nonexistent/osv"])
        .run()
        .exits(2);
}

#[test]
fn ignores_from_trivyignore_and_openvex() {
    let rootfs = debian_rootfs();
    let work = tempfile::tempdir().expect("work");
    let trivyignore = work.path().join(".trivyignore");
    fs::write(&trivyignore, "# glibc: not reachable in this image\nCVE-2099-0001 exp:2999-12-31\nCVE-2024-3651 exp:2000-01-01\n").unwrap();
    let vex = work.path().join("app.openvex.json");
    fs::write(
        &vex,
        r#"{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.com/vex/1", "author": "team", "timestamp": "2026-01-01T00:00:00Z", "version": 1,
            "statements": [{"vulnerability": {"name": "x_HOIST-TEST-OPENSSL-LAST-AFFECTED"}, "products": [{"@id": "pkg:deb/debian/libssl3"}],
                            "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}]}"#,
    )
    .unwrap();
    let output = hoist(["scan"])
        .arg(&rootfs)
        .args(["--db", &database(), "--fail-on", "high", "--json"])
        .arg("--ignore")
        .arg(&trivyignore)
        .arg("--ignore")
        .arg(&vex)
        .env("HOIST_CACHE", work.path().join("cache"))
        .run()
        .exits(1);
    let report: Value = serde_json::from_str(&output.stdout).expect("JSON report");
    let advisories: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|finding| finding["advisory"].as_str())
        .collect();
    // The glibc CVE and the openssl record are ignored; the idna line expired.
    assert!(!advisories.contains(&"CVE-2099-0001"), "{advisories:?}");
    assert!(
        !advisories.contains(&"x_HOIST-TEST-OPENSSL-LAST-AFFECTED"),
        "{advisories:?}"
    );
    assert!(advisories.contains(&"CVE-2024-3651"), "{advisories:?}");
    assert_eq!(report["ignored"], 3);
    assert_eq!(report["gate"]["passed"], false);
    assert_eq!(report["gate"]["counts"]["high"], 1);
}

#[test]
fn sarif_for_an_image_in_a_layout_validates() {
    let rootfs = debian_rootfs();
    let work = tempfile::tempdir().expect("work");
    let spec = work.path().join("hoist.toml");
    fs::write(
        &spec,
        format!(
            "[[image]]\nname = \"debian\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsource-date-epoch = 1700000000\n\n\
             [[image.layer]]\nsource = \"{}\"\ntarget = \"/\"\nowner = \"preserve\"\npermissions = \"preserve\"\n",
            rootfs.display()
        ),
    )
    .unwrap();
    let layout = work.path().join("out");
    hoist(["build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}", layout.display()))
        .current_dir(work.path())
        .run()
        .success();
    let sarif = work.path().join("scan.sarif");
    hoist(["scan"])
        .arg(format!("oci:{}", layout.display()))
        .args(["--db", &database(), "--format", "sarif", "--output"])
        .arg(&sarif)
        .env("HOIST_CACHE", work.path().join("cache"))
        .run()
        .success();
    assert_valid_json("sarif/sarif-schema-2.1.0.json", &[sarif.as_path()]);
    let document: Value = serde_json::from_slice(&fs::read(&sarif).unwrap()).unwrap();
    let run = &document["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    let results = run["results"].as_array().expect("results");
    // One rule per advisory; one result per finding on each platform.
    assert_eq!(rules.len(), 6, "{rules:#?}");
    assert_eq!(results.len(), 14);
    let platforms: std::collections::BTreeSet<&str> = results
        .iter()
        .filter_map(|result| result["locations"][0]["logicalLocations"][0]["name"].as_str())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"].into());
    let critical = rules
        .iter()
        .find(|rule| rule["id"] == "CVE-2099-0001")
        .expect("glibc rule");
    assert_eq!(critical["properties"]["security-severity"], "9.5");
}
