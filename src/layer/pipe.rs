//! Between the tar writer and the compressor, when a layer has more than one
//! thread: the tar is written (files read, diff_id hashed) on a thread of its
//! own and handed to the compressor's feeder in pieces, a few megabytes
//! ahead. zstd's workers take a job only once its input is complete, and
//! fed inline, a worker that finished its job waited while the feeder read
//! and hashed the next job's 4 MiB; gzip's blocks waited the same way.
//! The bytes are the same as inline: only the thread that produces them
//! changes.

use super::LayerError;
use std::io::{self, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Bytes per piece handed over.
const PIECE: usize = 1 << 20;
/// Pieces in circulation: how far the tar writer may run ahead of the
/// compressor, and all the memory the hand-over takes.
const PIECES: usize = 8;

/// The tar writer's end: fills pieces and sends them full; takes its next
/// piece from those the compressor has emptied, so nothing is allocated
/// after the first few and memory stays at [`PIECES`] × [`PIECE`].
pub(crate) struct PipeWriter {
    piece: Vec<u8>,
    full: SyncSender<Vec<u8>>,
    empty: Receiver<Vec<u8>>,
    /// Pieces made so far; new ones are made until [`PIECES`] exist.
    made: usize,
}

fn compressor_stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the compressor stopped")
}

impl PipeWriter {
    fn send(&mut self) -> io::Result<()> {
        let next = if self.made < PIECES {
            self.made += 1;
            Vec::with_capacity(PIECE)
        } else {
            self.empty.recv().map_err(|_| compressor_stopped())?
        };
        let piece = std::mem::replace(&mut self.piece, next);
        self.full.send(piece).map_err(|_| compressor_stopped())
    }

    /// Sends what is left; the compressor has every byte once it returns.
    fn finish(mut self) -> io::Result<()> {
        if self.piece.is_empty() {
            return Ok(());
        }
        let piece = std::mem::take(&mut self.piece);
        self.full.send(piece).map_err(|_| compressor_stopped())
    }
}

impl Write for PipeWriter {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let taken = (PIECE - self.piece.len()).min(buffer.len());
        self.piece.extend_from_slice(&buffer[..taken]);
        if self.piece.len() == PIECE {
            self.send()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `produce` on a thread of its own, writing into a [`PipeWriter`],
/// while `consume` gets its bytes in order on the calling thread. Returns
/// what `produce` returned once every byte has been consumed. A failure of
/// `consume` (the blob file cannot be written) stops the producer and is
/// the error reported, against `blob_path`; a failure of `produce` (a file
/// cannot be read) ends the input early and is reported as it is.
pub(crate) fn piped<T: Send>(
    blob_path: &Path,
    produce: impl FnOnce(&mut PipeWriter) -> Result<T, LayerError> + Send,
    mut consume: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<T, LayerError> {
    let write_error = |source: io::Error| LayerError::WriteBlob {
        path: blob_path.to_path_buf(),
        source,
    };
    let (full_sender, full) = sync_channel::<Vec<u8>>(PIECES);
    let (empty_sender, empty) = sync_channel::<Vec<u8>>(PIECES);
    std::thread::scope(|scope| {
        let producer = std::thread::Builder::new()
            .name("hoist-tar".to_string())
            .spawn_scoped(scope, move || {
                let mut writer = PipeWriter {
                    piece: Vec::with_capacity(PIECE),
                    full: full_sender,
                    empty,
                    made: 1,
                };
                let produced = produce(&mut writer)?;
                writer.finish().map_err(write_error)?;
                Ok(produced)
            })
            .map_err(write_error)?;
        let consumed = full.iter().try_for_each(|mut piece| {
            consume(&piece)?;
            piece.clear();
            // The producer may be done and gone; the piece is then dropped.
            let _ = empty_sender.send(piece);
            Ok(())
        });
        // A producer blocked on either channel sees it closed and stops.
        drop(full);
        drop(empty_sender);
        let produced = producer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        consumed.map_err(write_error)?;
        produced
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(length: usize) -> Vec<u8> {
        (0..length).map(|index| (index * 7 % 251) as u8).collect()
    }

    #[test]
    fn every_byte_arrives_in_order_whatever_the_write_sizes() {
        let input = pattern(PIECE * (PIECES + 3) + 12_345);
        let mut received = Vec::new();
        let written = piped(
            Path::new("blob"),
            |writer| {
                // Writes of odd sizes, across piece boundaries.
                for chunk in input.chunks(PIECE / 3 + 17) {
                    writer.write_all(chunk).unwrap();
                }
                Ok(input.len())
            },
            |piece| {
                received.extend_from_slice(piece);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(written, input.len());
        assert!(received == input, "bytes differ after the hand-over");
    }

    #[test]
    fn a_failing_consumer_stops_the_producer_and_is_the_error() {
        let mut calls = 0;
        let error = piped(
            Path::new("/layouts/out/blobs/layer"),
            |writer| {
                // Far more than the pieces in circulation: without the
                // stop this would block forever.
                for _ in 0..PIECES * 10 {
                    writer
                        .write_all(&[1; PIECE])
                        .map_err(|source| LayerError::WriteBlob {
                            path: "from the producer".into(),
                            source,
                        })?;
                }
                Ok(())
            },
            |_| {
                calls += 1;
                Err(io::Error::other("disk full"))
            },
        )
        .unwrap_err();
        assert_eq!(calls, 1);
        let message = error.to_string();
        assert!(
            message.contains("/layouts/out/blobs/layer") && message.contains("disk full"),
            "{message}"
        );
    }

    #[test]
    fn a_failing_producer_is_the_error_and_ends_the_input() {
        let mut received = 0;
        let error = piped(
            Path::new("blob"),
            |writer| -> Result<(), LayerError> {
                writer.write_all(&[0; PIECE + 1]).unwrap();
                Err(LayerError::Read {
                    path: "/rootfs/etc/vanished".into(),
                    source: io::Error::from(io::ErrorKind::NotFound),
                })
            },
            |piece| {
                received += piece.len();
                Ok(())
            },
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("/rootfs/etc/vanished"),
            "{error}"
        );
        // The full piece went over; the unfinished one was not sent.
        assert_eq!(received, PIECE);
    }
}
