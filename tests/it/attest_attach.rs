//! Provenance and attachment end to end: an image whose SBOMs come from its
//! own layers, attested BuildKit style in an index and as an OCI referrer,
//! written as an OCI layout that skopeo copies and reads back.

use crate::common::{assert_valid_json_bytes, run};
use hoist::attest::{
    BaseImage, BuildInputs, Builder, ProvenanceMode, RunParameters, SourceRepository, Subject,
    attestation_entry, attestation_manifest, catalog, cyclonedx, cyclonedx_json, image_files,
    provenance_statement, referrer_manifest, referrers_fallback_tag, sbom_statement, spdx,
    spdx_json,
};
use hoist::image::model::ChildEntry;
use hoist::image::{Blob, BytesBlob, Image, Index, Manifest};
use hoist::oci::{media_type, sha256_digest};
use hoist::progress::Silent;
use oci_spec::image::MediaType;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn inputs(mode: ProvenanceMode) -> BuildInputs {
    BuildInputs {
        subjects: vec![Subject {
            name: "ghcr.io/example/app".into(),
            digest: sha256_digest(b"manifest"),
        }],
        spec_path: "hoist.toml".into(),
        spec_digest: sha256_digest(b"[image]\n"),
        image: "ghcr.io/example/app".into(),
        platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        tags: vec!["1.0".into(), "latest".into()],
        base_images: vec![BaseImage {
            reference: "debian:bookworm-slim".into(),
            digest: sha256_digest(b"debian"),
        }],
        source: Some(SourceRepository {
            url: "https://github.com/example/app".into(),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
        }),
        builder: Builder::from_environment(|name| {
            BTreeMap::from([
                ("GITHUB_SERVER_URL", "https://github.com"),
                ("GITHUB_REPOSITORY", "example/app"),
                (
                    "GITHUB_WORKFLOW_REF",
                    "example/app/.github/workflows/release.yml@refs/tags/v1.0",
                ),
                ("GITHUB_RUN_ID", "1234"),
            ])
            .get(name)
            .map(|value| value.to_string())
        }),
        run: RunParameters {
            event: "tag".into(),
            git_ref: Some("refs/tags/v1.0".into()),
            format_version: 2,
        },
        mode,
    }
}

#[test]
fn provenance_is_slsa_v1_and_reproducible() {
    let first = provenance_statement(&inputs(ProvenanceMode::Min)).unwrap();
    let second = provenance_statement(&inputs(ProvenanceMode::Min)).unwrap();
    assert_eq!(first.bytes, second.bytes);
    assert_eq!(first.predicate_type, "https://slsa.dev/provenance/v1");
    let statement: serde_json::Value = serde_json::from_slice(&first.bytes).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        sha256_digest(b"manifest").digest()
    );
    let predicate = &statement["predicate"];
    let definition = &predicate["buildDefinition"];
    assert_eq!(definition["buildType"], "https://hoist.dev/build/v1");
    assert_eq!(
        definition["externalParameters"]["spec"]["path"],
        "hoist.toml"
    );
    assert_eq!(
        definition["externalParameters"]["platforms"][1],
        "linux/arm64"
    );
    assert_eq!(
        definition["resolvedDependencies"][0]["uri"],
        "docker://debian:bookworm-slim"
    );
    assert_eq!(
        definition["resolvedDependencies"][1]["digest"]["gitCommit"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(
        predicate["runDetails"]["builder"]["id"],
        "https://github.com/example/app/.github/workflows/release.yml@refs/tags/v1.0"
    );
    assert_eq!(
        predicate["runDetails"]["metadata"]["invocationId"],
        "https://github.com/example/app/actions/runs/1234"
    );
    let text = String::from_utf8(first.bytes.clone()).unwrap();
    assert!(!text.contains("startedOn") && !text.contains("finishedOn"));

    let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let max = provenance_statement(&inputs(ProvenanceMode::Max {
        started_on: started,
        finished_on: started + Duration::from_secs(90),
    }))
    .unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&max.bytes).unwrap();
    let metadata = &statement["predicate"]["runDetails"]["metadata"];
    assert_eq!(metadata["startedOn"], "2023-11-14T22:13:20Z");
    assert_eq!(metadata["finishedOn"], "2023-11-14T22:14:50Z");
}

