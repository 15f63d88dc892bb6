//! Layers from directories and files: a sorted walk of the inputs, written as
//! a normalized tar, hashed (diff_id) and compressed in the same pass, the
//! compressed stream hashed (digest) and spooled to a blob file renamed to its
//! digest when complete; with more than one thread the tar side runs on a
//! thread of its own ([`pipe`]). Sits between the spec's plan and the image
//! builder.

pub mod cache;
mod compress;
pub mod content_key;
pub mod gzip;
mod key_hasher;
mod pipe;
pub mod stream;
mod tar_header;
pub mod tracked;
pub(crate) mod walk;
mod writer;

use crate::image::{FileBlob, Layer};
use crate::oci::{DigestWriter, media_type};
pub use cache::{CacheError, CachedLayer, LayerCache, PruneReport};
use compress::Compressor;
pub use content_key::{LayerPlan, content_key};
pub use gzip::ParallelGzip;
use oci_spec::image::{Descriptor, MediaType};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
pub use stream::{BlobStream, StreamedBlob};
pub use tracked::TrackedFiles;
pub use writer::NEWER_THAN_EPOCH_TIME;
pub(crate) use writer::entry_mode;

use crate::progress::Observer;

/// What kind of file a disk entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
}

/// Version of hoist's output format: bumped whenever the same recipe and
/// files would give different bytes (tar encoding, block size, compressor
/// settings; in 4 what stands at the top of an image, in 5 gzip by
/// libdeflate), so cached layers of an older hoist are not reused and
/// provenance tells the two apart.
pub const FORMAT_VERSION: u32 = 5;

/// Output buffer in front of the blob file.
const WRITE_BUFFER: usize = 1 << 20;

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
    /// Seconds since the Unix epoch: an mtime up to this is kept, a later
    /// one becomes [`NEWER_THAN_EPOCH_TIME`].
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
    /// The default: a uid or gid equal to the effective uid or gid of the
    /// user running hoist (given here) is recorded as 0, any other is kept.
    /// A checkout made by a CI user comes out owned by root, as `COPY` would
    /// have it, while a root filesystem made by root keeps `root:shadow`,
    /// `_apt` and every other owner its packages gave it.
    RunningUserAsRoot { uid: u64, gid: u64 },
    /// Every entry gets this uid and gid (`owner = "UID:GID"`).
    Fixed { uid: u64, gid: u64 },
    /// Each entry keeps the uid and gid it has on disk (`owner = "preserve"`).
    Preserve,
}

impl OwnerPolicy {
    /// [`OwnerPolicy::RunningUserAsRoot`] for the user running this process.
    pub fn running_user_as_root() -> OwnerPolicy {
        OwnerPolicy::RunningUserAsRoot {
            uid: u64::from(rustix::process::geteuid().as_raw()),
            gid: u64::from(rustix::process::getegid().as_raw()),
        }
    }

    /// The uid and gid recorded for an entry owned by `uid:gid` on disk.
    pub fn owner_of(self, uid: u64, gid: u64) -> (u64, u64) {
        match self {
            OwnerPolicy::RunningUserAsRoot {
                uid: running_uid,
                gid: running_gid,
            } => (
                if uid == running_uid { 0 } else { uid },
                if gid == running_gid { 0 } else { gid },
            ),
            OwnerPolicy::Fixed { uid, gid } => (uid, gid),
            OwnerPolicy::Preserve => (uid, gid),
        }
    }

