use super::*;

struct Fixture {
    directory: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let directory = tempfile::tempdir().unwrap();
        for arch in ["amd64", "arm64"] {
            std::fs::create_dir_all(directory.path().join(format!("rootfs/{arch}/etc"))).unwrap();
        }
        std::fs::create_dir_all(directory.path().join("app/config")).unwrap();
        std::fs::write(directory.path().join("app/run.sh"), "#!/bin/sh\n").unwrap();
        Fixture { directory }
    }

    fn parse(&self, text: &str) -> Result<Plan, SpecError> {
        self.parse_with(
            text,
            &PlanOptions {
                source_date_epoch: None,
                ..Default::default()
            },
        )
    }

    fn parse_with(&self, text: &str, options: &PlanOptions) -> Result<Plan, SpecError> {
        Plan::parse(&self.directory.path().join("hoist.toml"), text, options)
    }

    fn error(&self, text: &str) -> String {
        self.parse(text).unwrap_err().to_string()
    }
}

const EXAMPLE: &str = r#"
[[image]]
name = "hello"
base = "scratch"
platforms = ["linux/amd64", "linux/arm64"]
compression = "gzip"
compression-level = 6
source-date-epoch = 1700000000

[image.config]
entrypoint = ["/app/run"]
cmd = ["--help"]
env = { LANG = "C.UTF-8", APP_MODE = "prod" }
user = "65532:65532"
workdir = "/app"
ports = ["8080/tcp", "53/udp", "9090"]
volumes = ["/data"]
labels = { "org.opencontainers.image.title" = "hello" }
annotations = { "org.opencontainers.image.vendor" = "acme" }
stop-signal = "SIGTERM"

[[image.layer]]
name = "rootfs"
source = "rootfs/{arch}"
target = "/"
exclude = ["**/__pycache__", "var/cache/**"]

[[image.layer]]
name = "app"
files = [
  { source = "app/run.sh", target = "/app/run", mode = "0755" },
  { source = "app/config", target = "/app/config" },
]
owner = "0:0"
remove = ["/etc/motd"]
"#;

#[test]
fn resolves_the_documented_example() {
    let fixture = Fixture::new();
    let plan = fixture.parse(EXAMPLE).unwrap();
    let image = &plan.images[0];
    assert_eq!(image.name, "hello");
    assert_eq!(image.base, BaseImage::Scratch);
    assert_eq!(image.platforms.len(), 2);
    assert_eq!(image.compression, Compression::Gzip { level: 6 });
    assert_eq!(image.epoch, 1_700_000_000);
    assert_eq!(
        image.config.ports.iter().cloned().collect::<Vec<_>>(),
        ["53/udp", "8080/tcp", "9090/tcp"]
    );
    let recipes = image.recipes(&"linux/arm64".parse().unwrap());
    assert_eq!(recipes.len(), 2);
    assert!(recipes[0].inputs[0].source.ends_with("rootfs/arm64"));
    assert!(recipes[0].inputs[0].source.is_absolute());
    assert_eq!(recipes[1].inputs[0].mode, Some(0o755));
    assert_eq!(recipes[1].inputs[0].target, "/app/run");
    assert_eq!(recipes[1].remove, ["/etc/motd"]);
    assert_eq!(recipes[1].owner, OwnerPolicy::Fixed { uid: 0, gid: 0 });
    // No `owner`: the running user's files become root's, others keep theirs.
    assert_eq!(recipes[0].owner, OwnerPolicy::running_user_as_root());
}

#[test]
fn unknown_key_names_line_and_column() {
    let fixture = Fixture::new();
    let message = fixture.error("[[image]]\nname = \"a\"\ncompresion = \"gzip\"\n");
    assert!(message.contains("hoist.toml:3:1"), "{message}");
    assert!(message.contains("compresion"), "{message}");
}

#[test]
fn value_errors_point_at_the_value() {
    let fixture = Fixture::new();
    let message = fixture.error("[[image]]\nname = \"a\"\nplatforms = [\"linux/amd64\", \"linux/sparc\"]\n[[image.layer]]\nsource = \"app\"\n");
    assert!(message.contains("hoist.toml:3:29"), "{message}");
    assert!(
        message.contains("unknown architecture `sparc`"),
        "{message}"
    );

    let message = fixture.error(
        "[[image]]\nname = \"a\"\ncompression = \"brotli\"\n[[image.layer]]\nsource = \"app\"\n",
    );
    assert!(
        message.contains(":3:15") && message.contains("gzip, zstd or none"),
        "{message}"
    );
}

