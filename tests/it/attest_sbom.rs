//! SBOM writers on a real inventory (this machine's dpkg database and
//! copyright files, Python and npm packages), checked against the official
//! schemas and the reference validators (spdx-tools, cyclonedx-python-lib).

use crate::common::{assert_valid_json, run};
use hoist::attest::{FileTree, Inventory, catalog, cyclonedx_json, spdx_json};
use hoist::oci::sha256_digest;
use hoist::progress::Silent;
use std::path::Path;
use std::process::Command;

/// A root file system with real package metadata copied from this machine.
fn real_inventory(root: &Path) -> Inventory {
    let copy = |from: &Path, to: &str| {
        let target = root.join(to.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from, target).unwrap();
    };
    copy(Path::new("/etc/os-release"), "etc/os-release");
    copy(Path::new("/var/lib/dpkg/status"), "var/lib/dpkg/status");
    for entry in std::fs::read_dir("/usr/share/doc").unwrap() {
        let entry = entry.unwrap();
        let copyright = entry.path().join("copyright");
        if copyright.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            copy(&copyright, &format!("usr/share/doc/{name}/copyright"));
        }
    }
    let site = run(Command::new("python3").args([
        "-c",
        "import sysconfig; print(sysconfig.get_paths()['purelib'])",
    ]));
    for entry in std::fs::read_dir(site.trim()).unwrap() {
        let path = entry.unwrap().path();
        let metadata = path.join("METADATA");
        if metadata.is_file() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            copy(
                &metadata,
                &format!("usr/lib/python3/site-packages/{name}/METADATA"),
            );
        }
    }
    let npm_root = run(Command::new("npm").args(["root", "-g"]));
    let modules = Path::new(npm_root.trim()).join("npm/node_modules");
    for entry in walkdir::WalkDir::new(&modules) {
        let entry = entry.unwrap();
        if entry.file_name() == "package.json" {
            let relative = entry.path().strip_prefix(&modules).unwrap();
            copy(
                entry.path(),
                &format!("app/node_modules/{}", relative.display()),
            );
        }
    }
    catalog(&FileTree::from_directory(root).unwrap(), &Silent).unwrap()
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

#[test]
fn spdx_and_cyclonedx_are_valid_and_reproducible() {
    let work = tempfile::tempdir().unwrap();
    let inventory = real_inventory(&work.path().join("rootfs"));
    assert!(inventory.packages.len() > 200);
    assert!(inventory.warnings.is_empty(), "{:?}", inventory.warnings);
    let digest = sha256_digest(b"manifest");
    let name = "ghcr.io/example/app:1.0";
    let epoch = 1_700_000_000;

    let spdx = spdx_json(&inventory, name, &digest, epoch).unwrap();
    assert_eq!(spdx, spdx_json(&inventory, name, &digest, epoch).unwrap());
    let spdx_path = work.path().join("sbom.spdx.json");
    std::fs::write(&spdx_path, &spdx).unwrap();
    assert_valid_json("spdx/spdx-2.3.schema.json", &[&spdx_path]);
    pyspdxtools(&spdx_path);
    let document: serde_json::Value = serde_json::from_slice(&spdx).unwrap();
    assert_eq!(
        document["documentNamespace"],
        format!(
            "https://hoist.dev/spdx/ghcr.io-example-app-1.0-{}",
            digest.digest()
        )
    );
    assert_eq!(document["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    let packages = document["packages"].as_array().unwrap();
    // Image, operating system, then every package.
    assert_eq!(packages.len(), inventory.packages.len() + 2);
    assert!(packages.iter().any(|package| {
        package["licenseDeclared"]
            .as_str()
            .unwrap()
            .contains("LicenseRef-")
    }));

    let bom = cyclonedx_json(&inventory, name, &digest, epoch).unwrap();
    assert_eq!(
        bom,
        cyclonedx_json(&inventory, name, &digest, epoch).unwrap()
    );
    let bom_path = work.path().join("sbom.cdx.json");
    std::fs::write(&bom_path, &bom).unwrap();
    assert_valid_json("cyclonedx/bom-1.6.schema.json", &[&bom_path]);
    cyclonedx_validate(&bom_path);
    let parsed: serde_json::Value = serde_json::from_slice(&bom).unwrap();
    assert_eq!(parsed["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(
        parsed["components"].as_array().unwrap().len(),
        inventory.packages.len() + 1
    );

    // Another image digest gives another identity, and nothing else moves.
    let other = sha256_digest(b"other manifest");
    let other_bom: serde_json::Value =
        serde_json::from_slice(&cyclonedx_json(&inventory, name, &other, epoch).unwrap()).unwrap();
    assert_ne!(other_bom["serialNumber"], parsed["serialNumber"]);
    assert_eq!(other_bom["components"], parsed["components"]);
}

#[test]
fn the_validators_reject_a_broken_document() {
    // The reference validators must be able to fail, or the test above
    // proves nothing.
    let work = tempfile::tempdir().unwrap();
    let inventory = Inventory::default();
    let digest = sha256_digest(b"m");
    let mut spdx: serde_json::Value =
        serde_json::from_slice(&spdx_json(&inventory, "app", &digest, 0).unwrap()).unwrap();
    spdx["packages"][0]["SPDXID"] = "not an id".into();
    let path = work.path().join("broken.spdx.json");
    std::fs::write(&path, serde_json::to_vec(&spdx).unwrap()).unwrap();
    let status = Command::new("pyspdxtools")
        .arg("-i")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!status.status.success());
    assert!(String::from_utf8_lossy(&status.stderr).contains("spdx_id"));

    let mut bom: serde_json::Value =
        serde_json::from_slice(&cyclonedx_json(&inventory, "app", &digest, 0).unwrap()).unwrap();
    bom["serialNumber"] = "urn:uuid:nope".into();
    let path = work.path().join("broken.cdx.json");
    std::fs::write(&path, serde_json::to_vec(&bom).unwrap()).unwrap();
    let result = std::panic::catch_unwind(|| cyclonedx_validate(&path));
    assert!(result.is_err());
}
