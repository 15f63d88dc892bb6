//! Logging in to a real `docker-registry` serving HTTPS with a certificate
//! from a CA made in the test, behind htpasswd Basic auth, through the
//! `hoist` binary: `hoist login`, a push with the stored login, `hoist
//! logout`, `--creds` scoped to one registry or to the push target, and a
//! push through an HTTPS proxy (`HTTPS_PROXY`, `NO_PROXY`) as locked-down
//! hosts have. skopeo reads back what hoist pushed.

use crate::common;

use crate::common::hoist::{HoistOutput, fixture, hoist_in, sha256_hex};
use crate::common::registry::{SecuredRegistry, skopeo_raw};
use serde_json::Value;

const PASSWORD: &str = "correct-horse-battery";
const WRONG: &str = "wrong-stapler-4711";

fn secured_registry() -> SecuredRegistry {
    SecuredRegistry::start("alice", PASSWORD)
}

fn assert_no_password(output: &HoistOutput, password: &str) {
    assert!(
        !output.stdout.contains(password) && !output.stderr.contains(password),
        "the password appears in the output:\n{}\n{}",
        output.stdout,
        output.stderr
    );
    // Nor its Basic form.
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}"));
    assert!(
        !output.stdout.contains(&basic) && !output.stderr.contains(&basic),
        "the Basic credentials appear in the output"
    );
}

/// skopeo, logged in as alice, reads back the manifest `pushed` reported.
fn assert_alice_reads(reference: &str, pushed: &HoistOutput) {
    let raw = skopeo_raw(
        reference,
        &[
            "--tls-verify=false",
            "--creds",
            &format!("alice:{PASSWORD}"),
        ],
    );
    assert_eq!(
        format!("sha256:{}", sha256_hex(&raw)),
        pushed.last_line_digest()
    );
}

#[test]
fn login_push_logout_over_tls() {
    let secured = secured_registry();
    let host = secured.registry.host();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let config = work.join("docker/config.json");
    let login = |password: &str, verbose: bool| {
        let mut command = hoist_in(work, ["login", &host, "-u", "alice", "--password-stdin"])
            .arg("--ca-cert")
            .arg(&secured.ca)
            .stdin(format!("{password}\n"));
        if verbose {
            command = command.arg("-vvv").env("RUST_LOG", "trace");
        }
        command.run()
    };

    // A wrong password: refused, nothing written, the password nowhere.
    for verbose in [false, true] {
        let refused = login(WRONG, verbose);
        assert_eq!(refused.status.code(), Some(1), "{}", refused.stderr);
        // With -vvv the log comes first; the error is still there, whole.
        let refused = refused.stderr_mentions(&[
            &format!("error: logging in to {host}"),
            "401",
            "not authorized",
        ]);
        assert_no_password(&refused, WRONG);
        assert!(
            !config.exists(),
            "config.json written after a refused login"
        );
    }

    let accepted = login(PASSWORD, true).success();
    assert_no_password(&accepted, PASSWORD);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let stored: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    use base64::Engine as _;
    assert_eq!(
        stored["auths"][&host]["auth"],
        base64::engine::general_purpose::STANDARD.encode(format!("alice:{PASSWORD}"))
    );

    // A push uses the stored credentials.
    let target = format!("{host}/secure/hello:1");
    let pushed = hoist_in(work, ["build", "-vv", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("docker://{target}"))
        .arg("--ca-cert")
        .arg(&secured.ca)
        .run()
        .success();
    assert_no_password(&pushed, PASSWORD);
    assert_alice_reads(&target, &pushed);

    // Logout forgets them; the next push asks for a login.
    let logout = hoist_in(work, ["logout", &host]).run().success();
    assert!(logout.stdout.contains("Removed"), "{}", logout.stdout);
    let stored: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(stored["auths"].get(&host).is_none(), "{stored}");
    hoist_in(work, ["build", "-f"])
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("docker://{host}/secure/again:1"))
        .arg("--ca-cert")
        .arg(&secured.ca)
        .run()
        .failure(1)
        .stderr_mentions(&[&format!("hoist login {host}")]);
}

