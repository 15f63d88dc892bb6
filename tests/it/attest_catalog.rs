//! Catalogers on real data from this machine, compared with what the
//! package managers themselves report: dpkg-query, pip, npm, go, rpm.

use crate::common::run;
use hoist::attest::{Ecosystem, FileTree, Inventory, Package, catalog, image_files};
use hoist::image::{Blob, FileBlob};
use hoist::oci::{media_type, sha256_digest};
use hoist::progress::{Event, Recorder, Silent};
use oci_spec::image::{Descriptor, MediaType};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// A layer made by GNU tar from paths relative to `root`.
fn tar_layer(root: &Path, paths: &[String], compress: &str, out: &Path) -> Arc<dyn Blob> {
    let list = out.with_extension("list");
    std::fs::write(&list, paths.join("\n") + "\n").unwrap();
    let mut command = Command::new("tar");
    command
        .arg("-c")
        .arg("-f")
        .arg(out)
        .arg("-C")
        .arg(root)
        .arg("--no-recursion")
        .arg("-T")
        .arg(&list);
    let media = match compress {
        "gzip" => {
            command.arg("--gzip");
            media_type::OCI_LAYER_GZIP
        }
        "zstd" => {
            command.arg("--zstd");
            media_type::OCI_LAYER_ZSTD
        }
        _ => media_type::DOCKER_LAYER,
    };
    run(&mut command);
    let bytes = std::fs::read(out).unwrap();
    let descriptor = Descriptor::new(
        MediaType::from(media),
        bytes.len() as u64,
        sha256_digest(&bytes),
    );
    Arc::new(FileBlob::new(descriptor, out))
}

fn of(inventory: &Inventory, ecosystem: Ecosystem) -> Vec<&Package> {
    inventory
        .packages
        .iter()
        .filter(|package| package.ecosystem == ecosystem)
        .collect()
}

