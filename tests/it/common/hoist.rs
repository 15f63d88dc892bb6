//! Runs the built `hoist` binary and reads what it wrote: the command's
//! output, OCI layouts (index.json, manifests, configs, blobs checked against
//! their digests) and, through skopeo and umoci, unpacked root filesystems.

use crate::common::tree::{Policy, Tree};
use flate2::read::MultiGzDecoder;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// A `hoist` invocation. The environment is cleared of what changes a
/// build's result (`SOURCE_DATE_EPOCH`, `HOIST_JOBS`) unless a test sets it.
pub struct Hoist {
    command: Command,
    stdin: Option<Vec<u8>>,
}

/// `hoist ARGS...` with a hermetic environment.
pub fn hoist<I, S>(args: I) -> Hoist
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_hoist"));
    command
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("HOIST_JOBS")
        // A test run on CI must neither take the CI's revision into labels
        // nor append to the CI's own output files.
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITLAB_CI")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("NO_COLOR", "1")
        .env("LC_ALL", "C");
    Hoist {
        command,
        stdin: None,
    }
}

/// `hoist ARGS` with a layer cache and credential stores of its own under `work`.
pub fn hoist_in<I, S>(work: &Path, args: I) -> Hoist
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    hoist(args)
        .env("HOIST_CACHE", work.join("cache"))
        .env("HOME", work)
        .env("DOCKER_CONFIG", work.join("docker"))
        .env("REGISTRY_AUTH_FILE", work.join("containers-auth.json"))
        .env("XDG_RUNTIME_DIR", work.join("run"))
        .env_remove("HOIST_CREDS")
        .env_remove("HOIST_PASSWORD")
}

impl Hoist {
    pub fn arg(mut self, argument: impl AsRef<OsStr>) -> Hoist {
        self.command.arg(argument);
        self
    }

    pub fn args<I, S>(mut self, arguments: I) -> Hoist
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(arguments);
        self
    }

    /// The same invocation of another hoist binary (a release build).
    pub fn program(self, program: &Path) -> Hoist {
        let mut command = Command::new(program);
        command.args(self.command.get_args());
        for (key, value) in self.command.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(directory) = self.command.get_current_dir() {
            command.current_dir(directory);
        }
        Hoist { command, ..self }
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Hoist {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Hoist {
        self.command.env_remove(key);
        self
    }

    pub fn current_dir(mut self, directory: impl AsRef<Path>) -> Hoist {
        self.command.current_dir(directory);
        self
    }

    /// Runs hoist as another user (the tests run as root), with no
    /// supplementary groups.
    pub fn run_as(mut self, uid: u32, gid: u32) -> Hoist {
        use std::os::unix::process::CommandExt as _;
        self.command.uid(uid).gid(gid);
        self
    }

    /// Feeds `bytes` to the command's standard input (else it reads nothing).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Hoist {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn run(mut self) -> HoistOutput {
        use std::io::Write as _;
        use std::process::Stdio;
        let description = format!("{:?}", self.command);
        let output = match self.stdin.take() {
            None => self.command.output(),
            Some(bytes) => self
                .command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    if let Some(mut input) = child.stdin.take() {
                        input.write_all(&bytes)?;
                    }
                    child.wait_with_output()
                }),
        }
        .unwrap_or_else(|error| panic!("running {description}: {error}"));
        HoistOutput {
            description,
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// What a `hoist` run printed and how it exited.
#[derive(Debug)]
pub struct HoistOutput {
    pub description: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// One `NAME PLATFORM sha256:... SIZE LAYERS layers` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageLine {
    pub name: String,
    pub platform: String,
    pub digest: String,
    pub size: u64,
    pub layers: usize,
}

impl HoistOutput {
    fn context(&self) -> String {
        format!(
            "{}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
            self.description, self.status, self.stdout, self.stderr
        )
    }

    /// Asserts exit code 0; returns self for chaining.
    pub fn success(self) -> HoistOutput {
        assert!(self.status.success(), "hoist failed:\n{}", self.context());
        self
    }

    /// Asserts the exit code and an `error: ` message on stderr.
    pub fn failure(self, code: i32) -> HoistOutput {
        assert_eq!(
            self.status.code(),
            Some(code),
            "expected exit code {code}:\n{}",
            self.context()
        );
        assert!(
            self.stderr.starts_with("error: "),
            "stderr must start with `error: `:\n{}",
            self.context()
        );
        self
    }

    /// Asserts stderr mentions every one of `needles`.
    pub fn stderr_mentions(self, needles: &[&str]) -> HoistOutput {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr does not mention {needle:?}:\n{}",
                self.context()
            );
        }
        self
    }

    pub fn lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .collect()
    }

    /// The last stdout line, which must be a digest alone.
    pub fn last_line_digest(&self) -> String {
        let last = self
            .lines()
            .last()
            .unwrap_or_else(|| panic!("no output:\n{}", self.context()))
            .trim()
            .to_string();
        assert!(
            is_digest(&last),
            "last line is not a digest:\n{}",
            self.context()
        );
        last
    }

    /// The per-image lines (all but the last).
    pub fn image_lines(&self) -> Vec<ImageLine> {
        let lines = self.lines();
        let (_, body) = lines
            .split_last()
            .unwrap_or_else(|| panic!("no output:\n{}", self.context()));
        body.iter()
            .map(|line| {
                parse_image_line(line)
                    .unwrap_or_else(|| panic!("malformed image line {line:?}:\n{}", self.context()))
            })
            .collect()
    }
}

