//! The blob upload driver: mount when the blob came from another repository
//! of the same registry, else one streamed PUT for blobs up to the
//! monolithic limit (256 MiB) or chunked PATCHes for larger ones (and for
//! any a proxy refuses as too large in one request). Runs on the caller's
//! (rayon) thread, blocking on the client's runtime per request, so memory
//! stays at one chunk whatever the blob's size. Transient failures resume a
//! chunked upload at the registry's offset, or restart the upload from a
//! fresh `Blob::open()`.

use super::Repository;
use super::blobs::{self, MountResult, UploadSession};
use crate::image::Blob;
use crate::image::publish::BlobOutcome;
use crate::registry::client::RegistryClient;
use crate::registry::error::RegistryError;
use crate::registry::transport::{Call, Context};
use bytes::Bytes;
use reqwest::Url;
use std::io::{self, Read};

/// Bytes read from disk per message to the request body.
const STREAM_PIECE: usize = 256 * 1024;

pub(crate) fn push_blob(
    repository: &Repository,
    blob: &dyn Blob,
) -> Result<BlobOutcome, RegistryError> {
    let client = repository.client();
    let _slot = client.block_on(client.transfers.acquire());
    let transport = &client.transport;
    let context = Context::new("pushing blob", repository.with_digest(blob.digest()));
    let scopes = repository.push_scopes(&context)?;
    let call = repository.call(&scopes, &context);

    let mut session = None;
    if let Some(origin) = blob.origin()
        && origin.registry == repository.host()
        && origin.repository != repository.path()
    {
        let mounted = client.block_on(blobs::mount_blob(
            repository,
            blob.digest(),
            &origin.repository,
            &context,
        ));
        match mounted {
            Ok(MountResult::Mounted) => return Ok(BlobOutcome::Mounted),
            Ok(MountResult::Upload(opened)) => session = Some(opened),
            // A refused mount (no pull access to the source) is no reason to
            // fail: the blob can still be uploaded.
            Err(error) => tracing::debug!("mount of {} failed: {error}", blob.digest()),
        }
    }

    let policy = &transport.options.retry;
    let mut attempt = 0;
    let mut reauthorized = false;
    let mut in_one_request = blob.size() <= transport.options.monolithic_limit;
    loop {
        attempt += 1;
        let result = match session.take() {
            Some(opened) => Ok(opened),
            None => client.block_on(blobs::start_upload(repository, call)),
        }
        .and_then(|opened| {
            if in_one_request {
                upload_monolithic(client, call, &opened, blob)
            } else {
                upload_chunked(client, call, &opened, blob)
            }
        });
        let error = match result {
            Ok(()) => return Ok(BlobOutcome::Uploaded),
            Err(error) => error,
        };
        // A proxy in front of the registry that caps request bodies (nginx's
        // client_max_body_size, Cloudflare's 100 MB) answers 413: chunks
        // fit where the whole blob does not.
        if in_one_request && error.status() == Some(413) {
            in_one_request = false;
            tracing::warn!("{error}; uploading in chunks instead");
            continue;
        }
        // A token that expired mid-upload was refused on a streamed body,
        // which cannot be replayed; the refused token is already dropped,
        // so one fresh start authenticates anew.
        if matches!(error, RegistryError::Unauthorized { .. }) && !reauthorized {
            reauthorized = true;
            tracing::warn!("{error}; authenticating again and restarting the upload");
            continue;
        }
        if !error.is_transient() {
            return Err(error);
        }
        if attempt >= policy.attempts {
            return Err(RegistryError::GaveUp {
                operation: context.operation,
                target: context.target,
                attempts: attempt,
                source: Box::new(error),
            });
        }
        let delay = policy.delay(attempt, error.retry_after());
        tracing::warn!(
            "{error}; restarting the upload in {:.1}s",
            delay.as_secs_f64()
        );
        std::thread::sleep(delay);
    }
}

/// One PUT whose body streams from `blob.open()` through a small channel,
/// filled by a scoped thread so the body can borrow the blob.
fn upload_monolithic(
    client: &RegistryClient,
    call: Call<'_>,
    session: &UploadSession,
    blob: &dyn Blob,
) -> Result<(), RegistryError> {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(4);
    std::thread::scope(|scope| {
        let pump = scope.spawn(move || -> io::Result<()> {
            let mut reader = blob.open()?;
            loop {
                let mut piece = vec![0u8; STREAM_PIECE];
                let count = match reader.read(&mut piece) {
                    Ok(0) => return Ok(()),
                    Ok(count) => count,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(error) => {
                        let copy = io::Error::new(error.kind(), error.to_string());
                        let _ = sender.blocking_send(Err(copy));
                        return Err(error);
                    }
                };
                piece.truncate(count);
                if sender.blocking_send(Ok(Bytes::from(piece))).is_err() {
                    // The request ended early; its error tells why.
                    return Ok(());
                }
            }
        });
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        });
        let result = client.block_on(blobs::finish_upload(
            &client.transport,
            call,
            &session.location,
            blob.digest(),
            blob.size(),
            reqwest::Body::wrap_stream(stream),
        ));
        let read = pump
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the thread reading the blob panicked")));
        match (read, result) {
            (Err(source), _) => Err(RegistryError::BlobRead {
                digest: blob.digest().clone(),
                source,
            }),
            (Ok(()), result) => result,
        }
    })
}

