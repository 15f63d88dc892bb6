//! `hoist build` refuses bad input clearly: exit code 1 (2 for usage), a
//! message on stderr starting `error: ` that names the file, line, path or
//! reference at fault, and no partial output: an existing layout stays byte
//! for byte as it was, and no temp or new files appear anywhere.
use crate::common;

use crate::common::hoist::{HoistOutput, copy_tree, fixture, hoist};
use crate::common::tree::{assert_unchanged, snapshot};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::process::Command;

/// A work directory holding a copy of fixtures/hello (`spec/`), an existing
/// layout made by umoci (`out/`, tag `previous`) and an empty TMPDIR.
struct Scene {
    _temp: tempfile::TempDir,
    root: PathBuf,
}

impl Scene {
    fn new() -> Scene {
        let temp = tempfile::tempdir().expect("temp dir");
        let root = temp.path().to_path_buf();
        copy_tree(&fixture("hello"), &root.join("spec"));
        fs::create_dir(root.join("tmp")).unwrap();
        let out = root.join("out");
        common::run(Command::new("umoci").arg("init").arg("--layout").arg(&out));
        common::run(
            Command::new("umoci")
                .arg("new")
                .arg("--image")
                .arg(format!("{}:previous", out.display())),
        );
        Scene { _temp: temp, root }
    }

    fn spec_dir(&self) -> PathBuf {
        self.root.join("spec")
    }

    fn spec_path(&self) -> PathBuf {
        self.spec_dir().join("hoist.toml")
    }

    fn spec(&self) -> String {
        fs::read_to_string(self.spec_path()).unwrap()
    }

    fn write_spec(&self, text: &str) {
        fs::write(self.spec_path(), text).unwrap();
    }

    fn replace(&self, from: &str, to: &str) {
        let spec = self.spec();
        assert!(spec.contains(from), "hoist.toml has no {from:?}");
        self.write_spec(&spec.replacen(from, to, 1));
    }

    /// Runs `hoist build -f spec/hoist.toml -o oci:out ARGS` with `environment`,
    /// asserting it fails with `code` and leaves every file as it was.
    fn fails(&self, code: i32, args: &[&str], environment: &[(&str, &str)]) -> HoistOutput {
        let output_location = format!("oci:{}", self.root.join("out").display());
        let mut full: Vec<&str> = vec!["-o", &output_location];
        full.extend_from_slice(args);
        self.fails_with(code, &full, environment)
    }

    /// As `fails`, with the caller's `-o`.
    fn fails_with(&self, code: i32, args: &[&str], environment: &[(&str, &str)]) -> HoistOutput {
        let before = snapshot(&self.root);
        let mut command = hoist(["build", "-f"])
            .arg(self.spec_path())
            .args(args)
            .current_dir(&self.root)
            .env("TMPDIR", self.root.join("tmp"));
        for (key, value) in environment {
            command = command.env(key, value);
        }
        let output = command.run().failure(code);
        assert_unchanged(&self.root, &before);
        output
    }
}

/// The 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the spec"))
        + 1
}

/// stderr names a line: `line N` or `:N:` (toml's and rustc's styles).
fn mentions_line(stderr: &str, line: usize) -> bool {
    stderr.contains(&format!("line {line}")) || stderr.contains(&format!(":{line}:"))
}

#[test]
fn missing_source() {
    let scene = Scene::new();
    scene.replace(
        "source = \"app/message.txt\"",
        "source = \"app/no-such-file.txt\"",
    );
    scene
        .fails(1, &[], &[])
        .stderr_mentions(&["app/no-such-file.txt"]);
    let scene = Scene::new();
    scene.replace(
        "source = \"rootfs/{arch}\"",
        "source = \"rootfs-missing/{arch}\"",
    );
    scene
        .fails(1, &[], &[])
        .stderr_mentions(&["rootfs-missing"]);
}

#[test]
fn unreadable_source() {
    // Root reads any file whatever its mode, so the sources here cannot be
    // opened for other reasons: a path through a symlink loop (ELOOP) and a
    // path through a regular file (ENOTDIR).
    let scene = Scene::new();
    symlink("loop", scene.spec_dir().join("loop")).unwrap();
    scene.replace("source = \"rootfs/{arch}\"", "source = \"loop/rootfs\"");
    scene.fails(1, &[], &[]).stderr_mentions(&["loop/rootfs"]);

    let scene = Scene::new();
    scene.replace(
        "source = \"app/message.txt\"",
        "source = \"app/message.txt/inner\"",
    );
    scene
        .fails(1, &[], &[])
        .stderr_mentions(&["app/message.txt/inner"]);
}

#[test]
fn target_must_be_absolute_and_normal() {
    let scene = Scene::new();
    scene.replace("target = \"/app/start.sh\"", "target = \"app/start.sh\"");
    let line = line_of(&scene.spec(), "target = \"app/start.sh\"");
    let output = scene.fails(1, &[], &[]).stderr_mentions(&["app/start.sh"]);
    assert!(
        mentions_line(&output.stderr, line) || output.stderr.contains("absolute"),
        "the error says where or why:\n{}",
        output.stderr
    );

    let scene = Scene::new();
    scene.replace(
        "target = \"/app/start.sh\"",
        "target = \"/app/../etc/start.sh\"",
    );
    scene
        .fails(1, &[], &[])
        .stderr_mentions(&["/app/../etc/start.sh"]);
}

