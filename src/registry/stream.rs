//! Pushing a blob while it is being produced (a layer still compressing):
//! the bytes go up in one PATCH whose body is fed as they arrive, and the
//! digest is given on the closing PUT. The first few MiB are held back
//! until there are enough for registries that refuse small PATCHes (ECR); a
//! blob that ends before then goes up in a single PUT. One attempt: a
//! failed stream is reported, and the caller uploads the finished blob
//! from its file with the usual retries.

use super::blobs;
use super::client::MINIMUM_CHUNK;
use super::error::RegistryError;
use super::sink::RegistrySink;
use super::transport::{Context, Scopes};
use bytes::Bytes;
use oci_spec::image::Descriptor;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::mpsc::Receiver;

/// What the producer of a streamed blob sends: its bytes in order, then
/// the descriptor of the finished blob. A channel that closes before
/// [`StreamPiece::End`] means the blob was abandoned.
pub enum StreamPiece {
    Bytes(Bytes),
    End(Box<Descriptor>),
}

impl RegistrySink {
    /// Uploads the blob whose pieces arrive on `pieces`, on the calling
    /// thread; returns its descriptor once the registry has stored it.
    pub fn upload_streamed(
        &self,
        mut pieces: Receiver<StreamPiece>,
    ) -> Result<Descriptor, RegistryError> {
        let client = self.client();
        let transport = &client.transport;
        let reference = self.reference();
        let host = reference.api_host();
        let scopes = Scopes::push(&reference.repository);
        let context = Context::new("streaming a blob to", reference);
        let failed = |reason: String| RegistryError::Stream {
            target: reference.to_string(),
            reason,
        };
        client.block_on(async {
            let session =
                blobs::start_upload(transport, host, &reference.repository, &scopes, &context)
                    .await?;
            let threshold = MINIMUM_CHUNK.max(session.minimum_chunk.unwrap_or(0)) as usize;
            let mut held = Vec::new();
            let mut held_size = 0usize;
            let ended = loop {
                match pieces.recv().await {
                    Some(StreamPiece::Bytes(bytes)) => {
                        held_size += bytes.len();
                        held.push(bytes);
                        if held_size >= threshold {
                            break None;
                        }
                    }
                    Some(StreamPiece::End(descriptor)) => break Some(descriptor),
                    None => return Err(failed(ABANDONED.to_string())),
                }
            };

            // Where to PUT, the blob, what the PUT carries, and how many
            // bytes went up in all.
            let (location, descriptor, body, sent) = match ended {
                // Small enough to hold: one PUT with the whole blob.
                Some(descriptor) => {
                    let body: Vec<u8> = held.concat();
                    let sent = body.len() as u64;
                    (session.location, descriptor, body, sent)
                }
                None => {
                    let progress = Arc::new(BodyProgress {
                        sent: AtomicU64::new(held_size as u64),
                        ..BodyProgress::default()
                    });
                    let body = body_stream(held, pieces, Arc::clone(&progress));
                    let patched = blobs::patch_stream(
                        transport,
                        host,
                        &scopes,
                        &context,
                        &session.location,
                        reqwest::Body::wrap_stream(body),
                    )
                    .await;
                    // A body cut short by the producer fails the request;
                    // say why rather than how.
                    if progress.abandoned.load(Ordering::Relaxed) {
                        return Err(failed(ABANDONED.to_string()));
                    }
                    let location = patched?;
                    let descriptor = progress
                        .end
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take()
                        .ok_or_else(|| failed(ABANDONED.to_string()))?;
                    let sent = progress.sent.load(Ordering::Relaxed);
                    (location, descriptor, Vec::new(), sent)
                }
            };
            if sent != descriptor.size() {
                return Err(failed(format!(
                    "sent {sent} bytes of a {}-byte blob",
                    descriptor.size()
                )));
            }
            let length = body.len() as u64;
            blobs::finish_upload(
                transport,
                host,
                &scopes,
                &Context::new(
                    "pushing blob",
                    reference.with_digest(descriptor.digest().clone()),
                ),
                &location,
                descriptor.digest(),
                length,
                reqwest::Body::from(body),
            )
            .await?;
            Ok(*descriptor)
        })
    }
}

const ABANDONED: &str = "the blob was abandoned before it was complete";

/// What the PATCH body has seen, for after the request.
#[derive(Default)]
struct BodyProgress {
    sent: AtomicU64,
    /// The descriptor [`StreamPiece::End`] brought.
    end: Mutex<Option<Box<Descriptor>>>,
    /// The channel closed before the end.
    abandoned: AtomicBool,
}

/// The PATCH body: the held pieces, then the rest as it arrives. Ends at
/// [`StreamPiece::End`]; a channel closed before that ends the body with an
/// error, so the registry never sees a short blob as complete.
fn body_stream(
    held: Vec<Bytes>,
    pieces: Receiver<StreamPiece>,
    progress: Arc<BodyProgress>,
) -> impl futures_util::Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    let held = futures_util::stream::iter(held.into_iter().map(Ok));
    let rest = futures_util::stream::unfold(Some(pieces), move |pieces| {
        let progress = Arc::clone(&progress);
        async move {
            let mut pieces = pieces?;
            match pieces.recv().await {
                Some(StreamPiece::Bytes(bytes)) => {
                    progress
                        .sent
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    Some((Ok(bytes), Some(pieces)))
                }
                Some(StreamPiece::End(descriptor)) => {
                    *progress.end.lock().unwrap_or_else(PoisonError::into_inner) = Some(descriptor);
                    None
                }
                None => {
                    progress.abandoned.store(true, Ordering::Relaxed);
                    Some((Err(io::Error::other(ABANDONED)), None))
                }
            }
        }
    });
    futures_util::StreamExt::chain(held, rest)
}
