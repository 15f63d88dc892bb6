//! The bottom layer of the registry transport: the rustls configuration
//! every connection uses (webpki roots, the system store, `--ca-cert`
//! files), offering HTTP/2 and HTTP/1.1.

use super::super::error::RegistryError;
use super::super::options::ClientOptions;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;

/// The TLS configuration for `options`: public roots, the system's, and
/// the CA files the user named.
pub(super) fn tls_config(options: &ClientOptions) -> Result<rustls::ClientConfig, RegistryError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Honours SSL_CERT_FILE and SSL_CERT_DIR, else the system store.
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!("loading system CA certificates: {error}");
    }
    roots.add_parsable_certificates(native.certs);
    for path in &options.ca_certificates {
        for certificate in read_certificates(path)? {
            roots
                .add(certificate)
                .map_err(|error| RegistryError::CaCertificate {
                    path: path.to_path_buf(),
                    reason: error.to_string(),
                })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(RegistryError::TlsSetup)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The PEM certificates in `path`; a file holding none is an error, since
/// the user named it to be trusted.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, RegistryError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|error| RegistryError::CaCertificate {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(RegistryError::CaCertificate {
            path: path.to_path_buf(),
            reason: "the file holds no PEM certificate".to_string(),
        });
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_named_in_the_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "not a certificate\n").unwrap();
        let options = ClientOptions {
            ca_certificates: vec![file.path().to_path_buf()],
            credential_environment: Default::default(),
            ..ClientOptions::default()
        };
        let error = tls_config(&options).unwrap_err();
        assert!(
            matches!(error, RegistryError::CaCertificate { .. }),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains(&file.path().display().to_string()),
            "{error}"
        );
    }

    #[test]
    fn offers_http2_and_http1() {
        let options = ClientOptions {
            credential_environment: Default::default(),
            ..ClientOptions::default()
        };
        let config = tls_config(&options).unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
