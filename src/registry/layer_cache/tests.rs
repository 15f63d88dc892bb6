use super::*;
use crate::oci::sha256_digest;

#[test]
fn an_entry_manifest_is_an_artifact_listing_the_layer() {
    let layer = Descriptor::new(
        MediaType::from(media_type::OCI_LAYER_GZIP),
        1234,
        sha256_digest(b"compressed"),
    );
    let entry = CacheEntry {
        layer,
        diff_id: sha256_digest(b"tar"),
    };
    let now = chrono::DateTime::parse_from_rfc3339("2026-12-05T01:02:03Z")
        .unwrap()
        .to_utc();
    let config = entry_config(now).unwrap();
    assert_eq!(config.bytes(), br#"{"created":"2026-12-05T01:02:03Z"}"#);
    let manifest = entry_manifest("abc", &entry, config.descriptor()).unwrap();
    let value: serde_json::Value = serde_json::from_slice(manifest.bytes()).unwrap();
    assert_eq!(value["artifactType"], ARTIFACT_TYPE);
    assert_eq!(value["config"]["mediaType"], CONFIG_MEDIA_TYPE);
    assert_eq!(value["config"]["digest"], config.digest().to_string());
    assert_eq!(value["annotations"][KEY_ANNOTATION], "abc");
    let parsed: EntryManifest = serde_json::from_slice(manifest.bytes()).unwrap();
    assert_eq!(parsed.layers.len(), 1);
    assert_eq!(parsed.layers[0].digest(), entry.layer.digest());
    assert_eq!(
        parsed.layers[0].annotations().as_ref().unwrap()[DIFF_ID_ANNOTATION],
        entry.diff_id.to_string()
    );
    // A tag of the key stays within the 128 characters a tag may have.
    assert!(LayerCacheRepository::tag(&"f".repeat(64)).len() <= 128);
}
