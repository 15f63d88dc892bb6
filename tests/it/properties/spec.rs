//! `hoist.toml` → `Plan` and image references: any text, and TOML with the
//! spec's own keys holding values of random types and contents.

use super::config;
use hoist::registry::Reference;
use hoist::spec::{Plan, PlanOptions};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::path::Path;
use std::sync::OnceLock;
use toml::Value;

/// Strings the spec's keys take, valid and nearly valid, and noise.
fn spec_string() -> BoxedStrategy<String> {
    let known = prop::sample::select(vec![
        "linux/amd64",
        "linux/arm64/v8",
        "linux/arm/v7",
        "linux//",
        "gzip",
        "zstd",
        "none",
        "scratch",
        "oci:out",
        "oci:out:v1",
        "oci-archive:out.tar",
        "docker-archive:x.tar:app:1",
        "docker://localhost:5000/app:1",
        "debian:bookworm",
        "rootfs/{arch}",
        "{os}/{arch}/{variant}",
        "{platform}",
        "{unknown}",
        "/",
        "/usr/bin",
        "../outside",
        "0755",
        "0o755",
        "7777",
        "99999",
        "0:0",
        "1000:1000",
        "root:root",
        "preserve",
        "normalize",
        "max",
        "sha-{short_sha}",
        "{branch}-{date}",
        "{{",
        "}}",
        "%Y%m%d",
        "%Q",
        "%",
        "%-",
        "%.3f",
        "80/tcp",
        "65536/udp",
        "SIGTERM",
        "**/*.log",
        "[",
        "",
    ])
    .prop_map(str::to_string);
    prop_oneof![4 => known, 1 => "\\PC{0,24}"].boxed()
}

