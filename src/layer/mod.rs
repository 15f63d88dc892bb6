//! Layers from directories and files: a sorted walk of the inputs, written as
//! a normalized tar, hashed (diff_id) and compressed in the same pass, the
//! compressed stream hashed (digest) and spooled to a blob file renamed to its
//! digest when complete. Sits between the spec's plan and the image builder.

use crate::image::Layer;
use std::path::PathBuf;

/// Everything that decides a layer's bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LayerRecipe {
    /// For messages and history.
    pub name: String,
    /// Applied in order; where two inputs give the same path, the later wins.
    pub inputs: Vec<LayerInput>,
    pub owner: OwnerPolicy,
    pub permissions: Permissions,
    /// Absolute in-image paths that get whiteouts over the layers below.
    pub remove: Vec<String>,
    /// mtimes are clamped to this (seconds since the Unix epoch).
    pub epoch: u64,
    pub compression: Compression,
}

/// A file or directory on disk and where it goes in the image.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LayerInput {
    /// Absolute path on disk (the plan resolves relative paths).
    pub source: PathBuf,
    /// Absolute, normalized in-image path (`/`, `/app/run`).
    pub target: String,
    /// For a file: its mode in the image. For a directory: ignored.
    pub mode: Option<u32>,
    /// Glob patterns relative to a directory source (`**/__pycache__`).
    pub exclude: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OwnerPolicy {
    /// Every entry gets this uid and gid (the default is 0:0, as `COPY` does).
    Fixed { uid: u64, gid: u64 },
    /// Each entry keeps the uid and gid it has on disk (a root filesystem).
    Preserve,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permissions {
    /// As git sees them: 0755 when the owner may execute, else 0644;
    /// directories 0755; setuid, setgid and sticky bits kept. The umask and
    /// the checkout do not change the bytes.
    Normalize,
    /// The mode bits on disk, exactly (a root filesystem).
    Preserve,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip { level: u32 },
    Zstd { level: i32 },
}

/// A finished layer: its blob on disk, descriptor and diff_id.
#[derive(Clone)]
pub struct BuiltLayer {
    pub layer: Layer,
    pub blob_path: PathBuf,
    pub uncompressed_size: u64,
    pub entries: u64,
}
