//! `hoist diff` on images the hoist binary built: pairs that differ in one
//! thing each (a file's content, mode, owner or time, the epoch, an env
//! entry, a label, the entry order of a base, the compression, a base tag
//! that moved), compared across layouts, archives and the real registry;
//! each must be named with its likely cause, and two builds of the same
//! inputs must compare identical.

use crate::common::hoist::hoist_in;
use crate::common::images::{Packing, image};
use crate::common::registry::TestRegistry;
use hoist::image::{Manifest, publish};
use hoist::progress::Silent;
use hoist::sink::LayoutSink;
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The one file of the test image's layer.
const FILES: &str = "files = [{ source = \"files/app.txt\", target = \"/app/app.txt\" }]\n";
const EPOCH: u64 = 1_700_000_000;

/// A spec of one image `app` (epoch [`EPOCH`]) in `directory`, with extra
/// lines for the image table, its config and its one layer; `files/app.txt`
/// is made unless the test made it.
fn write_spec(
    directory: &Path,
    image_lines: &str,
    config_lines: &str,
    layer_lines: &str,
) -> PathBuf {
    fs::create_dir_all(directory.join("files")).unwrap();
    let file = directory.join("files/app.txt");
    if !file.exists() {
        fs::write(&file, "hello\n").unwrap();
    }
    let spec = directory.join("hoist.toml");
    fs::write(
        &spec,
        format!(
            "[[image]]\nname = \"app\"\nsource-date-epoch = {EPOCH}\n{image_lines}\n\
             [image.config]\ncmd = [\"/app/app.txt\"]\n{config_lines}\n\
             [[image.layer]]\n{layer_lines}"
        ),
    )
    .unwrap();
    spec
}

/// `hoist build -f SPEC -o OUTPUT` with `environment`, which must succeed.
fn build(work: &Path, spec: &Path, output: &str, environment: &[(&str, &str)]) {
    let mut command = hoist_in(work, ["build", "-f"])
        .arg(spec)
        .arg("-o")
        .arg(output);
    for (key, value) in environment {
        command = command.env(key, value);
    }
    command.run().success();
}

/// Builds a variant of the test image in `work/NAME` into the layout
/// `work/NAME/out`; returns the layout's location.
fn build_variant(work: &Path, name: &str, image: &str, config: &str, layer: &str) -> String {
    let directory = work.join(name);
    let spec = write_spec(&directory, image, config, layer);
    let location = format!("oci:{}", directory.join("out").display());
    build(work, &spec, &location, &[]);
    location
}

/// Builds the variant in `work/NAME` again, into an archive of
/// `transport` (`oci-archive`, `docker-archive`); returns its location.
fn build_archive(work: &Path, name: &str, transport: &str) -> String {
    let location = format!("{transport}:{}", work.join(format!("{name}.tar")).display());
    build(work, &work.join(name).join("hoist.toml"), &location, &[]);
    location
}

/// `hoist diff --json LEFT RIGHT EXTRA...`: the exit code and the report.
fn diff(work: &Path, left: &str, right: &str, extra: &[&str]) -> (i32, Value) {
    let output = hoist_in(work, ["diff", "--json", left, right])
        .args(extra)
        .run();
    let code = output.status.code().expect("hoist diff exits");
    let report = serde_json::from_str(&output.stdout)
        .unwrap_or_else(|error| panic!("hoist diff printed no JSON report ({error}):\n{output:?}"));
    (code, report)
}

fn differences(report: &Value) -> &Vec<Value> {
    report["differences"]
        .as_array()
        .expect("a list of differences")
}

/// Each tar entry difference as `PATH FIELD` (or `PATH only in SIDE`) with
/// its cause, if any.
fn entry_changes(report: &Value) -> Vec<(String, Option<Value>)> {
    differences(report)
        .iter()
        .filter(|difference| difference["place"]["part"] == "entry")
        .map(|difference| {
            let change = &difference["change"];
            let what = match change["kind"].as_str() {
                Some("field") => change["field"].as_str().unwrap().to_string(),
                _ => format!("only in {}", change["side"].as_str().unwrap()),
            };
            let path = difference["place"]["path"].as_str().unwrap();
            (format!("{path} {what}"), difference.get("cause").cloned())
        })
        .collect()
}