#[test]
fn dpkg_packages_match_dpkg_query_and_licenses_come_from_copyright_files() {
    let work = tempfile::tempdir().unwrap();
    // The real status file, every copyright file and doc directory (some are
    // symlinks to another package's), and os-release (a symlink on Debian).
    let mut paths = vec![
        "etc/os-release".to_string(),
        "etc/debian_version".to_string(),
        "usr/lib/os-release".to_string(),
        "var/lib/dpkg/status".to_string(),
    ];
    for entry in std::fs::read_dir("/usr/share/doc").unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        paths.push(format!("usr/share/doc/{name}"));
        if Path::new("/usr/share/doc")
            .join(&name)
            .join("copyright")
            .is_file()
            && !entry.file_type().unwrap().is_symlink()
        {
            paths.push(format!("usr/share/doc/{name}/copyright"));
        }
    }
    paths.sort();
    let layer = tar_layer(
        Path::new("/"),
        &paths,
        "gzip",
        &work.path().join("layer.tar.gz"),
    );
    let tree = image_files(&[layer]).unwrap();
    let inventory = catalog(&tree, &Silent).unwrap();

    let os = inventory
        .operating_system
        .as_ref()
        .expect("os-release found");
    assert_eq!(os.id, "debian");
    let debian_version = std::fs::read_to_string("/etc/debian_version").unwrap();
    let debian_version = debian_version.trim();
    if debian_version.starts_with(|character: char| character.is_ascii_digit()) {
        assert_eq!(os.point_release.as_deref(), Some(debian_version));
        assert_eq!(os.version(), Some(debian_version));
    } else {
        assert_eq!(os.point_release, None, "{debian_version} is no release");
    }
    let expected: BTreeSet<(String, String, String)> = run(Command::new("dpkg-query").args([
        "-W",
        "-f",
        "${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\n",
    ]))
    .lines()
    .filter_map(|line| {
        let fields: Vec<&str> = line.split('\t').collect();
        (fields[0] == "installed").then(|| {
            (
                fields[1].to_string(),
                fields[2].to_string(),
                fields[3].to_string(),
            )
        })
    })
    .collect();
    let debs = of(&inventory, Ecosystem::Deb);
    let found: BTreeSet<(String, String, String)> = debs
        .iter()
        .map(|package| {
            (
                package.name.clone(),
                package.version.clone(),
                package.architecture.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert!(expected.len() > 100, "this machine has many packages");
    assert_eq!(found, expected);

    let dpkg = debs.iter().find(|package| package.name == "dpkg").unwrap();
    assert!(
        dpkg.purl.starts_with("pkg:deb/debian/dpkg@") && dpkg.purl.contains("distro=debian-"),
        "{}",
        dpkg.purl
    );
    assert_upstream_qualifiers(&debs);
    // Cross-check licenses against the copyright files with a second reader.
    let mut with_mapped = 0;
    for package in &debs {
        let copyright = format!("/usr/share/doc/{}/copyright", package.name);
        let Ok(text) = std::fs::read_to_string(&copyright) else {
            continue;
        };
        if !text.starts_with("Format:") || !text.contains("copyright-format") {
            assert!(package.licenses.is_empty(), "{}", package.name);
            continue;
        }
        let declared: BTreeSet<String> = package
            .licenses
            .iter()
            .map(|license| license.declared.clone())
            .collect();
        for name in &declared {
            assert!(
                text.lines().any(|line| line
                    .strip_prefix("License:")
                    .is_some_and(|value| value.trim() == name)),
                "{name} not in {copyright}"
            );
        }
        if package.license_expression().is_some() {
            with_mapped += 1;
            // Doc directories may be symlinks to another package's.
            let real = std::fs::canonicalize(&copyright).unwrap();
            assert!(
                package.locations.contains(&copyright)
                    || package.locations.contains(&real.display().to_string()),
                "{:?}",
                package.locations
            );
        }
    }
    assert!(
        with_mapped > 20,
        "only {with_mapped} packages got SPDX licenses"
    );
    // Output is sorted and stable.
    let again = catalog(&tree, &Silent).unwrap();
    assert_eq!(again, inventory);
}

#[test]
fn python_distributions_match_pip_list() {
    let site = run(Command::new("python3").args([
        "-c",
        "import sysconfig; print(sysconfig.get_paths()['purelib'])",
    ]));
    let site = site.trim();
    let tree = FileTree::from_directory(site).unwrap();
    let inventory = catalog(&tree, &Silent).unwrap();
    let listed: Vec<serde_json::Value> = serde_json::from_str(&run(
        Command::new("python3").args(["-m", "pip", "list", "--path", site, "--format", "json"])
    ))
    .unwrap();
    let normalize = |name: &str| name.to_ascii_lowercase().replace(['_', '.'], "-");
    let expected: BTreeSet<(String, String)> = listed
        .iter()
        .map(|item| {
            (
                normalize(item["name"].as_str().unwrap()),
                item["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let found: BTreeSet<(String, String)> = of(&inventory, Ecosystem::Python)
        .iter()
        .map(|package| (normalize(&package.name), package.version.clone()))
        .collect();
    assert!(expected.contains(&(
        "pip".to_string(),
        expected.iter().find(|p| p.0 == "pip").unwrap().1.clone()
    )));
    assert_eq!(found, expected);
    let pip = of(&inventory, Ecosystem::Python)
        .into_iter()
        .find(|package| package.name == "pip")
        .unwrap();
    assert!(pip.purl.starts_with("pkg:pypi/pip@"));
    assert_eq!(pip.license_expression().as_deref(), Some("MIT"));
}

#[test]
fn npm_packages_match_npm_query() {
    let root = run(Command::new("npm").args(["root", "-g"]));
    let npm = Path::new(root.trim()).join("npm");
    let tree = FileTree::from_directory(&npm).unwrap();
    let inventory = catalog(&tree, &Silent).unwrap();
    let queried: Vec<serde_json::Value> = serde_json::from_str(&run(Command::new("npm")
        .arg("query")
        .arg("*")
        .current_dir(&npm)))
    .unwrap();
    let expected: BTreeSet<(String, String)> = queried
        .iter()
        .filter(|node| node["location"].as_str() != Some(""))
        .map(|node| {
            (
                node["name"].as_str().unwrap().to_string(),
                node["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let packages = of(&inventory, Ecosystem::Npm);
    let found: BTreeSet<(String, String)> = packages
        .iter()
        .map(|package| (package.name.clone(), package.version.clone()))
        .collect();
    assert!(expected.len() > 50);
    assert_eq!(found, expected);
    let scoped = packages
        .iter()
        .find(|package| package.name.starts_with('@'))
        .expect("npm bundles scoped packages");
    assert!(scoped.purl.starts_with("pkg:npm/%40"), "{}", scoped.purl);
    assert!(
        packages
            .iter()
            .filter(|p| p.license_expression().is_some())
            .count()
            > 50
    );
}

/// `go version -m` output as (module path, version) of mod and dep lines.
fn go_version_modules(binary: &Path) -> (String, BTreeSet<(String, String)>) {
    let output = run(Command::new("go").arg("version").arg("-m").arg(binary));
    let mut lines = output.lines();
    let go = lines
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let mut modules = BTreeSet::new();
    for line in lines {
        let fields: Vec<&str> = line.trim().split('\t').collect();
        if let ["mod" | "dep", path, version, ..] = fields.as_slice() {
            modules.insert((path.to_string(), version.to_string()));
        }
    }
    (go, modules)
}

#[test]
fn go_binaries_match_go_version_m() {
    let work = tempfile::tempdir().unwrap();
    // A module with one dependency, replaced by a local directory so the
    // build needs no network.
    let source = work.path().join("src");
    std::fs::create_dir_all(source.join("lib")).unwrap();
    std::fs::create_dir_all(source.join("app")).unwrap();
    std::fs::write(
        source.join("lib/go.mod"),
        "module example.com/greet\n\ngo 1.19\n",
    )
    .unwrap();
    std::fs::write(
        source.join("lib/greet.go"),
        "package greet\n\nfunc Hello() string { return \"hello\" }\n",
    )
    .unwrap();
    std::fs::write(
        source.join("app/go.mod"),
        "module example.com/app\n\ngo 1.19\n\nrequire example.com/greet v1.4.2\n\nreplace example.com/greet => ../lib\n",
    )
    .unwrap();
    std::fs::write(
        source.join("app/main.go"),
        "package main\n\nimport (\n\t\"fmt\"\n\t\"example.com/greet\"\n)\n\nfunc main() { fmt.Println(greet.Hello()) }\n",
    )
    .unwrap();
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("usr/bin")).unwrap();
    run(Command::new("go")
        .args(["build", "-trimpath", "-o"])
        .arg(rootfs.join("usr/bin/app"))
        .arg(".")
        .current_dir(source.join("app"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", work.path().join("cache"))
        .env("GOPATH", work.path().join("gopath")));
    // A real distribution binary too (built in GOPATH mode: no module lines).
    std::fs::copy("/usr/bin/skopeo", rootfs.join("usr/bin/skopeo")).unwrap();

    let tree = FileTree::from_directory(&rootfs).unwrap();
    let inventory = catalog(&tree, &Silent).unwrap();
    for binary in ["app", "skopeo"] {
        let location = format!("/usr/bin/{binary}");
        let (go, expected) = go_version_modules(&rootfs.join("usr/bin").join(binary));
        let found: Vec<&Package> = of(&inventory, Ecosystem::Go)
            .into_iter()
            .filter(|package| package.locations.contains(&location))
            .collect();
        let stdlib = found
            .iter()
            .find(|package| package.name == "stdlib")
            .unwrap();
        assert_eq!(format!("go{}", stdlib.version), go);
        let modules: BTreeSet<(String, String)> = found
            .iter()
            .filter(|package| package.name != "stdlib")
            .map(|package| (package.name.clone(), package.version.clone()))
            .collect();
        assert_eq!(modules, expected, "{binary}");
    }
    let greet = of(&inventory, Ecosystem::Go)
        .into_iter()
        .find(|package| package.name == "example.com/greet")
        .unwrap();
    assert_eq!(greet.purl, "pkg:golang/example.com/greet@v1.4.2");
}

#[test]
fn cargo_auditable_section_is_read() {
    // Dependencies and a build dependency, which an offline build of a
    // crate can't have: a real ELF executable gets a `.dep-v0` section in
    // cargo-auditable's format, added by objcopy.
    let work = tempfile::tempdir().unwrap();
    let json = serde_json::json!({"packages": [
        {"name": "demo", "version": "0.3.0", "source": "local", "root": true, "dependencies": [1, 2]},
        {"name": "serde", "version": "1.0.200", "source": "crates.io"},
        {"name": "cc", "version": "1.0.90", "source": "crates.io", "kind": "build"}
    ]});
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, json.to_string().as_bytes()).unwrap();
    let section = work.path().join("dep-v0");
    std::fs::write(&section, encoder.finish().unwrap()).unwrap();
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    run(Command::new("objcopy")
        .arg("--add-section")
        .arg(format!(".dep-v0={}", section.display()))
        .arg("/bin/true")
        .arg(rootfs.join("bin/demo")));
    let tree = FileTree::from_directory(&rootfs).unwrap();
    let inventory = catalog(&tree, &Silent).unwrap();
    let crates: Vec<(&str, &str, &str)> = of(&inventory, Ecosystem::Cargo)
        .iter()
        .map(|package| {
            (
                package.name.as_str(),
                package.version.as_str(),
                package.purl.as_str(),
            )
        })
        .collect();
    assert_eq!(
        crates,
        vec![
            ("demo", "0.3.0", "pkg:cargo/demo@0.3.0"),
            ("serde", "1.0.200", "pkg:cargo/serde@1.0.200"),
        ]
    );
}

/// The packages a binary's `.dep-v0` section lists, as (name, version),
/// read with objcopy and Python's zlib and json rather than hoist's code.
fn embedded_crates(binary: &Path, work: &Path) -> Vec<(String, String)> {
    let section = work.join("dumped-dep-v0");
    run(Command::new("objcopy")
        .arg("--dump-section")
        .arg(format!(".dep-v0={}", section.display()))
        .arg(binary)
        .arg(work.join("dumped-binary")));
    let output = run(Command::new("python3")
        .arg("-c")
        .arg(
            "import json, sys, zlib\n\
             data = json.loads(zlib.decompress(open(sys.argv[1], 'rb').read()))\n\
             for package in data['packages']:\n\
             \x20   if package.get('kind') != 'build':\n\
             \x20       print(package['name'] + '\\t' + package['version'])\n",
        )
        .arg(&section));
    output
        .lines()
        .map(|line| {
            let (name, version) = line.split_once('\t').unwrap();
            (name.to_string(), version.to_string())
        })
        .collect()
}

#[test]
fn cargo_auditable_binaries_match_their_embedded_data() {
    // A crate with no dependencies, so `cargo auditable build` works offline.
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("tiny");
    std::fs::create_dir_all(source.join("src")).unwrap();
    std::fs::write(
        source.join("Cargo.toml"),
        "[package]\nname = \"tiny-audited\"\nversion = \"0.4.1\"\nedition = \"2021\"\n\n[dependencies]\n",
    )
    .unwrap();
    std::fs::write(
        source.join("src/main.rs"),
        "fn main() {\n    println!(\"hello\");\n}\n",
    )
    .unwrap();
    let target = work.path().join("target");
    run(Command::new("cargo")
        .args(["auditable", "build", "--offline", "--quiet"])
        .current_dir(&source)
        .env("CARGO_TARGET_DIR", &target));
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("usr/bin")).unwrap();
    let binary = rootfs.join("usr/bin/tiny-audited");
    std::fs::copy(target.join("debug/tiny-audited"), &binary).unwrap();

    let embedded = embedded_crates(&binary, work.path());
    assert_eq!(
        embedded,
        vec![("tiny-audited".to_string(), "0.4.1".to_string())]
    );
    let tree = FileTree::from_directory(&rootfs).unwrap();
    let inventory = catalog(&tree, &Silent).unwrap();
    assert!(inventory.warnings.is_empty(), "{:?}", inventory.warnings);
    let found: Vec<(String, String, String)> = of(&inventory, Ecosystem::Cargo)
        .iter()
        .map(|package| {
            assert_eq!(
                package.locations,
                BTreeSet::from(["/usr/bin/tiny-audited".to_string()])
            );
            (
                package.name.clone(),
                package.version.clone(),
                package.purl.clone(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = embedded
        .into_iter()
        .map(|(name, version)| {
            let purl = format!("pkg:cargo/{name}@{version}");
            (name, version, purl)
        })
        .collect();
    assert_eq!(found, expected);
    assert_eq!(found[0].2, "pkg:cargo/tiny-audited@0.4.1");
}

#[test]
fn rpm_packages_match_rpm_query() {
    let work = tempfile::tempdir().unwrap();
    let spec = work.path().join("hello.spec");
    std::fs::write(
        &spec,
        "Name: hello-hoist\nVersion: 1.2.3\nRelease: 4.fc39\nEpoch: 1\nSummary: test\n\
         License: MIT AND (Apache-2.0 OR BSD-3-Clause)\nBuildArch: noarch\n\
         %description\ntest\n%files\n",
    )
    .unwrap();
    let top = work.path().join("top");
    run(Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("-bb")
        .arg(&spec));
    let rootfs = work.path().join("rootfs");
    let database = rootfs.join("var/lib/rpm");
    std::fs::create_dir_all(&database).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/os-release"), "ID=fedora\nVERSION_ID=39\n").unwrap();
    let dbpath = format!("{}", database.display());
    run(Command::new("rpm").args(["--dbpath", &dbpath, "--initdb"]));
    run(Command::new("rpm")
        .args(["--dbpath", &dbpath, "-i", "--justdb", "--nodeps"])
        .arg(top.join("RPMS/noarch/hello-hoist-1.2.3-4.fc39.noarch.rpm")));
    let expected: BTreeSet<String> = run(Command::new("rpm").args([
        "--dbpath",
        &dbpath,
        "-qa",
        "--qf",
        "%{NAME} %{VERSION}-%{RELEASE} %{ARCH} %{LICENSE}\n",
    ]))
    .lines()
    .map(str::to_string)
    .collect();

    // Read from a zstd layer, as an image would carry it.
    let mut paths = vec!["etc/os-release".to_string()];
    for entry in std::fs::read_dir(&database).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        paths.push(format!("var/lib/rpm/{name}"));
    }
    let layer = tar_layer(&rootfs, &paths, "zstd", &work.path().join("layer.tar.zst"));
    let inventory = catalog(&image_files(&[layer]).unwrap(), &Silent).unwrap();
    let rpms = of(&inventory, Ecosystem::Rpm);
    let found: BTreeSet<String> = rpms
        .iter()
        .map(|package| {
            format!(
                "{} {} {} {}",
                package.name,
                package.version,
                package.architecture.as_deref().unwrap_or(""),
                package.licenses.iter().next().unwrap().declared
            )
        })
        .collect();
    assert_eq!(found, expected);
    // The `upstream` qualifier is the source RPM as rpm itself names it.
    let source_rpm = run(Command::new("rpm").args([
        "--dbpath",
        &dbpath,
        "-q",
        "--qf",
        "%{SOURCERPM}",
        "hello-hoist",
    ]));
    assert_eq!(source_rpm, "hello-hoist-1.2.3-4.fc39.src.rpm");
    assert_eq!(
        rpms[0].purl,
        format!(
            "pkg:rpm/fedora/hello-hoist@1.2.3-4.fc39?arch=noarch&distro=fedora-39&epoch=1&upstream={source_rpm}"
        )
    );
    assert_eq!(
        rpms[0].license_expression().as_deref(),
        Some("MIT AND (Apache-2.0 OR BSD-3-Clause)")
    );
    assert_eq!(rpms[0].source_package.as_deref(), Some("hello-hoist"));
}

#[test]
fn apk_database_is_read() {
    // No Alpine system here: an installed database in apk's own format.
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path();
    std::fs::create_dir_all(rootfs.join("lib/apk/db")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(
        rootfs.join("etc/os-release"),
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n",
    )
    .unwrap();
    std::fs::write(
        rootfs.join("lib/apk/db/installed"),
        "C:Q1abc=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:407765\nI:667648\nT:the musl c library\n\
         U:https://musl.libc.org/\nL:MIT\no:musl\nm:Timo <timo@alpinelinux.org>\nF:lib\nR:libc.musl-x86_64.so.1\n\n\
         C:Q1def=\nP:busybox\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\no:busybox\nF:bin\nR:busybox\n\n",
    )
    .unwrap();
    let inventory = catalog(&FileTree::from_directory(rootfs).unwrap(), &Silent).unwrap();
    let apks: Vec<(&str, &str)> = of(&inventory, Ecosystem::Apk)
        .iter()
        .map(|package| (package.name.as_str(), package.purl.as_str()))
        .collect();
    assert_eq!(
        apks,
        vec![
            (
                "busybox",
                "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1"
            ),
            (
                "musl",
                "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1"
            ),
        ]
    );
}

#[test]
fn a_broken_database_is_a_warning_and_the_rest_is_kept() {
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path();
    std::fs::create_dir_all(rootfs.join("var/lib/dpkg")).unwrap();
    std::fs::write(
        rootfs.join("var/lib/dpkg/status"),
        "\u{0}\u{1} garbage without fields\n",
    )
    .unwrap();
    let modules = rootfs.join("app/node_modules/broken");
    std::fs::create_dir_all(&modules).unwrap();
    std::fs::write(modules.join("package.json"), "{ not json").unwrap();
    let dist = rootfs.join("usr/lib/python3/dist-packages/six-1.16.0.dist-info");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(
        dist.join("METADATA"),
        "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nLicense: MIT\n\nbody\n",
    )
    .unwrap();
    let recorder = Recorder::default();
    let inventory = catalog(&FileTree::from_directory(rootfs).unwrap(), &recorder).unwrap();
    assert_eq!(inventory.packages.len(), 1);
    assert_eq!(inventory.packages[0].purl, "pkg:pypi/six@1.16.0");
    assert_eq!(inventory.warnings.len(), 2, "{:?}", inventory.warnings);
    assert!(
        inventory.warnings[0].contains("/var/lib/dpkg/status")
            || inventory.warnings[1].contains("/var/lib/dpkg/status")
    );
    assert!(
        inventory
            .warnings
            .iter()
            .any(|w| w.contains("/app/node_modules/broken/package.json"))
    );
    let events = recorder.0.lock().unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|event| matches!(event, Event::Warning { .. }))
            .count(),
        2
    );
}

/// Each package's purl names its source package in the `upstream` qualifier
/// as syft writes it, checked against dpkg-query's own source fields.
fn assert_upstream_qualifiers(debs: &[&Package]) {
    let sources = crate::common::dpkg_upstreams(None);
    let mut with_upstream = 0;
    for package in debs {
        let found = crate::common::purl_qualifier(&package.purl, "upstream");
        assert_eq!(&found, &sources[&package.name], "{}", package.purl);
        with_upstream += usize::from(found.is_some());
    }
    assert!(with_upstream > 20, "only {with_upstream} with a source");
}
