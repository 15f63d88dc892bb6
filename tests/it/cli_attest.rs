//! Supply-chain evidence through the binary: `hoist build --sbom
//! --provenance` into layouts and a real `docker-registry` (attestation
//! manifests in the index, or referrers with the fallback tag), checked with
//! skopeo, the schemas and the reference validators; the Debian rootfs's SBOM
//! against dpkg-query and pip; `hoist sbom`, `hoist attestations`; and cosign
//! key pairs, signing and verifying, with openssl checking hoist's signature.

use crate::common::hoist::{Layout, debian_rootfs, fixture, hoist, read_json, sha256_hex};
use crate::common::registry::TestRegistry;
use crate::common::{assert_valid_json, run};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const SPDX: &str = "https://spdx.dev/Document";
const CYCLONEDX: &str = "https://cyclonedx.org/bom";
const SLSA: &str = "https://slsa.dev/provenance/v1";

fn hello_spec() -> PathBuf {
    fixture("hello").join("hoist.toml")
}

fn skopeo_raw(target: &str) -> Value {
    let text = run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", target]));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{target}: {error}\n{text}"))
}

fn pyspdxtools(path: &Path) {
    run(Command::new("pyspdxtools").arg("-i").arg(path));
}

fn cyclonedx_validate(path: &Path) {
    let script = "import sys\n\
from cyclonedx.validation.json import JsonStrictValidator\n\
from cyclonedx.schema import SchemaVersion\n\
error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
if error is not None:\n    print(error.data.message, list(error.data.absolute_path))\n    sys.exit(1)\n";
    run(Command::new("python3").arg("-c").arg(script).arg(path));
}

/// Builds `spec` with extra arguments, a private layer cache, and returns the final digest.
fn build(spec: &Path, work: &Path, arguments: &[&str]) -> String {
    hoist(["build", "-f"])
        .arg(spec)
        .args(arguments)
        .env("HOIST_CACHE", work.join("cache"))
        .current_dir(work)
        .run()
        .success()
        .last_line_digest()
}

/// The attestation entries of an index: (subject digest, attestation manifest digest).
fn attestation_entries(index: &Value) -> Vec<(String, String)> {
    index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter(|entry| entry["annotations"]["vnd.docker.reference.type"] == "attestation-manifest")
        .map(|entry| {
            assert_eq!(entry["platform"]["os"], "unknown", "{entry}");
            assert_eq!(entry["platform"]["architecture"], "unknown", "{entry}");
            (
                entry["annotations"]["vnd.docker.reference.digest"]
                    .as_str()
                    .expect("reference digest")
                    .to_string(),
                entry["digest"].as_str().expect("digest").to_string(),
            )
        })
        .collect()
}

/// The one file in `folder` whose name starts with `prefix` (extracted
/// documents are named `<form>-<kind>-<digest hex>.json`).
fn extracted(folder: &Path, prefix: &str) -> std::path::PathBuf {
    let found: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(".json")
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {prefix}* in {}: {found:?}",
        folder.display()
    );
    found.into_iter().next().unwrap()
}

