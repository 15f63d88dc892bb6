//! Layers pushed while they are compressed. When a build's only output is a
//! registry, each layer's compressed bytes go to a streamed upload as they
//! come out of the compressor, through a bounded queue to a thread of their
//! own so the network never stalls compression; the digest is given on the
//! closing PUT. The producer does not wait for that PUT: the image config
//! is made and published while the registry closes the upload, and
//! [`StreamedSink`] waits for the stream only when `publish` reaches the
//! layer, so the tail of a push is one round trip shorter. An upload opens
//! only once a layer has filled its first piece: a smaller layer is done
//! before a stream would help, and `publish` first asks whether the
//! registry has it (a rebuilt small layer usually is there already). Any
//! failure here is logged, not raised: the blob is then uploaded by
//! `publish` from its file, with the usual retries.

use super::transport::{TransportError, Transports, parse_reference};
use crate::layer::{BlobStream, StreamedBlob};
use crate::oci::{Digest, Location};
use crate::registry::{RegistrySink, StreamPiece};
use bytes::Bytes;
use oci_spec::image::Descriptor;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use tokio::sync::mpsc::{Receiver, Sender, channel};

/// Bytes handed to the upload thread at a time.
const PIECE: usize = 1 << 20;
/// Pieces waiting for the upload thread: while the upload is being opened,
/// or when the network is slower than compression. Past this the compressor
/// waits, so memory stays bounded.
const QUEUED_PIECES: usize = 16;

/// Streams layers into one registry repository.
pub struct RegistryStream {
    sink: RegistrySink,
    streamed: Arc<Mutex<Vec<Descriptor>>>,
    /// Uploads whose producer has finished and whose closing PUT may still
    /// be under way, by the digest it names.
    closing: Closing,
}

/// Upload threads whose producer has finished, with the digest each names.
type Closing = Arc<Mutex<Vec<(Digest, JoinHandle<()>)>>>;

impl RegistryStream {
    pub fn new(sink: RegistrySink) -> Self {
        RegistryStream {
            sink,
            streamed: Arc::default(),
            closing: Arc::default(),
        }
    }

    /// The stream for a registry location; `None` for any other location.
    pub fn for_location(
        transports: &Transports,
        location: &Location,
    ) -> Result<Option<Self>, TransportError> {
        let Location::Registry { reference } = location else {
            return Ok(None);
        };
        let reference = parse_reference(reference)?;
        let client = transports.registry()?.clone();
        Ok(Some(RegistryStream::new(RegistrySink::new(
            client, reference,
        ))))
    }

    /// The blobs stored in the registry while they were built, once every
    /// closing upload has ended.
    pub fn streamed(&self) -> Vec<Descriptor> {
        self.wait(|_| true);
        self.streamed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// True when a finished layer with this digest was streamed or is
    /// being closed.
    fn covers(&self, digest: &Digest) -> bool {
        self.closing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|(closing, _)| closing == digest)
            || self.stored(digest)
    }

    /// Waits for the uploads of `digest` to end; true when the registry
    /// stored it.
    fn wait_for(&self, digest: &Digest) -> bool {
        self.wait(|closing| closing == digest);
        self.stored(digest)
    }

    fn stored(&self, digest: &Digest) -> bool {
        self.streamed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|streamed| streamed.digest() == digest)
    }

    /// Joins the closing uploads `which` picks, outside the lock so other
    /// layers can still be added and waited for.
    fn wait(&self, which: impl Fn(&Digest) -> bool) {
        let picked: Vec<JoinHandle<()>> = {
            let mut closing = self.closing.lock().unwrap_or_else(PoisonError::into_inner);
            let (picked, kept) = std::mem::take(&mut *closing)
                .into_iter()
                .partition(|(digest, _)| which(digest));
            *closing = kept;
            picked.into_iter().map(|(_, worker)| worker).collect()
        };
        for worker in picked {
            if worker.join().is_err() {
                tracing::warn!("a streamed layer upload panicked");
            }
        }
    }
}

impl BlobStream for RegistryStream {
    fn start(&self) -> Box<dyn StreamedBlob> {
        Box::new(StreamedUpload {
            pending: Some(PendingUpload {
                sink: self.sink.clone(),
                streamed: Arc::clone(&self.streamed),
            }),
            sender: None,
            piece: Vec::with_capacity(PIECE),
            worker: None,
            closing: Arc::clone(&self.closing),
        })
    }
}

impl Drop for RegistryStream {
    /// A build that fails after some layers were finished still lets their
    /// closing PUTs end, so no upload is cut off half-way.
    fn drop(&mut self) {
        self.wait(|_| true);
    }
}

/// The producer's end of one blob's upload.
struct StreamedUpload {
    /// What the upload thread needs, until the first full piece starts it.
    pending: Option<PendingUpload>,
    /// `None` before the upload starts and once its thread has stopped (or
    /// could not start): what follows is dropped, and publish uploads the
    /// blob from its file.
    sender: Option<Sender<StreamPiece>>,
    piece: Vec<u8>,
    worker: Option<JoinHandle<()>>,
    closing: Closing,
}

/// An upload not opened yet.
struct PendingUpload {
    sink: RegistrySink,
    streamed: Arc<Mutex<Vec<Descriptor>>>,
}

