//! `hoist build` into OCI layouts, checked with the real tools: the official
//! schemas, `skopeo inspect`/`copy`, `umoci unpack`, and a file-by-file
//! comparison of the unpacked root filesystem with the sources. The tree
//! comparison itself is checked first against GNU tar and umoci round trips,
//! so a passing build test means something.
use crate::common;

use crate::common::hoist::{
    Layout, MEDIA_CONFIG, MEDIA_INDEX, MEDIA_MANIFEST, copy_tree, expected_hello, fixture, hoist,
    read_digest_file, special_tree, unpack, unpack_platform,
};
use crate::common::tree::{Kind, Policy, Tree, assert_same_tree, normalized_mode, report};
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::Command;

/// fixtures/make-special-tree.sh writes the same epoch into its spec.
const SPECIAL_EPOCH: i64 = 1_700_000_000;
/// Newer than any mtime: nothing is clamped.
const NO_CLAMP: i64 = i64::MAX;

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn is_epoch_timestamp(value: &Value) -> bool {
    // RFC 3339 for 1700000000, with or without fractional seconds or offset.
    value
        .as_str()
        .is_some_and(|text| text.starts_with("2023-11-14T22:13:20"))
}

#[test]
fn normalized_modes_follow_git() {
    assert_eq!(normalized_mode(Kind::File, 0o600), 0o644);
    assert_eq!(normalized_mode(Kind::File, 0o700), 0o755);
    assert_eq!(normalized_mode(Kind::File, 0o4700), 0o4744);
    assert_eq!(normalized_mode(Kind::File, 0o2611), 0o2644);
    assert_eq!(normalized_mode(Kind::Directory, 0o1700), 0o1755);
    assert_eq!(normalized_mode(Kind::Directory, 0o700), 0o755);
    assert_eq!(normalized_mode(Kind::Directory, 0o1777), 0o1777);
    assert_eq!(normalized_mode(Kind::File, 0o4754), 0o4754);
    assert_eq!(normalized_mode(Kind::CharDevice, 0o640), 0o640);
}

/// GNU tar keeps everything the comparison looks at, so a tar round trip of
/// the special tree must compare equal, and every change must be reported.
#[test]
fn tree_comparison_agrees_with_a_tar_round_trip_and_reports_changes() {
    let work = temp();
    special_tree(&work.path().join("special"));
    let source = work.path().join("special/rootfs");
    let copy = work.path().join("copy");
    fs::create_dir(&copy).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(
            "tar --xattrs -C \"$1\" -cf - . | \
             tar --xattrs --xattrs-include='*' --same-owner -xpf - -C \"$2\"",
        )
        .arg("sh")
        .arg(&source)
        .arg(&copy)
        .status()
        .expect("tar runs");
    assert!(status.success(), "tar round trip failed");

    let expected = Tree::expected(&source, "/", &Policy::preserved(NO_CLAMP));
    assert!(
        !expected
            .entries
            .values()
            .any(|entry| entry.kind == Kind::Socket),
        "sockets are not expected in an image"
    );
    assert!(
        expected.entries.len() > 40,
        "the special tree is bigger than {} entries",
        expected.entries.len()
    );
    assert_same_tree(&expected, &copy);

    // Each kind of change shows up, naming the path.
    fs::write(copy.join("file.txt"), "changed\n").unwrap();
    Command::new("chmod")
        .arg("0640")
        .arg(copy.join("private"))
        .status()
        .unwrap();
    Command::new("chown")
        .arg("7:7")
        .arg(copy.join("empty-file"))
        .status()
        .unwrap();
    Command::new("touch")
        .arg("-d")
        .arg("@5")
        .arg(copy.join("run.sh"))
        .status()
        .unwrap();
    fs::remove_file(copy.join("hard/second")).unwrap();
    fs::copy(copy.join("hard/original"), copy.join("hard/second")).unwrap();
    Command::new("touch")
        .arg("-r")
        .arg(copy.join("hard/original"))
        .arg(copy.join("hard/second"))
        .status()
        .unwrap();
    fs::remove_file(copy.join("link-relative")).unwrap();
    std::os::unix::fs::symlink("elsewhere", copy.join("link-relative")).unwrap();
    Command::new("setcap")
        .arg("-r")
        .arg(copy.join("bin/bind-low-ports"))
        .status()
        .unwrap();
    fs::write(copy.join("extra"), "").unwrap();
    fs::remove_dir(copy.join("empty")).unwrap();
    let differences = expected.differences(&Tree::scan(&copy));
    let text = report(&differences);
    for needle in [
        "/file.txt: size",
        "/file.txt: content sha256",
        "/private: mode 0640, expected 0600",
        "/empty-file: owner 7:7, expected 0:0",
        "/run.sh: mtime 5, expected 1700000000",
        "/hard/second: hardlinked with []",
        "/hard/original: hardlinked with [\"other/third\"]",
        "/link-relative: link target",
        "/link-relative: owner 0:0, expected 1000:100",
        "/bin/bind-low-ports: security.capability None",
        "/extra: unexpected File",
        "/empty: missing (Directory expected)",
    ] {
        assert!(text.contains(needle), "{needle:?} not reported in:\n{text}");
    }
}

