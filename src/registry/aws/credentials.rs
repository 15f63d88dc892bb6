//! AWS credentials from the standard chain, in the SDKs' order: the
//! environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, what aws-actions/configure-aws-credentials exports),
//! a web identity token (`AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`,
//! as EKS provides them, traded at STS), then the shared credentials and
//! config files for a profile (`AWS_PROFILE`, `AWS_SHARED_CREDENTIALS_FILE`,
//! `AWS_CONFIG_FILE`, `~/.aws/`). Also the region a profile names.

use super::environment::AwsEnvironment;
use super::{AwsError, sts};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A key pair, with a session token when temporary. Debug shows the key id
/// only.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    /// When temporary credentials stop working.
    pub expires: Option<SystemTime>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl AwsCredentials {
    pub fn new(access_key_id: &str, secret_access_key: &str, session_token: Option<&str>) -> Self {
        AwsCredentials {
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
            session_token: session_token.map(str::to_string),
            expires: None,
        }
    }

    /// The signer's view of these credentials.
    pub(super) fn identity(&self) -> aws_smithy_runtime_api::client::identity::Identity {
        aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            self.expires,
            "hoist",
        )
        .into()
    }
}

/// Credentials from the chain, for calls in `region` (where STS is asked
/// for a web identity's); `registry` names what they are for, in errors.
pub async fn resolve(
    http: &reqwest::Client,
    environment: &AwsEnvironment,
    region: &str,
    registry: &str,
) -> Result<AwsCredentials, AwsError> {
    if let Some(found) = from_variables(environment)? {
        return Ok(found);
    }
    if let Some(token_file) = environment.get("AWS_WEB_IDENTITY_TOKEN_FILE") {
        let role = environment
            .get("AWS_ROLE_ARN")
            .ok_or(AwsError::Incomplete {
                variable: "AWS_WEB_IDENTITY_TOKEN_FILE",
                missing: "AWS_ROLE_ARN",
            })?;
        let request = sts::WebIdentity {
            token_file: PathBuf::from(token_file),
            role_arn: role.to_string(),
            session_name: environment.get("AWS_ROLE_SESSION_NAME").map(str::to_string),
        };
        return sts::assume_role_with_web_identity(http, environment, region, &request).await;
    }
    let profile = Profile::load(environment)?;
    match profile {
        Some(profile) => profile.credentials(http, environment, region).await,
        None => Err(AwsError::NoCredentials {
            registry: registry.to_string(),
        }),
    }
}

/// The region the profile names, when no variable does.
pub fn profile_region(environment: &AwsEnvironment) -> Result<Option<String>, AwsError> {
    Ok(Profile::load(environment)?.and_then(|profile| profile.settings.get("region").cloned()))
}

fn from_variables(environment: &AwsEnvironment) -> Result<Option<AwsCredentials>, AwsError> {
    let key = environment.get("AWS_ACCESS_KEY_ID");
    let secret = environment.get("AWS_SECRET_ACCESS_KEY");
    match (key, secret) {
        (Some(key), Some(secret)) => Ok(Some(AwsCredentials::new(
            key,
            secret,
            environment.get("AWS_SESSION_TOKEN"),
        ))),
        (Some(_), None) => Err(AwsError::Incomplete {
            variable: "AWS_ACCESS_KEY_ID",
            missing: "AWS_SECRET_ACCESS_KEY",
        }),
        (None, Some(_)) => Err(AwsError::Incomplete {
            variable: "AWS_SECRET_ACCESS_KEY",
            missing: "AWS_ACCESS_KEY_ID",
        }),
        (None, None) => Ok(None),
    }
}

/// One profile's settings, from the credentials file over the config file.
struct Profile {
    name: String,
    settings: BTreeMap<String, String>,
    /// Where each setting came from, for errors.
    origin: BTreeMap<String, PathBuf>,
}

