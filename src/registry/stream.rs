//! Pushing a blob while it is being produced (a layer still compressing):
//! the bytes go up in chunked PATCHes as soon as a chunk's worth has
//! arrived, and the rest rides on the closing PUT with the digest, as in
//! [`super::upload`]'s chunked upload. Chunks are the smallest size every
//! registry takes (5 MiB, or the advertised `OCI-Chunk-Min-Length`): what
//! is left to send once the producer finishes is at most one chunk, so the
//! push ends soon after the last byte is made. A PATCH that fails for a
//! passing reason resumes at the registry's offset; anything worse cancels
//! the upload and is reported, and the caller uploads the finished blob from
//! its file.

use super::blobs;
use super::client::MINIMUM_CHUNK;
use super::error::RegistryError;
use super::sink::RegistrySink;
use super::transport::{Context, Scopes};
use super::upload::send_chunk;
use bytes::{Bytes, BytesMut};
use oci_spec::image::Descriptor;
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
    /// thread (not one of the client's runtime); returns its descriptor
    /// once the registry has stored it.
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
        let session = client.block_on(blobs::start_upload(
            transport,
            host,
            &reference.repository,
            &scopes,
            &context,
        ))?;
        let chunk_size = MINIMUM_CHUNK.max(session.minimum_chunk.unwrap_or(0)) as usize;
        let mut location = session.location;
        let mut held = BytesMut::with_capacity(2 * chunk_size);
        let mut offset = 0u64;
        let received = 'receive: loop {
            match pieces.blocking_recv() {
                Some(StreamPiece::Bytes(bytes)) => {
                    held.extend_from_slice(&bytes);
                    // At least one byte stays behind, so the closing PUT
                    // carries the last bytes even when the blob ends on a
                    // chunk boundary, as in the chunked upload.
                    while held.len() > chunk_size {
                        let chunk = held.split_to(chunk_size).freeze();
                        match send_chunk(
                            client,
                            host,
                            &scopes,
                            &context,
                            location.clone(),
                            offset,
                            chunk,
                        ) {
                            Ok(next) => location = next,
                            Err(error) => break 'receive Err(error),
                        }
                        offset += chunk_size as u64;
                    }
                }
                Some(StreamPiece::End(descriptor)) => {
                    let sent = offset + held.len() as u64;
                    break if sent == descriptor.size() {
                        Ok(descriptor)
                    } else {
                        Err(failed(format!(
                            "sent {sent} bytes of a {}-byte blob",
                            descriptor.size()
                        )))
                    };
                }
                None => break Err(failed(ABANDONED.to_string())),
            }
        };
        let finished = match received {
            Ok(descriptor) => {
                let last = held.freeze();
                client
                    .block_on(blobs::finish_upload(
                        transport,
                        host,
                        &scopes,
                        &Context::new(
                            "pushing blob",
                            reference.with_digest(descriptor.digest().clone()),
                        ),
                        &location,
                        descriptor.digest(),
                        last.len() as u64,
                        reqwest::Body::from(last),
                    ))
                    .map(|()| *descriptor)
            }
            Err(error) => Err(error),
        };
        if finished.is_err() {
            client.block_on(blobs::cancel_upload(
                transport, host, &scopes, &context, &location,
            ));
        }
        finished
    }
}

const ABANDONED: &str = "the blob was abandoned before it was complete";
