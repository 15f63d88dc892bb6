//! Pushing a blob while it is being produced (a layer still compressing):
//! bytes are PATCHed in chunks as they arrive and the digest is given on the
//! closing PUT. Everything written is also spooled to a temporary file, so
//! when the streamed upload fails the blob is uploaded again from the spool
//! with the usual retries.

use super::blobs::{self, UploadSession};
use super::client::MINIMUM_CHUNK;
use super::error::RegistryError;
use super::sink::RegistrySink;
use super::transport::{Context, Scopes};
use super::upload;
use crate::image::FileBlob;
use crate::image::publish::BlobOutcome;
use crate::oci::DigestWriter;
use bytes::Bytes;
use oci_spec::image::{Descriptor, MediaType};
use std::io::{self, Write};

/// A blob upload fed through [`Write`]; finish it with [`StreamUpload::finish`].
pub struct StreamUpload<'a> {
    sink: &'a RegistrySink,
    media_type: MediaType,
    spool: DigestWriter<tempfile::NamedTempFile>,
    pending: Vec<u8>,
    chunk_size: usize,
    session: Option<UploadSession>,
    offset: u64,
    /// Why streaming stopped, if it did; the spool still fills.
    streaming_failed: Option<RegistryError>,
}

impl RegistrySink {
    /// Starts an upload whose bytes are written as they are produced.
    pub fn upload_stream(&self, media_type: MediaType) -> Result<StreamUpload<'_>, RegistryError> {
        let spool = tempfile::NamedTempFile::new().map_err(|source| RegistryError::Spool {
            operation: "creating a spool file",
            source,
        })?;
        let client = self.client();
        let reference = self.reference();
        let context = Context::new("starting an upload to", reference);
        let session = client.block_on(blobs::start_upload(
            &client.transport,
            reference.api_host(),
            &reference.repository,
            &Scopes::push(&reference.repository),
            &context,
        ))?;
        let chunk_size = client
            .options()
            .chunk_size
            .max(MINIMUM_CHUNK)
            .max(session.minimum_chunk.unwrap_or(0)) as usize;
        Ok(StreamUpload {
            sink: self,
            media_type,
            spool: DigestWriter::new(spool),
            pending: Vec::with_capacity(chunk_size),
            chunk_size,
            session: Some(session),
            offset: 0,
            streaming_failed: None,
        })
    }
}

impl StreamUpload<'_> {
    fn context(&self) -> Context {
        Context::new("streaming a blob to", self.sink.reference())
    }

    fn send_pending(&mut self) {
        let Some(session) = self.session.take() else {
            self.pending.clear();
            return;
        };
        let chunk = Bytes::from(std::mem::replace(
            &mut self.pending,
            Vec::with_capacity(self.chunk_size),
        ));
        let length = chunk.len() as u64;
        let client = self.sink.client();
        let reference = self.sink.reference();
        let sent = upload::send_chunk(
            client,
            reference.api_host(),
            &Scopes::push(&reference.repository),
            &self.context(),
            session.location.clone(),
            self.offset,
            chunk,
        );
        match sent {
            Ok(location) => {
                self.offset += length;
                self.session = Some(UploadSession {
                    location,
                    ..session
                });
            }
            Err(error) => {
                tracing::warn!("{error}; the blob will be uploaded from its spool file");
                self.streaming_failed = Some(error);
            }
        }
    }

    /// Closes the upload with the digest of everything written; falls back
    /// to uploading the spool file when streaming failed.
    pub fn finish(mut self) -> Result<(Descriptor, BlobOutcome), RegistryError> {
        self.spool.flush().map_err(|source| RegistryError::Spool {
            operation: "writing the spool file",
            source,
        })?;
        let (spool, digest, size) = self.spool.finish();
        let descriptor = Descriptor::new(self.media_type.clone(), size, digest.clone());
        let client = self.sink.client();
        let reference = self.sink.reference();
        if let Some(session) = self.session.take() {
            let length = self.pending.len() as u64;
            let closed = client.block_on(blobs::finish_upload(
                &client.transport,
                reference.api_host(),
                &Scopes::push(&reference.repository),
                &Context::new("pushing blob", reference.with_digest(digest.clone())),
                &session.location,
                &digest,
                length,
                reqwest::Body::from(std::mem::take(&mut self.pending)),
            ));
            match closed {
                Ok(()) => return Ok((descriptor, BlobOutcome::Uploaded)),
                Err(error) => {
                    tracing::warn!("{error}; uploading the blob again from its spool file")
                }
            }
        }
        let blob = FileBlob::new(descriptor.clone(), spool.path());
        let outcome = upload::push_blob(client, reference, &blob)?;
        drop(spool);
        Ok((descriptor, outcome))
    }

    /// Why streaming stopped early, if it did.
    pub fn streaming_error(&self) -> Option<&RegistryError> {
        self.streaming_failed.as_ref()
    }
}

impl Write for StreamUpload<'_> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.spool.write_all(buffer)?;
        if self.session.is_some() {
            self.pending.extend_from_slice(buffer);
            if self.pending.len() >= self.chunk_size {
                self.send_pending();
            }
        }
        Ok(buffer.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.spool.flush()
    }
}