impl StreamedUpload {
    /// Starts the upload thread; on failure the blob is not streamed.
    fn open(&mut self, pending: PendingUpload) {
        let (sender, receiver) = channel(QUEUED_PIECES);
        let PendingUpload { sink, streamed } = pending;
        let worker = std::thread::Builder::new()
            .name("hoist-stream".to_string())
            .spawn(move || upload(&sink, receiver, &streamed));
        match worker {
            Ok(worker) => {
                self.sender = Some(sender);
                self.worker = Some(worker);
            }
            Err(error) => tracing::warn!("cannot start a thread to stream a layer: {error}"),
        }
    }

    fn send(&mut self, piece: StreamPiece) {
        if let Some(sender) = &self.sender
            && sender.blocking_send(piece).is_err()
        {
            // The upload thread said why it stopped.
            self.sender = None;
        }
    }

    fn send_piece(&mut self) {
        if let Some(pending) = self.pending.take() {
            self.open(pending);
        }
        let piece = std::mem::replace(&mut self.piece, Vec::with_capacity(PIECE));
        self.send(StreamPiece::Bytes(Bytes::from(piece)));
    }
}

impl Write for StreamedUpload {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        if self.sender.is_none() && self.pending.is_none() {
            return Ok(buffer.len());
        }
        let taken = (PIECE - self.piece.len()).min(buffer.len());
        self.piece.extend_from_slice(&buffer[..taken]);
        if self.piece.len() == PIECE {
            self.send_piece();
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl StreamedBlob for StreamedUpload {
    fn finish(mut self: Box<Self>, descriptor: &Descriptor) {
        if self.pending.is_some() {
            // The whole blob fits in one piece and no upload was opened:
            // publish pushes it, after asking whether the registry has it.
            return;
        }
        if !self.piece.is_empty() {
            self.send_piece();
        }
        self.send(StreamPiece::End(Box::new(descriptor.clone())));
        self.sender = None;
        if let Some(worker) = self.worker.take() {
            self.closing
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((descriptor.digest().clone(), worker));
        }
    }
}

/// The upload thread: one streamed upload, recorded when the registry has
/// stored the blob. Dropped without [`StreamPiece::End`] (the layer failed),
/// the upload is abandoned.
fn upload(sink: &RegistrySink, pieces: Receiver<StreamPiece>, streamed: &Mutex<Vec<Descriptor>>) {
    match sink.upload_streamed(pieces) {
        Ok(descriptor) => streamed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(descriptor),
        Err(error) => tracing::info!("{error}; the layer will be pushed once it is built"),
    }
}

/// The sink a streamed build publishes through: a layer that was streamed
/// counts as uploaded (it was, while building) instead of as found, so
/// reports and progress say what happened, and `publish` waits for its
/// closing PUT only when it reaches it, while the config goes up beside
/// it; everything else goes to `inner`.
pub struct StreamedSink<'a> {
    inner: &'a dyn crate::image::Sink,
    stream: Option<&'a RegistryStream>,
}

impl<'a> StreamedSink<'a> {
    pub fn new(inner: &'a dyn crate::image::Sink, stream: Option<&'a RegistryStream>) -> Self {
        StreamedSink { inner, stream }
    }

    fn was_streamed(&self, descriptor: &Descriptor) -> bool {
        self.stream
            .is_some_and(|stream| stream.covers(descriptor.digest()))
    }
}

impl crate::image::Sink for StreamedSink<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn has_blob(&self, descriptor: &Descriptor) -> Result<bool, crate::image::SinkError> {
        if self.was_streamed(descriptor) {
            // `put_blob` waits for the stream and says what it did.
            return Ok(false);
        }
        self.inner.has_blob(descriptor)
    }

    fn put_blob(
        &self,
        blob: &dyn crate::image::Blob,
    ) -> Result<crate::image::publish::BlobOutcome, crate::image::SinkError> {
        if let Some(stream) = self.stream
            && stream.covers(blob.digest())
        {
            if stream.wait_for(blob.digest()) {
                // The closing PUT of the streamed upload named this digest,
                // and the registry verified it then.
                return Ok(crate::image::publish::BlobOutcome::Uploaded);
            }
            // The stream failed: the blob goes up from its file, unless the
            // registry had it all along.
            if self.inner.has_blob(blob.descriptor())? {
                return Ok(crate::image::publish::BlobOutcome::Existed);
            }
        }
        self.inner.put_blob(blob)
    }

    fn has_manifest(&self, descriptor: &Descriptor) -> Result<bool, crate::image::SinkError> {
        self.inner.has_manifest(descriptor)
    }

    fn put_manifest(
        &self,
        manifest: &crate::image::BytesBlob,
        role: crate::image::publish::ManifestRole<'_>,
    ) -> Result<(), crate::image::SinkError> {
        self.inner.put_manifest(manifest, role)
    }

    fn name_tags(&self, names: &[(String, String)]) {
        self.inner.name_tags(names);
    }

    fn finish(&self) -> Result<(), crate::image::SinkError> {
        self.inner.finish()
    }

    fn accepts_index(&self) -> bool {
        self.inner.accepts_index()
    }

    fn transfers(&self) -> usize {
        self.inner.transfers()
    }

    fn tags_at_once(&self) -> bool {
        self.inner.tags_at_once()
    }
}
