//! The schema validator itself must reject what the schemas forbid, or every
//! other schema test would pass vacuously.
use crate::common;

use std::process::Command;

#[test]
fn validator_accepts_a_valid_manifest_and_rejects_an_invalid_one() {
    let good = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}"#;
    common::assert_valid_json_bytes("oci/image-manifest-schema.json", good);
    let bad = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"not-a-digest","size":-1},"layers":[]}"#;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bad).unwrap();
    let status = Command::new("python3")
        .arg(common::root().join("tests/validate_schema.py"))
        .arg("oci/image-manifest-schema.json")
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        !status.status.success(),
        "an invalid manifest must be rejected"
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("config"));
}