    /// The owner of entries that exist on no disk (parents, whiteouts): the
    /// fixed owner, else root.
    pub fn synthesized_owner(self) -> (u64, u64) {
        match self {
            OwnerPolicy::Fixed { uid, gid } => (uid, gid),
            OwnerPolicy::RunningUserAsRoot { .. } | OwnerPolicy::Preserve => (0, 0),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permissions {
    /// The default: a regular file git tracks gets the mode git records
    /// (0644, or 0755 for 100755), and a directory holding tracked files
    /// 0755, as any checkout makes them, so the umask does not change the
    /// bytes. Everything else (a root filesystem, build outputs) keeps its
    /// mode on disk exactly, special bits included. See [`TrackedFiles`].
    GitOrDisk,
    /// As git sees them: 0755 when the owner may execute, else 0644;
    /// directories 0755; setuid, setgid and sticky bits kept. The umask and
    /// the checkout do not change the bytes. Never at the cost of what the
    /// special bits are for: device nodes and FIFOs keep their mode, a
    /// sticky world-writable directory stays 1777, and a setuid or setgid
    /// file gains no group or other execute.
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

impl Compression {
    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => media_type::OCI_LAYER,
            Compression::Gzip { .. } => media_type::OCI_LAYER_GZIP,
            Compression::Zstd { .. } => media_type::OCI_LAYER_ZSTD,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("input {source_path} has an invalid target `{target}`: {reason}")]
    InvalidTarget {
        source_path: PathBuf,
        target: String,
        reason: String,
    },
    #[error("cannot remove `{path}`: {reason}")]
    InvalidRemove { path: String, reason: String },
    #[error("invalid exclude pattern `{pattern}`: {source}")]
    Exclude {
        pattern: String,
        source: globset::Error,
    },
    #[error("walking {path}: {source}")]
    Walk { path: PathBuf, source: io::Error },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "{path} changed while the layer was being written ({expected} bytes when listed, \
         {actual} or more when read); build again once the files are stable"
    )]
    FileChanged {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{path} needs its parent to be a directory, but {parent} is not one; \
         check the inputs' targets"
    )]
    ParentNotDirectory { path: String, parent: PathBuf },
    #[error(
        "{path}: names starting with `.wh.` mark deletions in a layer; \
         rename the file or use the layer's `remove` list"
    )]
    ReservedName { path: PathBuf },
    #[error("writing layer blob {path}: {source}")]
    WriteBlob { path: PathBuf, source: io::Error },
}

/// Builds one layer: walks the recipe's inputs, writes the normalized tar,
/// hashes it (diff_id), compresses it on `threads` threads (the bytes do not
/// depend on `threads`), hashes the result and stores it as
/// `blob_dir/<hex digest>`. Warnings (skipped sockets) go to `observer`.
/// git is asked what it tracks for this layer alone; a build of several
/// layers shares one [`TrackedFiles`] through [`build_layer_streamed`].
pub fn build_layer(
    recipe: &LayerRecipe,
    blob_dir: &Path,
    threads: usize,
    observer: &dyn Observer,
) -> Result<BuiltLayer, LayerError> {
    let tracked = TrackedFiles::new();
    build_layer_streamed(recipe, blob_dir, threads, observer, None, &tracked)
}

/// [`build_layer`], also sending the compressed bytes to `stream` while
/// they are produced (an upload that overlaps compression), with what git
/// tracks from `tracked`.
pub fn build_layer_streamed(
    recipe: &LayerRecipe,
    blob_dir: &Path,
    threads: usize,
    observer: &dyn Observer,
    stream: Option<&dyn BlobStream>,
    tracked: &TrackedFiles,
) -> Result<BuiltLayer, LayerError> {
    let started = std::time::Instant::now();
    let plan = walk::plan(recipe, tracked, observer)?;
    tracing::debug!(
        "layer {}: walked {} entries in {:.3?}",
        recipe.name,
        plan.len(),
        started.elapsed()
    );
    let result = write_layer(&plan, recipe, blob_dir, threads, stream);
    tracing::debug!(
        "layer {}: written in {:.3?}",
        recipe.name,
        started.elapsed()
    );
    result
}

/// Walks `recipe`'s inputs: what [`write_planned`] writes and
/// [`content_key`] keys. Only `lstat`; no file is read.
pub fn plan_layer(
    recipe: &LayerRecipe,
    tracked: &TrackedFiles,
    observer: &dyn Observer,
) -> Result<LayerPlan, LayerError> {
    Ok(LayerPlan {
        entries: walk::plan(recipe, tracked, observer)?,
    })
}

