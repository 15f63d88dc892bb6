//! Signing keys in cosign's file formats, so `cosign generate-key-pair` keys
//! work with hoist and hoist's keys work with cosign.
//!
//! The private key is ECDSA P-256, stored as PKCS#8 DER encrypted with a
//! password: scrypt derives a 32-byte key from the password and a random
//! salt, and NaCl secretbox (XSalsa20-Poly1305) seals the DER under it. The
//! PEM body (`ENCRYPTED SIGSTORE PRIVATE KEY`, or `ENCRYPTED COSIGN PRIVATE KEY`
//! from cosign 1) is the JSON envelope
//!
//! ```json
//! {"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"<base64>"},
//!  "cipher":{"name":"nacl/secretbox","nonce":"<base64>"},"ciphertext":"<base64>"}
//! ```
//!
//! with standard, padded base64 and the secretbox tag in front of the
//! ciphertext, as Go's `nacl/secretbox` writes it. The public key is a PKIX
//! `PUBLIC KEY` PEM. Signing itself lives in [`super::sign`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey as EcdsaSigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// PEM label cosign 2 writes for encrypted private keys.
pub const SIGSTORE_PRIVATE_KEY_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM label cosign 1 wrote; still read.
pub const COSIGN_PRIVATE_KEY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

const KDF_NAME: &str = "scrypt";
const CIPHER_NAME: &str = "nacl/secretbox";
const SALT_SIZE: usize = 32;
const NONCE_SIZE: usize = 24;
const BOX_KEY_SIZE: usize = 32;
/// scrypt cost hoist writes (N = 2^16, r = 8, p = 1), cosign 2's default.
const WRITE_LOG_N: u8 = 16;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// Only the cost parameters cosign itself has ever written are accepted on
/// read (2^15, 2^16, 2^17): the parameters sit in the file unauthenticated,
/// and an edited file must not be able to make loading take minutes.
const ACCEPTED_LOG_N: [u8; 3] = [15, 16, 17];
/// Bounds the retries for a random scalar; one attempt fails with
/// probability about 2^-32, so this never runs out in practice.
const KEY_GENERATION_ATTEMPTS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading the PEM document: {0}; expected a cosign key file")]
    Pem(pem_rfc7468::Error),
    #[error(
        "the PEM document is a `{found}`, expected {expected}; \
         convert other keys with `cosign import-key-pair`"
    )]
    UnexpectedLabel {
        found: String,
        expected: &'static str,
    },
    #[error("the encrypted key's envelope is not the JSON cosign writes")]
    Envelope(#[source] serde_json::Error),
    #[error("the encrypted key uses key derivation `{0}`, only `scrypt` is supported")]
    UnsupportedKdf(String),
    #[error("the encrypted key uses cipher `{0}`, only `nacl/secretbox` is supported")]
    UnsupportedCipher(String),
    #[error(
        "the encrypted key uses scrypt parameters N={n} r={r} p={p}; \
         only those cosign writes are accepted (N of 32768, 65536 or 131072, r=8, p=1)"
    )]
    UnsupportedScryptParameters { n: u64, r: u32, p: u32 },
    #[error("the encrypted key's `{field}` is not valid base64")]
    Base64 {
        field: &'static str,
        #[source]
        source: base64::DecodeError,
    },
    #[error("the encrypted key's `{field}` has {actual} bytes, expected {expected}")]
    FieldLength {
        field: &'static str,
        expected: usize,
        actual: usize,
    },
    /// The password does not open the key (or the ciphertext was altered:
    /// secretbox cannot tell the two apart).
    #[error("the password does not decrypt the private key")]
    WrongPassword,
    #[error("the decrypted private key is not a PKCS#8 ECDSA P-256 key: {0}")]
    PrivateKey(p256::pkcs8::Error),
    #[error("the key is not a SEC1 ECDSA P-256 private key: {0}")]
    EcPrivateKey(p256::elliptic_curve::DecodeError),
    #[error("the public key is not a PKIX ECDSA P-256 key: {0}")]
    PublicKey(p256::pkcs8::spki::Error),
    #[error("encoding the {what}: {message}")]
    Encode { what: &'static str, message: String },
    #[error("the system's random number generator failed: {0}")]
    Random(getrandom::Error),
    #[error("could not draw a valid P-256 scalar from the random number generator")]
    KeyGeneration,
}

