//! Pushing a blob while it is being produced (a layer still compressing).
//! Each chunk is a PATCH whose body streams out as the bytes arrive, so the
//! registry hashes and stores them while the producer works; a chunk ends
//! once it holds the client's chunk size (16 MiB unless set otherwise,
//! never below what the registry takes), and the next begins, so no request
//! grows unbounded and a failed chunk can be sent again from the bytes kept
//! for it. Each chunk boundary costs a round trip in which no bytes flow,
//! so chunks are as large as that memory allows, not the 5 MiB minimum.
//! When the producer finishes, the chunk in flight ends as the last part and an empty
//! PUT names the digest: what is left then is one request's worth of closing
//! up, not a chunk's worth of bytes. A chunk that fails for a passing reason
//! is resumed from the bytes kept for it at the registry's offset; anything
//! worse cancels the upload and is reported, and the caller uploads the
//! finished blob from its file.

use super::error::RegistryError;
use super::repository::blobs;
use super::repository::upload::{Chunk, resume_chunk};
use super::sink::RegistrySink;
use super::transport::{Call, Context, Transport};
use bytes::{Bytes, BytesMut};
use oci_spec::image::Descriptor;
use reqwest::Url;
use std::io;
use tokio::sync::mpsc::{self, Receiver};

/// What the producer of a streamed blob sends: its bytes in order, then
/// the descriptor of the finished blob. A channel that closes before
/// [`StreamPiece::End`] means the blob was abandoned.
pub enum StreamPiece {
    Bytes(Bytes),
    End(Box<Descriptor>),
}

/// Pieces buffered between the producer's channel and a PATCH body.
const BODY_QUEUE: usize = 4;

/// How the producer's stream stood when a chunk ended.
enum ChunkEnd {
    /// The chunk is full; more may follow (bytes past the chunk's end are
    /// carried into the next one).
    Full { carry: Option<Bytes> },
    /// The producer finished; this was the last chunk.
    Finished(Box<Descriptor>),
    /// The producer went away before finishing.
    Abandoned,
}

/// One streamed chunk: its pieces (kept to resume it), how it ended, and
/// the PATCH's answer.
struct StreamedChunk {
    pieces: Vec<Bytes>,
    length: usize,
    end: ChunkEnd,
    answer: Result<Url, RegistryError>,
}

/// A chunk's pieces in one, made only when the chunk must be sent again.
fn joined(pieces: &[Bytes], length: usize) -> Bytes {
    let mut bytes = BytesMut::with_capacity(length);
    for piece in pieces {
        bytes.extend_from_slice(piece);
    }
    bytes.freeze()
}