/// Writes a walked layer into `blob_dir`, as [`build_layer_streamed`] does.
pub fn write_planned(
    plan: &LayerPlan,
    recipe: &LayerRecipe,
    blob_dir: &Path,
    threads: usize,
    stream: Option<&dyn BlobStream>,
) -> Result<BuiltLayer, LayerError> {
    write_layer(&plan.entries, recipe, blob_dir, threads, stream)
}

fn write_layer(
    plan: &walk::Plan,
    recipe: &LayerRecipe,
    blob_dir: &Path,
    threads: usize,
    stream: Option<&dyn BlobStream>,
) -> Result<BuiltLayer, LayerError> {
    let blob_error = |path: &Path| {
        let path = path.to_path_buf();
        move |error: io::Error| LayerError::WriteBlob {
            path,
            source: error,
        }
    };
    std::fs::create_dir_all(blob_dir).map_err(blob_error(blob_dir))?;
    // Readable by all like every other blob of a layout it is linked into
    // (a temporary file is 0600 by default).
    let temporary = tempfile::Builder::new()
        .prefix(".layer-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(blob_dir)
        .map_err(blob_error(blob_dir))?;
    let temporary_path = temporary.path().to_path_buf();
    let file = temporary
        .as_file()
        .try_clone()
        .map_err(blob_error(&temporary_path))?;
    let stream = stream.map(|stream| stream.start());
    let spool = DigestWriter::new(BufWriter::with_capacity(
        WRITE_BUFFER,
        stream::Tee::new(file, stream),
    ));

    let (diff_id, uncompressed_size, digest, size, entries, spool) = match recipe.compression {
        // The blob is the tar: one hash serves as diff_id and digest.
        Compression::None => {
            let mut tar_stream = spool;
            let entries = writer::write_tar(plan, recipe, &mut tar_stream, &temporary_path)?;
            let (spool, diff_id, uncompressed_size) = tar_stream.finish();
            (
                diff_id.clone(),
                uncompressed_size,
                diff_id,
                uncompressed_size,
                entries,
                spool,
            )
        }
        compression => {
            let mut compressor = Compressor::new(spool, compression, threads)
                .map_err(blob_error(&temporary_path))?;
            let write_tar = |out: &mut dyn io::Write| {
                let mut tar_stream = DigestWriter::new(out);
                let entries = writer::write_tar(plan, recipe, &mut tar_stream, &temporary_path)?;
                let (_, diff_id, uncompressed_size) = tar_stream.finish();
                Ok((entries, diff_id, uncompressed_size))
            };
            // With threads to spare, files are read and the diff_id hashed on
            // a thread of their own, ahead of the compressor's feeder.
            let (entries, diff_id, uncompressed_size) = if threads > 1 {
                pipe::piped(
                    &temporary_path,
                    |pipe| write_tar(pipe),
                    |piece| io::Write::write_all(&mut compressor, piece),
                )?
            } else {
                write_tar(&mut compressor)?
            };
            let spool = compressor.finish().map_err(blob_error(&temporary_path))?;
            let (spool, digest, size) = spool.finish();
            (diff_id, uncompressed_size, digest, size, entries, spool)
        }
    };
    let tee = spool
        .into_inner()
        .map_err(|error| blob_error(&temporary_path)(error.into_error()))?;
    let stream = tee.into_stream();

    let blob_path = blob_dir.join(digest.digest());
    match temporary.persist_noclobber(&blob_path) {
        Ok(_) => {}
        // Same digest, same bytes: the blob is already there.
        Err(error) if error.error.kind() == io::ErrorKind::AlreadyExists => drop(error.file),
        Err(error) => return Err(blob_error(&blob_path)(error.error)),
    }

    let descriptor = Descriptor::new(
        MediaType::from(recipe.compression.media_type()),
        size,
        digest,
    );
    if let Some(stream) = stream {
        stream.finish(&descriptor);
    }
    Ok(BuiltLayer {
        layer: Layer {
            blob: Arc::new(FileBlob::new(descriptor, blob_path.clone())),
            diff_id,
        },
        blob_path,
        uncompressed_size,
        entries,
    })
}