/// Checks the statement files `hoist attestations --extract` wrote for one
/// subject: in-toto v1 about the subject, SBOM predicates valid.
fn check_statements(directory: &Path, subject: &str, spec: &Path) {
    let hex = subject.trim_start_matches("sha256:");
    let folder = directory.join(hex);
    let mut predicates = BTreeSet::new();
    for (file, predicate_type) in [
        ("index-spdx-", SPDX),
        ("index-cyclonedx-", CYCLONEDX),
        ("index-provenance-", SLSA),
    ] {
        let path = extracted(&folder, file);
        let statement = read_json(&path);
        assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(statement["predicateType"], predicate_type);
        assert_eq!(statement["subject"][0]["digest"]["sha256"], hex);
        let predicate = folder.join(format!("{file}.predicate"));
        std::fs::write(&predicate, statement["predicate"].to_string()).unwrap();
        match predicate_type {
            SPDX => {
                assert_valid_json("spdx/spdx-2.3.schema.json", &[&predicate]);
                let with_extension = folder.join("predicate.spdx.json");
                std::fs::copy(&predicate, &with_extension).unwrap();
                pyspdxtools(&with_extension);
            }
            CYCLONEDX => {
                assert_valid_json("cyclonedx/bom-1.6.schema.json", &[&predicate]);
                cyclonedx_validate(&predicate);
            }
            _ => {
                let predicate = &statement["predicate"];
                let definition = &predicate["buildDefinition"];
                assert_eq!(definition["buildType"], "https://hoist.dev/build/v1");
                let spec_digest = sha256_hex(&std::fs::read(spec).unwrap());
                assert_eq!(
                    definition["externalParameters"]["spec"]["digest"]["sha256"],
                    spec_digest
                );
                assert_eq!(definition["externalParameters"]["image"], "hello");
                assert!(
                    predicate["runDetails"]["metadata"]
                        .get("startedOn")
                        .is_none(),
                    "no clock without provenance = \"max\": {predicate}"
                );
                assert!(
                    !statement
                        .to_string()
                        .contains(&*spec.parent().unwrap().to_string_lossy()),
                    "absolute build path in {statement}"
                );
            }
        }
        predicates.insert(predicate_type);
    }
    assert_eq!(predicates.len(), 3);
}

#[test]
fn layout_attestations_are_buildkit_shaped_valid_and_reproducible() {
    let work = tempfile::tempdir().unwrap();
    let spec = hello_spec();
    let first = build(
        &spec,
        work.path(),
        &["--sbom", "--provenance", "-o", "oci:one"],
    );
    let second = build(
        &spec,
        work.path(),
        &["--sbom", "--provenance", "-o", "oci:two"],
    );
    assert_eq!(first, second, "same inputs, same index digest");
    // Without attestations the index differs, the platform manifests do not.
    let plain = build(&spec, work.path(), &["-o", "oci:plain"]);
    assert_ne!(plain, first);

    let index = skopeo_raw(&format!("oci:{}:hello", work.path().join("one").display()));
    let layout = Layout::open(work.path().join("one"));
    let platform_digests: BTreeSet<String> = layout
        .platform_manifests("hello")
        .into_iter()
        .map(|(_, digest)| digest)
        .collect();
    let plain_layout = Layout::open(work.path().join("plain"));
    let plain_digests: BTreeSet<String> = plain_layout
        .platform_manifests("hello")
        .into_iter()
        .map(|(_, digest)| digest)
        .collect();
    let entries = attestation_entries(&index);
    assert_eq!(entries.len(), 2, "{index}");
    let subjects: BTreeSet<String> = entries.iter().map(|(subject, _)| subject.clone()).collect();
    assert_eq!(subjects, plain_digests);
    assert!(platform_digests.is_superset(&subjects));
    for (_, attestation) in &entries {
        let manifest = layout.json(attestation);
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 3);
        let predicate_types: BTreeSet<&str> = layers
            .iter()
            .map(|layer| {
                assert_eq!(layer["mediaType"], "application/vnd.in-toto+json");
                layer["annotations"]["in-toto.io/predicate-type"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(predicate_types, BTreeSet::from([SPDX, CYCLONEDX, SLSA]));
    }

    let extract = work.path().join("extracted");
    let listing = hoist(["attestations", "oci:one:hello", "--extract"])
        .arg(&extract)
        .current_dir(work.path())
        .run()
        .success();
    assert_eq!(listing.lines().len(), 6, "{}", listing.stdout);
    for subject in &subjects {
        check_statements(&extract, subject, &spec);
    }
}

#[test]
fn sbom_command_reads_directories_layouts_and_archives() {
    let work = tempfile::tempdir().unwrap();
    build(
        &hello_spec(),
        work.path(),
        &["-o", "oci:out", "-o", "oci-archive:out.tar"],
    );
    let spdx = work.path().join("arm.spdx.json");
    hoist(["sbom", "oci:out:hello", "--platform", "linux/arm64", "-o"])
        .arg(&spdx)
        .current_dir(work.path())
        .run()
        .success();
    assert_valid_json("spdx/spdx-2.3.schema.json", &[&spdx]);
    let document = read_json(&spdx);
    let layout = Layout::open(work.path().join("out"));
    let arm = layout
        .platform_manifests("hello")
        .into_iter()
        .find(|(platform, _)| platform.contains("arm64"))
        .unwrap()
        .1;
    assert_eq!(document["packages"][0]["versionInfo"], arm);

    let from_archive = hoist(["sbom", "oci-archive:out.tar", "--platform", "linux/arm64"])
        .current_dir(work.path())
        .run()
        .success();
    let archive_document: Value = serde_json::from_str(&from_archive.stdout).unwrap();
    assert_eq!(archive_document["packages"][0]["versionInfo"], arm);

    let bom = hoist(["sbom", "--format", "cyclonedx-json"])
        .arg(fixture("hello").join("rootfs/amd64"))
        .run()
        .success();
    let bom_path = work.path().join("dir.cdx.json");
    std::fs::write(&bom_path, &bom.stdout).unwrap();
    assert_valid_json("cyclonedx/bom-1.6.schema.json", &[&bom_path]);
    cyclonedx_validate(&bom_path);

    hoist(["sbom", "no-such-directory"])
        .current_dir(work.path())
        .run()
        .failure(1)
        .stderr_mentions(&["neither a directory nor an image location"]);
    // Two platforms and no --platform on a machine that is neither: the
    // layout has amd64 and arm64, so only an unknown host would fail; a
    // wrong --platform always does.
    hoist(["sbom", "oci:out:hello", "--platform", "linux/s390x"])
        .current_dir(work.path())
        .run()
        .failure(1)
        .stderr_mentions(&["linux/amd64", "linux/arm64"]);
}

#[test]
fn broken_package_metadata_is_a_warning_and_the_sbom_is_still_written() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let good = root.join("app/node_modules/left-pad");
    let bad = root.join("app/node_modules/broken");
    std::fs::create_dir_all(&good).unwrap();
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        good.join("package.json"),
        r#"{"name": "left-pad", "version": "1.3.0", "license": "WTFPL"}"#,
    )
    .unwrap();
    std::fs::write(bad.join("package.json"), "{ this is not json").unwrap();
    let output = hoist(["sbom", "--format", "cyclonedx-json"])
        .arg(&root)
        .run()
        .success()
        .stderr_mentions(&["warning", "broken/package.json"]);
    let bom: Value = serde_json::from_str(&output.stdout).unwrap();
    let names: Vec<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|component| component["name"].as_str())
        .collect();
    assert!(names.contains(&"left-pad"), "{bom}");
}