/// Reads up to `limit` bytes, fewer only at the end of the stream.
fn read_chunk(reader: &mut dyn Read, limit: usize) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::with_capacity(limit);
    reader.take(limit as u64).read_to_end(&mut buffer)?;
    Ok(buffer)
}

fn upload_chunked(
    client: &RegistryClient,
    call: Call<'_>,
    session: &UploadSession,
    blob: &dyn Blob,
) -> Result<(), RegistryError> {
    let transport = &client.transport;
    let chunk_size = session.chunk_size(transport.options.chunk_size);
    let read_error = |source| RegistryError::BlobRead {
        digest: blob.digest().clone(),
        source,
    };
    let mut reader = blob.open().map_err(read_error)?;
    let mut location = session.location.clone();
    let mut offset = 0u64;
    loop {
        let chunk = Bytes::from(read_chunk(&mut reader, chunk_size).map_err(read_error)?);
        let end = offset + chunk.len() as u64;
        if end >= blob.size() || chunk.len() < chunk_size {
            // The last chunk rides on the closing PUT: registries that refuse
            // small PATCHes (ECR) accept it there.
            let length = chunk.len() as u64;
            return client.block_on(blobs::finish_upload(
                transport,
                call,
                &location,
                blob.digest(),
                length,
                reqwest::Body::from(chunk),
            ));
        }
        location = send_chunk(client, call, location, offset, chunk)?;
        offset = end;
    }
}

/// PATCHes one chunk; after a transient failure resumes it with
/// [`resume_chunk`].
pub(crate) fn send_chunk(
    client: &RegistryClient,
    call: Call<'_>,
    location: Url,
    chunk_start: u64,
    chunk: Bytes,
) -> Result<Url, RegistryError> {
    match client.block_on(blobs::patch_chunk(
        &client.transport,
        call,
        &location,
        chunk_start,
        chunk.clone(),
    )) {
        Ok(next) => Ok(next),
        Err(error) => resume_chunk(
            client,
            call,
            Chunk {
                location,
                start: chunk_start,
                bytes: chunk,
            },
            error,
        ),
    }
}

/// A chunk of an upload: where it goes, the offset of its first byte, and
/// its bytes (kept so it can be sent again).
pub(crate) struct Chunk {
    pub location: Url,
    pub start: u64,
    pub bytes: Bytes,
}

/// After a chunk (`chunk`, from byte `chunk_start`) failed with `error`:
/// when the failure is passing, asks the registry how much it holds and
/// sends only the rest, as often as the retry policy allows. Gives up (and
/// lets the caller restart the upload) when the registry lost the upload
/// or holds less than the chunk's start.
pub(crate) fn resume_chunk(
    client: &RegistryClient,
    call: Call<'_>,
    chunk: Chunk,
    mut error: RegistryError,
) -> Result<Url, RegistryError> {
    let Chunk {
        mut location,
        start: chunk_start,
        bytes: chunk,
    } = chunk;
    let transport = &client.transport;
    let policy = &transport.options.retry;
    let chunk_end = chunk_start + chunk.len() as u64;
    let mut attempt = 1;
    loop {
        if !error.is_transient() || attempt >= policy.attempts {
            return Err(error);
        }
        std::thread::sleep(policy.delay(attempt, error.retry_after()));
        let status = client.block_on(blobs::upload_offset(transport, call, &location));
        let sent_from = match status {
            Ok(Some((next, continue_at))) if (chunk_start..=chunk_end).contains(&next) => {
                tracing::warn!(
                    "{error}; resuming the upload at byte {next} of {}",
                    call.context.target
                );
                location = continue_at;
                if next == chunk_end {
                    return Ok(location);
                }
                next
            }
            _ => return Err(error),
        };
        attempt += 1;
        let piece = chunk.slice((sent_from - chunk_start) as usize..);
        match client.block_on(blobs::patch_chunk(
            transport, call, &location, sent_from, piece,
        )) {
            Ok(next) => return Ok(next),
            Err(next_error) => error = next_error,
        }
    }
}