#[test]
fn unknown_platform() {
    let scene = Scene::new();
    scene.replace("\"linux/arm64\"", "\"linux/notanarch\"");
    scene
        .fails(1, &[], &[])
        .stderr_mentions(&["linux/notanarch"]);
    let scene = Scene::new();
    scene
        .fails(1, &["--platform", "plan10/amd64"], &[])
        .stderr_mentions(&["plan10/amd64"]);
}

#[test]
fn unknown_compression() {
    let scene = Scene::new();
    scene.replace("compression = \"gzip\"", "compression = \"brotli\"");
    let line = line_of(&scene.spec(), "brotli");
    let output = scene.fails(1, &[], &[]).stderr_mentions(&["brotli"]);
    assert!(
        mentions_line(&output.stderr, line),
        "no line {line}:\n{}",
        output.stderr
    );
}

#[test]
fn duplicate_image_name() {
    let scene = Scene::new();
    let spec = scene.spec();
    let second = "\n[[image]]\nname = \"hello\"\nplatforms = [\"linux/amd64\"]\n\n\
                  [[image.layer]]\nsource = \"app\"\ntarget = \"/app\"\n";
    scene.write_spec(&format!("{spec}{second}"));
    let output = scene.fails(1, &[], &[]).stderr_mentions(&["hello"]);
    let stderr = output.stderr.to_lowercase();
    assert!(
        ["duplicate", "twice", "more than once", "already"]
            .iter()
            .any(|word| stderr.contains(word)),
        "the error says the name is used twice:\n{}",
        output.stderr
    );
}

#[test]
fn unknown_key_names_line_and_column() {
    let scene = Scene::new();
    scene.replace(
        "workdir = \"/app\"",
        "workdir = \"/app\"\n  colour = \"blue\"",
    );
    let line = line_of(&scene.spec(), "colour");
    let output = scene.fails(1, &[], &[]).stderr_mentions(&["colour"]);
    assert!(
        mentions_line(&output.stderr, line),
        "no line {line}:\n{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("column 3") || output.stderr.contains(&format!(":{line}:3")),
        "no column 3:\n{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("hoist.toml"),
        "names the file:\n{}",
        output.stderr
    );
}

#[test]
fn output_that_is_not_a_layout() {
    let scene = Scene::new();
    let not_layout = scene.root.join("documents");
    fs::create_dir(&not_layout).unwrap();
    fs::write(not_layout.join("notes.txt"), "mine\n").unwrap();
    let location = format!("oci:{}", not_layout.display());
    scene
        .fails_with(1, &["-o", &location], &[])
        .stderr_mentions(&["documents"]);

    let file = scene.root.join("plain-file");
    fs::write(&file, "not a directory\n").unwrap();
    let location = format!("oci:{}", file.display());
    scene
        .fails_with(1, &["-o", &location], &[])
        .stderr_mentions(&["plain-file"]);
}

#[test]
fn malformed_source_date_epoch() {
    let scene = Scene::new();
    for value in ["yesterday", "-5", "1.5"] {
        scene
            .fails(1, &[], &[("SOURCE_DATE_EPOCH", value)])
            .stderr_mentions(&["SOURCE_DATE_EPOCH"]);
    }
}

#[test]
fn base_layout_without_the_tag_lists_its_tags() {
    let scene = Scene::new();
    let base = scene.root.join("base");
    common::run(Command::new("umoci").arg("init").arg("--layout").arg(&base));
    for tag in ["one", "two"] {
        common::run(
            Command::new("umoci")
                .arg("new")
                .arg("--image")
                .arg(format!("{}:{tag}", base.display())),
        );
    }
    let spec = scene.spec();
    scene.write_spec(&spec.replacen(
        "name = \"hello\"\n",
        &format!(
            "name = \"hello\"\nbase = \"oci:{}:missing\"\n",
            base.display()
        ),
        1,
    ));
    scene
        .fails(1, &[], &[])
        .stderr_mentions(&["missing", "one", "two"]);
}

#[test]
fn usage_errors_exit_with_2() {
    let scene = Scene::new();
    scene.fails(2, &["--no-such-flag"], &[]);
    scene.fails(2, &["--jobs", "many"], &[]);
}

#[test]
fn missing_spec_file() {
    let scene = Scene::new();
    let before = snapshot(&scene.root);
    hoist(["build", "-f", "nowhere/hoist.toml"])
        .current_dir(&scene.root)
        .env("TMPDIR", scene.root.join("tmp"))
        .run()
        .failure(1)
        .stderr_mentions(&["nowhere/hoist.toml"]);
    assert_unchanged(&scene.root, &before);
}

/// The scene's own check: a build that succeeds does change `out/`, so the
/// "unchanged" assertions above could fail.
#[test]
fn a_successful_build_changes_the_layout() {
    let scene = Scene::new();
    let before = snapshot(&scene.root);
    hoist(["build", "-f"])
        .arg(scene.spec_path())
        .arg("-o")
        .arg(format!("oci:{}", scene.root.join("out").display()))
        .current_dir(&scene.root)
        .env("TMPDIR", scene.root.join("tmp"))
        .run()
        .success();
    assert_ne!(snapshot(&scene.root), before);
    let layout = common::hoist::Layout::open(scene.root.join("out"));
    let mut tags = layout.tags();
    tags.sort();
    assert_eq!(
        tags,
        ["hello", "previous"],
        "the old tag stays beside the new one"
    );
    assert!(
        fs::read_dir(scene.root.join("tmp"))
            .unwrap()
            .next()
            .is_none()
    );
}