#[test]
fn spec_keys_turn_attestations_on_and_bad_values_are_rejected() {
    let work = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(hello_spec()).unwrap();
    let root = fixture("hello");
    let rooted = source
        .replace(
            "source = \"rootfs/",
            &format!("source = \"{}/rootfs/", root.display()),
        )
        .replace(
            "source = \"app/",
            &format!("source = \"{}/app/", root.display()),
        );
    let with_keys = rooted.replace(
        "source-date-epoch = 1700000000",
        "source-date-epoch = 1700000000\nsbom = true\nprovenance = true",
    );
    let spec = work.path().join("hoist.toml");
    std::fs::write(&spec, &with_keys).unwrap();
    build(&spec, work.path(), &["-o", "oci:out"]);
    let index = Layout::open(work.path().join("out")).index_json();
    let top = &index["manifests"][0]["digest"];
    let layout = Layout::open(work.path().join("out"));
    let top_index = layout.json(top.as_str().unwrap());
    assert_eq!(attestation_entries(&top_index).len(), 2);

    std::fs::write(
        &spec,
        rooted.replace(
            "source-date-epoch = 1700000000",
            "source-date-epoch = 1700000000\nprovenance = \"sometimes\"",
        ),
    )
    .unwrap();
    hoist(["build", "-f"])
        .arg(&spec)
        .args(["-o", "oci:bad"])
        .current_dir(work.path())
        .run()
        .failure(1)
        .stderr_mentions(&["provenance", "\"max\""]);

    // Referrers cannot go into an archive: refused before anything is built.
    std::fs::write(&spec, &with_keys).unwrap();
    hoist(["build", "-f"])
        .arg(&spec)
        .args(["--attach", "referrers", "-o", "oci-archive:out.tar"])
        .current_dir(work.path())
        .run()
        .failure(1)
        .stderr_mentions(&["cannot hold OCI referrers"]);
    assert!(!work.path().join("out.tar").exists());
}