fn parse_image_line(line: &str) -> Option<ImageLine> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.as_slice() {
        [name, platform, digest, size, layers, "layers"] if is_digest(digest) => Some(ImageLine {
            name: name.to_string(),
            platform: platform.to_string(),
            digest: digest.to_string(),
            size: size.parse().ok()?,
            layers: layers.parse().ok()?,
        }),
        _ => None,
    }
}

/// `sha256:` and 64 lowercase hex digits.
pub fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads a `--digest-file`, trimmed.
pub fn read_digest_file(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("reading digest file {}: {error}", path.display()))
        .trim()
        .to_string()
}

/// An OCI image layout on disk.
pub struct Layout {
    pub dir: PathBuf,
}

/// A blob reachable from a tag, with the descriptor that points at it.
#[derive(Clone, Debug)]
pub struct Node {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    /// `os/arch[/variant]` for manifests listed in an index with a platform.
    pub platform: Option<String>,
    pub path: PathBuf,
}

pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

impl Layout {
    /// Opens a layout, asserting `oci-layout` and `index.json` exist.
    pub fn open(dir: impl Into<PathBuf>) -> Layout {
        let dir = dir.into();
        for file in ["oci-layout", "index.json"] {
            assert!(
                dir.join(file).is_file(),
                "{} is not an OCI layout: no {file}",
                dir.display()
            );
        }
        Layout { dir }
    }

    pub fn index_json(&self) -> Value {
        read_json(&self.dir.join("index.json"))
    }