/// Writes `top` and everything below it as an OCI image layout.
fn write_layout(top: &Manifest, directory: &Path, tag: &str) {
    let blobs = directory.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |blob: &dyn Blob| {
        let mut bytes = Vec::new();
        blob.open().unwrap().read_to_end(&mut bytes).unwrap();
        std::fs::write(blobs.join(blob.digest().digest()), bytes).unwrap();
    };
    for image in top.images() {
        for blob in image.blobs() {
            put(blob);
        }
        put(&image.manifest);
    }
    put(top.manifest_blob());
    std::fs::write(
        directory.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let descriptor = top.descriptor();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_INDEX,
        "manifests": [{
            "mediaType": descriptor.media_type().to_string(),
            "digest": descriptor.digest().to_string(),
            "size": descriptor.size(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(directory.join("index.json"), index.to_string()).unwrap();
}

fn gzip_layer(files: &[(&str, &[u8])]) -> (Arc<dyn Blob>, String) {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, *content).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let diff_id = sha256_digest(&tar).to_string();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, &tar).unwrap();
    let bytes = encoder.finish().unwrap();
    (
        Arc::new(BytesBlob::new(MediaType::ImageLayerGzip, bytes)),
        diff_id,
    )
}

#[test]
fn attestations_ride_in_the_index_and_as_referrers() {
    let (layer, diff_id) = gzip_layer(&[
        ("etc/os-release", b"ID=debian\nVERSION_ID=12\n"),
        (
            "var/lib/dpkg/status",
            b"Package: hello\nStatus: install ok installed\nVersion: 2.10-3\nArchitecture: amd64\n",
        ),
        (
            "usr/share/doc/hello/copyright",
            b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: 1992 FSF\nLicense: GPL-3+\n",
        ),
    ]);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let image = Image::from_parts(
        BytesBlob::new(MediaType::ImageConfig, config.to_string().into_bytes()),
        vec![layer.clone()],
        &BTreeMap::new(),
        None,
        None,
    )
    .unwrap();
    let image_descriptor = image.manifest.descriptor().clone();
    let image_digest = image_descriptor.digest().clone();

    // SBOMs from the image's own layers.
    let inventory = catalog(&image_files(&[layer]).unwrap(), &Silent).unwrap();
    assert_eq!(inventory.packages.len(), 1);
    assert_eq!(
        inventory.packages[0].license_expression().as_deref(),
        Some("GPL-3.0-or-later")
    );
    let name = "ghcr.io/example/app";
    let subjects = [Subject {
        name: name.into(),
        digest: image_digest.clone(),
    }];
    let spdx_document = spdx_json(&inventory, name, &image_digest, 0).unwrap();
    let cyclonedx_document = cyclonedx_json(&inventory, name, &image_digest, 0).unwrap();
    let mut provenance_inputs = inputs(ProvenanceMode::Min);
    provenance_inputs.subjects = subjects.to_vec();
    let statements = vec![
        sbom_statement(&subjects, spdx::PREDICATE_TYPE, &spdx_document).unwrap(),
        sbom_statement(&subjects, cyclonedx::PREDICATE_TYPE, &cyclonedx_document).unwrap(),
        provenance_statement(&provenance_inputs).unwrap(),
    ];
    let attestation = attestation_manifest(&image_descriptor, &statements).unwrap();
    assert_eq!(
        attestation.manifest.digest(),
        attestation_manifest(&image_descriptor, &statements)
            .unwrap()
            .manifest
            .digest(),
        "attestation manifests are reproducible"
    );
    assert_valid_json_bytes(
        "oci/image-manifest-schema.json",
        attestation.manifest.bytes(),
    );
    assert_valid_json_bytes("oci/config-schema.json", attestation.config.bytes());
    let parsed = attestation.parsed_manifest().unwrap();
    let predicate_types: Vec<String> = parsed
        .layers()
        .iter()
        .map(|layer| {
            assert_eq!(layer.media_type().to_string(), media_type::IN_TOTO);
            layer.annotations().as_ref().unwrap()["in-toto.io/predicate-type"].clone()
        })
        .collect();
    assert_eq!(
        predicate_types,
        vec![
            "https://spdx.dev/Document",
            "https://cyclonedx.org/bom",
            "https://slsa.dev/provenance/v1"
        ]
    );

    let index = Index::from_children(
        vec![
            (
                Manifest::Image(image.clone()),
                ChildEntry {
                    platform: Some("linux/amd64".parse().unwrap()),
                    ..ChildEntry::default()
                },
            ),
            (
                Manifest::Image(attestation),
                attestation_entry(&image_digest),
            ),
        ],
        &BTreeMap::new(),
    )
    .unwrap();
    assert_valid_json_bytes("oci/image-index-schema.json", index.manifest.bytes());
    let top = Manifest::Index(index);

    // skopeo verifies every digest while copying the whole tree.
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source");
    write_layout(&top, &source, "1.0");
    let copy = work.path().join("copy");
    run(Command::new("skopeo")
        .args(["copy", "--all", "--preserve-digests"])
        .arg(format!("oci:{}:1.0", source.display()))
        .arg(format!("oci:{}:1.0", copy.display())));
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:1.0", copy.display())));
    let read_back: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let entry = &read_back["manifests"][1];
    assert_eq!(entry["platform"]["os"], "unknown");
    assert_eq!(entry["platform"]["architecture"], "unknown");
    assert_eq!(
        entry["annotations"]["vnd.docker.reference.type"],
        "attestation-manifest"
    );
    assert_eq!(
        entry["annotations"]["vnd.docker.reference.digest"],
        image_digest.to_string()
    );

    // The same SBOM as an OCI 1.1 referrer.
    let referrer = referrer_manifest(
        &image_descriptor,
        "application/spdx+json",
        BytesBlob::new(
            MediaType::Other("application/spdx+json".into()),
            spdx_document,
        ),
    )
    .unwrap();
    assert_valid_json_bytes("oci/image-manifest-schema.json", referrer.manifest.bytes());
    let parsed = referrer.parsed_manifest().unwrap();
    assert_eq!(parsed.subject().as_ref().unwrap().digest(), &image_digest);
    assert!(parsed.subject().as_ref().unwrap().platform().is_none());
    assert_eq!(
        parsed.artifact_type().as_ref().unwrap().to_string(),
        "application/spdx+json"
    );
    assert_eq!(
        parsed.config().media_type().to_string(),
        media_type::OCI_EMPTY
    );
    assert_eq!(referrer.config.bytes(), b"{}");
    let tag = referrers_fallback_tag(&image_digest).unwrap();
    assert_eq!(tag, format!("sha256-{}", image_digest.digest()));
    let referrer_layout = work.path().join("referrer");
    write_layout(&Manifest::Image(referrer), &referrer_layout, &tag);
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:{tag}", referrer_layout.display())));
    assert!(raw.contains("\"subject\""), "{raw}");
}
