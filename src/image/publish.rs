//! The one publish driver: any [`Manifest`] tree to any [`Sink`]. Blobs go
//! first (in parallel, skipping what the sink has), then child manifests (a
//! level at a time, in parallel), then the top manifest under each of its
//! tags (side by side where the sink keeps no order among them), so a tag
//! never points at anything incomplete.

use super::blob::{Blob, BytesBlob};
use super::model::Manifest;
use crate::oci::Digest;
use crate::parallel::for_each_at_once;
pub use crate::progress::BlobOutcome;
use crate::progress::{Event, Observer};
use oci_spec::image::Descriptor;
use std::collections::HashSet;
use std::error::Error as StdError;
use std::io::Read;

/// Where an image goes: an OCI layout, an archive, a registry.
pub trait Sink: Send + Sync {
    /// For messages: `oci:out`, `docker://localhost:5000/app`.
    fn describe(&self) -> String;

    fn has_blob(&self, descriptor: &Descriptor) -> Result<bool, SinkError>;

    /// Stores a blob. Called at most once per digest per publish.
    fn put_blob(&self, blob: &dyn Blob) -> Result<BlobOutcome, SinkError>;

    /// True when the sink already holds this manifest, so it need not be sent.
    fn has_manifest(&self, _descriptor: &Descriptor) -> Result<bool, SinkError> {
        Ok(false)
    }

    /// Stores a manifest or index whose blobs and children are all stored.
    fn put_manifest(&self, manifest: &BytesBlob, role: ManifestRole<'_>) -> Result<(), SinkError>;

    /// Commits: a layout writes `index.json`, an archive closes its file.
    /// Nothing is visible at the destination before this succeeds.
    fn finish(&self) -> Result<(), SinkError>;

    /// False for sinks that hold one image only (docker-archive).
    fn accepts_index(&self) -> bool {
        true
    }

    /// How many blobs or manifests to store at once. Local sinks are bound
    /// by the cores; a registry by round trips, so it takes more.
    fn transfers(&self) -> usize {
        rayon::current_num_threads()
    }

    /// The full reference each tag of the top manifest stands for, as
    /// (tag, `REPOSITORY:TAG`), told before `publish`: a layout records it
    /// beside the tag (`io.containerd.image.name`), so `ctr images import`
    /// names the image; other sinks have nowhere to put it.
    fn name_tags(&self, _names: &[(String, String)]) {}

    /// True when the top manifest's tags may be stored side by side because
    /// nothing the sink writes shows their order (a registry). A layout
    /// lists them in `index.json` in the order given.
    fn tags_at_once(&self) -> bool {
        false
    }
}

/// Whether a manifest is listed by another one or is what the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestRole<'a> {
    /// Listed by an index in the same publish; stored by digest only.
    Child,
    /// The top of the tree, stored under `tag` (or untagged).
    Top { tag: Option<&'a str> },
}

/// A sink operation that failed, naming the sink and what it was doing.
#[derive(Debug, thiserror::Error)]
#[error("{sink}: {operation} {target}")]
pub struct SinkError {
    pub sink: String,
    pub operation: &'static str,
    pub target: String,
    #[source]
    pub source: Box<dyn StdError + Send + Sync>,
}

impl SinkError {
    pub fn new(
        sink: impl Into<String>,
        operation: &'static str,
        target: impl ToString,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        SinkError {
            sink: sink.into(),
            operation,
            target: target.to_string(),
            source: source.into(),
        }
    }
}

/// What a publish did.
#[derive(Clone, Debug, Default)]
pub struct PublishReport {
    pub uploaded: Vec<Digest>,
    pub mounted: Vec<Digest>,
    pub existed: Vec<Digest>,
    pub bytes_sent: u64,
    pub manifests_sent: usize,
    pub manifests_existed: usize,
}

/// Publishes `top` and everything below it to `sink`, tagging the top with
/// each of `tags` (or leaving it untagged), then finishes the sink.
pub fn publish(
    top: &Manifest,
    sink: &dyn Sink,
    tags: &[String],
    observer: &dyn Observer,
) -> Result<PublishReport, SinkError> {
    if top.is_index() && !sink.accepts_index() {
        return Err(SinkError::new(
            sink.describe(),
            "writing",
            top.digest(),
            "this output holds a single image, not a multi-platform index: choose one with --platform",
        ));
    }
    let mut report = PublishReport::default();

    // Blobs: unique by digest, in tree order, uploaded in parallel.
    let mut seen = HashSet::new();
    let blobs: Vec<&dyn Blob> = top
        .images()
        .into_iter()
        .flat_map(|image| image.blobs())
        .filter(|blob| seen.insert(blob.digest().clone()))
        .collect();
    let outcomes: Vec<(Digest, u64, BlobOutcome)> =
        for_each_at_once(&blobs, sink.transfers(), |blob| {
            let outcome = if sink.has_blob(blob.descriptor())? {
                BlobOutcome::Existed
            } else {
                sink.put_blob(&ProgressBlob {
                    inner: *blob,
                    observer,
                })?
            };
            observer.event(Event::BlobDone {
                digest: blob.digest().clone(),
                size: blob.size(),
                outcome,
            });
            Ok((blob.digest().clone(), blob.size(), outcome))
        })?;
    for (digest, size, outcome) in outcomes {
        match outcome {
            BlobOutcome::Uploaded => {
                report.bytes_sent += size;
                report.uploaded.push(digest);
            }
            BlobOutcome::Mounted => report.mounted.push(digest),
            BlobOutcome::Existed => report.existed.push(digest),
        }
    }

    // Manifests: children before the index that lists them, the deepest
    // first and each level side by side. A manifest that lists a blob or a
    // manifest the sink did not have cannot be there already, so only the
    // others are asked for.
    let mut new: HashSet<Digest> = report
        .uploaded
        .iter()
        .chain(&report.mounted)
        .cloned()
        .collect();
    let mut levels = Vec::new();
    collect_children(top, 0, &mut levels);
    let mut seen = HashSet::new();
    for level in levels.iter().rev() {
        let level: Vec<&Manifest> = level
            .iter()
            .copied()
            .filter(|child| seen.insert(child.digest().clone()))
            .collect();
        let sent: Vec<bool> = for_each_at_once(&level, sink.transfers(), |child| {
            if !lists_any(child, &new) && sink.has_manifest(child.descriptor())? {
                return Ok(false);
            }
            sink.put_manifest(child.manifest_blob(), ManifestRole::Child)?;
            Ok(true)
        })?;
        for (child, sent) in level.iter().zip(sent) {
            if sent {
                report.manifests_sent += 1;
                new.insert(child.digest().clone());
            } else {
                report.manifests_existed += 1;
            }
        }
    }
    let top_blob = top.manifest_blob();
    if tags.is_empty() {
        sink.put_manifest(top_blob, ManifestRole::Top { tag: None })?;
    } else {
        let workers = if sink.tags_at_once() {
            sink.transfers()
        } else {
            1
        };
        for_each_at_once(tags, workers, |tag| {
            sink.put_manifest(top_blob, ManifestRole::Top { tag: Some(tag) })
        })?;
    }
    report.manifests_sent += 1;
    sink.finish()?;
    Ok(report)
}

/// A blob whose readers report how far they have got, so a terminal can show
/// bytes and rate per upload. Everything else is the wrapped blob's.
struct ProgressBlob<'a> {
    inner: &'a dyn Blob,
    observer: &'a dyn Observer,
}

