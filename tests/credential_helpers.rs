//! Credential helpers as Docker runs them: a `docker-credential-test` shell
//! script on PATH answers `get`, `store` and `erase`; hoist finds it through
//! `credHelpers` and `credsStore` and pushes to a real registry with what it
//! returns. One test function, since it changes PATH for the process.

#[path = "it/common/mod.rs"]
mod common;

use crate::common::certificates::{make_htpasswd, make_server_certificates};
use crate::common::registry::{RegistryConfig, TestRegistry};
use crate::common::registry_images::small_image;
use hoist::image::{Manifest, publish};
use hoist::operation::login::{LoginRequest, login};
use hoist::progress::Silent;
use hoist::registry::credentials::{self, CredentialsError};
use hoist::registry::{
    ClientOptions, Credential, CredentialEnvironment, RegistryClient, RegistrySink,
};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

const HELPER: &str = r#"#!/bin/sh
# A credential helper speaking docker's protocol, keeping state in its directory.
here=$(dirname "$0")
case "$1" in
  get)
    read -r server
    if [ -f "$here/broken" ]; then echo "vault sealed" >&2; exit 3; fi
    if [ "$server" = "$(cat "$here/known-server")" ]; then
      printf '{"ServerURL":"%s","Username":"alice","Secret":"correct-horse"}\n' "$server"
    else
      echo "credentials not found in native keychain"
      exit 1
    fi ;;
  store) cat > "$here/stored.json" ;;
  erase) cat > "$here/erased.txt" ;;
  *) exit 2 ;;
esac
"#;

fn install_helper(directory: &Path) {
    let path = directory.join("docker-credential-test");
    std::fs::write(&path, HELPER).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let search = format!(
        "{}:{}",
        directory.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // SAFETY: the only test in this binary, which is kept apart from the
    // `it` binary for this reason; nothing else reads the environment
    // concurrently.
    unsafe { std::env::set_var("PATH", search) };
}

#[test]
fn credential_helpers_get_store_and_erase() {
    let helpers = tempfile::tempdir().unwrap();
    install_helper(helpers.path());
    let work = tempfile::tempdir().unwrap();
    let certificates = make_server_certificates(work.path());
    let registry = TestRegistry::start_with(RegistryConfig {
        tls: Some((
            certificates.server_certificate.clone(),
            certificates.server_key.clone(),
        )),
        htpasswd: Some(make_htpasswd(work.path(), "alice", "correct-horse")),
        token: None,
        ..RegistryConfig::default()
    });
    let host = registry.host();
    std::fs::write(helpers.path().join("known-server"), &host).unwrap();
    let docker = work.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let environment = CredentialEnvironment {
        docker_config_dir: Some(docker.clone()),
        podman_auth_files: Vec::new(),
    };

    // credHelpers: the helper answers for this registry only.
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"credHelpers":{{"{host}":"test"}}}}"#),
    )
    .unwrap();
    assert_eq!(
        credentials::resolve_in(&environment, &host).unwrap(),
        Some(Credential::UsernamePassword {
            username: "alice".into(),
            password: "correct-horse".into()
        })
    );
    let client = RegistryClient::new(ClientOptions {
        ca_certificates: vec![certificates.ca_certificate.clone()],
        credential_environment: environment.clone(),
        ..ClientOptions::default()
    })
    .unwrap();
    publish(
        &Manifest::Image(small_image("helper", "linux/amd64")),
        &RegistrySink::new(client.clone(), format!("{host}/helped").parse().unwrap()),
        &["1".to_string()],
        &Silent,
    )
    .unwrap();

    // credsStore: "not found" from the store is no credential, not an error.
    std::fs::write(docker.join("config.json"), r#"{"credsStore":"test"}"#).unwrap();
    assert_eq!(
        credentials::resolve_in(&environment, "other.example").unwrap(),
        None
    );
    // A helper that fails otherwise is an error naming it.
    std::fs::write(helpers.path().join("broken"), "").unwrap();
    let error = credentials::resolve_in(&environment, &host).unwrap_err();
    assert!(
        matches!(&error, CredentialsError::Helper { helper, .. } if helper == "test"),
        "{error}"
    );
    assert!(error.to_string().contains("vault sealed"), "{error}");
    std::fs::remove_file(helpers.path().join("broken")).unwrap();

    // login stores through the store: the secret goes to the helper, and
    // config.json only lists the registry.
    login(
        &LoginRequest {
            registry: host.clone(),
            username: "alice".to_string(),
            password: "correct-horse".to_string().into(),
            client: client.options().clone(),
        },
        &Silent,
    )
    .unwrap();
    let stored = std::fs::read_to_string(helpers.path().join("stored.json")).unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["ServerURL"], host.as_str());
    assert_eq!(stored["Username"], "alice");
    assert_eq!(stored["Secret"], "correct-horse");
    let config = std::fs::read_to_string(docker.join("config.json")).unwrap();
    assert!(!config.contains("correct-horse"), "{config}");
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["auths"][host.as_str()], serde_json::json!({}));
    assert_eq!(config["credsStore"], "test");
    assert_eq!(
        std::fs::metadata(docker.join("config.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    assert!(credentials::logout_in(&environment, &host).unwrap());
    assert_eq!(
        std::fs::read_to_string(helpers.path().join("erased.txt")).unwrap(),
        host
    );
    let config = std::fs::read_to_string(docker.join("config.json")).unwrap();
    assert!(!config.contains(&host), "{config}");
}
