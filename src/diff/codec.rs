//! Which compressor made a layer, as far as its first bytes tell: gzip's
//! header (XFL, OS), and the level of a gzip layer in hoist's own block
//! layout, found by compressing its first member's block again at each
//! level; zstd's frame header. Reads a bounded prefix, never the whole layer.

use super::report::Codec;
use crate::image::Blob;
use crate::layer::gzip::{BLOCK_SIZE, MAX_LEVEL, deflate_block};
use std::io::{self, Read};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// gzip header length without optional fields.
const GZIP_HEADER: usize = 10;
/// Enough compressed bytes to hold the first block at any level, even stored.
const PREFIX_LIMIT: u64 = 2 * BLOCK_SIZE as u64 + 4096;

/// The codec of `blob`, from the first bytes of its content.
pub(crate) fn detect(blob: &dyn Blob) -> io::Result<Codec> {
    let mut prefix = Vec::new();
    blob.open()?.take(PREFIX_LIMIT).read_to_end(&mut prefix)?;
    Ok(if prefix.starts_with(&GZIP_MAGIC) {
        gzip(&prefix)
    } else if prefix.starts_with(&ZSTD_MAGIC) {
        zstd(&prefix)
    } else {
        let tar = prefix.get(257..262) == Some(b"ustar".as_slice());
        Codec {
            format: if tar { "none" } else { "unknown" }.to_string(),
            level: None,
            header: if tar {
                "an uncompressed tar".to_string()
            } else {
                "neither gzip, zstd nor tar".to_string()
            },
        }
    })
}

fn gzip(prefix: &[u8]) -> Codec {
    let flags = prefix.get(3).copied().unwrap_or(0);
    let extra_flags = prefix.get(8).copied().unwrap_or(0);
    let system = prefix.get(9).copied().unwrap_or(0xff);
    let mtime = prefix.get(4..8).map_or(0, |bytes| {
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    });
    let levels = if flags == 0 {
        hoist_block_levels(prefix)
    } else {
        Vec::new()
    };
    let hint = match extra_flags {
        2 => "XFL 2 (level 9)",
        4 => "XFL 4 (level 1)",
        _ => "XFL 0 (a level from 2 to 8)",
    };
    let system = match system {
        0 => "OS 0 (FAT)".to_string(),
        3 => "OS 3 (Unix)".to_string(),
        11 => "OS 11 (NTFS)".to_string(),
        255 => "OS 255 (unknown)".to_string(),
        other => format!("OS {other}"),
    };
    let mut header = format!("{hint}, {system}, mtime {mtime}");
    if flags != 0 {
        header.push_str(&format!(", flags {flags:#04x}"));
    }
    match levels.as_slice() {
        [] => header.push_str(", not hoist's block layout at any level"),
        [_] => header.push_str(", hoist's 1 MiB blocks"),
        several => {
            let names: Vec<String> = several.iter().map(u32::to_string).collect();
            header.push_str(&format!(
                ", hoist's 1 MiB blocks at any of levels {}",
                names.join(", ")
            ));
        }
    }
    let level = match (levels.as_slice(), extra_flags) {
        ([level], _) => Some(*level),
        ([], 2) => Some(9),
        ([], 4) => Some(1),
        _ => None,
    };
    Codec {
        format: "gzip".to_string(),
        level,
        header,
    }
}

/// The levels whose compression of the first block, by libdeflate as
/// hoist's gzip writer makes each 1 MiB member, gives exactly the first
/// member's deflate data (neighbouring levels can give the same bytes);
/// none when no level does (another gzip writer, or a hoist before format
/// version 5, whose blocks were sync-flushed zlib).
fn hoist_block_levels(prefix: &[u8]) -> Vec<u32> {
    let Some(compressed) = prefix.get(GZIP_HEADER..) else {
        return Vec::new();
    };
    let mut block = Vec::new();
    // The first member's deflate stream ends at its final block; a
    // truncated prefix ends the decoding early, and what came out then
    // matches no level.
    let _ = flate2::read::DeflateDecoder::new(compressed)
        .take(BLOCK_SIZE as u64)
        .read_to_end(&mut block);
    (1..=MAX_LEVEL)
        .filter(|&level| {
            deflate_block(&block, level).is_ok_and(|candidate| compressed.starts_with(&candidate))
        })
        .collect()
}

fn zstd(prefix: &[u8]) -> Codec {
    let descriptor = prefix.get(4).copied().unwrap_or(0);
    let single_segment = descriptor & 0x20 != 0;
    let checksum = descriptor & 0x04 != 0;
    let content_size = descriptor >> 6 != 0 || single_segment;
    let window = if single_segment {
        "a single segment".to_string()
    } else {
        let byte = prefix.get(5).copied().unwrap_or(0);
        format!("window 2^{}", 10 + u32::from(byte >> 3))
    };
    let yes_no = |value: bool| if value { "yes" } else { "no" };
    Codec {
        format: "zstd".to_string(),
        level: None,
        header: format!(
            "{window}, checksum {}, content size {}",
            yes_no(checksum),
            yes_no(content_size)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::BytesBlob;
    use crate::layer::gzip::ParallelGzip;
    use std::io::Write;

    fn gzip_blob(data: &[u8], level: u32) -> BytesBlob {
        let mut writer = ParallelGzip::new(Vec::new(), level, 1).unwrap();
        writer.write_all(data).unwrap();
        BytesBlob::new("application/octet-stream", writer.finish().unwrap())
    }

    #[test]
    fn tells_the_level_of_hoists_gzip() {
        // Text with words that repeat at varying distances, as files do.
        let mut data = Vec::new();
        let mut state = 7u64;
        while data.len() < BLOCK_SIZE + 5000 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            data.extend_from_slice(format!("word{} ", (state >> 33) % 5000).as_bytes());
        }
        // Each detection compresses up to a block at every level: one full
        // block is enough to cover the sync-flushed layout.
        for level in [1, 6, 9] {
            for size in [3000, 70_000] {
                let codec = detect(&gzip_blob(&data[..size], level)).unwrap();
                assert_eq!(codec.format, "gzip");
                let levels = codec.header.contains(&level.to_string());
                assert!(
                    codec.level == Some(level) || (codec.level.is_none() && levels),
                    "level {level}, {size} bytes: {codec:?}"
                );
            }
        }
        assert_eq!(detect(&gzip_blob(&data, 9)).unwrap().level, Some(9));
    }

    #[test]
    fn another_gzip_writer_has_no_level_in_the_middle() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(5));
        encoder.write_all(&[7u8; 10_000]).unwrap();
        let mut bytes = encoder.finish().unwrap();
        bytes[9] = 3;
        let codec = detect(&BytesBlob::new("application/octet-stream", bytes)).unwrap();
        assert!(codec.header.contains("OS 3 (Unix)"), "{codec:?}");
        // flate2's stream is one deflate with no sync flush: level 5 may
        // still match hoist's layout for so small an input, so only the
        // header is checked here.
        assert_eq!(codec.format, "gzip");
    }

    #[test]
    fn reads_a_zstd_frame_header() {
        let bytes = zstd::encode_all(&[1u8; 1000][..], 3).unwrap();
        let codec = detect(&BytesBlob::new("application/octet-stream", bytes)).unwrap();
        assert_eq!(codec.format, "zstd");
        assert!(codec.header.contains("checksum"), "{codec:?}");
    }
}