/// An ECDSA P-256 private key that signs with SHA-256.
#[derive(Clone)]
pub struct SigningKey {
    inner: EcdsaSigningKey,
}

/// An ECDSA P-256 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    inner: VerifyingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret scalar.
        formatter
            .debug_struct("SigningKey")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<SigningKey, KeyError> {
        for _ in 0..KEY_GENERATION_ATTEMPTS {
            let mut bytes = Zeroizing::new([0u8; 32]);
            getrandom::fill(bytes.as_mut()).map_err(KeyError::Random)?;
            // Zero or a value past the group order is not a scalar; draw again.
            if let Ok(inner) = EcdsaSigningKey::from_slice(bytes.as_ref()) {
                return Ok(SigningKey { inner });
            }
        }
        Err(KeyError::KeyGeneration)
    }

    /// Reads an unencrypted key, as `cosign import-key-pair` does: PKCS#8
    /// (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`, what `openssl ecparam
    /// -genkey` writes) PEM.
    pub fn from_unencrypted_pem(pem: &str) -> Result<SigningKey, KeyError> {
        let pem = pem.trim();
        let label = pem_rfc7468::decode_label(pem.as_bytes()).map_err(KeyError::Pem)?;
        let inner = match label {
            "PRIVATE KEY" => EcdsaSigningKey::from_pkcs8_pem(pem).map_err(KeyError::PrivateKey)?,
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_pem(pem)
                .map(EcdsaSigningKey::from)
                .map_err(KeyError::EcPrivateKey)?,
            other => {
                return Err(KeyError::UnexpectedLabel {
                    found: other.to_string(),
                    expected: "`PRIVATE KEY` or `EC PRIVATE KEY`",
                });
            }
        };
        Ok(SigningKey { inner })
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: *self.inner.verifying_key(),
        }
    }

    /// ECDSA-SHA256 over `message`, ASN.1 DER encoded (what cosign stores).
    /// Nonces are derived as RFC 6979 says, so the same key and message give
    /// the same signature: re-signing an unchanged image changes nothing.
    pub fn sign_der(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.inner.sign(message);
        signature.to_der().as_bytes().to_vec()
    }

    /// The key encrypted with `password`, as a cosign 2 private key PEM.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Result<String, KeyError> {
        let der = self
            .inner
            .to_pkcs8_der()
            .map_err(|error| KeyError::Encode {
                what: "private key as PKCS#8",
                message: error.to_string(),
            })?;
        let mut salt = [0u8; SALT_SIZE];
        let mut nonce = [0u8; NONCE_SIZE];
        getrandom::fill(&mut salt).map_err(KeyError::Random)?;
        getrandom::fill(&mut nonce).map_err(KeyError::Random)?;
        let envelope = seal(der.as_bytes(), password, salt, nonce)?;
        let json = serde_json::to_vec(&envelope).map_err(KeyError::Envelope)?;
        pem_rfc7468::encode_string(
            SIGSTORE_PRIVATE_KEY_LABEL,
            pem_rfc7468::LineEnding::LF,
            &json,
        )
        .map_err(|error| KeyError::Encode {
            what: "encrypted private key as PEM",
            message: error.to_string(),
        })
    }
}

impl PublicKey {
    /// The key as a PKIX `PUBLIC KEY` PEM, as cosign writes `cosign.pub`.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.inner
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .map_err(|error| KeyError::Encode {
                what: "public key as PEM",
                message: error.to_string(),
            })
    }

    /// True when `signature` (ASN.1 DER) is this key's ECDSA-SHA256 signature
    /// over `message`. Malformed signatures are simply not valid.
    pub fn verify_der(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::from_der(signature)
            .is_ok_and(|signature| self.inner.verify(message, &signature).is_ok())
    }
}

/// Makes a key pair like `cosign generate-key-pair`: the encrypted private
/// key PEM (`cosign.key`) and the public key PEM (`cosign.pub`).
pub fn generate_key_pair(password: &[u8]) -> Result<(String, String), KeyError> {
    let key = SigningKey::generate()?;
    Ok((key.to_encrypted_pem(password)?, key.public_key().to_pem()?))
}

