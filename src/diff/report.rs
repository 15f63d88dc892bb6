//! What a comparison finds, as data: every difference with where it is, what
//! changed and, where one is recognisable, its likely cause. The CLI renders
//! these as lines, or serializes them as they are for `--json`.

use serde::Serialize;
use serde_json::Value;

/// The result of comparing two images or indexes.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DiffReport {
    /// Digest of the left side's top manifest (after `--platform`, the platform's).
    pub left: String,
    pub right: String,
    pub differences: Vec<Difference>,
}

impl DiffReport {
    pub fn is_identical(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Which of the two compared images.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Left,
    Right,
}

/// One difference, with where it is, what differs, and why when that is recognisable.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Difference {
    /// The platform of the image it is in; none for the index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub place: Place,
    pub change: Change,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
}

/// Where in the image a difference is.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "part", rename_all = "kebab-case")]
pub enum Place {
    Index,
    Manifest,
    Config,
    /// A layer by its position in the manifest (from 0).
    Layer {
        layer: usize,
    },
    /// A tar entry of a layer.
    Entry {
        layer: usize,
        path: String,
    },
}

/// What differs.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Change {
    /// Something only one side has: a platform, an attestation, a layer, a tar entry.
    OnlyIn { side: Side, item: String },
    /// A field with another value on each side; `null` where a side has none.
    Field {
        field: String,
        left: Option<Value>,
        right: Option<Value>,
    },
    /// The layers hold the same tar (same diff_id) compressed differently.
    Compression { left: Codec, right: Codec },
    /// The same entries in another order; the first position where they part.
    Order {
        position: usize,
        left: String,
        right: String,
    },
}

/// A layer's compression as far as its bytes tell.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Codec {
    /// `gzip`, `zstd` or `none`.
    pub format: String,
    /// The level, when the bytes tell it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u32>,
    /// What the header says, in words (gzip's XFL and OS, zstd's window).
    pub header: String,
}

/// A likely reason for a difference.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "cause", rename_all = "kebab-case")]
pub enum Cause {
    /// Times clamped at two different `SOURCE_DATE_EPOCH`s.
    Epoch { left: u64, right: u64 },
    /// A file newer than the epoch on one side (so its time was not kept), older on the other.
    NewerThanEpoch { side: Side, epoch: u64 },
    /// A time at the epoch on `side` and one second past 1970 on the other:
    /// a file newer than the epoch, written by a hoist before layer format 3
    /// (which clamped such times to the epoch) on `side`.
    EpochClampBeforeFormat3 { side: Side, epoch: u64 },
    /// Modes that differ only in group and other bits a umask clears.
    Umask { bits: u32 },
    /// An owner (user or group id) of an ordinary user on one side, root on the other:
    /// the building user's files, kept where the other build made them 0:0.
    BuildingUser { side: Side, id: u64 },
    /// The same entries written in another order.
    EntryOrder,
    /// The base image reference now points at another digest.
    BaseMoved {
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        left: String,
        right: String,
    },
    /// Another compressor, level or compressor version over the same tar.
    Compressor,
    /// An attestation about a platform image that differs: it names that
    /// image's digest, so it differs with it.
    AttestedImageDiffers,
    /// Built by two hoist versions (as their provenance says), whose
    /// compressor or tar format (the format version) differ.
    BuilderVersions { left: String, right: String },
    /// The same entries and contents, encoded as another tar (header format,
    /// PAX records, padding): another tar writer or format version.
    TarEncoding,
}