/// Any TOML value, a few levels deep.
fn any_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        spec_string().prop_map(Value::String),
        any::<i64>().prop_map(Value::Integer),
        (-1000i64..100_000).prop_map(Value::Integer),
        any::<bool>().prop_map(Value::Boolean),
        (-1e9f64..1e9).prop_map(Value::Float),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(spec_string(), inner, 0..4)
                .prop_map(|map| Value::Table(map.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A table with some of `keys` (each there with its probability), each value
/// from its own strategy, rarely of another type, and rarely a key the
/// spec does not know: most tables get past serde into resolution.
fn table(keys: Vec<(&'static str, f64, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = keys
        .into_iter()
        .map(|(key, presence, strategy)| {
            let value = prop_oneof![100 => strategy, 1 => any_value()];
            prop::option::weighted(
                presence,
                value.prop_map(move |value| (key.to_string(), value)),
            )
            .boxed()
        })
        .collect();
    let unknown = prop::option::weighted(0.01, ("[a-z-]{1,12}", any_value()));
    (fields, unknown)
        .prop_map(|(fields, unknown)| {
            Value::Table(fields.into_iter().flatten().chain(unknown).collect())
        })
        .boxed()
}

/// Mostly one of the `values` the key takes, sometimes any spec string.
fn text(values: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![
        20 => prop::sample::select(values).prop_map(str::to_string),
        1 => spec_string(),
    ]
    .prop_map(Value::String)
    .boxed()
}

fn texts(values: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop::collection::vec(text(values), 0..3)
        .prop_map(Value::Array)
        .boxed()
}

fn text_map(
    keys: &'static [&'static str],
    values: &'static [&'static str],
) -> BoxedStrategy<Value> {
    prop::collection::vec((text(keys), text(values)), 0..3)
        .prop_map(|pairs| {
            let pairs = pairs
                .into_iter()
                .filter_map(|(key, value)| Some((key.as_str()?.to_string(), value)));
            Value::Table(pairs.collect())
        })
        .boxed()
}

fn boolean() -> BoxedStrategy<Value> {
    any::<bool>().prop_map(Value::Boolean).boxed()
}

fn table_array(table: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop::collection::vec(table, 0..3)
        .prop_map(Value::Array)
        .boxed()
}

fn file_table() -> BoxedStrategy<Value> {
    let mode = prop_oneof![
        text(&["0755", "0644", "4755", "0o755", "755x"]),
        (0i64..0o20000).prop_map(Value::Integer)
    ];
    table(vec![
        (
            "source",
            0.95,
            text(&["bin/app", "{arch}/app", "/etc/hosts", "missing"]),
        ),
        (
            "target",
            0.95,
            text(&["/usr/bin/app", "/app", "relative", "/"]),
        ),
        ("mode", 0.4, mode.boxed()),
        ("exclude", 0.2, texts(&["*.log", "**/tmp", "["])),
    ])
}

fn layer_table() -> BoxedStrategy<Value> {
    table(vec![
        ("name", 0.4, text(&["base", "app", ""])),
        (
            "source",
            0.6,
            text(&[
                "rootfs/{arch}",
                "bin",
                "{platform}/out",
                "/abs",
                "{variant}",
            ]),
        ),
        ("target", 0.6, text(&["/", "/usr/bin", "/app", "app"])),
        ("exclude", 0.3, texts(&["*.log", "**/tmp", "["])),
        ("files", 0.4, table_array(file_table())),
        (
            "owner",
            0.3,
            text(&["0:0", "preserve", "1000:1000", "root"]),
        ),
        ("permissions", 0.3, text(&["normalize", "preserve"])),
        ("remove", 0.2, texts(&["/tmp/x", "/etc/*", "relative"])),
    ])
}

fn config_table() -> BoxedStrategy<Value> {
    let words = &["/app", "--flag", "sh", ""];
    table(vec![
        ("entrypoint", 0.3, texts(words)),
        ("cmd", 0.3, texts(words)),
        (
            "env",
            0.3,
            text_map(&["PATH", "A", "", "A=B"], &["/usr/bin", "x"]),
        ),
        ("user", 0.3, text(&["1000:1000", "root", "app"])),
        ("workdir", 0.3, text(&["/app", "relative"])),
        (
            "ports",
            0.3,
            texts(&["80/tcp", "8080", "53/udp", "65536", "x/tcp"]),
        ),
        ("volumes", 0.3, texts(&["/data", "relative"])),
        (
            "labels",
            0.3,
            text_map(&["org.opencontainers.image.title", "a"], &["x", ""]),
        ),
        (
            "annotations",
            0.3,
            text_map(&["org.opencontainers.image.ref.name", "a"], &["x"]),
        ),
        ("stop-signal", 0.3, text(&["SIGTERM", "9", "SIGNOPE"])),
    ])
}

fn tags_value() -> BoxedStrategy<Value> {
    let templates = &[
        "v1",
        "sha-{short_sha}",
        "{branch}",
        "{version}",
        "{nope}",
        "{{",
        "UPPER",
    ];
    let strategy = table(vec![
        ("sha", 0.3, boolean()),
        (
            "sha-length",
            0.3,
            (-2i64..80).prop_map(Value::Integer).boxed(),
        ),
        ("branch", 0.3, boolean()),
        ("pr", 0.3, boolean()),
        (
            "semver",
            0.3,
            texts(&["{version}", "{major}.{minor}", "{sha}"]),
        ),
        (
            "date",
            0.3,
            text(&["%Y%m%d", "%Q", "%", "%-", "%.3f", "%Y-%m-%dT%H"]),
        ),
        (
            "latest",
            0.3,
            prop_oneof![boolean(), text(&["release", "default-branch", "never"])].boxed(),
        ),
        ("raw", 0.3, texts(templates)),
    ]);
    prop_oneof![texts(templates), strategy].boxed()
}

fn image_table() -> BoxedStrategy<Value> {
    let epoch = prop_oneof![0i64..253_402_300_800, any::<i64>()].prop_map(Value::Integer);
    let provenance = prop_oneof![boolean(), text(&["max", "min"])];
    let level = prop_oneof![4 => 1i64..10, 1 => -10i64..40].prop_map(Value::Integer);
    let platforms = prop::collection::vec(
        text(&["linux/amd64", "linux/arm64/v8", "linux/arm/v7", "linux"]),
        1..3,
    )
    .prop_map(Value::Array);
    table(vec![
        ("name", 0.97, text(&["app", "web", "api", "base"])),
        (
            "base",
            0.3,
            text(&[
                "scratch",
                "oci:base",
                "docker://localhost:5000/base:1",
                "debian:bookworm",
            ]),
        ),
        ("platforms", 0.5, platforms.boxed()),
        ("compression", 0.3, text(&["gzip", "zstd", "none", "lz4"])),
        ("compression-level", 0.3, level.boxed()),
        ("source-date-epoch", 0.3, epoch.boxed()),
        (
            "repository",
            0.3,
            text(&["localhost:5000/app", "ghcr.io/o/app", "UPPER/case"]),
        ),
        ("tags", 0.3, tags_value()),
        ("sbom", 0.3, boolean()),
        ("provenance", 0.3, provenance.boxed()),
        ("skip-unchanged", 0.2, boolean()),
        ("config", 0.4, config_table()),
        ("layer", 0.9, table_array(layer_table())),
    ])
}

/// A whole spec as TOML text, or nothing when the TOML writer refuses the
/// value (a table key it cannot place).
fn spec_text() -> impl Strategy<Value = String> {
    let output = text(&[
        "oci:out",
        "oci-archive:out.tar",
        "docker://localhost:5000/app",
        "out",
    ]);
    let images = prop::collection::vec(image_table(), 1..3);
    (prop::option::weighted(0.2, output), images).prop_filter_map(
        "the TOML writer refused the table",
        |(output, images)| {
            let mut root = toml::Table::new();
            if let Some(output) = output {
                root.insert("output".to_string(), output);
            }
            root.insert("image".to_string(), Value::Array(images));
            toml::to_string(&root).ok()
        },
    )
}

/// `SOURCE_DATE_EPOCH` as the environment might hold it; mostly a valid one,
/// so resolution goes past it (and never asks git for a commit time).
fn environment_epoch() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        8 => Just(Some("0".to_string())),
        1 => "[0-9 -]{0,14}".prop_map(Some),
        1 => "\\PC{0,8}".prop_map(Some),
    ]
}

