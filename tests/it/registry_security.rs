//! Transport security against a real `docker-registry` serving HTTPS with a
//! certificate from a CA made in the test, behind htpasswd Basic auth.

use crate::common::registry::SecuredRegistry;
use crate::common::registry_images::small_image;
use crate::common::run;
use hoist::image::{Manifest, publish};
use hoist::operation::login::{self, LoginError, LoginRequest};
use hoist::progress::Silent;
use hoist::registry::{
    ClientOptions, CredentialEnvironment, GivenCredentials, Reference, RegistryClient,
    RegistryError, RegistrySink, credentials,
};
use std::process::Command;

fn secured_registry() -> SecuredRegistry {
    SecuredRegistry::start("alice", "correct-horse")
}

fn options(ca: Option<&std::path::Path>, credentials: Option<(&str, &str)>) -> ClientOptions {
    ClientOptions {
        ca_certificates: ca.into_iter().map(|path| path.to_path_buf()).collect(),
        credentials: credentials
            .map(|(user, password)| GivenCredentials::everywhere(user, password))
            .into_iter()
            .collect(),
        credential_environment: CredentialEnvironment::default(),
        ..ClientOptions::default()
    }
}

fn push(client: RegistryClient, target: Reference) -> Result<(), String> {
    let image = Manifest::Image(small_image("secure", "linux/amd64"));
    publish(
        &image,
        &RegistrySink::new(client, target),
        &["1".to_string()],
        &Silent,
    )
    .map(|_| ())
    .map_err(|error| {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(inner) = source {
            text.push_str(&format!(": {inner}"));
            source = inner.source();
        }
        text
    })
}

#[test]
fn push_over_tls_with_credentials_and_ca() {
    let secured = secured_registry();
    let host = secured.registry.host();
    let client =
        RegistryClient::new(options(Some(&secured.ca), Some(("alice", "correct-horse")))).unwrap();
    push(client, format!("{host}/secure/app").parse().unwrap()).unwrap();
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--creds",
        "alice:correct-horse",
        "--tls-verify=false",
        &format!("docker://{host}/secure/app:1"),
    ]));
    assert!(raw.contains("schemaVersion"), "{raw}");
}

#[test]
fn wrong_password_fails_clearly() {
    let secured = secured_registry();
    let host = secured.registry.host();
    let client = RegistryClient::new(options(Some(&secured.ca), Some(("alice", "wrong")))).unwrap();
    let error = push(client, format!("{host}/secure/app").parse().unwrap()).unwrap_err();
    assert!(error.contains("not authorized"), "{error}");
    assert!(error.contains("401"), "{error}");
    assert!(error.contains("hoist login"), "{error}");
    assert!(
        !error.contains("wrong"),
        "the password must not appear: {error}"
    );
}

#[test]
fn no_credentials_says_how_to_log_in() {
    let secured = secured_registry();
    let host = secured.registry.host();
    let client = RegistryClient::new(options(Some(&secured.ca), None)).unwrap();
    let error = push(client, format!("{host}/secure/app").parse().unwrap()).unwrap_err();
    assert!(error.contains("none are configured"), "{error}");
    assert!(error.contains(&format!("hoist login {host}")), "{error}");
}

#[test]
fn untrusted_certificate_is_a_tls_error() {
    let secured = secured_registry();
    let host = secured.registry.host();
    let client = RegistryClient::new(options(None, Some(("alice", "correct-horse")))).unwrap();
    let error = push(client, format!("{host}/secure/app").parse().unwrap()).unwrap_err();
    assert!(error.contains("TLS certificate is not trusted"), "{error}");
    assert!(error.contains("--ca-cert"), "{error}");
}

#[test]
fn login_verifies_then_writes_config_and_logout_removes_it() {
    let secured = secured_registry();
    let host = secured.registry.host();
    let config = tempfile::tempdir().unwrap();
    let environment = CredentialEnvironment {
        docker_config_dir: Some(config.path().join("docker")),
        podman_auth_files: Vec::new(),
    };
    let login = |password: &str| {
        login::login(
            &LoginRequest {
                registry: host.clone(),
                username: "alice".to_string(),
                password: password.to_string().into(),
                client: ClientOptions {
                    credential_environment: environment.clone(),
                    ..options(Some(&secured.ca), None)
                },
            },
            &Silent,
        )
    };

    let refused = login("wrong").unwrap_err();
    assert!(
        matches!(&refused, LoginError::Login { source, .. }
            if matches!(**source, RegistryError::Unauthorized { .. })),
        "{refused}"
    );
    assert!(!config.path().join("docker/config.json").exists());

    let path = login("correct-horse").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The stored credentials are what a fresh client uses.
    let fresh = RegistryClient::new(ClientOptions {
        credential_environment: environment.clone(),
        ..options(Some(&secured.ca), None)
    })
    .unwrap();
    push(fresh, format!("{host}/after/login").parse().unwrap()).unwrap();

    assert!(credentials::logout_in(&environment, &host).unwrap());
    assert_eq!(credentials::resolve_in(&environment, &host).unwrap(), None);
}
