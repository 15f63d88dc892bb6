//! Building on a base image read from an OCI layout, an OCI archive or a
//! registry (in Docker's format, which becomes OCI): the
//! base's layers come first, its config is merged under the spec's, and a
//! platform the base lacks is an error that lists what it has.

use crate::common;

use crate::common::hoist::{Layout, fixture, hoist, unpack_platform};
use std::fs;
use std::path::Path;

/// `hoist build -f SPEC -o oci:OUT`, which must succeed.
fn build_layout(spec: &Path, out: &Path) -> Layout {
    hoist(["build", "-f"])
        .arg(spec)
        .arg("-o")
        .arg(format!("oci:{}", out.display()))
        .run()
        .success();
    Layout::open(out)
}

fn build_hello_base(work: &Path) -> Layout {
    build_layout(&fixture("hello").join("hoist.toml"), &work.join("base"))
}

/// A spec on `base` adding one file and one environment variable.
fn write_app_spec(work: &Path, base: &str, platforms: &str) -> std::path::PathBuf {
    let directory = work.join("app");
    fs::create_dir_all(directory.join("files")).unwrap();
    fs::write(directory.join("files/extra.txt"), "on top of the base\n").unwrap();
    fs::write(
        directory.join("hoist.toml"),
        format!(
            "[[image]]\nname = \"app\"\nbase = \"{base}\"\nplatforms = {platforms}\nsource-date-epoch = 1700000000\n\
             [image.config]\nenv = {{ EXTRA = \"1\", GREETING = \"hi\" }}\n\
             [[image.layer]]\nfiles = [{{ source = \"files/extra.txt\", target = \"/extra.txt\" }}]\n"
        ),
    )
    .unwrap();
    directory.join("hoist.toml")
}

#[test]
fn layout_base_contributes_layers_and_config_per_platform() {
    let work = tempfile::tempdir().unwrap();
    let base = build_hello_base(work.path());
    let spec = write_app_spec(
        work.path(),
        &format!("oci:{}:hello", work.path().join("base").display()),
        "[\"linux/amd64\", \"linux/arm64\"]",
    );
    let out = work.path().join("out");
    let built = build_layout(&spec, &out);

    let base_manifests = base.platform_manifests("hello");
    let built_manifests = built.platform_manifests("app");
    assert_eq!(built_manifests.len(), 2);
    for ((base_platform, base_digest), (platform, digest)) in
        base_manifests.iter().zip(&built_manifests)
    {
        assert_eq!(base_platform, platform);
        let base_manifest = base.json(base_digest);
        let manifest = built.json(digest);
        let base_layers = base_manifest["layers"].as_array().unwrap();
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(
            layers.len(),
            base_layers.len() + 1,
            "{platform}: base layers plus one"
        );
        assert_eq!(
            &layers[..base_layers.len()],
            &base_layers[..],
            "{platform}: base layers first, unchanged"
        );
        built.verify_diff_ids(digest);

        let base_config = base.json(base_manifest["config"]["digest"].as_str().unwrap());
        let config = built.json(manifest["config"]["digest"].as_str().unwrap());
        let env: Vec<&str> = config["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            env.contains(&"GREETING=hi"),
            "the spec overrides the base's GREETING: {env:?}"
        );
        assert!(env.contains(&"EXTRA=1"), "{env:?}");
        assert!(
            env.iter().any(|entry| entry.starts_with("PATH=")),
            "the base's PATH is kept: {env:?}"
        );
        assert_eq!(
            config["config"]["Entrypoint"],
            base_config["config"]["Entrypoint"]
        );
        assert_eq!(
            config["history"].as_array().unwrap().len(),
            base_config["history"].as_array().unwrap().len() + 1
        );
        let base_ids = base_config["rootfs"]["diff_ids"].as_array().unwrap();
        let ids = config["rootfs"]["diff_ids"].as_array().unwrap();
        assert_eq!(&ids[..base_ids.len()], &base_ids[..]);
    }

    // Unpacked, the image has the base's files and the new one, with the
    // base's whiteout of /etc/motd still applied.
    let rootfs =
        unpack_platform(&format!("oci:{}:app", out.display()), "arm64", work.path()).join("rootfs");
    assert_eq!(
        fs::read_to_string(rootfs.join("extra.txt")).unwrap(),
        "on top of the base\n"
    );
    assert!(rootfs.join("usr/bin/hello").exists());
    assert!(!rootfs.join("etc/motd").exists());
}

#[test]
fn oci_archive_base_and_missing_platform() {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("base.tar");
    hoist(["build", "-f"])
        .arg(fixture("hello").join("hoist.toml"))
        .arg("-o")
        .arg(format!("oci-archive:{}:hello", archive.display()))
        .run()
        .success();
    let spec = write_app_spec(
        work.path(),
        &format!("oci-archive:{}:hello", archive.display()),
        "[\"linux/amd64\"]",
    );
    let out = work.path().join("out");
    let layout = build_layout(&spec, &out);
    let (_, digest) = layout.platform_manifests("app").remove(0);
    assert_eq!(layout.json(&digest)["layers"].as_array().unwrap().len(), 3);

    let spec = write_app_spec(
        work.path(),
        &format!("oci-archive:{}:hello", archive.display()),
        "[\"linux/s390x\"]",
    );
    let failed = work.path().join("failed");
    hoist(["build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}", failed.display()))
        .run()
        .failure(1)
        .stderr_mentions(&["linux/s390x", "linux/amd64", "linux/arm64"]);
    assert!(!failed.exists(), "a failed build writes no output");
}

#[test]
fn docker_format_base_becomes_an_all_oci_image_umoci_unpacks() {
    use common::registry::TestRegistry;
    let work = tempfile::tempdir().unwrap();
    build_hello_base(work.path());
    // The same image in Docker's v2 schema 2 format, in a real registry.
    let registry = TestRegistry::start();
    let base = format!("{}/base/hello:v2s2", registry.host());
    common::run(std::process::Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--all",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &format!("oci:{}:hello", work.path().join("base").display()),
        &format!("docker://{base}"),
    ]));
    let spec = write_app_spec(
        work.path(),
        &format!("docker://{base}"),
        "[\"linux/amd64\", \"linux/arm64\"]",
    );
    let out = work.path().join("out");
    let built = build_layout(&spec, &out);
    for (platform, digest) in built.platform_manifests("app") {
        let manifest = built.json(&digest);
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 3, "{platform}: two base layers and one more");
        for layer in layers {
            assert_eq!(
                layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
                "{platform}: {manifest}"
            );
        }
        built.verify_diff_ids(&digest);
    }
    let rootfs =
        unpack_platform(&format!("oci:{}:app", out.display()), "amd64", work.path()).join("rootfs");
    assert_eq!(
        fs::read_to_string(rootfs.join("extra.txt")).unwrap(),
        "on top of the base\n"
    );
    assert!(rootfs.join("usr/bin/hello").exists());
}