#[test]
fn debian_sbom_matches_dpkg_query_and_pip() {
    let rootfs = debian_rootfs();
    let work = tempfile::tempdir().unwrap();
    let architecture = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    let spec = work.path().join("hoist.toml");
    std::fs::write(
        &spec,
        format!(
            "[[image]]\nname = \"debian\"\nplatforms = [\"linux/{architecture}\"]\n\
             source-date-epoch = 1700000000\nsbom = true\n\n\
             [[image.layer]]\nsource = \"{}\"\ntarget = \"/\"\n\
             owner = \"preserve\"\npermissions = \"preserve\"\n",
            rootfs.display()
        ),
    )
    .unwrap();
    build(&spec, work.path(), &["-o", "oci:out"]);
    let extract = work.path().join("extracted");
    hoist(["attestations", "oci:out:debian", "--extract"])
        .arg(&extract)
        .current_dir(work.path())
        .run()
        .success();
    let folder = std::fs::read_dir(&extract)
        .unwrap()
        .next()
        .expect("one subject")
        .unwrap()
        .path();
    let statement = read_json(&extracted(&folder, "index-spdx-"));
    let packages = statement["predicate"]["packages"].as_array().unwrap();
    let by_type = |kind: &str| -> BTreeSet<String> {
        packages
            .iter()
            .filter_map(|package| {
                let purl = package["externalRefs"]
                    .as_array()?
                    .iter()
                    .find(|reference| reference["referenceType"] == "purl")?["referenceLocator"]
                    .as_str()?;
                purl.starts_with(&format!("pkg:{kind}/")).then(|| {
                    format!(
                        "{} {}",
                        package["name"].as_str().unwrap(),
                        package["versionInfo"].as_str().unwrap()
                    )
                })
            })
            .collect()
    };

    let dpkg = run(Command::new("dpkg-query")
        .arg(format!("--admindir={}/var/lib/dpkg", rootfs.display()))
        .args(["-W", "-f", "${Package} ${Version}\n"]));
    let expected_debs: BTreeSet<String> = dpkg.lines().map(str::to_string).collect();
    assert!(expected_debs.len() > 50, "{dpkg}");
    assert_eq!(by_type("deb"), expected_debs);
    assert_debian_scanner_fields(&rootfs, packages);

    let pip = run(Command::new("python3")
        .args(["-m", "pip", "list", "--format", "json", "--path"])
        .arg(rootfs.join("usr/lib/python3/dist-packages")));
    let pip: Vec<Value> = serde_json::from_str(&pip).unwrap();
    let expected_python: BTreeSet<String> = pip
        .iter()
        .map(|package| {
            format!(
                "{} {}",
                package["name"].as_str().unwrap(),
                package["version"].as_str().unwrap()
            )
        })
        .collect();
    // The fixture installs python3-six (egg-info) and python3-idna: an empty
    // list here would make the comparison below prove nothing.
    assert!(expected_python.len() >= 2, "pip finds {expected_python:?}");
    assert_eq!(by_type("pypi"), expected_python);
}

