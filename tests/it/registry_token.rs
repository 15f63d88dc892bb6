//! Bearer token auth for real: `docker-registry` with `auth: token` trusts a
//! signing certificate made in the test; a small token server here issues
//! ES256 JWTs (with the certificate in `x5c`) granting only what each user
//! may do, and records what was asked for. Deleting needs the `delete`
//! action, which a push grant does not have.

use crate::common::certificates::make_signing_certificate;
use crate::common::http::{Reply, TestServer, error_reply, query_values, reply};
use crate::common::registry::{RegistryConfig, TestRegistry, TokenAuth};
use crate::common::registry_images::small_image;
use crate::common::run;
use base64::Engine as _;
use hoist::image::{Manifest, publish};
use hoist::progress::Silent;
use hoist::registry::{
    ClientOptions, CredentialEnvironment, GivenCredentials, Reference, RegistryClient,
    RegistrySink, RegistrySource, get_manifest_digest,
};
use hoist::source::Source;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

const SERVICE: &str = "hoist-test-registry";
const ISSUER: &str = "hoist-test-issuer";

struct TokenIssuer {
    key: EcdsaKeyPair,
    certificate: Vec<u8>,
    /// (account, scopes asked for), in order.
    requests: Mutex<Vec<(String, Vec<String>)>>,
}

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TokenIssuer {
    fn allowed(user: &str, password: &str) -> Option<&'static [&'static str]> {
        match (user, password) {
            ("pusher", "push-pw") => Some(&["pull", "push"]),
            ("reader", "read-pw") => Some(&["pull"]),
            ("admin", "admin-pw") => Some(&["pull", "push", "delete"]),
            _ => None,
        }
    }

    fn sign(&self, account: &str, access: serde_json::Value) -> String {
        let header = serde_json::json!({
            "alg": "ES256",
            "typ": "JWT",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&self.certificate)],
        });
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": account,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{now}-{}", self.requests.lock().unwrap().len()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let signature = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .expect("signing");
        format!("{signing_input}.{}", base64url(signature.as_ref()))
    }

    fn answer(&self, request: hyper::Request<hyper::body::Incoming>) -> Reply {
        let scopes = query_values(request.uri(), "scope");
        let credentials = request
            .headers()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Basic "))
            .and_then(|encoded| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
            })
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let (account, allowed): (String, &[&str]) = match credentials {
            None => ("anonymous".to_string(), &[]),
            Some(pair) => {
                let (user, password) = pair.split_once(':').unwrap_or((&pair, ""));
                match Self::allowed(user, password) {
                    Some(allowed) => (user.to_string(), allowed),
                    None => return error_reply(401, "UNAUTHORIZED", "bad credentials"),
                }
            }
        };
        self.requests
            .lock()
            .unwrap()
            .push((account.clone(), scopes.clone()));
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .filter_map(|scope| {
                let mut parts = scope.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                let granted: Vec<&str> = actions
                    .split(',')
                    .filter(|action| allowed.contains(action))
                    .collect();
                Some(serde_json::json!({"type": kind, "name": name, "actions": granted}))
            })
            .collect();
        let token = self.sign(&account, serde_json::Value::Array(access));
        reply(
            200,
            &[("content-type", "application/json".to_string())],
            serde_json::json!({"token": token, "expires_in": 300}).to_string(),
        )
    }
}

struct Setup {
    registry: TestRegistry,
    issuer: Arc<TokenIssuer>,
    _token_server: TestServer,
    _directory: tempfile::TempDir,
}

fn setup() -> Setup {
    let directory = tempfile::tempdir().unwrap();
    let (certificate_pem, certificate_der, key_pkcs8) = make_signing_certificate(directory.path());
    let key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &key_pkcs8,
        &SystemRandom::new(),
    )
    .unwrap();
    let issuer = Arc::new(TokenIssuer {
        key,
        certificate: certificate_der,
        requests: Mutex::new(Vec::new()),
    });
    let token_server = {
        let issuer = issuer.clone();
        TestServer::start(move |request| {
            let answer = issuer.answer(request);
            async move { answer }
        })
    };
    let registry = TestRegistry::start_with(RegistryConfig {
        token: Some(TokenAuth {
            realm: format!("http://{}/token", token_server.host()),
            service: SERVICE.to_string(),
            issuer: ISSUER.to_string(),
            root_certificate_bundle: certificate_pem,
        }),
        ..RegistryConfig::default()
    });
    Setup {
        registry,
        issuer,
        _token_server: token_server,
        _directory: directory,
    }
}