    /// Tags (`org.opencontainers.image.ref.name`) in index.json.
    pub fn tags(&self) -> Vec<String> {
        self.index_json()["manifests"]
            .as_array()
            .map(|manifests| {
                manifests
                    .iter()
                    .filter_map(|descriptor| {
                        descriptor["annotations"]["org.opencontainers.image.ref.name"]
                            .as_str()
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The index.json descriptor with this tag.
    pub fn tagged(&self, tag: &str) -> Value {
        let index = self.index_json();
        index["manifests"]
            .as_array()
            .and_then(|manifests| {
                manifests
                    .iter()
                    .find(|descriptor| {
                        descriptor["annotations"]["org.opencontainers.image.ref.name"] == tag
                    })
                    .cloned()
            })
            .unwrap_or_else(|| {
                panic!(
                    "{} has no tag {tag}; tags: {:?}",
                    self.dir.display(),
                    self.tags()
                )
            })
    }

    /// The digest index.json gives for a tag.
    pub fn tagged_digest(&self, tag: &str) -> String {
        self.tagged(tag)["digest"]
            .as_str()
            .unwrap_or_else(|| panic!("descriptor for {tag} has no digest"))
            .to_string()
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (algorithm, hex) = digest
            .split_once(':')
            .unwrap_or_else(|| panic!("malformed digest {digest}"));
        self.dir.join("blobs").join(algorithm).join(hex)
    }

    /// A blob's bytes, checked against its digest.
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path)
            .unwrap_or_else(|error| panic!("reading blob {}: {error}", path.display()));
        assert_eq!(
            format!("sha256:{}", sha256_hex(&bytes)),
            digest,
            "blob {} does not hash to its name",
            path.display()
        );
        bytes
    }

    pub fn json(&self, digest: &str) -> Value {
        serde_json::from_slice(&self.blob(digest))
            .unwrap_or_else(|error| panic!("blob {digest} is not JSON: {error}"))
    }

    /// Every blob reachable from the tag, parents before children, each
    /// checked against its descriptor's digest and size.
    pub fn walk(&self, tag: &str) -> Vec<Node> {
        let mut nodes = Vec::new();
        self.walk_descriptor(&self.tagged(tag), &mut nodes, 0);
        nodes
    }

    fn walk_descriptor(&self, descriptor: &Value, nodes: &mut Vec<Node>, depth: usize) {
        assert!(
            depth < 8,
            "descriptors nest deeper than any image: {descriptor}"
        );
        let digest = descriptor["digest"]
            .as_str()
            .expect("descriptor has a digest")
            .to_string();
        let media_type = descriptor["mediaType"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let size = descriptor["size"].as_u64().expect("descriptor has a size");
        let bytes = self.blob(&digest);
        assert_eq!(
            bytes.len() as u64,
            size,
            "blob {digest}: size differs from its descriptor"
        );
        let platform = descriptor.get("platform").map(platform_string);
        nodes.push(Node {
            media_type: media_type.clone(),
            digest: digest.clone(),
            size,
            platform,
            path: self.blob_path(&digest),
        });
        match media_type.as_str() {
            MEDIA_INDEX => {
                let index: Value = serde_json::from_slice(&bytes).expect("index is JSON");
                for child in index["manifests"].as_array().expect("index has manifests") {
                    self.walk_descriptor(child, nodes, depth + 1);
                }
            }
            MEDIA_MANIFEST => {
                let manifest: Value = serde_json::from_slice(&bytes).expect("manifest is JSON");
                self.walk_descriptor(&manifest["config"], nodes, depth + 1);
                for layer in manifest["layers"].as_array().expect("manifest has layers") {
                    self.walk_descriptor(layer, nodes, depth + 1);
                }
            }
            _ => {}
        }
    }

    /// The per-platform manifests a tag names: those of its index, or the
    /// one manifest a single-platform build puts at the top, with the
    /// platform its config names: (`os/arch[/variant]`, manifest digest).
    pub fn platform_manifests(&self, tag: &str) -> Vec<(String, String)> {
        let top = self.tagged(tag);
        let digest = top["digest"].as_str().expect("digest");
        if top["mediaType"] == MEDIA_MANIFEST {
            let manifest = self.json(digest);
            let config = self.json(manifest["config"]["digest"].as_str().expect("config"));
            return vec![(platform_string(&config), digest.to_string())];
        }
        assert_eq!(
            top["mediaType"], MEDIA_INDEX,
            "tag {tag} is neither an index nor a manifest: {top}"
        );
        let index = self.json(digest);
        index["manifests"]
            .as_array()
            .expect("index has manifests")
            .iter()
            .filter(|descriptor| descriptor["mediaType"] == MEDIA_MANIFEST)
            .map(|descriptor| {
                (
                    platform_string(&descriptor["platform"]),
                    descriptor["digest"].as_str().expect("digest").to_string(),
                )
            })
            .collect()
    }

    /// Decompresses every layer of a manifest and checks its sha256 against
    /// the config's diff_ids; returns the number of layers.
    pub fn verify_diff_ids(&self, manifest_digest: &str) -> usize {
        let manifest = self.json(manifest_digest);
        let config = self.json(
            manifest["config"]["digest"]
                .as_str()
                .expect("config digest"),
        );
        let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
            .as_array()
            .expect("config has rootfs.diff_ids")
            .iter()
            .map(|id| id.as_str().expect("diff_id is a string"))
            .collect();
        let layers = manifest["layers"].as_array().expect("manifest has layers");
        assert_eq!(
            layers.len(),
            diff_ids.len(),
            "layers and diff_ids differ in number"
        );
        for (layer, diff_id) in layers.iter().zip(&diff_ids) {
            let digest = layer["digest"].as_str().expect("layer digest");
            let media_type = layer["mediaType"].as_str().expect("layer media type");
            let tar = decompress(media_type, &self.blob(digest));
            assert_eq!(
                format!("sha256:{}", sha256_hex(&tar)),
                *diff_id,
                "layer {digest} ({media_type}) does not decompress to its diff_id"
            );
        }
        layers.len()
    }
}

/// The uncompressed bytes of a layer blob of this media type (every gzip
/// member: hoist writes one per 1 MiB block).
pub fn decompress(media_type: &str, bytes: &[u8]) -> Vec<u8> {
    let mut tar = Vec::new();
    if media_type.ends_with("+gzip") {
        MultiGzDecoder::new(bytes)
            .read_to_end(&mut tar)
            .expect("layer is valid gzip");
    } else if media_type.ends_with("+zstd") {
        tar = zstd::decode_all(bytes).expect("layer is valid zstd");
    } else {
        tar = bytes.to_vec();
    }
    tar
}

pub fn platform_string(platform: &Value) -> String {
    let mut text = format!(
        "{}/{}",
        platform["os"].as_str().unwrap_or("?"),
        platform["architecture"].as_str().unwrap_or("?")
    );
    if let Some(variant) = platform["variant"].as_str() {
        text.push('/');
        text.push_str(variant);
    }
    text
}

pub fn read_json(path: &Path) -> Value {
    let text = fs::read(path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    serde_json::from_slice(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()))
}

/// Runs a real tool, panicking with its output if it fails; returns stdout.
pub fn tool(program: &str, args: &[&OsStr]) -> String {
    crate::common::run(Command::new(program).args(args))
}

/// Unpacks one platform of a multi-platform image the way a runtime would
/// pick it: `skopeo copy --override-arch` into a single-image layout, then
/// `umoci unpack`. Returns the bundle directory (`rootfs/` inside).
pub fn unpack_platform(image: &str, architecture: &str, work: &Path) -> PathBuf {
    let single = work.join(format!("single-{architecture}"));
    let bundle = work.join(format!("bundle-{architecture}"));
    let destination = format!("oci:{}:image", single.display());
    tool(
        "skopeo",
        &[
            "--insecure-policy".as_ref(),
            "--override-os".as_ref(),
            "linux".as_ref(),
            "--override-arch".as_ref(),
            architecture.as_ref(),
            "copy".as_ref(),
            image.as_ref(),
            destination.as_ref(),
        ],
    );
    unpack(&format!("{}:image", single.display()), &bundle);
    bundle
}

/// `umoci unpack --image LAYOUT:TAG BUNDLE` (as root: owners kept).
pub fn unpack(image: &str, bundle: &Path) {
    tool(
        "umoci",
        &[
            "unpack".as_ref(),
            "--image".as_ref(),
            image.as_ref(),
            bundle.as_os_str(),
        ],
    );
}

/// `cp -a SOURCE/. DESTINATION` (made if missing).
pub fn copy_tree(source: &Path, destination: &Path) {
    fs::create_dir_all(destination)
        .unwrap_or_else(|error| panic!("creating {}: {error}", destination.display()));
    let mut from = source.as_os_str().to_os_string();
    from.push("/.");
    tool(
        "cp",
        &["-a".as_ref(), from.as_os_str(), destination.as_os_str()],
    );
}

/// A committed fixture directory.
pub fn fixture(name: &str) -> PathBuf {
    crate::common::root().join("fixtures").join(name)
}

/// fixtures/hello/hoist.toml: source-date-epoch (2023-11-14T22:13:20Z).
pub const HELLO_EPOCH: i64 = 1_700_000_000;

/// What the hello image holds for one architecture, as fixtures/hello/hoist.toml
/// describes it: the platform's root filesystem without the `.keep` files,
/// the application files, and no /etc/motd.
pub fn expected_hello(architecture: &str) -> Tree {
    let hello = fixture("hello");
    let policy = Policy::normalized(HELLO_EPOCH);
    let rootfs = hello.join("rootfs").join(architecture);
    let mut expected = Tree::expected(&rootfs, "/", &policy);
    for keep in ["/usr/share/hello/empty/.keep", "/var/lib/hello/state/.keep"] {
        assert!(
            expected.entries.contains_key(Path::new(&keep[1..])),
            "fixture has {keep}"
        );
        expected.remove(keep);
    }
    expected.add_file(&hello.join("app/start.sh"), "/app/start.sh", None, &policy);
    expected.add_file(
        &hello.join("app/message.txt"),
        "/app/message.txt",
        None,
        &policy,
    );
    expected.add_file(
        &hello.join("app/data.bin"),
        "/app/data/payload.bin",
        Some(0o600),
        &policy,
    );
    expected.remove("/etc/motd");
    expected
}

/// Makes the special tree (see fixtures/make-special-tree.sh) in `dir`;
/// returns the spec's path.
pub fn special_tree(dir: &Path) -> PathBuf {
    tool(
        fixture("make-special-tree.sh")
            .to_str()
            .expect("UTF-8 path"),
        &[dir.as_os_str()],
    );
    dir.join("hoist.toml")
}

/// The cached Debian root filesystem (see fixtures/debian-rootfs.sh).
pub fn debian_rootfs() -> PathBuf {
    let output = tool(
        fixture("debian-rootfs.sh").to_str().expect("UTF-8 path"),
        &[],
    );
    PathBuf::from(output.trim())
}