/// umoci keeps everything too: a repack and unpack of the special tree
/// compares equal, and with the epoch applied exactly the newer mtimes differ.
#[test]
fn tree_comparison_agrees_with_an_umoci_round_trip() {
    let work = temp();
    special_tree(&work.path().join("special"));
    let source = work.path().join("special/rootfs");
    let layout = work.path().join("layout");
    let layout_image = format!("{}:image", layout.display());
    common::run(
        Command::new("umoci")
            .arg("init")
            .arg("--layout")
            .arg(&layout),
    );
    common::run(Command::new("umoci").args(["new", "--image", &layout_image]));
    let bundle = work.path().join("bundle");
    unpack(&layout_image, &bundle);
    copy_tree(&source, &bundle.join("rootfs"));
    // umoci cannot pack a socket either; put the directory's mtime back.
    fs::remove_file(bundle.join("rootfs/run/daemon.sock")).unwrap();
    common::run(
        Command::new("touch")
            .arg("-r")
            .arg(source.join("run"))
            .arg(bundle.join("rootfs/run")),
    );
    common::run(
        Command::new("umoci")
            .args(["repack", "--image", &layout_image])
            .arg(&bundle),
    );
    let unpacked = work.path().join("unpacked");
    unpack(&layout_image, &unpacked);
    let rootfs = unpacked.join("rootfs");
    assert_same_tree(
        &Tree::expected(&source, "/", &Policy::preserved(NO_CLAMP)),
        &rootfs,
    );

    let clamped = Tree::expected(&source, "/", &Policy::preserved(SPECIAL_EPOCH));
    let differences = clamped.differences(&Tree::scan(&rootfs));
    let paths: Vec<String> = differences
        .iter()
        .map(|difference| difference.path.display().to_string())
        .collect();
    assert_eq!(
        paths,
        ["file.txt", "link-dangling", "nested/a", "nested/a/leaf.txt"],
        "{}",
        report(&differences)
    );
    assert!(
        differences
            .iter()
            .all(|difference| difference.what == "mtime 4102444800, expected 1")
    );
}

