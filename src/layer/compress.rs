//! The compressor between the tar stream and the blob file: none, the
//! parallel gzip of [`super::gzip`], or zstd in its multithreaded mode. Every
//! setting that shapes the output is pinned here, so the bytes depend on the
//! recipe alone, never on the thread count.

use super::Compression;
use super::gzip::ParallelGzip;
use std::io::{self, Write};
use zstd::stream::raw::CParameter;

/// zstd job size: input per worker job. Fixed because zstd derives its
/// default from the level and window, and because it decides the output.
pub(crate) const ZSTD_JOB_SIZE: u32 = 4 << 20;
/// zstd overlap between jobs, as a fraction of the window (6: 1/8).
pub(crate) const ZSTD_OVERLAP_LOG: u32 = 6;

pub(crate) enum Compressor<W: Write> {
    None(W),
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    pub(crate) fn new(inner: W, compression: Compression, threads: usize) -> io::Result<Self> {
        let threads = threads.max(1);
        Ok(match compression {
            Compression::None => Compressor::None(inner),
            Compression::Gzip { level } => {
                Compressor::Gzip(ParallelGzip::new(inner, level, threads)?)
            }
            Compression::Zstd { level } => {
                let mut encoder = zstd::stream::write::Encoder::new(inner, level)?;
                // Always multithreaded, even with one worker: zstd's
                // single-threaded mode writes different bytes.
                encoder.multithread(u32::try_from(threads).unwrap_or(u32::MAX))?;
                encoder.set_parameter(CParameter::JobSize(ZSTD_JOB_SIZE))?;
                encoder.set_parameter(CParameter::OverlapSizeLog(ZSTD_OVERLAP_LOG))?;
                encoder.include_checksum(false)?;
                encoder.include_contentsize(false)?;
                Compressor::Zstd(encoder)
            }
        })
    }

    /// Ends the compressed stream and returns the inner writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Compressor::None(inner) => Ok(inner),
            Compressor::Gzip(gzip) => gzip.finish(),
            Compressor::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(inner) => inner.write(buffer),
            Compressor::Gzip(gzip) => gzip.write(buffer),
            Compressor::Zstd(encoder) => encoder.write(buffer),
        }
    }

    fn write_all(&mut self, buffer: &[u8]) -> io::Result<()> {
        match self {
            Compressor::None(inner) => inner.write_all(buffer),
            Compressor::Gzip(gzip) => gzip.write_all(buffer),
            Compressor::Zstd(encoder) => encoder.write_all(buffer),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(inner) => inner.flush(),
            // A zstd flush ends a block early and changes the bytes; the
            // stream is flushed by `finish` only.
            Compressor::Gzip(_) | Compressor::Zstd(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(size: usize) -> Vec<u8> {
        let mut data = Vec::with_capacity(size);
        let mut state = 1u64;
        while data.len() < size {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            data.extend_from_slice(format!("{} entry\n", state >> 50).as_bytes());
        }
        data.truncate(size);
        data
    }

    fn zstd(data: &[u8], threads: usize) -> Vec<u8> {
        let mut compressor =
            Compressor::new(Vec::new(), Compression::Zstd { level: 3 }, threads).unwrap();
        for chunk in data.chunks(100_003) {
            compressor.write_all(chunk).unwrap();
        }
        compressor.finish().unwrap()
    }

    #[test]
    fn zstd_bytes_do_not_depend_on_workers() {
        let data = sample(3 * ZSTD_JOB_SIZE as usize + 4321);
        let one = zstd(&data, 1);
        assert_eq!(one, zstd(&data, 2));
        assert_eq!(one, zstd(&data, 4));
        let mut decoded = Vec::new();
        zstd::stream::read::Decoder::new(&one[..])
            .unwrap()
            .read_to_end(&mut decoded)
            .unwrap();
        assert!(decoded == data);
    }
}
