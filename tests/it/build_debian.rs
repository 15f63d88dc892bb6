//! A real root filesystem end to end: a Debian 12 minbase tree with python3
//! (fixtures/debian-rootfs.sh, cached) built with preserve policies into an
//! OCI layout, unpacked by umoci to exactly the tree on disk, and run by runc.
use crate::common;

use crate::common::hoist::{Layout, debian_rootfs, hoist, unpack_platform};
use crate::common::tree::{Policy, Tree, report};
use std::fs;

/// The spec's epoch; the Debian tree has mtimes on both sides of it
/// (package build times before, installation time after).
const EPOCH: i64 = 1_700_000_000;

/// The OCI architecture of this machine, which debootstrap built for.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => panic!("no OCI architecture known for {other}"),
    }
}

#[test]
fn debian_rootfs_builds_unpacks_identically_and_runs() {
    let rootfs = debian_rootfs();
    let entries = walkdir::WalkDir::new(&rootfs).into_iter().count();
    assert!(
        entries > 5_000,
        "{} has only {entries} entries",
        rootfs.display()
    );

    let work = tempfile::tempdir().expect("temp dir");
    let architecture = host_architecture();
    let spec = work.path().join("hoist.toml");
    fs::write(
        &spec,
        format!(
            "[[image]]\nname = \"debian\"\nplatforms = [\"linux/{architecture}\"]\n\
             compression = \"gzip\"\nsource-date-epoch = {EPOCH}\n\n\
             [image.config]\ncmd = [\"/bin/sh\"]\nenv = {{ PATH = \"/usr/sbin:/usr/bin:/sbin:/bin\" }}\n\n\
             [[image.layer]]\nsource = \"{}\"\ntarget = \"/\"\n\
             owner = \"preserve\"\npermissions = \"preserve\"\n",
            rootfs.display()
        ),
    )
    .unwrap();
    let out = work.path().join("out");
    let output = hoist(["build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}", out.display()))
        .current_dir(work.path())
        .run()
        .success();
    let layout = Layout::open(&out);
    assert_eq!(layout.tagged_digest("debian"), output.last_line_digest());
    for (_, manifest) in layout.platform_manifests("debian") {
        assert_eq!(layout.verify_diff_ids(&manifest), 1);
    }

    // umoci unpacks exactly the tree on disk, mtimes up to the epoch kept, later ones at 1.
    let image = format!("oci:{}:debian", out.display());
    let bundle = unpack_platform(&image, architecture, work.path());
    let expected = Tree::expected(&rootfs, "/", &Policy::preserved(EPOCH));
    let differences = expected.differences(&Tree::scan(&bundle.join("rootfs")));
    assert!(
        differences.is_empty(),
        "the unpacked Debian tree differs from {}:\n{}",
        rootfs.display(),
        report(&differences)
    );

    // runc runs a shell in it.
    let stdout = common::run_in_bundle(
        &bundle,
        work.path(),
        "hoist-debian",
        &["/bin/sh", "-c", "echo ok"],
    );
    assert_eq!(stdout, "ok\n");
}