fn build_hello(work: &Path) -> (common::hoist::HoistOutput, Layout) {
    let out = work.join("out");
    let digest_file = work.join("digest");
    let output = hoist(["build", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("oci:{}", out.display()))
        .arg("--digest-file")
        .arg(&digest_file)
        .current_dir(work)
        .run()
        .success();
    (output, Layout::open(out))
}

#[test]
fn hello_builds_a_valid_multi_platform_layout() {
    let work = temp();
    let (output, layout) = build_hello(work.path());

    // The top digest: last stdout line = --digest-file = index.json's tag.
    let digest = output.last_line_digest();
    assert_eq!(read_digest_file(&work.path().join("digest")), digest);
    assert_eq!(
        layout.tagged_digest("hello"),
        digest,
        "index.json tags the printed digest"
    );
    assert_eq!(layout.tagged("hello")["mediaType"], MEDIA_INDEX);

    // Schemas: oci-layout, index.json, and every index, manifest and config.
    common::assert_valid_json(
        "oci/image-layout-schema.json",
        &[&layout.dir.join("oci-layout")],
    );
    common::assert_valid_json(
        "oci/image-index-schema.json",
        &[&layout.dir.join("index.json")],
    );
    let nodes = layout.walk("hello");
    for (media_type, schema) in [
        (MEDIA_INDEX, "oci/image-index-schema.json"),
        (MEDIA_MANIFEST, "oci/image-manifest-schema.json"),
        (MEDIA_CONFIG, "oci/config-schema.json"),
    ] {
        let paths: Vec<&Path> = nodes
            .iter()
            .filter(|node| node.media_type == media_type)
            .map(|node| node.path.as_path())
            .collect();
        assert!(!paths.is_empty(), "no {media_type} in the image");
        common::assert_valid_json(schema, &paths);
    }

    // One manifest per platform, each printed on its own line.
    let manifests = layout.platform_manifests("hello");
    let platforms: Vec<&str> = manifests
        .iter()
        .map(|(platform, _)| platform.as_str())
        .collect();
    assert_eq!(platforms.len(), 2, "platforms {platforms:?}");
    assert_eq!(platforms[0], "linux/amd64");
    assert!(
        platforms[1].starts_with("linux/arm64"),
        "platforms {platforms:?}"
    );
    let lines = output.image_lines();
    assert_eq!(lines.len(), 2, "one line per platform:\n{}", output.stdout);
    for ((platform, manifest_digest), line) in manifests.iter().zip(&lines) {
        assert_eq!(line.name, "hello");
        assert!(
            platform.starts_with(&line.platform),
            "{line:?} vs {platform}"
        );
        assert_eq!(&line.digest, manifest_digest);
        assert_eq!(line.layers, 2, "{line:?}");
        assert_eq!(layout.verify_diff_ids(manifest_digest), 2);
    }

    // The config carries the spec's settings and a history at the epoch.
    for (platform, manifest_digest) in &manifests {
        let manifest = layout.json(manifest_digest);
        let config = layout.json(manifest["config"]["digest"].as_str().unwrap());
        let architecture = platform.split('/').nth(1).unwrap();
        assert_eq!(config["architecture"], architecture);
        assert_eq!(config["os"], "linux");
        let settings = &config["config"];
        assert_eq!(
            settings["Entrypoint"],
            serde_json::json!(["/usr/bin/hello"])
        );
        assert_eq!(settings["Cmd"], serde_json::json!(["world"]));
        assert_eq!(settings["WorkingDir"], "/app");
        let environment: Vec<&str> = settings["Env"]
            .as_array()
            .expect("Env is a list")
            .iter()
            .map(|variable| variable.as_str().unwrap())
            .collect();
        assert!(environment.contains(&"GREETING=hello"), "{environment:?}");
        assert!(
            environment.contains(&"PATH=/usr/local/bin:/usr/bin:/bin"),
            "{environment:?}"
        );
        assert_eq!(
            settings["Labels"]["org.opencontainers.image.title"],
            "hello"
        );
        assert_eq!(
            settings["Labels"]["org.opencontainers.image.description"],
            "hoist's example image"
        );
        assert!(
            is_epoch_timestamp(&config["created"]),
            "created {}",
            config["created"]
        );
        let history: Vec<&Value> = config["history"]
            .as_array()
            .expect("history is a list")
            .iter()
            .filter(|entry| entry["empty_layer"] != true)
            .collect();
        assert_eq!(history.len(), 2, "one history entry per layer: {history:?}");
        for entry in &history {
            assert!(is_epoch_timestamp(&entry["created"]), "history {entry}");
        }
    }

    // skopeo reads it, and each platform unpacks to exactly its sources.
    let image = format!("oci:{}:hello", layout.dir.display());
    let inspect: Value = serde_json::from_str(&common::run(
        Command::new("skopeo")
            .args(["--insecure-policy", "--override-arch", "arm64", "inspect"])
            .arg(&image),
    ))
    .expect("skopeo inspect prints JSON");
    assert_eq!(inspect["Architecture"], "arm64");
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(2));
    for architecture in ["amd64", "arm64"] {
        let bundle = unpack_platform(&image, architecture, work.path());
        assert_same_tree(&expected_hello(architecture), &bundle.join("rootfs"));
        let platform_text = fs::read_to_string(bundle.join("rootfs/usr/share/hello/platform.txt"))
            .expect("platform.txt unpacked");
        assert_eq!(platform_text, format!("Built for linux/{architecture}.\n"));
    }
}