#[test]
fn missing_source_names_the_path_and_platform() {
    let fixture = Fixture::new();
    let message = fixture.error(
        "[[image]]\nname = \"a\"\nplatforms = [\"linux/amd64\", \"linux/s390x\"]\n[[image.layer]]\nsource = \"rootfs/{arch}\"\n",
    );
    assert!(
        message.contains("rootfs/s390x (for linux/s390x)"),
        "{message}"
    );
    assert!(message.contains(":5:10"), "{message}");
}

#[test]
fn targets_must_be_absolute_without_parent_components() {
    let fixture = Fixture::new();
    let relative = fixture
        .error("[[image]]\nname = \"a\"\n[[image.layer]]\nsource = \"app\"\ntarget = \"app\"\n");
    assert!(relative.contains("must be an absolute path"), "{relative}");
    let parent = fixture.error(
        "[[image]]\nname = \"a\"\n[[image.layer]]\nsource = \"app\"\ntarget = \"/a/../etc\"\n",
    );
    assert!(parent.contains("must not contain `..`"), "{parent}");
    let plan = fixture.parse("[[image]]\nname = \"a\"\n[[image.layer]]\nsource = \"app\"\ntarget = \"//opt/./app/\"\n").unwrap();
    assert_eq!(plan.images[0].layers[0].inputs[0].target, "/opt/app");
}

#[test]
fn duplicate_names_and_unknown_placeholders_are_rejected() {
    let fixture = Fixture::new();
    let layer = "[[image.layer]]\nsource = \"app\"\n";
    let message = fixture.error(&format!(
        "[[image]]\nname = \"a\"\n{layer}[[image]]\nname = \"a\"\n{layer}"
    ));
    assert!(
        message.contains(":6:8") && message.contains("already named `a`"),
        "{message}"
    );
    let message =
        fixture.error("[[image]]\nname = \"a\"\n[[image.layer]]\nsource = \"rootfs/{cpu}\"\n");
    assert!(message.contains("unknown placeholder `{cpu}`"), "{message}");
}

#[test]
fn epoch_precedence_and_malformed_environment() {
    let fixture = Fixture::new();
    let spec =
        "[[image]]\nname = \"a\"\nsource-date-epoch = 5\n[[image.layer]]\nsource = \"app\"\n";
    assert_eq!(fixture.parse(spec).unwrap().images[0].epoch, 5);
    let options = PlanOptions {
        source_date_epoch: Some("42".into()),
        ..Default::default()
    };
    assert_eq!(
        fixture.parse_with(spec, &options).unwrap().images[0].epoch,
        42
    );
    let options = PlanOptions {
        source_date_epoch: Some("yesterday".into()),
        ..Default::default()
    };
    let message = fixture.parse_with(spec, &options).unwrap_err().to_string();
    assert!(
        message.contains("SOURCE_DATE_EPOCH is `yesterday`"),
        "{message}"
    );
    // Not in a git repository and no epoch anywhere: 0.
    let spec = "[[image]]\nname = \"a\"\n[[image.layer]]\nsource = \"app\"\n";
    assert_eq!(fixture.parse(spec).unwrap().images[0].epoch, 0);
}

#[test]
fn epochs_past_what_rfc3339_can_write_are_refused() {
    let fixture = Fixture::new();
    let spec = "[[image]]\nname = \"a\"\n[[image.layer]]\nsource = \"app\"\n";
    let options = PlanOptions {
        source_date_epoch: Some("253402300800".into()),
        ..Default::default()
    };
    let message = fixture.parse_with(spec, &options).unwrap_err().to_string();
    assert!(
        message.contains("SOURCE_DATE_EPOCH is `253402300800`: that is after 9999-12-31T23:59:59Z"),
        "{message}"
    );
    let options = PlanOptions {
        source_date_epoch: Some("253402300799".into()),
        ..Default::default()
    };
    assert_eq!(
        fixture.parse_with(spec, &options).unwrap().images[0].epoch,
        253_402_300_799
    );

    let spec = "[[image]]\nname = \"a\"\nsource-date-epoch = 99999999999999\n\
                [[image.layer]]\nsource = \"app\"\n";
    let message = fixture.parse(spec).unwrap_err().to_string();
    assert!(message.contains("hoist.toml:3:"), "{message}");
    assert!(message.contains("`source-date-epoch`"), "{message}");
    assert!(message.contains("9999-12-31T23:59:59Z"), "{message}");
}

