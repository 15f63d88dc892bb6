//! Registry credentials where Docker and podman keep them: docker's
//! `config.json` (`auths` with `auth` or `identitytoken`, `credsStore`,
//! `credHelpers` running `docker-credential-*` programs), then podman's
//! `auth.json`. Only reads and writes those stores: checking a login with
//! the registry is the client's (`RegistryClient::check_login`). Flags
//! (`--creds`) come first; the client applies them.

use base64::Engine as _;
use docker_credential::{CredentialRetrievalError, DockerCredential};
use serde_json::{Map, Value};
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `config.json` key Docker uses for Docker Hub.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A credential for one registry. Debug never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    UsernamePassword {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`), traded at the token realm.
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::UsernamePassword { username, .. } => formatter
                .debug_struct("UsernamePassword")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credential::IdentityToken(_) => formatter.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// Where credentials are looked up and stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CredentialEnvironment {
    /// Directory of docker's `config.json`: `DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
    /// podman `auth.json` files, in lookup order.
    pub podman_auth_files: Vec<PathBuf>,
}

impl CredentialEnvironment {
    /// From `DOCKER_CONFIG`, `HOME`, `REGISTRY_AUTH_FILE` and `XDG_RUNTIME_DIR`.
    pub fn from_process() -> Self {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let docker_config_dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|home| home.join(".docker")));
        let mut podman_auth_files = Vec::new();
        if let Some(file) = std::env::var_os("REGISTRY_AUTH_FILE") {
            podman_auth_files.push(PathBuf::from(file));
        } else {
            if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
                podman_auth_files.push(PathBuf::from(runtime).join("containers/auth.json"));
            }
            if let Some(home) = &home {
                podman_auth_files.push(home.join(".config/containers/auth.json"));
            }
        }
        CredentialEnvironment {
            docker_config_dir,
            podman_auth_files,
        }
    }

    fn docker_config(&self) -> Result<PathBuf, CredentialsError> {
        self.docker_config_dir
            .as_ref()
            .map(|dir| dir.join("config.json"))
            .ok_or(CredentialsError::NoConfigDirectory)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot find docker's configuration directory: set DOCKER_CONFIG or HOME")]
    NoConfigDirectory,
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON ({reason}); fix or remove it")]
    Malformed { path: PathBuf, reason: String },
    #[error("looking up credentials for {registry} in {path}: {reason}")]
    Lookup {
        path: PathBuf,
        registry: String,
        reason: String,
    },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "credential helper docker-credential-{helper} failed to {action} for {registry}: {reason}"
    )]
    Helper {
        helper: String,
        action: &'static str,
        registry: String,
        reason: String,
    },
}

/// The key a registry has in `config.json` (Docker Hub's is a URL).
pub fn config_key(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_string(),
        other => other.to_string(),
    }
}

/// Credentials for `registry` (a name like `docker.io` or an API host) from
/// the process environment's docker and podman files.
pub fn resolve(registry: &str) -> Result<Option<Credential>, CredentialsError> {
    resolve_in(&CredentialEnvironment::from_process(), registry)
}