#[test]
fn special_tree_unpacks_identically_with_preserve_policies() {
    let work = temp();
    let spec = special_tree(&work.path().join("special"));
    let out = work.path().join("out");
    let output = hoist(["build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}", out.display()))
        .current_dir(work.path())
        .run()
        .success();
    let stderr = output.stderr.to_lowercase();
    assert!(
        stderr.contains("socket") && stderr.contains("daemon.sock"),
        "no warning about the skipped socket run/daemon.sock:\n{}",
        output.stderr
    );
    let layout = Layout::open(&out);
    assert_eq!(layout.tagged_digest("special"), output.last_line_digest());
    for (_, manifest_digest) in layout.platform_manifests("special") {
        layout.verify_diff_ids(&manifest_digest);
    }
    let bundle = unpack_platform(
        &format!("oci:{}:special", out.display()),
        "amd64",
        work.path(),
    );
    let expected = Tree::expected(
        &work.path().join("special/rootfs"),
        "/",
        &Policy::preserved(SPECIAL_EPOCH),
    );
    assert_same_tree(&expected, &bundle.join("rootfs"));
}

#[test]
fn quiet_prints_only_the_digest_and_json_prints_objects() {
    let work = temp();
    let quiet = hoist(["build", "--quiet", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("oci:{}", work.path().join("quiet").display()))
        .current_dir(work.path())
        .run()
        .success();
    let digest = quiet.last_line_digest();
    assert_eq!(
        quiet.lines(),
        [digest.as_str()],
        "--quiet prints the digest alone"
    );

    let json = hoist(["build", "--json", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("oci:{}", work.path().join("json").display()))
        .current_dir(work.path())
        .run()
        .success();
    let objects: Vec<Value> = json
        .lines()
        .iter()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("--json line {line:?} is not JSON: {error}"))
        })
        .collect();
    assert!(objects.iter().all(Value::is_object), "{objects:?}");
    assert!(
        objects.len() >= 3,
        "two platforms and the top digest: {objects:?}"
    );
    let last = objects.last().unwrap().to_string();
    assert!(
        last.contains(&digest),
        "the last object {last} names {digest}"
    );
    for (_, manifest_digest) in Layout::open(work.path().join("json")).platform_manifests("hello") {
        assert!(
            json.stdout.contains(&manifest_digest),
            "--json output names {manifest_digest}"
        );
    }
}

#[test]
fn output_defaults_to_the_spec_key_then_hoist_out() {
    let work = temp();
    let spec_dir = work.path().join("spec");
    copy_tree(&fixture("hello"), &spec_dir);
    let cwd = work.path().join("cwd");
    fs::create_dir(&cwd).unwrap();

    // No --output and no `output` key: ./hoist-out in the working directory.
    let built = hoist(["build", "-f"])
        .arg(spec_dir.join("hoist.toml"))
        .current_dir(&cwd)
        .run()
        .success();
    let layout = Layout::open(cwd.join("hoist-out"));
    assert_eq!(layout.tagged_digest("hello"), built.last_line_digest());

    // The `output` key, relative to the spec's directory.
    let spec = fs::read_to_string(spec_dir.join("hoist.toml")).unwrap();
    fs::write(
        spec_dir.join("hoist.toml"),
        format!("output = \"oci:built\"\n{spec}"),
    )
    .unwrap();
    let built = hoist(["build", "-f"])
        .arg(spec_dir.join("hoist.toml"))
        .current_dir(&cwd)
        .run()
        .success();
    let layout = Layout::open(spec_dir.join("built"));
    assert_eq!(layout.tagged_digest("hello"), built.last_line_digest());

    // -f defaults to ./hoist.toml; a tag in the location replaces the name.
    let built = hoist(["build", "-o", "oci:tagged:v1"])
        .current_dir(&spec_dir)
        .run()
        .success();
    let layout = Layout::open(spec_dir.join("tagged"));
    assert_eq!(layout.tags(), ["v1"]);
    assert_eq!(layout.tagged_digest("v1"), built.last_line_digest());
}