#[test]
fn filters_select_images_and_platforms() {
    let fixture = Fixture::new();
    let options = PlanOptions {
        platforms: vec!["linux/arm64".parse().unwrap()],
        ..Default::default()
    };
    let plan = fixture.parse_with(EXAMPLE, &options).unwrap();
    assert_eq!(
        plan.images[0].platforms,
        vec!["linux/arm64".parse::<Platform>().unwrap()]
    );
    let options = PlanOptions {
        platforms: vec!["linux/riscv64".parse().unwrap()],
        ..Default::default()
    };
    let message = fixture
        .parse_with(EXAMPLE, &options)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("no platform linux/riscv64")
            && message.contains("linux/amd64, linux/arm64"),
        "{message}"
    );
    let options = PlanOptions {
        images: vec!["other".into()],
        ..Default::default()
    };
    let message = fixture
        .parse_with(EXAMPLE, &options)
        .unwrap_err()
        .to_string();
    assert!(message.contains("no image is named `other`"), "{message}");
}

#[test]
fn owner_permissions_and_modes_are_checked() {
    let fixture = Fixture::new();
    let spec = |extra: &str| {
        format!("[[image]]\nname = \"a\"\n[[image.layer]]\nsource = \"app\"\n{extra}\n")
    };
    let plan = fixture
        .parse(&spec("owner = \"preserve\"\npermissions = \"preserve\""))
        .unwrap();
    assert_eq!(plan.images[0].layers[0].owner, OwnerPolicy::Preserve);
    assert_eq!(plan.images[0].layers[0].permissions, Permissions::Preserve);
    assert!(fixture.error(&spec("owner = \"root\"")).contains("UID:GID"));
    assert!(
        fixture
            .error(&spec("permissions = \"loose\""))
            .contains("normalize")
    );
    let files = "[[image]]\nname = \"a\"\n[[image.layer]]\nfiles = [{ source = \"app/run.sh\", target = \"/run\", mode = \"9\" }]\n";
    assert!(fixture.error(files).contains("not a file mode"));
}

#[test]
fn tags_are_checked_when_the_spec_is_read() {
    let fixture = Fixture::new();
    let spec = |tags: &str| {
        format!(
            "[[image]]\nname = \"web\"\nsource-date-epoch = 0\n{tags}\n[[image.layer]]\nsource = \"app\"\ntarget = \"/app\"\n"
        )
    };
    let error = fixture.error(&spec("tags = [\"stable-{shortsha}\"]"));
    assert!(error.contains("hoist.toml:4:8: `tags`"), "{error}");
    assert!(error.contains("shortsha"), "{error}");
    let error = fixture.error(&spec("[image.tags]\nbranchs = true"));
    assert!(error.contains("hoist.toml:4:1: `tags`"), "{error}");
    assert!(error.contains("branchs"), "{error}");
    let error = fixture.error(&spec("tags = { date = \"%Q\" }"));
    assert!(error.contains("`tags`"), "{error}");
    let error = fixture.error(&spec("tags = 3"));
    assert!(error.contains("hoist.toml:4:8"), "{error}");
    let plan = fixture
        .parse(&spec("skip-unchanged = true\ntags = [\"v1\"]"))
        .unwrap();
    assert_eq!(
        plan.images[0].tags,
        Some(crate::ci::TagSpec::List(vec!["v1".to_string()]))
    );
    assert!(plan.images[0].skip_unchanged);
}

#[test]
fn each_image_keeps_its_own_section_of_the_spec() {
    let fixture = Fixture::new();
    let layer = "[[image.layer]]\nsource = \"app\"\ntarget = \"/app\"\n";
    let text = format!(
        "[[image]]\nname = \"one\"\n{layer}\n[[image]]\nname = \"two\"\n[image.config]\ncmd = [\"x\"]\n{layer}"
    );
    let plan = fixture.parse(&text).unwrap();
    let (one, two) = (&plan.images[0].section, &plan.images[1].section);
    assert!(
        one.contains("\"one\"") && !one.contains("\"two\""),
        "{one:?}"
    );
    assert!(two.contains("\"two\"") && two.contains("cmd"), "{two:?}");
    assert!(!two.contains("\"one\""), "{two:?}");
}
