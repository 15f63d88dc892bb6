//! Events the pipeline reports as it goes. The library never prints: the CLI
//! turns these into progress bars, JSON lines or nothing.

use crate::oci::Digest;

#[derive(Clone, Debug)]
pub enum Event {
    /// A layer is being built for an image and platform.
    LayerStarted {
        image: String,
        platform: String,
        layer: String,
    },
    /// A layer is done; `cached` when it came from the layer cache.
    LayerDone {
        image: String,
        platform: String,
        layer: String,
        digest: Digest,
        size: u64,
        cached: bool,
    },
    /// A blob's content is being read for a sink (an upload or a copy);
    /// `bytes` is how much of it has been read so far on this attempt.
    BlobProgress {
        digest: Digest,
        bytes: u64,
        size: u64,
    },
    /// A blob reached a sink.
    BlobDone {
        digest: Digest,
        size: u64,
        outcome: BlobOutcome,
    },
    /// A non-fatal problem worth telling the user (a skipped socket, a cataloger that failed).
    Warning { message: String },
    /// `--changed` or `skip-unchanged`: the image at `target` was built from
    /// the same `inputs`, so it is not built again.
    ImageUnchanged {
        image: String,
        target: String,
        inputs: Digest,
        digest: Digest,
    },
    /// `--changed` or `skip-unchanged`: the image at `target` was built from
    /// other inputs (or is not there), so it is built.
    ImageChanged {
        image: String,
        target: String,
        inputs: Digest,
    },
    /// One platform of an image is built (not yet written anywhere).
    ImageBuilt {
        image: String,
        platform: String,
        digest: Digest,
        size: u64,
        layers: usize,
    },
    /// An image reached an output; the counts are of its blobs.
    ImageWritten {
        image: String,
        output: String,
        /// The output is a registry (a push).
        registry: bool,
        digest: Digest,
        tags: Vec<String>,
        uploaded: usize,
        bytes: u64,
        mounted: usize,
        existed: usize,
        /// Of those, uploaded while the image was built.
        streamed: usize,
    },
    /// An image `--changed` skipped now has this run's `tags` too: a copy of
    /// its manifest under each, no blob moved.
    ImageRetagged {
        image: String,
        repository: String,
        digest: Digest,
        tags: Vec<String>,
    },
    /// A dry run: what a push would have pushed.
    WouldPush {
        image: String,
        repository: String,
        digest: Digest,
        tags: Vec<String>,
    },
}

/// How a blob reached a sink. Defined here, below `image`, because both
/// [`Event::BlobDone`] and the `Sink` trait of `image::publish` speak of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobOutcome {
    Uploaded,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// The sink had it already.
    Existed,
}

/// Receives events; implementations must be cheap and thread-safe.
pub trait Observer: Send + Sync {
    fn event(&self, event: Event);
}

/// Discards every event.
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _event: Event) {}
}

/// Keeps every event, for tests.
#[derive(Default)]
pub struct Recorder(pub std::sync::Mutex<Vec<Event>>);

impl Observer for Recorder {
    fn event(&self, event: Event) {
        self.0.lock().expect("recorder lock").push(event);
    }
}