/// Decrypts a cosign private key PEM. A wrong password gives
/// [`KeyError::WrongPassword`]; naming the file is the caller's part.
pub fn load_private_key(pem: &str, password: &[u8]) -> Result<SigningKey, KeyError> {
    let (label, body) = pem_rfc7468::decode_vec(pem.trim().as_bytes()).map_err(KeyError::Pem)?;
    if label != SIGSTORE_PRIVATE_KEY_LABEL && label != COSIGN_PRIVATE_KEY_LABEL {
        return Err(KeyError::UnexpectedLabel {
            found: label.to_string(),
            expected: "`ENCRYPTED SIGSTORE PRIVATE KEY` or `ENCRYPTED COSIGN PRIVATE KEY`",
        });
    }
    let envelope: Envelope = serde_json::from_slice(&body).map_err(KeyError::Envelope)?;
    let der = open(&envelope, password)?;
    let inner = EcdsaSigningKey::from_pkcs8_der(&der).map_err(KeyError::PrivateKey)?;
    Ok(SigningKey { inner })
}

/// Reads a PKIX `PUBLIC KEY` PEM holding an ECDSA P-256 key.
pub fn load_public_key(pem: &str) -> Result<PublicKey, KeyError> {
    let pem = pem.trim();
    let label = pem_rfc7468::decode_label(pem.as_bytes()).map_err(KeyError::Pem)?;
    if label != PUBLIC_KEY_LABEL {
        return Err(KeyError::UnexpectedLabel {
            found: label.to_string(),
            expected: "`PUBLIC KEY`",
        });
    }
    let inner = VerifyingKey::from_public_key_pem(pem).map_err(KeyError::PublicKey)?;
    Ok(PublicKey { inner })
}

