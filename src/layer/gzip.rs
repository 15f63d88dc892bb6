//! Parallel gzip whose bytes do not depend on the thread count or the
//! machine: the input is cut into fixed 1 MiB blocks and each block becomes
//! one complete gzip member (fixed header with mtime 0, raw deflate by
//! libdeflate, CRC32 and size). Members concatenate into one valid gzip file
//! (RFC 1952, section 2.2) that gzip readers following the RFC decode
//! whole, as they do BGZF files. A block never sees the one before it, so the bytes depend
//! on the input, the level and the pinned libdeflate version alone.
//!
//! libdeflate compresses whole buffers only, with no sync flush: that is
//! why each block is its own member rather than a flushed piece of one
//! deflate stream; in exchange it is faster than zlib at the same level,
//! with smaller output (README "Performance").

use libdeflater::{CompressionLvl, Compressor};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, sync_channel};

/// Uncompressed bytes per block (and so per gzip member). Part of the
/// output format: changing it changes every gzip layer digest.
pub const BLOCK_SIZE: usize = 1 << 20;

/// The highest gzip level: levels keep gzip's meaning, 1 to 9, and map one
/// to one onto libdeflate's levels 1 to 9 (its 10 to 12 are not used).
pub const MAX_LEVEL: u32 = 9;

/// The level of a spec that names none: measured on a Debian root
/// filesystem, the fastest whose output stays under 0.97 of `umoci
/// repack`'s (level 2 gives 0.8% more bytes than 3; 4 gives 0.4% fewer
/// for about 5% more time). README "Performance" has the figures.
pub const DEFAULT_LEVEL: u32 = 3;

/// gzip magic, deflate, no flags, mtime 0; XFL and OS follow.
const HEADER_START: [u8; 8] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0];
/// "Unknown" OS, so the bytes do not say which system built them.
const OS_UNKNOWN: u8 = 0xff;
/// Bytes of a member around its deflate data: 10 of header, 8 of trailer.
pub(crate) const HEADER_SIZE: usize = 10;
const TRAILER_SIZE: usize = 8;

/// A gzip writer that compresses blocks on a thread pool.
pub struct ParallelGzip<W: Write> {
    inner: W,
    level: u32,
    block: Vec<u8>,
    pool: Option<rayon::ThreadPool>,
    in_flight: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_in_flight: usize,
    members: u64,
}

impl<W: Write> ParallelGzip<W> {
    /// Starts a pool of `threads` workers (none when `threads <= 1`: blocks
    /// are compressed inline, to the same bytes). Nothing is written before
    /// the first block is complete.
    pub fn new(inner: W, level: u32, threads: usize) -> io::Result<Self> {
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
            level: level.min(MAX_LEVEL),
            block: Vec::with_capacity(BLOCK_SIZE),
            pool,
            in_flight: VecDeque::new(),
            // Enough to keep every worker busy while the oldest block is
            // written out; memory stays bounded whatever the layer size.
            max_in_flight: threads.max(1) * 2,
            members: 0,
        })
    }

    /// Compresses what is left and returns the inner writer. An empty input
    /// still gets one (empty) member, so the output is always a gzip file;
    /// an input that ends on a block boundary gets no empty member after it.
    pub fn finish(mut self) -> io::Result<W> {
        let last = std::mem::take(&mut self.block);
        if !last.is_empty() || self.members == 0 {
            self.submit(last)?;
        }
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        Ok(self.inner)
    }

    fn submit(&mut self, block: Vec<u8>) -> io::Result<()> {
        self.members += 1;
        let level = self.level;
        let Some(pool) = &self.pool else {
            let member = gzip_member(&block, level)?;
            return self.inner.write_all(&member);
        };
        let (sender, receiver) = sync_channel(1);
        pool.spawn(move || {
            // The receiver is gone only when the writer was dropped.
            let _ = sender.send(gzip_member(&block, level));
        });
        self.in_flight.push_back(receiver);
        if self.in_flight.len() > self.max_in_flight {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(receiver) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let member = receiver
            .recv()
            .map_err(|_| io::Error::other("a gzip worker stopped without a result"))??;
        self.inner.write_all(&member)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let room = BLOCK_SIZE - self.block.len();
        let taken = room.min(buffer.len());
        self.block.extend_from_slice(&buffer[..taken]);
        if self.block.len() == BLOCK_SIZE {
            let full = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_SIZE));
            self.submit(full)?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing early would change the block boundaries and so the bytes;
        // blocks go out when full or at `finish`.
        Ok(())
    }
}

/// One block as a whole gzip member: header, raw deflate, CRC32, size.
fn gzip_member(block: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let extra_flags = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    let mut member = Vec::with_capacity(HEADER_SIZE + block.len() / 2 + 1024);
    member.extend_from_slice(&HEADER_START);
    member.extend_from_slice(&[extra_flags, OS_UNKNOWN]);
    deflate_block_into(block, level, &mut member)?;
    member.extend_from_slice(&libdeflater::crc32(block).to_le_bytes());
    // ISIZE; a block is at most BLOCK_SIZE, far below 2^32.
    member.extend_from_slice(&(block.len() as u32).to_le_bytes());
    debug_assert!(member.len() >= HEADER_SIZE + TRAILER_SIZE);
    Ok(member)
}