impl Profile {
    /// The profile `AWS_PROFILE` names (else `default`) in the shared files;
    /// `None` when neither file exists. A profile named explicitly that is
    /// in neither file is an error.
    fn load(environment: &AwsEnvironment) -> Result<Option<Profile>, AwsError> {
        let named = environment.get("AWS_PROFILE");
        let name = named.unwrap_or("default").to_string();
        let home_file = |relative: &str| environment.home.as_ref().map(|home| home.join(relative));
        let credentials_file = environment
            .get("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| home_file(".aws/credentials"));
        let config_file = environment
            .get("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| home_file(".aws/config"));
        let mut profile = Profile {
            name: name.clone(),
            settings: BTreeMap::new(),
            origin: BTreeMap::new(),
        };
        let mut any_file = false;
        let mut found = false;
        // Credentials file first: its settings win over the config file's.
        for (path, is_config) in [(credentials_file, false), (config_file, true)] {
            let Some(path) = path else { continue };
            let Some(text) = read_if_present(&path)? else {
                continue;
            };
            any_file = true;
            if let Some(section) = section(&text, &name, is_config) {
                found = true;
                for (key, value) in section {
                    profile.origin.entry(key.clone()).or_insert(path.clone());
                    profile.settings.entry(key).or_insert(value);
                }
            }
        }
        if !any_file || (!found && named.is_none()) {
            return Ok(None);
        }
        if !found {
            return Err(AwsError::NoProfile {
                profile: name,
                files: "the shared credentials and config files".to_string(),
            });
        }
        Ok(Some(profile))
    }

    async fn credentials(
        &self,
        http: &reqwest::Client,
        environment: &AwsEnvironment,
        region: &str,
    ) -> Result<AwsCredentials, AwsError> {
        let get = |key: &str| self.settings.get(key).map(String::as_str);
        if let (Some(key), Some(secret)) = (get("aws_access_key_id"), get("aws_secret_access_key"))
        {
            return Ok(AwsCredentials::new(key, secret, get("aws_session_token")));
        }
        if let (Some(token_file), Some(role)) = (get("web_identity_token_file"), get("role_arn")) {
            let request = sts::WebIdentity {
                token_file: PathBuf::from(token_file),
                role_arn: role.to_string(),
                session_name: get("role_session_name").map(str::to_string),
            };
            return sts::assume_role_with_web_identity(http, environment, region, &request).await;
        }
        for key in [
            "source_profile",
            "credential_process",
            "sso_session",
            "sso_start_url",
            "credential_source",
            "role_arn",
        ] {
            if let Some(path) = self.origin.get(key) {
                return Err(AwsError::UnsupportedProfile {
                    profile: self.name.clone(),
                    path: path.clone(),
                    key: key.to_string(),
                });
            }
        }
        Err(AwsError::NoCredentials {
            registry: format!("profile {}", self.name),
        })
    }
}

fn read_if_present(path: &Path) -> Result<Option<String>, AwsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AwsError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The `key = value` lines of profile `name` in an INI file: `[name]` in the
/// credentials file; `[profile name]` (or `[default]`) in the config file.
fn section(text: &str, name: &str, is_config: bool) -> Option<BTreeMap<String, String>> {
    let mut settings: Option<BTreeMap<String, String>> = None;
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            let header = header.trim();
            let profile = if is_config && header != "default" {
                header.strip_prefix("profile ").map(str::trim)
            } else {
                Some(header)
            };
            inside = profile == Some(name);
            if inside {
                settings.get_or_insert_with(BTreeMap::new);
            }
            continue;
        }
        if inside
            && let Some((key, value)) = line.split_once('=')
            && let Some(settings) = settings.as_mut()
        {
            settings.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(home: &Path, pairs: &[(&str, &str)]) -> AwsEnvironment {
        AwsEnvironment {
            variables: pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            home: Some(home.to_path_buf()),
        }
    }

    fn resolve_now(environment: &AwsEnvironment) -> Result<AwsCredentials, AwsError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The transport's client: reqwest alone has no TLS provider here.
        let transport = runtime
            .block_on(async { crate::registry::transport::Transport::new(Default::default()) })
            .unwrap();
        runtime.block_on(resolve(
            &transport.http,
            environment,
            "us-east-1",
            "the registry",
        ))
    }

    #[test]
    fn the_environment_comes_first() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".aws")).unwrap();
        std::fs::write(
            home.path().join(".aws/credentials"),
            "[default]\naws_access_key_id = FROMFILE\naws_secret_access_key = s\n",
        )
        .unwrap();
        let found = resolve_now(&environment(
            home.path(),
            &[
                ("AWS_ACCESS_KEY_ID", "FROMENV"),
                ("AWS_SECRET_ACCESS_KEY", "secret"),
                ("AWS_SESSION_TOKEN", "token"),
            ],
        ))
        .unwrap();
        assert_eq!(found.access_key_id, "FROMENV");
        assert_eq!(found.session_token.as_deref(), Some("token"));
        let half = resolve_now(&environment(home.path(), &[("AWS_ACCESS_KEY_ID", "X")]));
        assert!(matches!(half, Err(AwsError::Incomplete { .. })));
    }

    #[test]
    fn a_profile_from_the_credentials_file_over_the_config_file() {
        let home = tempfile::tempdir().unwrap();
        let aws = home.path().join(".aws");
        std::fs::create_dir_all(&aws).unwrap();
        std::fs::write(
            aws.join("credentials"),
            "[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = d\n\
             [ci]\naws_access_key_id = CIKEY\naws_secret_access_key = c\n",
        )
        .unwrap();
        std::fs::write(
            aws.join("config"),
            "[profile ci]\nregion = eu-central-1\naws_access_key_id = IGNORED\n",
        )
        .unwrap();
        let plain = environment(home.path(), &[]);
        assert_eq!(resolve_now(&plain).unwrap().access_key_id, "DEFAULTKEY");
        let ci = environment(home.path(), &[("AWS_PROFILE", "ci")]);
        assert_eq!(resolve_now(&ci).unwrap().access_key_id, "CIKEY");
        assert_eq!(
            profile_region(&ci).unwrap().as_deref(),
            Some("eu-central-1")
        );
        let missing = environment(home.path(), &[("AWS_PROFILE", "nope")]);
        assert!(matches!(
            resolve_now(&missing),
            Err(AwsError::NoProfile { .. })
        ));
    }

    #[test]
    fn unsupported_profiles_and_no_credentials_say_what_to_do() {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join("config");
        std::fs::write(&config, "[profile sso]\nsso_session = corp\n").unwrap();
        let sso = environment(
            home.path(),
            &[
                ("AWS_PROFILE", "sso"),
                ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ],
        );
        let error = resolve_now(&sso).unwrap_err();
        assert!(error.to_string().contains("sso_session"), "{error}");
        let nothing = resolve_now(&environment(home.path(), &[])).unwrap_err();
        assert!(
            matches!(nothing, AwsError::NoCredentials { .. }),
            "{nothing}"
        );
    }

    #[test]
    fn debug_hides_the_secret_and_token() {
        let text = format!(
            "{:?}",
            AwsCredentials::new("AKIDEXAMPLE", "secret-value", Some("token-value"))
        );
        assert!(text.contains("AKIDEXAMPLE"), "{text}");
        assert!(!text.contains("secret-value") && !text.contains("token-value"));
    }
}