/// [`resolve`] in an explicit environment.
pub fn resolve_in(
    environment: &CredentialEnvironment,
    registry: &str,
) -> Result<Option<Credential>, CredentialsError> {
    let key = config_key(registry);
    // docker_credential matches `docker.io`-style keys by host, and Docker's
    // own key by exact text: try both for the Hub.
    let candidates: Vec<&str> = if key == DOCKER_HUB_KEY {
        vec![DOCKER_HUB_KEY, "docker.io"]
    } else {
        vec![key.as_str()]
    };
    let mut files = Vec::new();
    if let Some(dir) = &environment.docker_config_dir {
        files.push(dir.join("config.json"));
    }
    files.extend(environment.podman_auth_files.iter().cloned());
    for path in files {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(CredentialsError::Read { path, source }),
        };
        for candidate in &candidates {
            match docker_credential::get_credential_from_reader(&bytes[..], candidate) {
                Ok(DockerCredential::UsernamePassword(username, password)) => {
                    return Ok(Some(Credential::UsernamePassword { username, password }));
                }
                Ok(DockerCredential::IdentityToken(token)) => {
                    return Ok(Some(Credential::IdentityToken(token)));
                }
                Err(CredentialRetrievalError::NoCredentialConfigured) => {}
                Err(CredentialRetrievalError::HelperFailure {
                    helper,
                    stdout,
                    stderr,
                }) => {
                    let output = format!("{stdout} {stderr}");
                    if !output.contains("credentials not found") {
                        return Err(CredentialsError::Helper {
                            helper: helper.trim_start_matches("docker-credential-").to_string(),
                            action: "get credentials",
                            registry: key.clone(),
                            reason: output.trim().to_string(),
                        });
                    }
                }
                Err(CredentialRetrievalError::ConfigReadError) => {
                    let reason = serde_json::from_slice::<Value>(&bytes)
                        .err()
                        .map_or_else(|| "unexpected structure".to_string(), |e| e.to_string());
                    return Err(CredentialsError::Malformed { path, reason });
                }
                Err(other) => {
                    return Err(CredentialsError::Lookup {
                        path,
                        registry: key.clone(),
                        reason: other.to_string(),
                    });
                }
            }
        }
    }
    Ok(None)
}

/// Stores `username`/`password` for `registry` where `docker login` would
/// (the configured credential store or helper, else `config.json` with mode
/// 0600), without checking them: `operation::login` asks the registry first.
/// Returns the configuration file that now refers to them.
pub fn store_in(
    environment: &CredentialEnvironment,
    registry: &str,
    username: &str,
    password: &str,
) -> Result<PathBuf, CredentialsError> {
    let path = environment.docker_config()?;
    let key = config_key(registry);
    let mut config = read_config(&path)?;
    let helper = helper_for(&config, &key);
    // Anything but an object under `auths` is replaced, as docker does.
    let mut auths = match config.remove("auths") {
        Some(Value::Object(auths)) => auths,
        _ => Map::new(),
    };
    match helper {
        Some(helper) => {
            let request = serde_json::json!({
                "ServerURL": key,
                "Username": username,
                "Secret": password,
            });
            run_helper(&helper, "store", &key, request.to_string().as_bytes())?;
            // Docker keeps an empty entry so `docker` lists the registry.
            auths.insert(key, Value::Object(Map::new()));
        }
        None => {
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            auths.insert(key, serde_json::json!({ "auth": auth }));
        }
    }
    config.insert("auths".to_string(), Value::Object(auths));
    write_config(&path, &config)?;
    Ok(path)
}

/// Forgets the credentials for `registry`; false when there were none.
pub fn logout(registry: &str) -> Result<bool, CredentialsError> {
    logout_in(&CredentialEnvironment::from_process(), registry)
}

/// [`logout`] in an explicit environment.
pub fn logout_in(
    environment: &CredentialEnvironment,
    registry: &str,
) -> Result<bool, CredentialsError> {
    let path = environment.docker_config()?;
    let key = config_key(registry);
    let mut config = read_config(&path)?;
    let mut removed = false;
    if let Some(helper) = helper_for(&config, &key) {
        run_helper(&helper, "erase", &key, key.as_bytes())?;
        removed = true;
    }
    if let Some(auths) = config.get_mut("auths").and_then(Value::as_object_mut) {
        removed |= auths.remove(&key).is_some();
    }
    if removed {
        write_config(&path, &config)?;
    }
    Ok(removed)
}

fn helper_for(config: &Map<String, Value>, key: &str) -> Option<String> {
    config
        .get("credHelpers")
        .and_then(|helpers| helpers.get(key))
        .and_then(Value::as_str)
        .or_else(|| config.get("credsStore").and_then(Value::as_str))
        .filter(|name| !name.is_empty())
        .map(str::to_string)
}