#[test]
fn creds_for_one_registry_go_to_that_registry_only() {
    let secured = secured_registry();
    let host = secured.registry.host();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let push = |creds: &[String], repository: &str| {
        let mut command = hoist_in(work, ["build", "-v", "-f"])
            .arg(fixture("hello/hoist.toml"))
            .arg("-o")
            .arg(format!("docker://{host}/{repository}:1"))
            .arg("--ca-cert")
            .arg(&secured.ca);
        for value in creds {
            command = command.args(["--creds", value]);
        }
        command.run()
    };

    // Named for this registry (and another one beside it): used here.
    let pushed = push(
        &[
            format!("ghcr.io=octo:{WRONG}"),
            format!("{host}=alice:{PASSWORD}"),
        ],
        "scoped/hello",
    )
    .success();
    assert_no_password(&pushed, PASSWORD);
    assert_no_password(&pushed, WRONG);
    assert_alice_reads(&format!("{host}/scoped/hello:1"), &pushed);

    // Named for another registry: never sent here, so the push is refused
    // and says how to log in.
    let refused = push(&[format!("ghcr.io=alice:{PASSWORD}")], "elsewhere/hello")
        .failure(1)
        .stderr_mentions(&[&format!("hoist login {host}")]);
    assert_no_password(&refused, PASSWORD);
}

#[test]
fn creds_without_a_registry_go_to_the_push_target_not_the_base_registry() {
    // The base lives in a registry alice has logged in to; the push goes to
    // one where only bob may write, named by an unscoped --creds.
    let base_registry = secured_registry();
    let target_registry = SecuredRegistry::start("bob", WRONG);
    let base_host = base_registry.registry.host();
    let target_host = target_registry.registry.host();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let with_cas = |command: common::hoist::Hoist| {
        command
            .arg("--ca-cert")
            .arg(&base_registry.ca)
            .arg("--ca-cert")
            .arg(&target_registry.ca)
    };
    with_cas(hoist_in(work, ["build"]))
        .arg("-f")
        .arg(fixture("hello/hoist.toml"))
        .arg("-o")
        .arg(format!("docker://{base_host}/base/hello:1"))
        .args(["--creds", &format!("{base_host}=alice:{PASSWORD}")])
        .run()
        .success();
    with_cas(hoist_in(
        work,
        ["login", &base_host, "-u", "alice", "--password-stdin"],
    ))
    .stdin(format!("{PASSWORD}\n"))
    .run()
    .success();

    let app = work.join("app");
    std::fs::create_dir_all(app.join("files")).unwrap();
    std::fs::write(app.join("files/extra.txt"), "on top\n").unwrap();
    std::fs::write(
        app.join("hoist.toml"),
        format!(
            "[[image]]\nname = \"app\"\nbase = \"docker://{base_host}/base/hello:1\"\n\
             platforms = [\"linux/amd64\"]\nsource-date-epoch = 1700000000\n\
             [[image.layer]]\nfiles = [{{ source = \"files/extra.txt\", target = \"/extra.txt\" }}]\n"
        ),
    )
    .unwrap();
    // Succeeds only if the base registry was asked with alice's stored
    // login: bob's password there would be refused.
    let pushed = with_cas(hoist_in(work, ["build"]))
        .arg("-f")
        .arg(app.join("hoist.toml"))
        .arg("-o")
        .arg(format!("docker://{target_host}/app:1"))
        .args(["--creds", &format!("bob:{WRONG}")])
        .run()
        .success();
    assert_no_password(&pushed, WRONG);
}

#[test]
fn a_push_goes_through_the_https_proxy_unless_no_proxy_names_the_registry() {
    let secured = secured_registry();
    let host = secured.registry.host();
    let tunnel = common::tunnel::Tunnel::start();
    let work = tempfile::tempdir().unwrap();
    let push = |tag: &str, no_proxy: &str| {
        hoist_in(work.path(), ["build", "-q", "--no-cache", "-f"])
            .arg(fixture("hello/hoist.toml"))
            .arg("-o")
            .arg(format!("docker://{host}/proxied/hello:{tag}"))
            .arg("--ca-cert")
            .arg(&secured.ca)
            .args(["--creds", &format!("alice:{PASSWORD}")])
            .env("HTTPS_PROXY", tunnel.url())
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .env("NO_PROXY", no_proxy)
            .env_remove("no_proxy")
            .run()
            .success()
            .last_line_digest()
    };
    let digest = push("1", "");
    let targets = tunnel.targets();
    assert!(!targets.is_empty(), "nothing went through the proxy");
    assert!(
        targets.iter().all(|target| *target == host),
        "tunnels to {targets:?}, not only to {host}"
    );
    let raw = skopeo_raw(
        &format!("{host}/proxied/hello:1"),
        &[
            "--tls-verify=false",
            "--creds",
            &format!("alice:{PASSWORD}"),
        ],
    );
    assert_eq!(format!("sha256:{}", sha256_hex(&raw)), digest);

    // NO_PROXY naming the registry: straight there.
    let before = tunnel.targets().len();
    assert_eq!(push("2", "127.0.0.1"), digest);
    assert_eq!(tunnel.targets().len(), before, "NO_PROXY was not honoured");
}