/// The JSON body of an encrypted key PEM. Field order follows the Go struct
/// cosign marshals, so hoist's files read like cosign's.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParameters,
    salt: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ScryptParameters {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn derive_box_key(
    password: &[u8],
    salt: &[u8],
    log_n: u8,
) -> Result<Zeroizing<[u8; BOX_KEY_SIZE]>, KeyError> {
    let parameters = scrypt::Params::new(log_n, SCRYPT_R, SCRYPT_P).map_err(|_| {
        KeyError::UnsupportedScryptParameters {
            n: 1u64 << log_n,
            r: SCRYPT_R,
            p: SCRYPT_P,
        }
    })?;
    let mut key = Zeroizing::new([0u8; BOX_KEY_SIZE]);
    scrypt::scrypt(password, salt, &parameters, key.as_mut()).map_err(|error| {
        KeyError::Encode {
            what: "password-derived key",
            message: error.to_string(),
        }
    })?;
    Ok(key)
}

fn seal(
    plaintext: &[u8],
    password: &[u8],
    salt: [u8; SALT_SIZE],
    nonce: [u8; NONCE_SIZE],
) -> Result<Envelope, KeyError> {
    let key = derive_box_key(password, &salt, WRITE_LOG_N)?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    // The crate puts the Poly1305 tag in front of the ciphertext, as NaCl does.
    let ciphertext = cipher
        .encrypt(&Nonce::from(nonce), plaintext)
        .map_err(|error| KeyError::Encode {
            what: "sealed private key",
            message: error.to_string(),
        })?;
    Ok(Envelope {
        kdf: Kdf {
            name: KDF_NAME.to_string(),
            params: ScryptParameters {
                n: 1u64 << WRITE_LOG_N,
                r: SCRYPT_R,
                p: SCRYPT_P,
            },
            salt: BASE64.encode(salt),
        },
        cipher: Cipher {
            name: CIPHER_NAME.to_string(),
            nonce: BASE64.encode(nonce),
        },
        ciphertext: BASE64.encode(ciphertext),
    })
}

fn open(envelope: &Envelope, password: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if envelope.kdf.name != KDF_NAME {
        return Err(KeyError::UnsupportedKdf(envelope.kdf.name.clone()));
    }
    if envelope.cipher.name != CIPHER_NAME {
        return Err(KeyError::UnsupportedCipher(envelope.cipher.name.clone()));
    }
    let parameters = &envelope.kdf.params;
    let log_n = ACCEPTED_LOG_N
        .into_iter()
        .find(|log_n| 1u64 << log_n == parameters.n)
        .filter(|_| parameters.r == SCRYPT_R && parameters.p == SCRYPT_P)
        .ok_or(KeyError::UnsupportedScryptParameters {
            n: parameters.n,
            r: parameters.r,
            p: parameters.p,
        })?;
    let decode = |field: &'static str, text: &str| {
        BASE64
            .decode(text)
            .map_err(|source| KeyError::Base64 { field, source })
    };
    let salt = decode("salt", &envelope.kdf.salt)?;
    let nonce = decode("nonce", &envelope.cipher.nonce)?;
    let ciphertext = decode("ciphertext", &envelope.ciphertext)?;
    let nonce: [u8; NONCE_SIZE] =
        nonce
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::FieldLength {
                field: "nonce",
                expected: NONCE_SIZE,
                actual: nonce.len(),
            })?;
    let key = derive_box_key(password, &salt, log_n)?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    cipher
        .decrypt(&Nonce::from(nonce), ciphertext.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| KeyError::WrongPassword)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pair_loads_back_and_signs() {
        let (private_pem, public_pem) = generate_key_pair(b"correct horse").unwrap();
        assert!(private_pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let key = load_private_key(&private_pem, b"correct horse").unwrap();
        let public = load_public_key(&public_pem).unwrap();
        assert_eq!(key.public_key(), public);
        let signature = key.sign_der(b"message");
        assert!(public.verify_der(b"message", &signature));
        assert!(!public.verify_der(b"messagf", &signature));
        assert!(!public.verify_der(b"message", b"not der"));
    }

    #[test]
    fn envelope_has_cosign_fields_and_parameters() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_encrypted_pem(b"pw").unwrap();
        let (_, body) = pem_rfc7468::decode_vec(pem.as_bytes()).unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.starts_with(
                r#"{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":""#
            ),
            "{text}"
        );
        assert!(text.contains(r#""cipher":{"name":"nacl/secretbox","nonce":""#));
        let envelope: Envelope = serde_json::from_str(&text).unwrap();
        // 16-byte tag in front of the PKCS#8 document.
        let ciphertext = BASE64.decode(&envelope.ciphertext).unwrap();
        assert_eq!(
            ciphertext.len(),
            key.inner.to_pkcs8_der().unwrap().as_bytes().len() + 16
        );
    }

    #[test]
    fn wrong_password_is_its_own_error() {
        let (private_pem, _) = generate_key_pair(b"right").unwrap();
        assert!(matches!(
            load_private_key(&private_pem, b"wrong"),
            Err(KeyError::WrongPassword)
        ));
    }

    #[test]
    fn costly_scrypt_parameters_are_refused_before_deriving() {
        let (private_pem, _) = generate_key_pair(b"pw").unwrap();
        let (label, body) = pem_rfc7468::decode_vec(private_pem.as_bytes()).unwrap();
        let tampered = String::from_utf8(body)
            .unwrap()
            .replace(r#""N":65536"#, r#""N":1073741824"#);
        let pem =
            pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, tampered.as_bytes())
                .unwrap();
        let error = load_private_key(&pem, b"pw").unwrap_err();
        assert!(
            matches!(
                error,
                KeyError::UnsupportedScryptParameters { n: 1073741824, .. }
            ),
            "{error}"
        );
    }

    #[test]
    fn legacy_cosign_label_is_read() {
        let (private_pem, _) = generate_key_pair(b"pw").unwrap();
        let legacy = private_pem.replace(SIGSTORE_PRIVATE_KEY_LABEL, COSIGN_PRIVATE_KEY_LABEL);
        assert!(load_private_key(&legacy, b"pw").is_ok());
    }

    #[test]
    fn other_documents_are_refused_by_label() {
        let (_, public_pem) = generate_key_pair(b"pw").unwrap();
        assert!(matches!(
            load_private_key(&public_pem, b"pw"),
            Err(KeyError::UnexpectedLabel { .. })
        ));
        assert!(matches!(
            load_private_key("not a pem", b"pw"),
            Err(KeyError::Pem(_))
        ));
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let key = SigningKey::generate().unwrap();
        let text = format!("{key:?}");
        assert!(text.starts_with("SigningKey { public_key"), "{text}");
    }
}
