//! Length-prefixed hashing for cache keys: the local layer cache's key and
//! the content key the registry cache shares between machines.

use super::Compression;
use sha2::{Digest as _, Sha256};

/// Length-prefixed fields into sha256, so no two field sequences collide.
pub(crate) struct KeyHasher(pub(crate) Sha256);

impl KeyHasher {
    pub(crate) fn bytes(&mut self, value: &[u8]) {
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value);
    }

    pub(crate) fn number(&mut self, value: u64) {
        self.0.update(value.to_le_bytes());
    }

    pub(crate) fn signed(&mut self, value: i64) {
        self.0.update(value.to_le_bytes());
    }

    /// The codec and its level: both decide a layer's bytes.
    pub(crate) fn compression(&mut self, compression: Compression) {
        match compression {
            Compression::None => self.number(0),
            Compression::Gzip { level } => {
                self.number(1);
                self.number(u64::from(level));
            }
            Compression::Zstd { level } => {
                self.number(2);
                self.signed(i64::from(level));
            }
        }
    }
}