impl Blob for ProgressBlob<'_> {
    fn descriptor(&self) -> &Descriptor {
        self.inner.descriptor()
    }

    fn open(&self) -> std::io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(ProgressReader {
            inner: self.inner.open()?,
            blob: self,
            read: 0,
            reported: 0,
        }))
    }

    fn local_path(&self) -> Option<&std::path::Path> {
        self.inner.local_path()
    }

    fn local_path_trusted(&self) -> bool {
        self.inner.local_path_trusted()
    }

    fn origin(&self) -> Option<&super::blob::BlobOrigin> {
        self.inner.origin()
    }
}

struct ProgressReader<'a> {
    inner: Box<dyn Read + Send + 'a>,
    blob: &'a ProgressBlob<'a>,
    read: u64,
    reported: u64,
}

/// Report at most once per this many bytes: often enough for a progress
/// bar, rarely enough to cost nothing.
const PROGRESS_STEP: u64 = 256 * 1024;

impl Read for ProgressReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = self.inner.read(buffer)?;
        self.read += count as u64;
        if self.read - self.reported >= PROGRESS_STEP || (count == 0 && self.read > self.reported) {
            self.reported = self.read;
            self.blob.observer.event(Event::BlobProgress {
                digest: self.blob.digest().clone(),
                bytes: self.read,
                size: self.blob.size(),
            });
        }
        Ok(count)
    }
}

/// The manifests below `manifest` (not `manifest` itself) by depth: the
/// children of `manifest` first, then theirs.
fn collect_children<'a>(manifest: &'a Manifest, depth: usize, levels: &mut Vec<Vec<&'a Manifest>>) {
    if let Manifest::Index(index) = manifest {
        if levels.len() <= depth {
            levels.push(Vec::new());
        }
        for child in &index.children {
            levels[depth].push(child);
            collect_children(child, depth + 1, levels);
        }
    }
}

/// True when `manifest` lists a blob or a manifest whose digest is in `digests`.
fn lists_any(manifest: &Manifest, digests: &HashSet<Digest>) -> bool {
    match manifest {
        Manifest::Image(image) => image.blobs().any(|blob| digests.contains(blob.digest())),
        Manifest::Index(index) => index
            .children
            .iter()
            .any(|child| digests.contains(child.digest())),
    }
}