/// The JSON paths of the config that differ.
fn config_paths(report: &Value) -> Vec<String> {
    differences(report)
        .iter()
        .filter(|difference| difference["place"]["part"] == "config")
        .map(|difference| difference["change"]["field"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn two_builds_of_the_same_inputs_are_identical_across_transports() {
    let work = tempfile::tempdir().unwrap();
    let left = build_variant(work.path(), "left", "", "", FILES);
    let right = build_variant(work.path(), "right", "", "", FILES);
    let (code, report) = diff(work.path(), &left, &right, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert!(differences(&report).is_empty(), "{report:#}");

    // The same build as an OCI archive, against the layout.
    let archived = build_archive(work.path(), "left", "oci-archive");
    assert_eq!(diff(work.path(), &archived, &left, &[]).0, 0);

    let human = hoist_in(work.path(), ["diff", &left, &right]).run();
    assert_eq!(human.status.code(), Some(0), "{human:?}");
    assert_eq!(human.stdout.lines().last(), Some("identical"), "{human:?}");

    let quiet = hoist_in(work.path(), ["diff", "--quiet", &left, &archived]).run();
    assert_eq!((quiet.status.code(), quiet.stdout.as_str()), (Some(0), ""));

    let missing = format!("oci:{}", work.path().join("nowhere").display());
    let trouble = hoist_in(work.path(), ["diff", &left, &missing]).run();
    assert_eq!(trouble.status.code(), Some(2), "{trouble:?}");
    assert!(trouble.stderr.contains("nowhere"), "{trouble:?}");
}

#[test]
fn one_file_attribute_each_is_named_with_its_cause() {
    let work = tempfile::tempdir().unwrap();
    let base = build_variant(work.path(), "base", "", "", FILES);

    fs::create_dir_all(work.path().join("content/files")).unwrap();
    fs::write(work.path().join("content/files/app.txt"), "HELLO\n").unwrap();
    let content = build_variant(work.path(), "content", "", "", FILES);
    let (code, report) = diff(work.path(), &base, &content, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        entry_changes(&report),
        [("app/app.txt content".to_string(), None)],
        "{report:#}"
    );
    assert_eq!(config_paths(&report), ["rootfs.diff_ids[0]"]);

    let with_mode = FILES.replace("\" }", "\", mode = \"0755\" }");
    let mode = build_variant(work.path(), "mode", "", "", &with_mode);
    let (_, report) = diff(work.path(), &base, &mode, &[]);
    let changes = entry_changes(&report);
    assert_eq!(
        changes,
        [("app/app.txt mode".to_string(), None)],
        "{report:#}"
    );

    let owner = build_variant(
        work.path(),
        "owner",
        "",
        "",
        &format!("{FILES}owner = \"1000:1000\"\n"),
    );
    let (_, report) = diff(work.path(), &base, &owner, &[]);
    let changes = entry_changes(&report);
    let building_user = json!({"cause": "building-user", "side": "right", "id": 1000});
    assert!(changes.contains(&("app/app.txt uid".to_string(), Some(building_user.clone()))));
    assert!(changes.contains(&("app/app.txt gid".to_string(), Some(building_user.clone()))));
    for (change, cause) in &changes {
        assert!(
            change.ends_with(" uid") || change.ends_with(" gid"),
            "{report:#}"
        );
        assert_eq!(cause.as_ref(), Some(&building_user), "{change}");
    }
}

#[test]
fn modes_apart_by_a_umask_and_config_entries_are_named() {
    let work = tempfile::tempdir().unwrap();
    let preserve = format!("{FILES}permissions = \"preserve\"\n");
    let mut locations = Vec::new();
    for (name, mode) in [("strict", 0o644), ("loose", 0o664)] {
        let file = work.path().join(name).join("files/app.txt");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, "hello\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
        locations.push(build_variant(work.path(), name, "", "", &preserve));
    }
    let (_, report) = diff(work.path(), &locations[0], &locations[1], &[]);
    assert_eq!(
        entry_changes(&report),
        [(
            "app/app.txt mode".to_string(),
            Some(json!({"cause": "umask", "bits": 0o020}))
        )],
        "{report:#}"
    );

    let env = build_variant(
        work.path(),
        "env",
        "",
        "env = { GREETING = \"hi\" }\n",
        FILES,
    );
    let other_env = build_variant(
        work.path(),
        "other-env",
        "",
        "env = { GREETING = \"hello\" }\n",
        FILES,
    );
    let (code, report) = diff(work.path(), &env, &other_env, &[]);
    assert_eq!(code, 1);
    assert_eq!(config_paths(&report), ["config.Env.GREETING"], "{report:#}");
    assert!(entry_changes(&report).is_empty());

    let label = build_variant(
        work.path(),
        "label",
        "",
        "labels = { \"org.example.tier\" = \"gold\" }\n",
        FILES,
    );
    let other_label = build_variant(
        work.path(),
        "other-label",
        "",
        "labels = { \"org.example.tier\" = \"silver\" }\n",
        FILES,
    );
    let (_, report) = diff(work.path(), &label, &other_label, &[]);
    assert_eq!(
        config_paths(&report),
        [r#"config.Labels["org.example.tier"]"#],
        "{report:#}"
    );
    let human = hoist_in(work.path(), ["diff", &label, &other_label]).run();
    assert_eq!(human.status.code(), Some(1));
    assert!(
        human
            .stdout
            .contains(r#"config: config.Labels["org.example.tier"]: gold vs silver"#),
        "{human:?}"
    );
}

/// Sets a file's modification time, as a checkout or an edit would.
fn touch(path: &Path, seconds: u64) {
    crate::common::run(
        Command::new("touch")
            .arg("-d")
            .arg(format!("@{seconds}"))
            .arg(path),
    );
}

#[test]
fn times_are_traced_to_the_epoch() {
    let work = tempfile::tempdir().unwrap();
    let mut locations = Vec::new();
    for (name, mtime) in [("old", 1_600_000_000), ("new", 1_800_000_000)] {
        let file = work.path().join(name).join("files/app.txt");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, "hello\n").unwrap();
        touch(&file, mtime);
        locations.push(build_variant(work.path(), name, "", "", FILES));
    }
    let (_, report) = diff(work.path(), &locations[0], &locations[1], &[]);
    assert_eq!(
        entry_changes(&report),
        [(
            "app/app.txt mtime".to_string(),
            Some(json!({"cause": "newer-than-epoch", "side": "right", "epoch": EPOCH}))
        )],
        "{report:#}"
    );

    // The newer file again, with SOURCE_DATE_EPOCH an hour later: a file
    // newer than both epochs gets the same time in both, so the layers are
    // the same and only the config's times differ.
    let later = format!("oci:{}", work.path().join("later").display());
    build(
        work.path(),
        &work.path().join("new/hoist.toml"),
        &later,
        &[("SOURCE_DATE_EPOCH", "1700003600")],
    );
    let (_, report) = diff(work.path(), &locations[1], &later, &[]);
    let epochs = json!({"cause": "epoch", "left": EPOCH, "right": 1_700_003_600});
    assert_eq!(entry_changes(&report), [], "{report:#}");
    let created = differences(&report)
        .iter()
        .find(|difference| difference["change"]["field"] == "created")
        .expect("the config's created differs");
    assert_eq!(created["cause"], epochs);
    let human = hoist_in(work.path(), ["diff", &locations[1], &later]).run();
    assert!(
        human
            .stdout
            .contains("likely cause: different SOURCE_DATE_EPOCH: 1700000000 vs 1700003600"),
        "{human:?}"
    );
}

#[test]
fn the_same_tar_compressed_otherwise_is_named_with_codec_and_level() {
    let work = tempfile::tempdir().unwrap();
    let default = build_variant(work.path(), "default", "", "", FILES);
    let nine = build_variant(work.path(), "nine", "compression-level = 9", "", FILES);
    let (code, report) = diff(work.path(), &default, &nine, &[]);
    assert_eq!(code, 1);
    assert!(entry_changes(&report).is_empty(), "{report:#}");
    assert!(config_paths(&report).is_empty(), "{report:#}");
    let layers: Vec<&Value> = differences(&report)
        .iter()
        .filter(|difference| difference["place"]["part"] == "layer")
        .collect();
    assert_eq!(layers.len(), 1, "{report:#}");
    let change = &layers[0]["change"];
    assert_eq!(change["kind"], "compression");
    assert_eq!(change["right"]["format"], "gzip");
    assert_eq!(change["right"]["level"], 9, "{report:#}");
    let default_level = hoist::layer::gzip::DEFAULT_LEVEL;
    assert!(
        change["left"]["level"] == default_level
            || change["left"]["header"]
                .as_str()
                .is_some_and(|header| header.contains(&default_level.to_string())),
        "{report:#}"
    );
    assert_eq!(layers[0]["cause"]["cause"], "compressor");

    let zstd = build_variant(work.path(), "zstd", "compression = \"zstd\"", "", FILES);
    let (_, report) = diff(work.path(), &default, &zstd, &[]);
    let kinds: Vec<(&str, &str)> = differences(&report)
        .iter()
        .map(|difference| {
            (
                difference["place"]["part"].as_str().unwrap(),
                difference["change"]["field"]
                    .as_str()
                    .or(difference["change"]["kind"].as_str())
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("manifest", "layers[0].mediaType"),
            ("layer", "compression")
        ],
        "{report:#}"
    );
    assert_eq!(differences(&report)[1]["change"]["right"]["format"], "zstd");
}

/// Writes `manifest` to an OCI layout at `directory`, tagged `tag`.
fn write_layout(manifest: &Manifest, directory: &Path, tag: &str) {
    let sink = LayoutSink::open(directory).unwrap();
    publish(manifest, &sink, &[tag.to_string()], &Silent).unwrap();
}

#[test]
fn entry_order_from_a_base_is_named() {
    let work = tempfile::tempdir().unwrap();
    let files: [(&str, &[u8]); 2] = [("etc/a.conf", b"a\n"), ("etc/b.conf", b"b\n")];
    let reversed = [files[1], files[0]];
    let mut locations = Vec::new();
    for (name, order) in [("sorted", &files), ("reversed", &reversed)] {
        let base = work.path().join(format!("{name}-base"));
        let made = image("linux/amd64", &[(&order[..], Packing::Gzip)]);
        write_layout(&Manifest::Image(made), &base, "1");
        let base_line = format!("base = \"oci:{}:1\"", base.display());
        locations.push(build_variant(work.path(), name, &base_line, "", FILES));
    }
    let (code, report) = diff(work.path(), &locations[0], &locations[1], &[]);
    assert_eq!(code, 1);
    assert!(entry_changes(&report).is_empty(), "{report:#}");
    let order = differences(&report)
        .iter()
        .find(|difference| difference["change"]["kind"] == "order")
        .unwrap_or_else(|| panic!("no order difference: {report:#}"));
    assert_eq!(order["place"], json!({"part": "layer", "layer": 0}));
    assert_eq!(order["change"]["left"], "etc/a.conf");
    assert_eq!(order["change"]["right"], "etc/b.conf");
    assert_eq!(order["cause"]["cause"], "entry-order");
}

#[test]
fn platforms_only_one_side_has_and_one_platform_picked() {
    let work = tempfile::tempdir().unwrap();
    let both = build_variant(
        work.path(),
        "both",
        "platforms = [\"linux/amd64\", \"linux/arm64\"]",
        "",
        FILES,
    );
    let one = build_variant(work.path(), "one", "", "", FILES);
    let attested = format!("oci:{}", work.path().join("attested").display());
    hoist_in(work.path(), ["build", "--sbom", "-f"])
        .arg(work.path().join("one/hoist.toml"))
        .arg("-o")
        .arg(&attested)
        .run()
        .success();
    let (code, report) = diff(work.path(), &one, &attested, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        differences(&report),
        &[json!({
            "platform": "linux/amd64",
            "place": {"part": "index"},
            "change": {"kind": "only-in", "side": "right", "item": "attestation manifest"}
        })],
        "{report:#}"
    );
    let (code, report) = diff(work.path(), &both, &one, &[]);
    assert_eq!(code, 1);
    let only: Vec<(&Value, &Value)> = differences(&report)
        .iter()
        .filter(|difference| difference["change"]["kind"] == "only-in")
        .map(|difference| (&difference["platform"], &difference["change"]["side"]))
        .collect();
    assert_eq!(
        only,
        [(&json!("linux/arm64"), &json!("left"))],
        "{report:#}"
    );
    let (code, report) = diff(work.path(), &both, &one, &["--platform", "linux/amd64"]);
    assert_eq!(code, 0, "{report:#}");

    // A docker archive holds one manifest: compared with the index by platform.
    let archived = build_archive(work.path(), "one", "docker-archive");
    let (_, report) = diff(work.path(), &archived, &both, &[]);
    let platforms: Vec<&Value> = differences(&report)
        .iter()
        .filter(|difference| difference["place"]["part"] != "index")
        .map(|difference| &difference["platform"])
        .collect();
    assert!(
        platforms.iter().all(|platform| *platform == "linux/amd64"),
        "{report:#}"
    );
    assert!(
        differences(&report)
            .iter()
            .any(|difference| difference["change"]
                == json!({"kind": "only-in", "side": "right", "item": "platform"})
                && difference["platform"] == "linux/arm64"),
        "{report:#}"
    );
}

/// The GitHub Actions variables under which a build carries the standard
/// labels, the base's name and digest among them.
const GITHUB: &[(&str, &str)] = &[
    ("GITHUB_ACTIONS", "true"),
    ("GITHUB_REF", "refs/heads/main"),
    ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
    ("GITHUB_EVENT_NAME", "push"),
    ("GITHUB_REPOSITORY", "org/repo"),
    ("GITHUB_SERVER_URL", "https://github.com"),
];

#[test]
fn a_base_tag_that_moved_is_named_across_layout_and_registry() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let base_reference = format!("{}/base:1", registry.host());
    let mut locations = Vec::new();
    for (name, content) in [("first", b"one\n"), ("second", b"two\n")] {
        // The base's tag moves to an image with other content (made by
        // another tool, so its history tells its layers from the app's)...
        let base = work.path().join(format!("{name}-base"));
        let made = image(
            "linux/amd64",
            &[(&[("etc/base.conf", &content[..])], Packing::Gzip)],
        );
        write_layout(&Manifest::Image(made), &base, "1");
        hoist_in(
            work.path(),
            [
                "copy".to_string(),
                format!("oci:{}:1", base.display()),
                format!("docker://{base_reference}"),
            ],
        )
        .run()
        .success();
        // ...and the same spec on it builds again.
        let directory = work.path().join(name);
        let spec = write_spec(
            &directory,
            &format!("base = \"{base_reference}\""),
            "",
            FILES,
        );
        let location = format!("oci:{}", directory.join("out").display());
        build(work.path(), &spec, &location, GITHUB);
        locations.push(location);
    }
    // The first build also went to the registry: the same image there.
    let pushed = format!("docker://{}/app:1", registry.host());
    hoist_in(work.path(), ["copy", &locations[0], &pushed])
        .run()
        .success();
    assert_eq!(diff(work.path(), &locations[0], &pushed, &[]).0, 0);

    let (code, report) = diff(work.path(), &pushed, &locations[1], &[]);
    assert_eq!(code, 1);
    let moved = differences(&report)
        .iter()
        .find(|difference| {
            difference["change"]["field"]
                == r#"config.Labels["org.opencontainers.image.base.digest"]"#
        })
        .unwrap_or_else(|| panic!("the base digest label is not named: {report:#}"));
    assert_eq!(moved["cause"]["cause"], "base-moved", "{report:#}");
    assert_eq!(moved["cause"]["name"], base_reference);
    assert_eq!(moved["cause"]["left"], moved["change"]["left"]);
    assert_eq!(moved["cause"]["right"], moved["change"]["right"]);
    // The base's layer (before the app's own) is put down to the move too.
    assert_eq!(
        entry_changes(&report),
        [(
            "etc/base.conf content".to_string(),
            Some(moved["cause"].clone())
        )],
        "only the base's file differs: {report:#}"
    );
    let layer = differences(&report)
        .iter()
        .find(|difference| difference["place"] == json!({"part": "layer", "layer": 0}))
        .unwrap_or_else(|| panic!("the base layer differs: {report:#}"));
    assert_eq!(layer["cause"], moved["cause"]);
    let diff_id = differences(&report)
        .iter()
        .find(|difference| difference["change"]["field"] == "rootfs.diff_ids[0]")
        .unwrap_or_else(|| panic!("the base layer's diff_id differs: {report:#}"));
    assert_eq!(diff_id["cause"], moved["cause"]);
    assert!(
        !differences(&report)
            .iter()
            .any(|difference| difference["place"]["layer"] == 1),
        "the app's own layer is the same: {report:#}"
    );
}

#[test]
fn layers_stream_through_without_memory_growing_with_their_size() {
    const SIZE: usize = 96 << 20;
    let work = tempfile::tempdir().unwrap();
    let mut locations = Vec::new();
    for (name, last) in [("zeros", 0u8), ("one-more", 1u8)] {
        let file = work.path().join(name).join("files/app.txt");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        let mut content = vec![0u8; SIZE];
        content[SIZE - 1] = last;
        fs::write(&file, &content).unwrap();
        locations.push(build_variant(work.path(), name, "", "", FILES));
    }
    // The peak memory of the diff alone, from the rusage of its own parent.
    let measured = crate::common::run(
        Command::new("python3")
            .arg("-c")
            .arg(
                "import resource, subprocess, sys\n\
                 code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n\
                 print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
            )
            .arg(env!("CARGO_BIN_EXE_hoist"))
            .args(["diff", "--json", &locations[0], &locations[1]])
            .env("HOIST_CACHE", work.path().join("cache")),
    );
    let fields: Vec<u64> = measured
        .split_whitespace()
        .map(|field| field.parse().unwrap())
        .collect();
    assert_eq!(fields[0], 1, "the files differ: {measured}");
    let peak_kib = fields[1];
    assert!(
        peak_kib < (SIZE as u64 / 1024) / 2,
        "hoist diff peaked at {peak_kib} KiB comparing two layers of {SIZE} bytes"
    );
    let (_, report) = diff(work.path(), &locations[0], &locations[1], &[]);
    assert_eq!(
        entry_changes(&report),
        [("app/app.txt content".to_string(), None)],
        "{report:#}"
    );
}