/// Raw deflate of one block at `level`, as this writer makes each member's
/// data; `hoist diff` uses it to tell a layer's level.
pub(crate) fn deflate_block(block: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let mut output = Vec::new();
    deflate_block_into(block, level, &mut output)?;
    Ok(output)
}

thread_local! {
    /// One libdeflate compressor per thread and level. A libdeflate call
    /// keeps no state from the call before, so reusing the compressor gives
    /// the bytes a fresh one would, without allocating its tables per block.
    static COMPRESSORS: RefCell<Vec<(u32, Compressor)>> = const { RefCell::new(Vec::new()) };
}

/// Appends the raw deflate of `block` at `level` to `output`.
fn deflate_block_into(block: &[u8], level: u32, output: &mut Vec<u8>) -> io::Result<()> {
    let level = level.min(MAX_LEVEL);
    COMPRESSORS.with(|compressors| {
        let mut compressors = compressors.borrow_mut();
        let index = match compressors.iter().position(|(known, _)| *known == level) {
            Some(index) => index,
            None => {
                let libdeflate_level = CompressionLvl::new(level as i32).map_err(|error| {
                    io::Error::other(format!("gzip level {level} is not valid: {error:?}"))
                })?;
                compressors.push((level, Compressor::new(libdeflate_level)));
                compressors.len() - 1
            }
        };
        let compressor = &mut compressors[index].1;
        let start = output.len();
        output.resize(start + compressor.deflate_compress_bound(block.len()), 0);
        match compressor.deflate_compress(block, &mut output[start..]) {
            Ok(written) => {
                output.truncate(start + written);
                Ok(())
            }
            // The bound is libdeflate's own worst case, so this means a
            // broken build of it rather than a bad input.
            Err(error) => Err(io::Error::other(format!(
                "libdeflate could not compress a {} byte block: {error:?}",
                block.len()
            ))),
        }
    })
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

    fn gzip_at(data: &[u8], level: u32, threads: usize) -> Vec<u8> {
        let mut writer = ParallelGzip::new(Vec::new(), level, threads).unwrap();
        // Odd write sizes, so block cutting is exercised across writes.
        for chunk in data.chunks(70_001) {
            writer.write_all(chunk).unwrap();
        }
        writer.finish().unwrap()
    }

    fn gzip(data: &[u8], threads: usize) -> Vec<u8> {
        gzip_at(data, 6, threads)
    }

    fn gunzip(compressed: &[u8]) -> Vec<u8> {
        let mut decoded = Vec::new();
        flate2::read::MultiGzDecoder::new(compressed)
            .read_to_end(&mut decoded)
            .unwrap();
        decoded
    }

    #[test]
    fn round_trips_through_flate2() {
        for size in [0, 1, BLOCK_SIZE, 3 * BLOCK_SIZE + 17] {
            let data = sample(size);
            let decoded = gunzip(&gzip(&data, 2));
            assert_eq!(decoded.len(), data.len(), "size {size}");
            assert!(decoded == data, "size {size}");
        }
    }

    #[test]
    fn every_level_round_trips() {
        let data = sample(BLOCK_SIZE + 999);
        for level in 0..=MAX_LEVEL + 3 {
            assert!(gunzip(&gzip_at(&data, level, 2)) == data, "level {level}");
        }
        // Levels past 9 are taken as 9, never as libdeflate's 10 to 12.
        assert_eq!(gzip_at(&data, 12, 1), gzip_at(&data, 9, 1));
    }

    #[test]
    fn one_member_per_block() {
        let data = sample(2 * BLOCK_SIZE + 5);
        let compressed = gzip(&data, 2);
        let mut decoder = flate2::read::GzDecoder::new(&compressed[..]);
        let mut first = Vec::new();
        decoder.read_to_end(&mut first).unwrap();
        // A single-member reader stops after the first block.
        assert!(first == data[..BLOCK_SIZE]);
        // An input that ends on a boundary gets no empty member.
        let exact = gzip(&data[..BLOCK_SIZE], 1);
        let mut single = flate2::read::GzDecoder::new(&exact[..]);
        let mut all = Vec::new();
        single.read_to_end(&mut all).unwrap();
        let rest = single.into_inner();
        assert!(
            rest.is_empty(),
            "{} bytes after the only member",
            rest.len()
        );
        assert!(gunzip(&gzip(&[], 1)).is_empty());
    }

    #[test]
    fn bytes_do_not_depend_on_threads() {
        let data = sample(5 * BLOCK_SIZE + 12345);
        let one = gzip(&data, 1);
        assert_eq!(one, gzip(&data, 2));
        assert_eq!(one, gzip(&data, 3));
        assert_eq!(one, gzip(&data, 4));
        assert_eq!(one, gzip(&data, 8));
        assert_eq!(&one[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    }
}
