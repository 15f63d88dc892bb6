//! `[defaults]`: what an image takes, what it overrides, what is refused,
//! and how the defaults it uses reach its section (and so its inputs digest).

use super::*;

fn parse(text: &str) -> Result<Plan, SpecError> {
    let directory = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(directory.path().join("app")).unwrap();
    Plan::parse(
        &directory.path().join("hoist.toml"),
        text,
        &PlanOptions::default(),
    )
}

const LAYER: &str = "[[image.layer]]\nsource = \"app\"\n";

const DEFAULTS: &str = r#"
[defaults]
platforms = ["linux/amd64", "linux/arm64"]
compression = "zstd"
sbom = true
tags = ["latest", "{sha}"]

[defaults.config]
user = "65532:65532"
cmd = ["serve"]
env = { LANG = "C.UTF-8", MODE = "prod" }
labels = { "org.opencontainers.image.vendor" = "acme", team = "core" }
annotations = { tier = "backend" }
"#;

#[test]
fn images_take_the_defaults_they_do_not_set() {
    let text = format!(
        "{DEFAULTS}\n[[image]]\nname = \"plain\"\n{LAYER}\n[[image]]\nname = \"own\"\nplatforms = [\"linux/arm64\"]\nsbom = false\n[image.config]\nenv = {{ MODE = \"debug\", EXTRA = \"1\" }}\nlabels = {{ team = \"edge\" }}\n{LAYER}"
    );
    let plan = parse(&text).unwrap();
    let (plain, own) = (&plan.images[0], &plan.images[1]);

    assert_eq!(plain.platforms.len(), 2);
    assert!(plain.sbom);
    assert!(matches!(plain.compression, Compression::Zstd { .. }));
    assert_eq!(plain.config.user.as_deref(), Some("65532:65532"));
    assert_eq!(plain.config.env["MODE"], "prod");
    assert_eq!(plain.config.annotations["tier"], "backend");
    assert!(plain.tags.is_some());

    // Whole keys are replaced...
    assert_eq!(own.platforms, vec![Platform::new("linux", "arm64", None)]);
    assert!(!own.sbom);
    assert!(matches!(own.compression, Compression::Zstd { .. }));
    assert_eq!(own.config.cmd.as_deref(), Some(&["serve".to_string()][..]));
    // ...maps merge key by key, the image's entry winning.
    let env: Vec<(&str, &str)> = own
        .config
        .env
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    assert_eq!(
        env,
        [("EXTRA", "1"), ("LANG", "C.UTF-8"), ("MODE", "debug")]
    );
    assert_eq!(own.config.labels["team"], "edge");
    assert_eq!(own.config.labels["org.opencontainers.image.vendor"], "acme");
}

#[test]
fn the_defaults_an_image_uses_are_in_its_section() {
    let spec = |defaults: &str| {
        format!(
            "[defaults]\n{defaults}\n[[image]]\nname = \"a\"\nplatforms = [\"linux/arm64\"]\n{LAYER}\n[[image]]\nname = \"b\"\n{LAYER}"
        )
    };
    let first = parse(&spec("platforms = [\"linux/amd64\"]")).unwrap();
    let second = parse(&spec("platforms = [\"linux/arm64\"]")).unwrap();
    // `a` overrides the changed default: its section is the same text.
    assert_eq!(first.images[0].section, second.images[0].section);
    assert!(!first.images[0].section.contains("[defaults"));
    // `b` uses it: its section changes with it.
    assert_ne!(first.images[1].section, second.images[1].section);
    assert!(
        first.images[1]
            .section
            .contains(r#""platforms":["linux/amd64"]"#),
        "values only, no positions: {}",
        first.images[1].section
    );
    // Moving the defaults (a comment above them) changes nothing it uses.
    let moved = parse(&format!(
        "# moved\n{}",
        spec("platforms = [\"linux/amd64\"]")
    ))
    .unwrap();
    assert_eq!(moved.images[1].section, first.images[1].section);

    // Without [defaults] a section is the image's own text, as before.
    let plain = parse(&format!("[[image]]\nname = \"a\"\n{LAYER}")).unwrap();
    assert_eq!(
        plain.images[0].section,
        format!("[[image]]\nname = \"a\"\n{LAYER}")
    );
}

#[test]
fn a_defaults_table_after_the_images_is_not_in_their_sections() {
    let text = format!(
        "[[image]]\nname = \"a\"\nsbom = false\n{LAYER}\n[defaults]\nsbom = true\n[defaults.config]\nuser = \"1:1\"\n"
    );
    let plan = parse(&text).unwrap();
    let section = &plan.images[0].section;
    assert!(section.starts_with("[[image]]"), "{section}");
    assert!(!section.contains("[defaults]\n"), "{section}");
    // It took only `user` from the defaults.
    assert!(
        section.contains("1:1") && !section.contains("\"sbom\":true"),
        "{section}"
    );
}

#[test]
fn errors_in_defaults_point_into_the_defaults_table() {
    let message = parse(&format!(
        "[defaults]\nplatforms = [\"linux/sparc\"]\n\n[[image]]\nname = \"a\"\n{LAYER}"
    ))
    .unwrap_err()
    .to_string();
    assert!(message.contains("hoist.toml:2:14"), "{message}");
    assert!(message.contains("sparc"), "{message}");

    let message = parse(&format!(
        "[defaults]\nlayers = 1\n[[image]]\nname = \"a\"\n{LAYER}"
    ))
    .unwrap_err()
    .to_string();
    assert!(message.contains("hoist.toml:2:1"), "{message}");
}

#[test]
fn name_layers_and_repository_are_refused_in_defaults() {
    for (key, value) in [("name", "\"x\""), ("repository", "\"ghcr.io/acme/app\"")] {
        let message = parse(&format!(
            "[defaults]\n{key} = {value}\n[[image]]\nname = \"a\"\n{LAYER}"
        ))
        .unwrap_err()
        .to_string();
        assert!(message.contains("hoist.toml:2:"), "{message}");
        assert!(message.contains(&format!("`{key}`")), "{message}");
        assert!(message.contains("`[defaults]` cannot set it"), "{message}");
    }
    let message = parse(&format!(
        "[[defaults.layer]]\nsource = \"app\"\n[[image]]\nname = \"a\"\n{LAYER}"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("hoist.toml:1:") && message.contains("`layer`"),
        "{message}"
    );
}