fn read_config(path: &Path) -> Result<Map<String, Value>, CredentialsError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(source) => {
            return Err(CredentialsError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(CredentialsError::Malformed {
            path: path.to_path_buf(),
            reason: "the top level is not an object".to_string(),
        }),
        Err(error) => Err(CredentialsError::Malformed {
            path: path.to_path_buf(),
            reason: error.to_string(),
        }),
    }
}

/// Writes `config` next to `path` with mode 0600 and renames it over, so a
/// crash never leaves half a file and the secret is never world-readable.
/// A `path` that is a symlink (a config kept in a dotfiles repository) is
/// written through: the file it points to is replaced and the link stays,
/// as `docker login` does.
fn write_config(path: &Path, config: &Map<String, Value>) -> Result<(), CredentialsError> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let write_error = |source| CredentialsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let resolved;
    let path = match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            // A dangling link fails here, naming the link, rather than
            // being replaced by a file.
            resolved = std::fs::canonicalize(path).map_err(write_error)?;
            resolved.as_path()
        }
        _ => path,
    };
    let write_error = |source| CredentialsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let directory = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
        .map_err(write_error)?;
    let mut file = tempfile::NamedTempFile::new_in(directory).map_err(write_error)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(write_error)?;
    let mut text = serde_json::to_vec_pretty(config).map_err(|error| write_error(error.into()))?;
    text.push(b'\n');
    file.write_all(&text).map_err(write_error)?;
    file.as_file().sync_all().map_err(write_error)?;
    file.persist(path)
        .map_err(|error| write_error(error.error))?;
    Ok(())
}

