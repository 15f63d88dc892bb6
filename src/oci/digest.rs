//! sha256 digests, and the writer and reader adapters that compute them while
//! bytes stream past, so no blob is ever read twice just to hash it.

use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};

pub use oci_spec::image::Digest;

/// The `sha256:<hex>` digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    digest_from_hasher(Sha256::new_with_prefix(bytes))
}

fn digest_from_hasher(hasher: Sha256) -> Digest {
    let hex = hex::encode(hasher.finalize());
    Digest::try_from(format!("sha256:{hex}")).expect("a sha256 hex string is a valid digest")
}

/// Parses `sha256:<64 hex>`, refusing other algorithms and malformed values.
pub fn parse_sha256(text: &str) -> Result<Digest, DigestError> {
    let hex = text
        .strip_prefix("sha256:")
        .ok_or_else(|| DigestError::Malformed(text.to_string()))?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(DigestError::Malformed(text.to_string()));
    }
    Digest::try_from(text).map_err(|_| DigestError::Malformed(text.to_string()))
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum DigestError {
    #[error("`{0}` is not a sha256 digest (expected sha256: followed by 64 lowercase hex digits)")]
    Malformed(String),
    #[error("content does not match its digest: expected {expected}, got {actual}")]
    Mismatch { expected: Digest, actual: Digest },
    #[error("content has the wrong size: expected {expected} bytes, got {actual}")]
    SizeMismatch { expected: u64, actual: u64 },
}

/// A writer that hashes and counts everything written through it.
pub struct DigestWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> DigestWriter<W> {
    pub fn new(inner: W) -> Self {
        DigestWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Returns the inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, digest_from_hasher(self.hasher), self.written)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let count = self.inner.write(buffer)?;
        self.hasher.update(&buffer[..count]);
        self.written += count as u64;
        Ok(count)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what it reads and, at end of stream, fails with
/// `InvalidData` if the content does not match the expected digest and size.
/// Pulled blobs are read through it so a mismatch is never a silent success.
pub struct DigestReader<R> {
    inner: R,
    hasher: Option<Sha256>,
    read: u64,
    expected: Digest,
    expected_size: Option<u64>,
}

impl<R: Read> DigestReader<R> {
    pub fn new(inner: R, expected: Digest, expected_size: Option<u64>) -> Self {
        DigestReader {
            inner,
            hasher: Some(Sha256::new()),
            read: 0,
            expected,
            expected_size,
        }
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buffer)?;
        if count > 0 {
            if let Some(hasher) = self.hasher.as_mut() {
                hasher.update(&buffer[..count]);
            }
            self.read += count as u64;
            if let Some(size) = self.expected_size
                && self.read > size
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    DigestError::SizeMismatch {
                        expected: size,
                        actual: self.read,
                    },
                ));
            }
            return Ok(count);
        }
        if let Some(hasher) = self.hasher.take() {
            if let Some(size) = self.expected_size
                && size != self.read
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    DigestError::SizeMismatch {
                        expected: size,
                        actual: self.read,
                    },
                ));
            }
            let actual = digest_from_hasher(hasher);
            if actual != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    DigestError::Mismatch {
                        expected: self.expected.clone(),
                        actual,
                    },
                ));
            }
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_json_object() {
        assert_eq!(
            sha256_digest(b"{}").to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn writer_hashes_what_passes() {
        let mut writer = DigestWriter::new(Vec::new());
        writer.write_all(b"hello ").unwrap();
        writer.write_all(b"world").unwrap();
        let (inner, digest, count) = writer.finish();
        assert_eq!(inner, b"hello world");
        assert_eq!(count, 11);
        assert_eq!(digest, sha256_digest(b"hello world"));
    }

    #[test]
    fn reader_rejects_a_mismatch() {
        let mut reader = DigestReader::new(&b"tampered"[..], sha256_digest(b"original"), None);
        let error = io::copy(&mut reader, &mut io::sink()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        let mut reader = DigestReader::new(&b"original"[..], sha256_digest(b"original"), Some(8));
        assert_eq!(io::copy(&mut reader, &mut io::sink()).unwrap(), 8);
    }

    #[test]
    fn parse_rejects_bad_digests() {
        assert!(parse_sha256("sha256:abc").is_err());
        assert!(
            parse_sha256("md5:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
                .is_err()
        );
        assert!(
            parse_sha256("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
                .is_ok()
        );
    }
}
