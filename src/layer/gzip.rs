//! Parallel gzip whose bytes do not depend on the thread count: the input is
//! cut into fixed blocks, each compressed by a fresh raw-deflate compressor
//! (no dictionary from the block before, which is what pigz would use and
//! what would tie the output to the scheduling), ended with a sync flush so
//! the blocks concatenate into one deflate stream, the last one finished.
//! One gzip member: a fixed header (mtime 0), the stream, CRC32 and size.

use flate2::{Compress, FlushCompress, Status};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, sync_channel};

/// Uncompressed bytes per block. Part of the output format: changing it
/// changes every gzip layer digest.
pub const BLOCK_SIZE: usize = 1 << 20;

/// gzip magic, deflate, no flags, mtime 0; XFL and OS follow.
const HEADER_START: [u8; 8] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0];
/// "Unknown" OS, so the bytes do not say which system built them.
const OS_UNKNOWN: u8 = 0xff;

struct CompressedBlock {
    deflate: io::Result<Vec<u8>>,
    crc: crc32fast::Hasher,
}

/// A gzip writer that compresses blocks on a thread pool.
pub struct ParallelGzip<W: Write> {
    inner: W,
    level: u32,
    block: Vec<u8>,
    pool: Option<rayon::ThreadPool>,
    in_flight: VecDeque<Receiver<CompressedBlock>>,
    max_in_flight: usize,
    crc: crc32fast::Hasher,
    input_size: u64,
}

impl<W: Write> ParallelGzip<W> {
    /// Writes the gzip header to `inner` and starts a pool of `threads`
    /// workers (none when `threads <= 1`: blocks are compressed inline, to
    /// the same bytes).
    pub fn new(mut inner: W, level: u32, threads: usize) -> io::Result<Self> {
        let level = level.min(9);
        let extra_flags = match level {
            9 => 2,
            1 => 4,
            _ => 0,
        };
        inner.write_all(&HEADER_START)?;
        inner.write_all(&[extra_flags, OS_UNKNOWN])?;
        let pool = if threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|index| format!("hoist-gzip-{index}"))
                    .build()
                    .map_err(io::Error::other)?,
            )
        } else {
            None
        };
        Ok(ParallelGzip {
            inner,
            level,
            block: Vec::with_capacity(BLOCK_SIZE),
            pool,
            in_flight: VecDeque::new(),
            // Enough to keep every worker busy while the oldest block is
            // written out; memory stays bounded whatever the layer size.
            max_in_flight: threads.max(1) * 2,
            crc: crc32fast::Hasher::new(),
            input_size: 0,
        })
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let last = std::mem::take(&mut self.block);
        self.submit(last, FlushCompress::Finish)?;
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new()).finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        // ISIZE is the input size modulo 2^32, by definition.
        self.inner
            .write_all(&(self.input_size as u32).to_le_bytes())?;
        Ok(self.inner)
    }

    fn submit(&mut self, block: Vec<u8>, flush: FlushCompress) -> io::Result<()> {
        let level = self.level;
        if self.pool.is_none() {
            let compressed = compress_block(&block, level, flush);
            return self.write_block(compressed);
        }
        if self.in_flight.len() >= self.max_in_flight {
            self.write_oldest()?;
        }
        let (sender, receiver) = sync_channel(1);
        self.in_flight.push_back(receiver);
        if let Some(pool) = &self.pool {
            pool.spawn(move || {
                // The receiver is gone only when the writer was dropped.
                let _ = sender.send(compress_block(&block, level, flush));
            });
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(receiver) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let block = receiver
            .recv()
            .map_err(|_| io::Error::other("a gzip worker stopped without a result"))?;
        self.write_block(block)
    }

    fn write_block(&mut self, block: CompressedBlock) -> io::Result<()> {
        let deflate = block.deflate?;
        self.crc.combine(&block.crc);
        self.inner.write_all(&deflate)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let room = BLOCK_SIZE - self.block.len();
        let taken = room.min(buffer.len());
        self.block.extend_from_slice(&buffer[..taken]);
        self.input_size += taken as u64;
        if self.block.len() == BLOCK_SIZE {
            let full = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_SIZE));
            self.submit(full, FlushCompress::Sync)?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing early would change the block boundaries and so the bytes;
        // blocks go out when full or at `finish`.
        Ok(())
    }
}

/// Raw deflate of one block by a fresh compressor, ended with a sync flush
/// (or the final block), and the block's CRC32.
fn compress_block(input: &[u8], level: u32, flush: FlushCompress) -> CompressedBlock {
    let mut crc = crc32fast::Hasher::new();
    crc.update(input);
    CompressedBlock {
        deflate: deflate_block(input, level, flush),
        crc,
    }
}

/// Raw deflate of one block by a fresh compressor at `level`, as this
/// writer makes each block; `hoist diff` uses it to tell a layer's level.
pub(crate) fn deflate_block(input: &[u8], level: u32, flush: FlushCompress) -> io::Result<Vec<u8>> {
    let mut compressor = Compress::new(flate2::Compression::new(level), false);
    let mut output = Vec::with_capacity(input.len() / 2 + 1024);
    loop {
        if output.capacity() - output.len() < 64 * 1024 {
            output.reserve(input.len() / 4 + 64 * 1024);
        }
        let consumed = compressor.total_in() as usize;
        let status = compressor
            .compress_vec(&input[consumed..], &mut output, flush)
            .map_err(io::Error::other)?;
        let all_consumed = compressor.total_in() as usize == input.len();
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            // zlib's rule: the flush is complete once it returns with
            // output space left over.
            _ => all_consumed && output.len() < output.capacity(),
        };
        if done {
            return Ok(output);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(size: usize) -> Vec<u8> {
        // Compressible but not trivial: a counter rendered as text.
        let mut data = Vec::with_capacity(size);
        let mut counter = 0u64;
        while data.len() < size {
            data.extend_from_slice(format!("{counter:x} line of text\n").as_bytes());
            counter = counter
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
        }
        data.truncate(size);
        data
    }

    fn gzip(data: &[u8], threads: usize) -> Vec<u8> {
        let mut writer = ParallelGzip::new(Vec::new(), 6, threads).unwrap();
        // Odd write sizes, so block cutting is exercised across writes.
        for chunk in data.chunks(70_001) {
            writer.write_all(chunk).unwrap();
        }
        writer.finish().unwrap()
    }

    #[test]
    fn round_trips_through_flate2() {
        for size in [0, 1, BLOCK_SIZE, 3 * BLOCK_SIZE + 17] {
            let data = sample(size);
            let compressed = gzip(&data, 2);
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(&compressed[..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded.len(), data.len(), "size {size}");
            assert!(decoded == data, "size {size}");
        }
    }

    #[test]
    fn bytes_do_not_depend_on_threads() {
        let data = sample(5 * BLOCK_SIZE + 12345);
        let one = gzip(&data, 1);
        assert_eq!(one, gzip(&data, 2));
        assert_eq!(one, gzip(&data, 4));
        assert_eq!(&one[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    }
}
