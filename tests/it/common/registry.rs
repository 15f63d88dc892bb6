//! A real registry for tests: Debian's `docker-registry` (the CNCF
//! distribution registry) on a free loopback port with its own storage
//! directory, optionally with TLS, htpasswd or token auth. Killed on drop.
//! skopeo reads back the manifests a test pushed to one.

use super::certificates::{make_htpasswd, make_server_certificates};
use super::hoist::{hoist, sha256_hex};
use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Token auth settings, as the registry's `auth.token` section.
#[derive(Clone, Debug)]
pub struct TokenAuth {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub root_certificate_bundle: PathBuf,
}

#[derive(Clone, Debug, Default)]
pub struct RegistryConfig {
    /// PEM certificate and key to serve HTTPS with.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// An htpasswd file (bcrypt) for Basic auth.
    pub htpasswd: Option<PathBuf>,
    pub token: Option<TokenAuth>,
    /// Refuse deletes, as distribution does unless told otherwise.
    pub deletes_refused: bool,
}

pub struct TestRegistry {
    child: Child,
    port: u16,
    directory: tempfile::TempDir,
    tls: bool,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

impl TestRegistry {
    pub fn start() -> Self {
        Self::start_with(RegistryConfig::default())
    }

    pub fn start_with(config: RegistryConfig) -> Self {
        let directory = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let storage = directory.path().join("storage");
        let mut yaml = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: test-secret\n",
            storage.display(),
            !config.deletes_refused
        );
        if let Some((certificate, key)) = &config.tls {
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                certificate.display(),
                key.display()
            ));
        }
        if let Some(htpasswd) = &config.htpasswd {
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                htpasswd.display()
            ));
        }
        if let Some(token) = &config.token {
            yaml.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                token.realm,
                token.service,
                token.issuer,
                token.root_certificate_bundle.display()
            ));
        }
        let config_path = directory.path().join("config.yml");
        std::fs::write(&config_path, yaml).expect("write registry config");
        let log = std::fs::File::create(directory.path().join("registry.log")).expect("log file");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("docker-registry runs (apt-get install docker-registry)");
        let registry = TestRegistry {
            child,
            port,
            directory,
            tls: config.tls.is_some(),
        };
        registry.wait_until_listening();
        registry
    }

    fn wait_until_listening(&self) {
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not listen on port {} within 10 s:\n{}",
            self.port,
            self.log()
        );
    }

    /// `127.0.0.1:PORT`, as references and skopeo want it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// Where the registry's filesystem storage keeps the blob `digest`.
    pub fn blob_path(&self, digest: &oci_spec::image::Digest) -> std::path::PathBuf {
        let hex = digest.digest();
        self.directory
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Everything the registry printed, the access log included.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.directory.path().join("registry.log")) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Access-log lines for requests with `method` whose path contains `path_part`.
    pub fn count_requests(&self, method: &str, path_part: &str) -> usize {
        self.count_matching(method, |path| path.contains(path_part))
    }

    /// Access-log lines for requests with `method` to exactly `path`.
    pub fn count_requests_to(&self, method: &str, path: &str) -> usize {
        self.count_matching(method, |requested| requested == path)
    }

    fn count_matching(&self, method: &str, matches: impl Fn(&str) -> bool) -> usize {
        let needle = format!("\"{method} ");
        self.log()
            .lines()
            .filter(|line| {
                line.find(&needle).is_some_and(|start| {
                    let request = &line[start + needle.len()..];
                    matches(request.split(' ').next().unwrap_or_default())
                })
            })
            .count()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `skopeo inspect --raw EXTRA docker://REFERENCE`: the manifest's bytes.
pub fn skopeo_raw(reference: &str, extra: &[&str]) -> Vec<u8> {
    let output = Command::new("skopeo")
        .arg("inspect")
        .arg("--raw")
        .args(extra)
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo runs");
    assert!(
        output.status.success(),
        "skopeo inspect --raw {reference}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The digest the registry gives a tag: the sha256 of its manifest bytes.
pub fn registry_digest(reference: &str) -> String {
    format!(
        "sha256:{}",
        sha256_hex(&skopeo_raw(reference, &["--tls-verify=false"]))
    )
}

/// The tags skopeo lists for a repository, sorted.
pub fn skopeo_tags(repository: &str) -> Vec<String> {
    let output = Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{repository}"))
        .output()
        .expect("skopeo runs");
    assert!(
        output.status.success(),
        "skopeo list-tags {repository}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut tags: Vec<String> = listed["Tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|tag| tag.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

/// Each platform manifest the index `index` in `repository` lists, as
/// (architecture, digest); a single-platform build's manifest at the top
/// is its own one, with the architecture its config names.
pub fn platform_manifests(repository: &str, index: &str) -> Vec<(String, String)> {
    let reference = format!("{repository}@{index}");
    let raw = skopeo_raw(&reference, &["--tls-verify=false"]);
    let top: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    if top["mediaType"] == "application/vnd.oci.image.manifest.v1+json" {
        let config = skopeo_raw(&reference, &["--tls-verify=false", "--config"]);
        let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
        let architecture = config["architecture"].as_str().unwrap();
        return vec![(architecture.to_string(), index.to_string())];
    }
    top["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|child| {
            let architecture = child["platform"]["architecture"].as_str().unwrap();
            let digest = child["digest"].as_str().unwrap();
            (architecture.to_string(), digest.to_string())
        })
        .collect()
}

/// The manifest types a test asks a registry for.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// The digest and body of the manifest `reference` (a tag or digest) names
/// in `registry`'s `repository`, if it holds one: what the loopback
/// provider APIs read their registry with.
pub async fn manifest_at(
    registry: &str,
    repository: &str,
    reference: &str,
) -> Result<Option<(String, serde_json::Value)>, super::http::HandlerError> {
    let answer = reqwest::Client::new()
        .get(format!(
            "http://{registry}/v2/{repository}/manifests/{reference}"
        ))
        .header("accept", ACCEPT_MANIFESTS)
        .send()
        .await?;
    if !answer.status().is_success() {
        return Ok(None);
    }
    let digest = answer.headers()["docker-content-digest"]
        .to_str()?
        .to_string();
    Ok(Some((digest, answer.json().await?)))
}

/// The tags `registry` lists for `repository`, in one page.
pub async fn tags_at(
    registry: &str,
    repository: &str,
) -> Result<Vec<String>, super::http::HandlerError> {
    let listed: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{registry}/v2/{repository}/tags/list"))
        .send()
        .await?
        .json()
        .await?;
    Ok(listed["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tag| tag.as_str().map(str::to_string))
        .collect())
}

/// True when skopeo finds no manifest under `reference`.
pub fn is_gone(reference: &str) -> bool {
    !Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo runs")
        .status
        .success()
}

/// Builds `content` for `platforms` (TOML list items) in `project` with an
/// SBOM attached as a referrer of each platform manifest, pushes it as
/// `repository:tag` and returns the digest at the top (an index, or the
/// manifest of a single platform). The same content and
/// platform give the same platform manifest each time.
pub fn push_with_sbom(
    repository: &str,
    project: &std::path::Path,
    tag: &str,
    platforms: &str,
    content: &str,
) -> String {
    std::fs::create_dir_all(project.join("app")).unwrap();
    std::fs::write(project.join("app/content.txt"), content).unwrap();
    std::fs::write(
        project.join("hoist.toml"),
        format!(
            "[[image]]\nname = \"app\"\nsource-date-epoch = 1000\nplatforms = [{platforms}]\n\
             [[image.layer]]\nsource = \"app\"\ntarget = \"/app\"\n"
        ),
    )
    .unwrap();
    hoist([
        "build",
        "-q",
        "--no-cache",
        "--sbom",
        "--attach",
        "referrers",
        "-o",
    ])
    .arg(format!("docker://{repository}:{tag}"))
    .current_dir(project)
    .run()
    .success()
    .last_line_digest()
}

/// A cosign key pair made by `hoist generate-key-pair` (password `pass`).
pub fn signing_keys() -> tempfile::TempDir {
    let keys = tempfile::tempdir().unwrap();
    hoist(["generate-key-pair"])
        .env("COSIGN_PASSWORD", "pass")
        .current_dir(keys.path())
        .run()
        .success();
    keys
}

/// The tag cosign keeps the signatures of `digest` under: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// Signs what `reference` (a tag or digest reference) names with the key
/// of [`signing_keys`].
pub fn sign_reference(reference: &str, keys: &tempfile::TempDir) {
    hoist(["sign", &format!("docker://{reference}"), "--key"])
        .arg(keys.path().join("cosign.key"))
        .env("COSIGN_PASSWORD", "pass")
        .run()
        .success();
}

/// A registry over HTTPS, with a certificate from a CA made for it, that
/// takes Basic credentials for one user.
pub struct SecuredRegistry {
    pub registry: TestRegistry,
    /// The CA certificate that signed the registry's.
    pub ca: PathBuf,
    _directory: tempfile::TempDir,
}

impl SecuredRegistry {
    pub fn start(user: &str, password: &str) -> SecuredRegistry {
        let directory = tempfile::tempdir().unwrap();
        let certificates = make_server_certificates(directory.path());
        let htpasswd = make_htpasswd(directory.path(), user, password);
        let registry = TestRegistry::start_with(RegistryConfig {
            tls: Some((certificates.server_certificate, certificates.server_key)),
            htpasswd: Some(htpasswd),
            token: None,
            ..RegistryConfig::default()
        });
        SecuredRegistry {
            registry,
            ca: certificates.ca_certificate,
            _directory: directory,
        }
    }
}
