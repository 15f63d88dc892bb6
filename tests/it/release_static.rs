//! The static release binary (`scripts/release.sh`): it is static, it writes
//! the same digests as the dynamic (glibc) build on every fixture, and the
//! image of hoist that `hoist.toml` describes, built by it, runs under runc.
use crate::common;

use crate::common::hoist::{
    Layout, debian_rootfs, hoist_in, read_json, special_tree, unpack_platform,
};
use crate::common::release::{release_directory, static_hoist};
use std::fs;
use std::path::Path;
use std::process::Command;

/// Runs `binary build --no-cache -f SPEC -o oci:OUT:TAG` with a cache and
/// home of its own under `work`, returning the top digest it printed.
fn build_with(binary: Option<&Path>, work: &Path, spec: &Path, tag: &str) -> String {
    let out = work.join(format!("out-{tag}"));
    let mut invocation = hoist_in(work, ["build", "--no-cache", "-f"])
        .arg(spec)
        .arg("-o")
        .arg(format!("oci:{}:{tag}", out.display()));
    if let Some(binary) = binary {
        invocation = invocation.program(binary);
    }
    let digest = invocation.run().success().last_line_digest();
    assert_eq!(Layout::open(&out).tagged_digest(tag), digest);
    digest
}

/// A spec with one layer of `source` compressed with `codec`.
fn rootfs_spec(work: &Path, source: &Path, codec: &str) -> std::path::PathBuf {
    let spec = work.join(format!("{codec}.toml"));
    fs::write(
        &spec,
        format!(
            "[[image]]\nname = \"rootfs\"\ncompression = \"{codec}\"\n\
             source-date-epoch = 1700000000\n\n[[image.layer]]\nsource = \"{}\"\n\
             target = \"/\"\nowner = \"preserve\"\npermissions = \"preserve\"\n",
            source.display()
        ),
    )
    .unwrap();
    spec
}

#[test]
fn the_release_binary_is_static() {
    let bytes = fs::read(static_hoist()).expect("the release binary");
    let file = object::File::parse(&*bytes).expect("the release binary is an ELF file");
    use object::{Object as _, ObjectSection as _};
    assert_eq!(file.architecture(), object::Architecture::X86_64);
    assert!(
        file.section_by_name(".interp").is_none(),
        "the release binary names a dynamic loader: it is not static"
    );
    let dynamic_strings = file
        .section_by_name(".dynstr")
        .and_then(|section| section.data().ok())
        .unwrap_or_default();
    assert!(
        !dynamic_strings
            .windows(b"libc.so".len())
            .any(|window| window == b"libc.so"),
        "the release binary needs a shared libc"
    );
    // cargo-auditable's dependency list, which the release SBOM is read from.
    assert!(file.section_by_name(".dep-v0").is_some());
    let version = common::run(Command::new(static_hoist()).arg("--version"));
    assert_eq!(
        version.trim(),
        format!("hoist {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_static_binary_writes_the_dynamic_builds_digests_on_every_fixture() {
    let static_binary = static_hoist();
    let work = tempfile::tempdir().expect("temp dir");
    let special = special_tree(&work.path().join("special"));
    let rootfs = debian_rootfs();
    let specs = [
        ("hello", common::root().join("fixtures/hello/hoist.toml")),
        ("special", special),
        ("debian-gzip", rootfs_spec(work.path(), &rootfs, "gzip")),
        ("debian-zstd", rootfs_spec(work.path(), &rootfs, "zstd")),
    ];
    for (name, spec) in &specs {
        let dynamic_work = work.path().join(format!("dynamic-{name}"));
        let static_work = work.path().join(format!("static-{name}"));
        let dynamic = build_with(None, &dynamic_work, spec, name);
        let built_static = build_with(Some(&static_binary), &static_work, spec, name);
        assert_eq!(
            built_static,
            dynamic,
            "the static binary built {name} ({}) to another digest",
            spec.display()
        );
    }
}

#[test]
fn the_image_of_hoist_runs_its_static_binary_as_a_non_root_user() {
    let directory = release_directory();
    let static_binary = static_hoist();
    let work = tempfile::tempdir().expect("temp dir");
    let out = work.path().join("image");
    // hoist builds its own image; amd64 only, since the tests build one binary.
    let digest = hoist_in(work.path(), ["build", "--platform", "linux/amd64", "-f"])
        .arg(common::root().join("hoist.toml"))
        .arg("-o")
        .arg(format!("oci:{}:hoist", out.display()))
        .program(&static_binary)
        .run()
        .success()
        .last_line_digest();
    let layout = Layout::open(&out);
    assert_eq!(layout.tagged_digest("hoist"), digest);
    let index = layout.json(&digest);
    let manifests = index["manifests"].as_array().expect("an index");
    let kinds: Vec<&str> = manifests
        .iter()
        .map(|descriptor| {
            descriptor["annotations"]["vnd.docker.reference.type"]
                .as_str()
                .unwrap_or("image")
        })
        .collect();
    assert_eq!(kinds, ["image", "attestation-manifest"], "{manifests:?}");

    let bundle = unpack_platform(
        &format!("oci:{}:hoist", out.display()),
        "amd64",
        work.path(),
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read(rootfs.join("usr/local/bin/hoist")).unwrap(),
        fs::read(directory.join("hoist-linux-amd64")).unwrap()
    );
    assert_eq!(
        fs::read(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap(),
        fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap()
    );
    let config = read_json(&bundle.join("config.json"));
    assert_eq!(config["process"]["user"]["uid"], 65532);
    assert_eq!(config["process"]["args"][0], "/usr/local/bin/hoist");
    let stdout = common::run_in_bundle(
        &bundle,
        work.path(),
        "hoist-self",
        &["/usr/local/bin/hoist", "--version"],
    );
    assert_eq!(stdout, format!("hoist {}\n", env!("CARGO_PKG_VERSION")));
}