/// A spec directory with the sources the generated specs name, since
/// resolution checks that they exist; made once, as resolution only reads it.
fn spec_directory() -> &'static Path {
    static DIRECTORY: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIRECTORY.get_or_init(make_spec_directory).path()
}

fn make_spec_directory() -> tempfile::TempDir {
    let directory = tempfile::tempdir().expect("a temporary directory");
    for path in [
        "rootfs/amd64/etc",
        "rootfs/arm64/etc",
        "rootfs/arm/etc",
        "bin",
        "amd64",
    ] {
        std::fs::create_dir_all(directory.path().join(path)).expect("creating a source directory");
    }
    for path in ["bin/app", "amd64/app"] {
        std::fs::write(directory.path().join(path), b"app").expect("writing a source file");
    }
    directory
}

fn parse(directory: &Path, text: &str, epoch: Option<String>) -> bool {
    let options = PlanOptions {
        source_date_epoch: epoch,
        ..PlanOptions::default()
    };
    let Ok(plan) = Plan::parse(&directory.join("hoist.toml"), text, &options) else {
        return false;
    };
    for image in &plan.images {
        for platform in &image.platforms {
            let _ = image.recipes(platform);
        }
    }
    true
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn spec_parser_takes_any_text(text in "\\PC{0,300}", epoch in environment_epoch()) {
        parse(spec_directory(), &text, epoch);
    }

    #[test]
    fn spec_parser_takes_any_spec_shaped_toml(text in spec_text(), epoch in environment_epoch()) {
        parse(spec_directory(), &text, epoch);
    }

    /// A spec cut short or with junk spliced in: spans of errors may then
    /// fall anywhere in the text, multi-byte characters included.
    #[test]
    fn spec_parser_takes_damaged_specs(
        text in spec_text(),
        cut in any::<prop::sample::Index>(),
        junk in "[\\PC\n\"'\\[\\]={}é]{0,6}",
    ) {
        let boundaries: Vec<usize> =
            text.char_indices().map(|(offset, _)| offset).chain([text.len()]).collect();
        let at = boundaries[cut.index(boundaries.len())];
        let damaged = format!("{}{junk}{}", &text[..at], &text[at..]);
        parse(spec_directory(), &damaged, Some("0".to_string()));
    }

    #[test]
    fn reference_parser_takes_any_text(text in "\\PC{0,120}") {
        let _ = text.parse::<Reference>();
    }

    /// References made of the characters that matter to the grammar; what
    /// parses prints back as a reference that parses to itself.
    #[test]
    fn parsed_references_print_back_to_themselves(
        scheme in prop::option::of(Just("docker://")),
        name in "[a-zA-Z0-9:/@._\\-\\[\\]]{0,60}",
        digest in prop::option::of("sha256:[0-9a-f]{64}"),
    ) {
        let text = format!(
            "{}{name}{}",
            scheme.unwrap_or_default(),
            digest.map(|digest| format!("@{digest}")).unwrap_or_default()
        );
        if let Ok(reference) = text.parse::<Reference>() {
            let printed = reference.to_string();
            let again = printed.parse::<Reference>();
            prop_assert!(again.is_ok(), "`{}` printed as `{}`, which does not parse: {:?}", text, printed, again);
            prop_assert_eq!(again.ok(), Some(reference));
        }
    }
}

/// The generated specs are worth their time only if some of them get past
/// TOML and serde into resolution and come out as plans.
#[test]
fn spec_shaped_toml_often_resolves() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = spec_text();
    let resolved = (0..200)
        .filter(|_| {
            let text = strategy.new_tree(&mut runner).expect("a spec").current();
            parse(spec_directory(), &text, Some("0".to_string()))
        })
        .count();
    assert!(
        resolved >= 10,
        "only {resolved} of 200 generated specs resolved"
    );
}