#[test]
fn platform_flag_selects_platforms() {
    let work = temp();
    let out = work.path().join("out");
    let output = hoist(["build", "--platform", "linux/arm64", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("oci:{}", out.display()))
        .current_dir(work.path())
        .run()
        .success();
    let layout = Layout::open(&out);
    let platforms: Vec<String> = layout
        .platform_manifests("hello")
        .into_iter()
        .map(|(platform, _)| platform)
        .collect();
    assert_eq!(platforms.len(), 1, "{platforms:?}");
    assert!(platforms[0].starts_with("linux/arm64"), "{platforms:?}");
    assert_eq!(output.image_lines().len(), 1);
    // One platform and nothing else in the index: the manifest is the top.
    assert_eq!(layout.tagged("hello")["mediaType"], MEDIA_MANIFEST);
}

/// The kind of manifest each output of one build holds at the top, and
/// the digest the build printed last.
fn built_top(work: &Path, arguments: &[&str], name: &str) -> (String, String) {
    let out = work.join(name);
    let output = hoist(["build", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .args(arguments)
        .arg("-o")
        .arg(format!("oci:{}", out.display()))
        .arg("-o")
        .arg(format!("oci-archive:{}.tar", out.display()))
        .current_dir(work)
        .run()
        .success();
    let layout = Layout::open(&out);
    let top = layout.tagged("hello");
    let digest = output.last_line_digest();
    assert_eq!(top["digest"], digest.as_str(), "{arguments:?}");
    let unpacked = work.join(format!("{name}-unpacked"));
    fs::create_dir(&unpacked).unwrap();
    common::run(
        Command::new("tar")
            .arg("-xf")
            .arg(format!("{}.tar", out.display()))
            .arg("-C")
            .arg(&unpacked),
    );
    let archived = Layout::open(&unpacked).tagged("hello");
    assert_eq!(archived["digest"], digest.as_str(), "{arguments:?}");
    (top["mediaType"].as_str().unwrap().to_string(), digest)
}

#[test]
fn the_top_follows_what_is_built() {
    let work = temp();
    let one = ["--platform", "linux/arm64"];
    let (kind, single) = built_top(work.path(), &one, "one");
    assert_eq!(kind, MEDIA_MANIFEST);
    // Attestations stored in the index make one, for one platform too.
    let (kind, _) = built_top(work.path(), &[one[0], one[1], "--sbom"], "attested");
    assert_eq!(kind, MEDIA_INDEX);
    // Attached as referrers they leave the manifest at the top (a layout
    // only: archives hold no referrers).
    let out = work.path().join("referred");
    let output = hoist(["build", "--sbom", "--attach", "referrers", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .args(one)
        .arg("-o")
        .arg(format!("oci:{}", out.display()))
        .run()
        .success();
    assert_eq!(output.last_line_digest(), single);
    assert_eq!(
        Layout::open(&out).tagged("hello")["mediaType"],
        MEDIA_MANIFEST
    );
    let (kind, _) = built_top(work.path(), &[], "every");
    assert_eq!(kind, MEDIA_INDEX, "several platforms");
}

#[test]
fn image_flag_selects_images() {
    let work = temp();
    let spec_dir = work.path().join("spec");
    copy_tree(&fixture("hello"), &spec_dir);
    let spec = fs::read_to_string(spec_dir.join("hoist.toml")).unwrap();
    let second = "\n[[image]]\nname = \"second\"\nplatforms = [\"linux/amd64\"]\n\
                  source-date-epoch = 1700000000\n\n[[image.layer]]\nsource = \"app\"\n\
                  target = \"/app\"\n";
    fs::write(spec_dir.join("hoist.toml"), format!("{spec}{second}")).unwrap();
    let out = work.path().join("out");
    let output = hoist(["build", "--image", "second", "-o"])
        .arg(format!("oci:{}", out.display()))
        .current_dir(&spec_dir)
        .run()
        .success();
    let lines = output.image_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].name, "second");
    assert_eq!(lines[0].platform, "linux/amd64");
    assert_eq!(lines[0].layers, 1);
    let layout = Layout::open(&out);
    assert_eq!(layout.tags(), ["second"]);
    let bundle = unpack_platform(
        &format!("oci:{}:second", out.display()),
        "amd64",
        work.path(),
    );
    let policy = Policy::normalized(1_700_000_000);
    let expected = Tree::expected(&spec_dir.join("app"), "/app", &policy);
    assert_same_tree(&expected, &bundle.join("rootfs"));
}

/// The layout helpers against a layout made by umoci, wrapped in an index
/// the way hoist writes one: walking, platform selection, diff_id checks and
/// per-platform unpacking all work on it, and a corrupt blob is caught.
#[test]
fn layout_helpers_read_an_index_over_an_umoci_image() {
    let work = temp();
    let dir = work.path().join("layout");
    let base = format!("{}:base", dir.display());
    common::run(Command::new("umoci").arg("init").arg("--layout").arg(&dir));
    common::run(Command::new("umoci").args(["new", "--image", &base]));
    let bundle = work.path().join("bundle");
    unpack(&base, &bundle);
    fs::write(bundle.join("rootfs/hello.txt"), "hello\n").unwrap();
    common::run(
        Command::new("umoci")
            .args(["repack", "--image", &base])
            .arg(&bundle),
    );

    let layout = Layout::open(&dir);
    let mut manifest = layout.tagged("base");
    manifest.as_object_mut().unwrap().remove("annotations");
    manifest["platform"] = serde_json::json!({"os": "linux", "architecture": "amd64"});
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [manifest],
    }))
    .unwrap();
    let index_digest = format!("sha256:{}", common::hoist::sha256_hex(&index));
    fs::write(layout.blob_path(&index_digest), &index).unwrap();
    let mut index_json = layout.index_json();
    index_json["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": MEDIA_INDEX,
            "digest": index_digest,
            "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }));
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index_json).unwrap(),
    )
    .unwrap();

    let mut tags = layout.tags();
    tags.sort();
    assert_eq!(tags, ["base", "multi"]);
    assert_eq!(layout.tagged_digest("multi"), index_digest);
    let kinds: Vec<&str> = layout
        .walk("multi")
        .iter()
        .map(|node| match node.media_type.as_str() {
            MEDIA_INDEX => "index",
            MEDIA_MANIFEST => "manifest",
            MEDIA_CONFIG => "config",
            _ => "layer",
        })
        .collect();
    assert_eq!(kinds, ["index", "manifest", "config", "layer"]);
    let manifests = layout.platform_manifests("multi");
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0].0, "linux/amd64");
    assert_eq!(layout.verify_diff_ids(&manifests[0].1), 1);
    common::assert_valid_json(
        "oci/image-index-schema.json",
        &[&layout.blob_path(&index_digest)],
    );

    let unpacked = unpack_platform(
        &format!("oci:{}:multi", dir.display()),
        "amd64",
        work.path(),
    );
    assert_eq!(
        fs::read_to_string(unpacked.join("rootfs/hello.txt")).unwrap(),
        "hello\n"
    );

    let layer = layout.walk("multi").pop().unwrap();
    fs::write(&layer.path, b"corrupt").unwrap();
    let caught = std::panic::catch_unwind(|| layout.blob(&layer.digest));
    assert!(
        caught.is_err(),
        "a blob that does not hash to its name is caught"
    );
}

