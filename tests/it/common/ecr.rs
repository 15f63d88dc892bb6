//! A loopback Amazon ECR for tests: the real `docker-registry` behind
//! htpasswd Basic auth for user `AWS`, and `tests/it/ecr_fake.py`, the ECR
//! API (and STS) written from AWS's references, which checks every
//! request's SigV4 signature with botocore and serves DescribeImages and
//! BatchDeleteImage from that registry's storage. Both are killed on drop.

use super::certificates::make_htpasswd;
use super::hoist::{Hoist, hoist_in};
use super::registry::{RegistryConfig, TestRegistry};
use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
/// The registry password GetAuthorizationToken hands out.
pub const REGISTRY_PASSWORD: &str = "ecr-registry-password-7731";
pub const ACCESS_KEY: &str = "AKIAHOISTTESTKEY0001";
pub const SECRET_KEY: &str = "hoist-test-secret-key-do-not-leak-0001";
pub const PROFILE_KEY: &str = "AKIAHOISTPROFILE0002";
pub const PROFILE_SECRET: &str = "hoist-profile-secret-do-not-leak-0002";
pub const WEB_IDENTITY_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.hoist-test-oidc-token";
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/hoist-push";
pub const ASSUMED_KEY: &str = "ASIAHOISTASSUMED0003";
pub const ASSUMED_SECRET: &str = "hoist-assumed-secret-do-not-leak-0003";
pub const ASSUMED_TOKEN: &str = "hoist-assumed-session-token-0003";

pub struct FakeEcr {
    pub registry: TestRegistry,
    child: Child,
    port: u16,
    directory: tempfile::TempDir,
}

impl FakeEcr {
    /// Starts both; `page_size` caps DescribeImages pages so that paging is
    /// exercised.
    pub fn start(page_size: usize) -> FakeEcr {
        let directory = tempfile::tempdir().unwrap();
        let htpasswd = make_htpasswd(directory.path(), "AWS", REGISTRY_PASSWORD);
        let registry = TestRegistry::start_with(RegistryConfig {
            htpasswd: Some(htpasswd),
            ..RegistryConfig::default()
        });
        let config = json!({
            "storage": registry.directory().join("storage/docker/registry/v2"),
            "registry": format!("http://{}", registry.host()),
            "registry_password": REGISTRY_PASSWORD,
            "account": ACCOUNT,
            "region": REGION,
            "page_size": page_size,
            "keys": {
                ACCESS_KEY: {"secret": SECRET_KEY},
                PROFILE_KEY: {"secret": PROFILE_SECRET},
            },
            "web_identity": {
                "token": WEB_IDENTITY_TOKEN,
                "role_arn": ROLE_ARN,
                "issue": {
                    "access_key_id": ASSUMED_KEY,
                    "secret": ASSUMED_SECRET,
                    "token": ASSUMED_TOKEN,
                },
            },
            "log": directory.path().join("requests.jsonl"),
        });
        let config_path = directory.path().join("fake.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let mut child = Command::new("python3")
            .arg(super::root().join("tests/it/ecr_fake.py"))
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (scripts/install-test-tools.sh installs botocore)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the fake ECR printed no port: {line:?}"));
        FakeEcr {
            registry,
            child,
            port,
            directory,
        }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_ECR` and `_STS`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/NAME`, a repository of the registry.
    pub fn repository(&self, name: &str) -> String {
        format!("{}/{name}", self.registry.host())
    }

    /// Every request the API received, in order.
    pub fn requests(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.directory.path().join("requests.jsonl"))
            .unwrap_or_default();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// The ECR targets the API answered, without their prefix.
    pub fn operations(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(|request| request["target"].as_str())
            .map(|target| target.rsplit('.').next().unwrap().to_string())
            .collect()
    }

    /// `hoist ARGS` in `work`, pointed at this ECR as `--registry-api ecr`
    /// with no AWS settings but the region and the endpoints.
    pub fn hoist<I, S>(&self, work: &Path, args: I) -> Hoist
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = hoist_in(work, args)
            .env("HOIST_REGISTRY_API", "ecr")
            .env("AWS_REGION", REGION)
            .env("AWS_ENDPOINT_URL_ECR", self.endpoint())
            .env("AWS_ENDPOINT_URL_STS", self.endpoint());
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_DEFAULT_REGION",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
            "AWS_ROLE_SESSION_NAME",
            "AWS_ENDPOINT_URL",
        ] {
            command = command.env_remove(name);
        }
        command
    }

    /// [`FakeEcr::hoist`] with the static keys in the environment.
    pub fn hoist_with_keys<I, S>(&self, work: &Path, args: I) -> Hoist
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.hoist(work, args)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    }

    /// skopeo's `--creds` for the registry.
    pub fn skopeo_creds(&self) -> String {
        format!("AWS:{REGISTRY_PASSWORD}")
    }

    pub fn log_path(&self) -> PathBuf {
        self.directory.path().join("requests.jsonl")
    }
}

impl Drop for FakeEcr {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