fn run_helper(
    helper: &str,
    action: &'static str,
    registry: &str,
    input: &[u8],
) -> Result<(), CredentialsError> {
    let program = format!("docker-credential-{helper}");
    let failure = |reason: String| CredentialsError::Helper {
        helper: helper.to_string(),
        action,
        registry: registry.to_string(),
        reason,
    };
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| failure(format!("cannot run {program}: {error}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|error| failure(format!("writing to {program}: {error}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|error| failure(format!("waiting for {program}: {error}")))?;
    if !output.status.success() {
        let text = format!(
            "{} {}",
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return Err(failure(format!("{}: {}", output.status, text.trim())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(dir: &Path) -> CredentialEnvironment {
        CredentialEnvironment {
            docker_config_dir: Some(dir.join("docker")),
            podman_auth_files: vec![dir.join("containers/auth.json")],
        }
    }

    #[test]
    fn hub_names_share_one_key() {
        for name in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(config_key(name), DOCKER_HUB_KEY);
        }
        assert_eq!(config_key("ghcr.io"), "ghcr.io");
    }

    #[test]
    fn store_resolve_and_forget() {
        let dir = tempfile::tempdir().unwrap();
        let environment = environment(dir.path());
        assert_eq!(resolve_in(&environment, "localhost:5000").unwrap(), None);
        let path = store_in(&environment, "localhost:5000", "alice", "pa:ss").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            resolve_in(&environment, "localhost:5000").unwrap(),
            Some(Credential::UsernamePassword {
                username: "alice".into(),
                password: "pa:ss".into()
            })
        );
        assert!(logout_in(&environment, "localhost:5000").unwrap());
        assert!(!logout_in(&environment, "localhost:5000").unwrap());
        assert_eq!(resolve_in(&environment, "localhost:5000").unwrap(), None);
    }

    #[test]
    fn hub_credentials_under_docker_key_and_short_key() {
        let dir = tempfile::tempdir().unwrap();
        let environment = environment(dir.path());
        store_in(&environment, "docker.io", "hubuser", "hubpass").unwrap();
        let text = std::fs::read_to_string(dir.path().join("docker/config.json")).unwrap();
        assert!(text.contains(DOCKER_HUB_KEY), "{text}");
        for name in ["docker.io", "registry-1.docker.io"] {
            assert!(matches!(
                resolve_in(&environment, name).unwrap(),
                Some(Credential::UsernamePassword { username, .. }) if username == "hubuser"
            ));
        }
        // A config written by other tools with the short key works too.
        std::fs::write(
            dir.path().join("docker/config.json"),
            r#"{"auths":{"docker.io":{"auth":"dXNlcjI6cHcy"}}}"#,
        )
        .unwrap();
        assert!(matches!(
            resolve_in(&environment, "docker.io").unwrap(),
            Some(Credential::UsernamePassword { username, .. }) if username == "user2"
        ));
    }

    #[test]
    fn identity_tokens_podman_fallback_and_kept_fields() {
        let dir = tempfile::tempdir().unwrap();
        let environment = environment(dir.path());
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        std::fs::write(
            dir.path().join("docker/config.json"),
            r#"{"auths":{"a.example":{"identitytoken":"refresh-me"}},"psFormat":"table"}"#,
        )
        .unwrap();
        assert_eq!(
            resolve_in(&environment, "a.example").unwrap(),
            Some(Credential::IdentityToken("refresh-me".into()))
        );
        std::fs::create_dir_all(dir.path().join("containers")).unwrap();
        std::fs::write(
            dir.path().join("containers/auth.json"),
            r#"{"auths":{"b.example":{"auth":"cG9kOm1hbg=="}}}"#,
        )
        .unwrap();
        assert_eq!(
            resolve_in(&environment, "b.example").unwrap(),
            Some(Credential::UsernamePassword {
                username: "pod".into(),
                password: "man".into()
            })
        );
        store_in(&environment, "c.example", "u", "p").unwrap();
        let text = std::fs::read_to_string(dir.path().join("docker/config.json")).unwrap();
        assert!(text.contains("psFormat"), "unknown fields are kept: {text}");
        assert!(text.contains("refresh-me"));
    }

    #[test]
    fn malformed_config_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let environment = environment(dir.path());
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        std::fs::write(dir.path().join("docker/config.json"), "{not json").unwrap();
        let error = resolve_in(&environment, "x.example")
            .unwrap_err()
            .to_string();
        assert!(error.contains("config.json"), "{error}");
        assert!(store_in(&environment, "x.example", "u", "p").is_err());
    }

    #[test]
    fn a_symlinked_config_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let environment = environment(dir.path());
        let dotfiles = dir.path().join("dotfiles");
        std::fs::create_dir_all(&dotfiles).unwrap();
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        let real = dotfiles.join("docker-config.json");
        std::fs::write(&real, r#"{"auths": {}, "detachKeys": "ctrl-x"}"#).unwrap();
        let link = dir.path().join("docker/config.json");
        std::os::unix::fs::symlink("../dotfiles/docker-config.json", &link).unwrap();
        store_in(&environment, "registry.example", "user", "secret").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "the link stays a link"
        );
        let written: Value = serde_json::from_slice(&std::fs::read(&real).unwrap()).unwrap();
        assert!(
            written["auths"]["registry.example"].is_object(),
            "{written}"
        );
        assert_eq!(written["detachKeys"], "ctrl-x");
        assert_eq!(
            resolve_in(&environment, "registry.example").unwrap(),
            Some(Credential::UsernamePassword {
                username: "user".into(),
                password: "secret".into()
            })
        );

        // A dangling link is an error naming it, not replaced by a file.
        std::fs::remove_file(&real).unwrap();
        let error = store_in(&environment, "registry.example", "user", "secret").unwrap_err();
        assert!(error.to_string().contains("config.json"), "{error}");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn debug_redacts() {
        let credential = Credential::UsernamePassword {
            username: "bob".into(),
            password: "hunter2".into(),
        };
        let text = format!("{credential:?}");
        assert!(text.contains("bob") && !text.contains("hunter2"));
        assert!(!format!("{:?}", Credential::IdentityToken("tok".into())).contains("tok\""));
    }
}