/// The model the hello tests compare against says what the spec says.
#[test]
fn expected_hello_models_the_spec() {
    let expected = expected_hello("arm64");
    let entry = |path: &str| {
        expected
            .entries
            .get(Path::new(path))
            .unwrap_or_else(|| panic!("no {path} in the model"))
    };
    assert!(!expected.entries.contains_key(Path::new("etc/motd")));
    assert!(
        !expected
            .entries
            .contains_key(Path::new("var/lib/hello/state/.keep"))
    );
    let empty = entry("usr/share/hello/empty");
    assert_eq!((empty.kind, empty.mode), (Kind::Directory, 0o755));
    assert!(
        !expected
            .entries
            .keys()
            .any(|path| path.parent() == Some(Path::new("usr/share/hello/empty"))),
        "the .keep stand-in is excluded"
    );
    let payload = entry("app/data/payload.bin");
    assert_eq!(
        (payload.kind, payload.mode, payload.uid),
        (Kind::File, 0o600, 0)
    );
    let created = entry("app/data");
    assert_eq!(
        (created.kind, created.mode, created.mtime),
        (Kind::Directory, 0o755, 1)
    );
    assert_eq!(entry("app/start.sh").mode, 0o755);
    assert_eq!(entry("etc/hello/hello.conf").mode, 0o644);
    assert_eq!(entry("usr/bin/hello").mode, 0o755);
    let link = entry("usr/bin/hi");
    assert_eq!(link.kind, Kind::Symlink);
    assert_eq!(link.link_target.as_deref(), Some(Path::new("hello")));
    assert!(
        expected
            .entries
            .values()
            .all(|entry| entry.mtime <= 1_700_000_000)
    );
    assert!(
        expected
            .entries
            .values()
            .all(|entry| (entry.uid, entry.gid) == (0, 0))
    );
}

