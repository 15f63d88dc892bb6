//! Test certificates made with the openssl command: a CA, a server
//! certificate for 127.0.0.1 and localhost signed by it, and a self-signed
//! signing certificate for token servers.

use super::run;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TestCertificates {
    pub ca_certificate: PathBuf,
    pub server_certificate: PathBuf,
    pub server_key: PathBuf,
}

/// Makes a CA and a server certificate under `directory`.
pub fn make_server_certificates(directory: &Path) -> TestCertificates {
    let path = |name: &str| directory.join(name);
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=hoist test CA",
        "-keyout",
        path("ca.key").to_str().unwrap(),
        "-out",
        path("ca.pem").to_str().unwrap(),
    ]));
    run(Command::new("openssl").args([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        path("server.key").to_str().unwrap(),
        "-out",
        path("server.csr").to_str().unwrap(),
    ]));
    std::fs::write(
        path("server.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        path("server.csr").to_str().unwrap(),
        "-CA",
        path("ca.pem").to_str().unwrap(),
        "-CAkey",
        path("ca.key").to_str().unwrap(),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        path("server.ext").to_str().unwrap(),
        "-out",
        path("server.pem").to_str().unwrap(),
    ]));
    TestCertificates {
        ca_certificate: path("ca.pem"),
        server_certificate: path("server.pem"),
        server_key: path("server.key"),
    }
}

/// A self-signed P-256 signing certificate: (PEM cert path, DER cert, PKCS#8 DER key).
pub fn make_signing_certificate(directory: &Path) -> (PathBuf, Vec<u8>, Vec<u8>) {
    let path = |name: &str| directory.join(name);
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=hoist test token signer",
        "-keyout",
        path("signer.key").to_str().unwrap(),
        "-out",
        path("signer.pem").to_str().unwrap(),
    ]));
    run(Command::new("openssl").args([
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        path("signer.key").to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        path("signer.p8").to_str().unwrap(),
    ]));
    run(Command::new("openssl").args([
        "x509",
        "-in",
        path("signer.pem").to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        path("signer.der").to_str().unwrap(),
    ]));
    (
        path("signer.pem"),
        std::fs::read(path("signer.der")).unwrap(),
        std::fs::read(path("signer.p8")).unwrap(),
    )
}

/// An htpasswd file (bcrypt, as the registry requires) for one user.
pub fn make_htpasswd(directory: &Path, user: &str, password: &str) -> PathBuf {
    let text = run(Command::new("htpasswd").args(["-Bbn", user, password]));
    let file = directory.join("htpasswd");
    std::fs::write(&file, text).unwrap();
    file
}