impl RegistrySink {
    /// Uploads the blob whose pieces arrive on `pieces`, on the calling
    /// thread (not one of the client's runtime); returns its descriptor
    /// once the registry has stored it.
    pub fn upload_streamed(
        &self,
        mut pieces: Receiver<StreamPiece>,
    ) -> Result<Descriptor, RegistryError> {
        let repository = self.repository();
        let client = repository.client();
        let transport = &client.transport;
        let reference = self.reference();
        let context = Context::new("streaming a blob to", reference);
        let scopes = repository.push_scopes(&context)?;
        let call = repository.call(&scopes, &context);
        let failed = |reason: String| RegistryError::Stream {
            target: reference.to_string(),
            reason,
        };
        let session = client.block_on(blobs::start_upload(repository, call))?;
        let chunk_size = session.chunk_size(transport.options.chunk_size);
        let mut location = session.location;
        let mut offset = 0u64;
        let mut carry: Option<Bytes> = None;
        let received = loop {
            // A chunk's PATCH starts with its first bytes, so a blob that
            // ends on a chunk boundary sends no empty PATCH.
            let first = match carry.take() {
                Some(bytes) => bytes,
                None => match pieces.blocking_recv() {
                    Some(StreamPiece::Bytes(bytes)) if bytes.is_empty() => continue,
                    Some(StreamPiece::Bytes(bytes)) => bytes,
                    Some(StreamPiece::End(descriptor)) => break Ok(descriptor),
                    None => break Err(failed(ABANDONED.to_string())),
                },
            };
            let StreamedChunk {
                pieces: kept,
                length,
                end,
                answer,
            } = client.block_on(stream_chunk(
                transport,
                call,
                &location,
                &mut pieces,
                first,
                chunk_size,
            ));
            let chunk_start = offset;
            offset += length as u64;
            location = match answer {
                Ok(next) => next,
                Err(error) if !matches!(end, ChunkEnd::Abandoned) => match resume_chunk(
                    client,
                    call,
                    Chunk {
                        location: location.clone(),
                        start: chunk_start,
                        bytes: joined(&kept, length),
                    },
                    error,
                ) {
                    Ok(next) => next,
                    Err(error) => break Err(error),
                },
                Err(error) => break Err(error),
            };
            match end {
                ChunkEnd::Full { carry: rest } => carry = rest,
                ChunkEnd::Finished(descriptor) => break Ok(descriptor),
                ChunkEnd::Abandoned => break Err(failed(ABANDONED.to_string())),
            }
        };
        let finished = received.and_then(|descriptor| {
            if offset != descriptor.size() {
                return Err(failed(format!(
                    "sent {offset} bytes of a {}-byte blob",
                    descriptor.size()
                )));
            }
            client
                .block_on(blobs::finish_upload(
                    transport,
                    repository.call(
                        &scopes,
                        &Context::new(
                            "pushing blob",
                            reference.with_digest(descriptor.digest().clone()),
                        ),
                    ),
                    &location,
                    descriptor.digest(),
                    0,
                    reqwest::Body::from(Bytes::new()),
                ))
                .map(|()| *descriptor)
        });
        if finished.is_err() {
            client.block_on(blobs::cancel_upload(transport, call, &location));
        }
        finished
    }
}

/// Streams one chunk: a PATCH whose body is fed from `pieces`, starting with
/// `first`, until it holds `chunk_size` bytes or the producer finishes.
/// Keeps feeding (and keeping) the chunk's bytes even when the PATCH has
/// already failed, so the chunk can be resumed (`upload::resume_chunk`).
async fn stream_chunk(
    transport: &Transport,
    call: Call<'_>,
    location: &Url,
    pieces: &mut Receiver<StreamPiece>,
    first: Bytes,
    chunk_size: usize,
) -> StreamedChunk {
    let (body, body_pieces) = mpsc::channel::<Result<Bytes, io::Error>>(BODY_QUEUE);
    let request = blobs::patch_streamed(
        transport,
        call,
        location,
        reqwest::Body::wrap_stream(futures_util::stream::unfold(
            body_pieces,
            |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
        )),
    );
    let feed = async move {
        // The pieces share the producer's buffers: nothing is copied unless
        // the chunk has to be resumed.
        let mut kept = Vec::new();
        let mut length = 0;
        let mut next = Some(first);
        let end = loop {
            let mut bytes = match next.take() {
                Some(bytes) => bytes,
                None => match pieces.recv().await {
                    Some(StreamPiece::Bytes(bytes)) => bytes,
                    Some(StreamPiece::End(descriptor)) => break ChunkEnd::Finished(descriptor),
                    None => break ChunkEnd::Abandoned,
                },
            };
            let room = chunk_size - length;
            let rest = (bytes.len() > room).then(|| bytes.split_off(room));
            length += bytes.len();
            kept.push(bytes.clone());
            // A PATCH that already failed takes no more; its error is read
            // once the chunk is complete.
            let _ = body.send(Ok(bytes)).await;
            if length == chunk_size {
                break ChunkEnd::Full {
                    carry: rest.filter(|rest| !rest.is_empty()),
                };
            }
        };
        // An abandoned chunk still ends cleanly: a PATCH cut off half-way
        // leaves the registry holding bytes its upload state does not
        // count, and it then refuses the DELETE that drops them. Nothing
        // is stored without the closing PUT, which never comes.
        drop(body);
        (kept, length, end)
    };
    let (answer, (pieces, length, end)) = tokio::join!(request, feed);
    StreamedChunk {
        pieces,
        length,
        end,
        answer,
    }
}

const ABANDONED: &str = "the blob was abandoned before it was complete";
