//! `hoist build --scan`: the Debian fixture built and matched against the
//! test OSV database before publishing. A failed gate pushes no manifest and
//! no tag to the real registry and writes no layout; a passing one pushes.
//! The metadata file and the job summary carry the gate either way.

use crate::common::hoist::{debian_rootfs, hoist, sha256_hex};
use crate::common::registry::{TestRegistry, skopeo_raw, skopeo_tags};
use crate::common::root;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

const VULNERABILITY_PREDICATE: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";

fn database() -> String {
    root().join("tests/data/scan/osv").display().to_string()
}

/// A spec building the Debian fixture as image `app` for this machine.
fn spec(work: &Path) -> PathBuf {
    spec_with(work, "")
}

/// The same spec with `header` (a `[defaults]` table) before the image.
fn spec_with(work: &Path, header: &str) -> PathBuf {
    let path = work.join("hoist.toml");
    fs::write(
        &path,
        format!(
            "{header}[[image]]\nname = \"app\"\nsource-date-epoch = 1700000000\n\n\
             [[image.layer]]\nsource = \"{}\"\ntarget = \"/\"\n\
             owner = \"preserve\"\npermissions = \"preserve\"\n",
            debian_rootfs().display()
        ),
    )
    .unwrap();
    path
}

fn metadata(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn failed_gate_pushes_nothing_and_passing_gate_pushes() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path());
    let destination = format!("docker://{}/gate/app:v1", registry.host());
    let metadata_file = work.path().join("metadata.json");
    let summary = work.path().join("summary.md");
    let build = |extra: &[&str]| {
        hoist(["build", "--no-cache", "-f"])
            .arg(&spec)
            .args(["-o", &destination, "--scan", "--db", &database()])
            .args(extra)
            .arg("--metadata-file")
            .arg(&metadata_file)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("HOIST_CACHE", work.path().join("cache"))
    };

    // Two critical and two high findings in the fixture.
    let failed = build(&["--fail-on", "high"])
        .run()
        .failure(1)
        .stderr_mentions(&["vulnerability gate failed", "4 finding(s) at or above high"]);
    assert_eq!(
        registry.count_requests("PUT", "/manifests/"),
        0,
        "no manifest after a failed gate:\n{}\n{}",
        failed.stderr,
        registry.log()
    );
    let written = metadata(&metadata_file);
    assert_eq!(written["scan"]["passed"], false, "{written}");
    assert_eq!(written["scan"]["counts"]["critical"], 2, "{written}");
    assert_eq!(written["scan"]["counts"]["high"], 2, "{written}");
    assert_eq!(written["images"], serde_json::json!([]), "{written}");
    let text = fs::read_to_string(&summary).unwrap();
    assert!(text.contains("Vulnerability scan: failed"), "{text}");
    assert!(text.contains("| CVE-2099-0001 | critical |"), "{text}");

    // Without a threshold the gate only reports: the image is pushed, with
    // its result as a referrer of the platform manifest, not in an index: a
    // single platform with nothing attached in an index is its manifest.
    build(&["--attest-scan"]).run().success();
    let repository = format!("{}/gate/app", registry.host());
    let raw = |reference: String| -> Value {
        serde_json::from_slice(&skopeo_raw(&reference, &["--tls-verify=false"])).unwrap()
    };
    let top = skopeo_raw(&format!("{repository}:v1"), &["--tls-verify=false"]);
    let top_manifest: Value = serde_json::from_slice(&top).unwrap();
    assert_eq!(
        top_manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "no index around the one platform: {top_manifest}"
    );
    let platform_hex = sha256_hex(&top);
    let fallback = format!("sha256-{platform_hex}");
    assert_eq!(
        skopeo_tags(&repository),
        [fallback.clone(), "v1".to_string()]
    );
    let referrers = raw(format!("{repository}:{fallback}"));
    let referrer = referrers["manifests"][0]["digest"].as_str().unwrap();
    let manifest = raw(format!("{repository}@{referrer}"));
    assert_eq!(manifest["artifactType"], "application/vnd.in-toto+json");
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["annotations"]["in-toto.io/predicate-type"],
        VULNERABILITY_PREDICATE
    );
    let digest: oci_spec::image::Digest = layer["digest"].as_str().unwrap().parse().unwrap();
    let statement: Value =
        serde_json::from_slice(&fs::read(registry.blob_path(&digest)).unwrap()).unwrap();
    assert_eq!(statement["predicateType"], VULNERABILITY_PREDICATE);
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        platform_hex.as_str()
    );
    let found = statement["predicate"]["scanner"]["result"]["findings"]
        .as_array()
        .unwrap();
    assert!(
        found
            .iter()
            .any(|finding| finding["advisory"] == "CVE-2099-0001"),
        "{statement}"
    );
    assert_eq!(
        statement["predicate"]["scanner"]["db"]["version"],
        "2026-02-01T00:00:00Z"
    );
    let written = metadata(&metadata_file);

    assert_eq!(written["scan"]["passed"], true, "{written}");
    assert_eq!(written["scan"]["counts"]["critical"], 2, "{written}");
    assert_eq!(written["images"][0]["name"], "app", "{written}");
}

#[test]
fn failed_gate_writes_no_layout() {
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path());
    let out = work.path().join("out");
    hoist(["build", "--no-cache", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}", out.display()))
        .args(["--scan", "--db", &database(), "--fail-on", "critical"])
        .env("HOIST_CACHE", work.path().join("cache"))
        .run()
        .failure(1)
        .stderr_mentions(&["2 finding(s) at or above critical", "nothing was published"]);
    assert!(!out.exists(), "{} was written", out.display());
}

#[test]
fn spec_scan_in_defaults_gates_without_the_flag() {
    let work = tempfile::tempdir().unwrap();
    let header = format!(
        "[defaults]\nscan = {{ fail-on = \"critical\", db = \"{}\" }}\n\n",
        database()
    );
    let spec = spec_with(work.path(), &header);
    let out = work.path().join("out");
    let layout = format!("oci:{}", out.display());
    hoist(["build", "--no-cache", "-f"])
        .arg(&spec)
        .args(["-o", &layout])
        .env("HOIST_CACHE", work.path().join("cache"))
        .run()
        .failure(1)
        .stderr_mentions(&["image `app`: 2 finding(s) at or above critical"]);
    assert!(!out.exists(), "{} was written", out.display());
}

#[test]
fn spec_scan_is_checked_when_the_spec_is_read() {
    let work = tempfile::tempdir().unwrap();
    let spec = work.path().join("hoist.toml");
    fs::write(
        &spec,
        "[[image]]\nname = \"app\"\nscan = { fail-on = \"severe\", db = \"osv\" }\n\n\
         [[image.layer]]\nsource = \".\"\n",
    )
    .unwrap();
    let location = format!("{}:3:20", spec.display());
    hoist(["build", "-f"])
        .arg(&spec)
        .run()
        .failure(1)
        .stderr_mentions(&[
            location.as_str(),
            "scan.fail-on",
            "`severe` is not a severity",
        ]);
}