/// The fields scanners read: each deb purl's `upstream` qualifier names the
/// source package as dpkg-query does, and the operating system's version is
/// the point release `/etc/debian_version` gives.
fn assert_debian_scanner_fields(rootfs: &Path, packages: &[Value]) {
    let upstreams = crate::common::dpkg_upstreams(Some(&rootfs.join("var/lib/dpkg")));
    let mut debs = 0;
    for package in packages {
        let Some(purl) = package["externalRefs"].as_array().and_then(|references| {
            references
                .iter()
                .find(|reference| reference["referenceType"] == "purl")?["referenceLocator"]
                .as_str()
        }) else {
            continue;
        };
        if purl.starts_with("pkg:deb/") {
            debs += 1;
            let name = package["name"].as_str().unwrap();
            let found = crate::common::purl_qualifier(purl, "upstream");
            assert_eq!(found, upstreams[name], "{purl}");
        }
    }
    assert_eq!(debs, upstreams.len());
    let release = std::fs::read_to_string(rootfs.join("etc/debian_version")).unwrap();
    let os = packages
        .iter()
        .find(|package| package["primaryPackagePurpose"] == "OPERATING_SYSTEM")
        .expect("an operating system package");
    assert_eq!(os["name"], "debian");
    assert_eq!(os["versionInfo"].as_str(), Some(release.trim()));
    assert!(release.trim().starts_with("12."), "{release}");
}

/// A registry test's keys, made by `hoist generate-key-pair`.
struct Keys {
    directory: tempfile::TempDir,
}

impl Keys {
    fn generate() -> Keys {
        let directory = tempfile::tempdir().unwrap();
        for (prefix, password) in [("cosign", "right horse"), ("other", "other")] {
            hoist(["generate-key-pair", "--output-key-prefix", prefix])
                .env("COSIGN_PASSWORD", password)
                .current_dir(directory.path())
                .run()
                .success();
        }
        let private = std::fs::read_to_string(directory.path().join("cosign.key")).unwrap();
        assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
        Keys { directory }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }
}