fn client(user: &str, password: &str) -> RegistryClient {
    RegistryClient::new(ClientOptions {
        credentials: vec![GivenCredentials::everywhere(user, password)],
        credential_environment: CredentialEnvironment::default(),
        ..ClientOptions::default()
    })
    .unwrap()
}

fn push(
    client: &RegistryClient,
    target: &Reference,
    manifest: &Manifest,
) -> Result<hoist::image::PublishReport, String> {
    publish(
        manifest,
        &RegistrySink::new(client.clone(), target.clone()),
        &["1".to_string()],
        &Silent,
    )
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
fn push_with_a_push_grant_works() {
    let setup = setup();
    let host = setup.registry.host();
    let image = Manifest::Image(small_image("token", "linux/amd64"));
    push(
        &client("pusher", "push-pw"),
        &format!("{host}/team/app").parse().unwrap(),
        &image,
    )
    .unwrap();
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "reader:read-pw",
        &format!("docker://{host}/team/app:1"),
    ]));
    assert_eq!(raw.as_bytes(), image.manifest_blob().bytes());
    let requests = setup.issuer.requests.lock().unwrap().clone();
    assert!(
        requests.iter().any(|(account, scopes)| account == "pusher"
            && scopes == &vec!["repository:team/app:pull,push".to_string()]),
        "{requests:?}"
    );
    // One token per scope set, reused across blobs and manifests.
    assert!(requests.len() <= 3, "{requests:?}");
}

#[test]
fn pull_only_grant_cannot_push() {
    let setup = setup();
    let host = setup.registry.host();
    let image = Manifest::Image(small_image("token", "linux/amd64"));
    let error = push(
        &client("reader", "read-pw"),
        &format!("{host}/team/app").parse().unwrap(),
        &image,
    )
    .unwrap_err();
    assert!(error.contains("not authorized"), "{error}");
    assert!(error.contains("may push to it"), "{error}");
    assert!(!error.contains("read-pw"), "{error}");
}

#[test]
fn wrong_password_is_refused_by_the_token_service() {
    let setup = setup();
    let host = setup.registry.host();
    let image = Manifest::Image(small_image("token", "linux/amd64"));
    let error = push(
        &client("pusher", "nope"),
        &format!("{host}/team/app").parse().unwrap(),
        &image,
    )
    .unwrap_err();
    assert!(error.contains("token service"), "{error}");
    assert!(error.contains("401"), "{error}");
}

#[test]
fn mount_asks_pull_on_the_source_repository() {
    let setup = setup();
    let host = setup.registry.host();
    let pusher = client("pusher", "push-pw");
    let source: Reference = format!("{host}/source/app").parse().unwrap();
    push(
        &pusher,
        &source,
        &Manifest::Image(small_image("mount", "linux/amd64")),
    )
    .unwrap();
    let pulled = RegistrySource::new(pusher.clone(), source.with_tag("1"))
        .resolve()
        .unwrap();
    let report = push(
        &pusher,
        &format!("{host}/target/app").parse().unwrap(),
        &pulled,
    )
    .unwrap();
    assert_eq!(report.mounted.len(), 1, "{report:?}");
    let requests = setup.issuer.requests.lock().unwrap().clone();
    assert!(
        requests.iter().any(|(_, scopes)| scopes
            == &vec![
                "repository:source/app:pull".to_string(),
                "repository:target/app:pull,push".to_string()
            ]),
        "{requests:?}"
    );
}

#[test]
fn deleting_asks_for_the_delete_action_which_a_push_grant_lacks() {
    let setup = setup();
    let host = setup.registry.host();
    let image = Manifest::Image(small_image("delete", "linux/amd64"));
    let pusher = client("pusher", "push-pw");
    let tagged: Reference = format!("{host}/team/app:1").parse().unwrap();
    push(&pusher, &tagged, &image).unwrap();

    let error = pusher
        .repository(&tagged, hoist::registry::Access::DELETE)
        .delete_manifest("1")
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("may delete from it"), "{text}");
    assert_eq!(
        get_manifest_digest(&pusher, &tagged).unwrap().as_ref(),
        Some(image.digest()),
        "still there after a refused delete"
    );

    let admin = client("admin", "admin-pw");
    let deleted = admin
        .repository(&tagged, hoist::registry::Access::DELETE)
        .delete_manifest("1")
        .unwrap();
    assert_eq!(&deleted, image.digest());
    assert_eq!(get_manifest_digest(&admin, &tagged).unwrap(), None);
    let requests = setup.issuer.requests.lock().unwrap().clone();
    assert!(
        requests.iter().any(|(account, scopes)| account == "admin"
            && scopes == &vec!["repository:team/app:delete".to_string()]),
        "{requests:?}"
    );
}