#[test]
fn uncached_layer_blobs_are_built_beside_the_layout_not_in_tmpdir() {
    // Built beside the layout, the blobs are hard-linked into it; from a
    // `/tmp` on another filesystem they would be copied and hashed again.
    // A TMPDIR that does not exist shows where they go.
    let work = temp();
    let built = hoist(["build", "-q", "--no-cache", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .args(["-o", "oci:out:1"])
        .env("TMPDIR", work.path().join("missing"))
        .current_dir(work.path())
        .run()
        .success();
    let layout = Layout::open(work.path().join("out"));
    assert_eq!(layout.tagged_digest("1"), built.last_line_digest());
    let left: Vec<String> = fs::read_dir(work.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["out"], "the blob directory is gone after the build");
    // The control: an archive is written from the blobs, not linked, so its
    // blobs are still built in TMPDIR, and the missing one is named.
    hoist(["build", "-q", "--no-cache", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .args(["-o", "oci-archive:image.tar"])
        .env("TMPDIR", work.path().join("missing"))
        .current_dir(work.path())
        .run()
        .failure(1)
        .stderr_mentions(&["temporary directory for layer blobs", "missing"]);
}

/// `io.containerd.image.name` of each tag in a layout's `index.json`.
fn containerd_names(layout: &Layout) -> Vec<(String, String)> {
    layout.index_json()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let annotations = &entry["annotations"];
            let text = |key: &str| annotations[key].as_str().unwrap_or_default().to_string();
            (
                text("org.opencontainers.image.ref.name"),
                text("io.containerd.image.name"),
            )
        })
        .collect()
}

#[test]
fn layouts_name_each_tag_with_its_full_reference() {
    let work = temp();
    let spec_dir = work.path().join("spec");
    copy_tree(&fixture("hello"), &spec_dir);
    let build = |arguments: &[&str], out: &str| {
        hoist(["build", "--platform", "linux/amd64"])
            .args(arguments)
            .arg("-o")
            .arg(out)
            .current_dir(&spec_dir)
            .run()
            .success();
        Layout::open(spec_dir.join(out.split(':').nth(1).unwrap()))
    };
    // No repository in the spec: podman's name for a local image.
    let untagged = build(&[], "oci:untagged");
    assert_eq!(
        containerd_names(&untagged),
        [("hello".to_string(), "localhost/hello:latest".to_string())]
    );
    let spec = fs::read_to_string(spec_dir.join("hoist.toml")).unwrap();
    fs::write(
        spec_dir.join("hoist.toml"),
        spec.replace(
            "name = \"hello\"\n",
            "name = \"hello\"\nrepository = \"ghcr.io/acme/hello\"\n",
        ),
    )
    .unwrap();
    let tagged = build(&["--tag", "extra"], "oci:tagged:v1");
    assert_eq!(
        containerd_names(&tagged),
        [
            ("v1".to_string(), "ghcr.io/acme/hello:v1".to_string()),
            ("extra".to_string(), "ghcr.io/acme/hello:extra".to_string()),
        ]
    );
    // A tag that is a full reference already names itself; skopeo finds
    // the image by it.
    let full = build(&[], "oci:full:registry.example/acme/hello:2.0");
    assert_eq!(
        containerd_names(&full),
        [(
            "registry.example/acme/hello:2.0".to_string(),
            "registry.example/acme/hello:2.0".to_string()
        )]
    );
    common::run(
        Command::new("skopeo")
            .args([
                "inspect",
                "--raw",
                "oci:full:registry.example/acme/hello:2.0",
            ])
            .current_dir(&spec_dir),
    );
}