#[test]
fn registry_referrers_use_the_fallback_tag_and_signatures_verify() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let host = registry.host();
    let target = format!("docker://{host}/hello:1.0");
    let index_digest = build(
        &hello_spec(),
        work.path(),
        &[
            "--sbom",
            "--provenance",
            "--attach",
            "referrers",
            "-o",
            &target,
        ],
    );
    // Referrers leave the index alone: no attestation manifests in it.
    let index = skopeo_raw(&target);
    assert!(attestation_entries(&index).is_empty());
    assert!(
        registry.count_requests("GET", "/referrers/") > 0,
        "the referrers API was asked"
    );
    let subjects: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(subjects.len(), 2);
    for subject in &subjects {
        let fallback = skopeo_raw(&format!(
            "docker://{host}/hello:sha256-{}",
            subject.trim_start_matches("sha256:")
        ));
        let listed = fallback["manifests"].as_array().unwrap();
        let artifact_types: BTreeSet<&str> = listed
            .iter()
            .map(|entry| entry["artifactType"].as_str().unwrap())
            .collect();
        assert_eq!(
            artifact_types,
            BTreeSet::from([
                "application/spdx+json",
                "application/vnd.cyclonedx+json",
                "application/vnd.in-toto+json"
            ])
        );
        for entry in listed {
            let manifest = skopeo_raw(&format!(
                "docker://{host}/hello@{}",
                entry["digest"].as_str().unwrap()
            ));
            assert_eq!(manifest["subject"]["digest"], subject.as_str());
            assert_eq!(
                manifest["config"]["mediaType"],
                "application/vnd.oci.empty.v1+json"
            );
            assert_eq!(manifest["artifactType"], entry["artifactType"]);
        }
    }
    // Building again adds nothing to the fallback indexes.
    build(
        &hello_spec(),
        work.path(),
        &[
            "--sbom",
            "--provenance",
            "--attach",
            "referrers",
            "-o",
            &target,
        ],
    );
    let again = skopeo_raw(&format!(
        "docker://{host}/hello:sha256-{}",
        subjects[0].trim_start_matches("sha256:")
    ));
    assert_eq!(again["manifests"].as_array().unwrap().len(), 3);

    let extract = work.path().join("extracted");
    let listing = hoist(["attestations", &target, "--extract"])
        .arg(&extract)
        .run()
        .success();
    assert_eq!(listing.lines().len(), 6, "{}", listing.stdout);
    let spdx = extracted(
        &extract.join(subjects[0].trim_start_matches("sha256:")),
        "referrer-spdx-",
    );
    assert_valid_json("spdx/spdx-2.3.schema.json", &[&spdx]);

    // Index-form attestations pushed to the registry.
    let indexed = format!("docker://{host}/hello:indexed");
    let indexed_digest = build(
        &hello_spec(),
        work.path(),
        &["--sbom", "--provenance", "-o", &indexed],
    );
    assert_eq!(attestation_entries(&skopeo_raw(&indexed)).len(), 2);

    // Signing: by tag (resolved to the index digest), then verifying.
    let keys = Keys::generate();
    let signed = hoist(["sign", &target, "--key"])
        .arg(keys.path("cosign.key"))
        .env("COSIGN_PASSWORD", "right horse")
        .run()
        .success();
    assert!(signed.stdout.contains(&index_digest), "{}", signed.stdout);
    let verified = hoist([
        "verify",
        &format!("docker://{host}/hello@{index_digest}"),
        "--key",
    ])
    .arg(keys.path("cosign.pub"))
    .run()
    .success();
    assert!(verified.stdout.contains(&index_digest));
    hoist(["verify", &target, "--key"])
        .arg(keys.path("other.pub"))
        .run()
        .failure(1)
        .stderr_mentions(&["does not verify with this key"]);
    // Another image: unsigned, then carrying a copy of the first one's
    // signature, which is valid but names another digest.
    hoist(["verify", &indexed, "--key"])
        .arg(keys.path("cosign.pub"))
        .run()
        .failure(1)
        .stderr_mentions(&["has no signatures"]);
    let signature_tag =
        |digest: &str| format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{host}/hello:{}", signature_tag(&index_digest)),
        &format!("docker://{host}/hello:{}", signature_tag(&indexed_digest)),
    ]));
    hoist(["verify", &indexed, "--key"])
        .arg(keys.path("cosign.pub"))
        .run()
        .failure(1)
        .stderr_mentions(&["validly signed, but for manifest", &index_digest]);
    // Signed for itself too, it verifies by its own signature; the copied
    // one is passed over with a warning, not taken as valid.
    hoist(["sign", &indexed, "--key"])
        .arg(keys.path("cosign.key"))
        .env("COSIGN_PASSWORD", "right horse")
        .run()
        .success();
    let verified = hoist(["verify", &indexed, "--key"])
        .arg(keys.path("cosign.pub"))
        .run()
        .success()
        .stderr_mentions(&["skipped", "validly signed, but for manifest", &index_digest]);
    assert!(
        verified.stdout.contains(&indexed_digest),
        "{}",
        verified.stdout
    );
    assert_eq!(
        verified.stdout.matches("verified ").count(),
        1,
        "{}",
        verified.stdout
    );
    // A wrong password is named as such.
    hoist(["sign", &target, "--key"])
        .arg(keys.path("cosign.key"))
        .env("COSIGN_PASSWORD", "wrong")
        .run()
        .failure(1)
        .stderr_mentions(&["password does not decrypt the private key"]);

    // openssl checks hoist's signature over the payload skopeo pulls.
    let pulled = work.path().join("sig");
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{host}/hello:{}", signature_tag(&index_digest)),
        &format!("dir:{}", pulled.display()),
    ]));
    let manifest = read_json(&pulled.join("manifest.json"));
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let payload = pulled.join(
        layer["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    let payload_json = read_json(&payload);
    assert_eq!(
        payload_json["critical"]["image"]["docker-manifest-digest"],
        index_digest.as_str()
    );
    let signature = layer["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap();
    let signature_b64 = work.path().join("signature.b64");
    std::fs::write(&signature_b64, format!("{signature}\n")).unwrap();
    let signature_der = work.path().join("signature.der");
    run(Command::new("openssl")
        .args(["base64", "-d", "-in"])
        .arg(&signature_b64)
        .arg("-out")
        .arg(&signature_der));
    let output = run(Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(keys.path("cosign.pub"))
        .arg("-signature")
        .arg(&signature_der)
        .arg(&payload));
    assert!(output.contains("Verified OK"), "{output}");
    let other = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(keys.path("other.pub"))
        .arg("-signature")
        .arg(&signature_der)
        .arg(&payload)
        .output()
        .unwrap();
    assert!(!other.status.success());
}

#[test]
fn layout_signatures_and_referrers() {
    let work = tempfile::tempdir().unwrap();
    let digest = build(
        &hello_spec(),
        work.path(),
        &["--sbom", "--attach", "referrers", "-o", "oci:out"],
    );
    let layout = Layout::open(work.path().join("out"));
    // The image keeps its tag; each platform has two untagged referrers.
    assert_eq!(layout.tags(), vec!["hello".to_string()]);
    let index = layout.index_json();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1 + 2 * 2);
    // Referrers are listed with their artifact type, the image without one.
    let mut artifact_types: Vec<&str> = entries
        .iter()
        .filter_map(|entry| entry["artifactType"].as_str())
        .collect();
    artifact_types.sort_unstable();
    assert_eq!(
        artifact_types,
        [
            "application/spdx+json",
            "application/spdx+json",
            "application/vnd.cyclonedx+json",
            "application/vnd.cyclonedx+json",
        ],
        "{index}"
    );
    assert_valid_json(
        "oci/image-index-schema.json",
        &[&work.path().join("out/index.json")],
    );
    let listing = hoist(["attestations", "oci:out:hello"])
        .current_dir(work.path())
        .run()
        .success();
    assert_eq!(listing.lines().len(), 4, "{}", listing.stdout);
    assert!(listing.stdout.contains("application/vnd.cyclonedx+json"));

    let keys = Keys::generate();
    hoist(["sign", "oci:out:hello", "--key"])
        .arg(keys.path("cosign.key"))
        .env("COSIGN_PASSWORD", "right horse")
        .current_dir(work.path())
        .run()
        .success();
    let layout = Layout::open(work.path().join("out"));
    assert!(layout.tags().contains(&format!(
        "sha256-{}.sig",
        digest.trim_start_matches("sha256:")
    )));
    hoist(["verify", "oci:out:hello", "--key"])
        .arg(keys.path("cosign.pub"))
        .current_dir(work.path())
        .run()
        .success();
    hoist(["verify", "oci:out:hello", "--key"])
        .arg(keys.path("other.pub"))
        .current_dir(work.path())
        .run()
        .failure(1);

    // A second signature with claims, as `cosign sign -a` makes them; verify
    // -a counts only the signatures that carry what it asks for.
    hoist([
        "sign",
        "oci:out:hello",
        "-a",
        "team=api",
        "-a",
        "run=42",
        "--key",
    ])
    .arg(keys.path("cosign.key"))
    .env("COSIGN_PASSWORD", "right horse")
    .current_dir(work.path())
    .run()
    .success();
    let claimed = hoist(["verify", "oci:out:hello", "-a", "team=api", "--key"])
        .arg(keys.path("cosign.pub"))
        .current_dir(work.path())
        .run()
        .success();
    assert_eq!(claimed.lines().len(), 1, "{}", claimed.stdout);
    assert!(
        claimed
            .stdout
            .contains(r#"claims {"run":"42","team":"api"}"#),
        "{}",
        claimed.stdout
    );
    let all = hoist(["verify", "oci:out:hello", "--key"])
        .arg(keys.path("cosign.pub"))
        .current_dir(work.path())
        .run()
        .success();
    assert_eq!(all.lines().len(), 2, "{}", all.stdout);
    hoist(["verify", "oci:out:hello", "-a", "team=web", "--key"])
        .arg(keys.path("cosign.pub"))
        .current_dir(work.path())
        .run()
        .failure(1)
        .stderr_mentions(&[
            "2 signature(s) verify with this key",
            "none carries team=web",
        ]);
    hoist(["sign", "oci:out:hello", "-a", "team", "--key"])
        .arg(keys.path("cosign.key"))
        .env("COSIGN_PASSWORD", "right horse")
        .current_dir(work.path())
        .run()
        .failure(1)
        .stderr_mentions(&["annotation `team` must be KEY=VALUE"]);
}
