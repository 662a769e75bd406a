//! Kafka's record-batch compression codecs, in pure Rust: gzip (flate2), snappy (snap, with
//! the xerial framing Java producers write, raw blocks also read), lz4 (the LZ4 frame format,
//! lz4_flex) and zstd (ruzstd). Used by the produce path to read the keys of compressed batches
//! on compacted topics and to recompress batches for a topic whose `compression.type` is not
//! `producer`. Decompression is bounded: a batch that inflates beyond the limit is refused.

use std::io::{Read, Write};

/// Kafka's codec ids (the low 3 bits of a batch's attributes).
pub const NONE: u8 = 0;
pub const GZIP: u8 = 1;
pub const SNAPPY: u8 = 2;
pub const LZ4: u8 = 3;
pub const ZSTD: u8 = 4;

/// The magic that opens xerial-framed snappy (snappy-java's `SnappyOutputStream`).
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// snappy-java's default block size.
const XERIAL_BLOCK: usize = 32 * 1024;

/// Why a body could not be (de)compressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("unknown compression codec id {0}")]
    Unknown(u8),
    #[error("corrupt {codec} data: {reason}")]
    Corrupt { codec: &'static str, reason: String },
    #[error("the records decompress to more than {limit} bytes")]
    TooLarge { limit: usize },
}

/// The codec id of a `compression.type` value; `None` for `producer` (keep the producer's).
pub fn codec_of(compression_type: &str) -> Option<u8> {
    match compression_type {
        "uncompressed" => Some(NONE),
        "gzip" => Some(GZIP),
        "snappy" => Some(SNAPPY),
        "lz4" => Some(LZ4),
        "zstd" => Some(ZSTD),
        _ => None,
    }
}

fn name(codec: u8) -> &'static str {
    match codec {
        GZIP => "gzip",
        SNAPPY => "snappy",
        LZ4 => "lz4",
        ZSTD => "zstd",
        _ => "uncompressed",
    }
}

fn corrupt(codec: u8, e: impl std::fmt::Display) -> CodecError {
    CodecError::Corrupt { codec: name(codec), reason: e.to_string() }
}

/// Reads all of `r`, at most `limit` bytes.
fn read_bounded(codec: u8, r: impl Read, limit: usize) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    r.take((limit as u64).saturating_add(1)).read_to_end(&mut out).map_err(|e| corrupt(codec, e))?;
    if out.len() > limit {
        return Err(CodecError::TooLarge { limit });
    }
    Ok(out)
}

/// Decompresses a batch's records section, refusing more than `limit` bytes of output.
pub fn decompress(codec: u8, data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    match codec {
        NONE => Ok(data.to_vec()),
        GZIP => read_bounded(codec, flate2::read::MultiGzDecoder::new(data), limit),
        SNAPPY => snappy_decompress(data, limit),
        LZ4 => read_bounded(codec, lz4_flex::frame::FrameDecoder::new(data), limit),
        ZSTD => {
            let d = ruzstd::decoding::StreamingDecoder::new(data).map_err(|e| corrupt(codec, e))?;
            read_bounded(codec, d, limit)
        }
        other => Err(CodecError::Unknown(other)),
    }
}

fn snappy_decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    let raw = |block: &[u8], out: &mut Vec<u8>| -> Result<(), CodecError> {
        let len = snap::raw::decompress_len(block).map_err(|e| corrupt(SNAPPY, e))?;
        if out.len().saturating_add(len) > limit {
            return Err(CodecError::TooLarge { limit });
        }
        let start = out.len();
        out.resize(start + len, 0);
        snap::raw::Decoder::new().decompress(block, &mut out[start..]).map_err(|e| corrupt(SNAPPY, e))?;
        Ok(())
    };
    let mut out = Vec::new();
    if !data.starts_with(&XERIAL_MAGIC) {
        raw(data, &mut out)?;
        return Ok(out);
    }
    let mut pos = XERIAL_MAGIC.len() + 8; // version and compatible version
    while pos < data.len() {
        let len_bytes: [u8; 4] = data
            .get(pos..pos + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| corrupt(SNAPPY, "truncated xerial block length"))?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let block = data.get(pos + 4..pos + 4 + len).ok_or_else(|| corrupt(SNAPPY, "truncated xerial block"))?;
        raw(block, &mut out)?;
        pos += 4 + len;
    }
    Ok(out)
}

/// Compresses a records section with `codec`. `gzip_level` is `compression.gzip.level`
/// (-1: the codec's default). lz4_flex and ruzstd have one level each, so
/// `compression.lz4.level` and `compression.zstd.level` do not change the output.
pub fn compress(codec: u8, data: &[u8], gzip_level: i32) -> Result<Vec<u8>, CodecError> {
    match codec {
        NONE => Ok(data.to_vec()),
        GZIP => {
            let level = if gzip_level < 0 {
                flate2::Compression::default()
            } else {
                flate2::Compression::new(gzip_level as u32)
            };
            let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
            e.write_all(data).map_err(|e| corrupt(codec, e))?;
            e.finish().map_err(|e| corrupt(codec, e))
        }
        SNAPPY => {
            let mut out = Vec::with_capacity(data.len() / 2 + 32);
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for chunk in data.chunks(XERIAL_BLOCK) {
                let block = enc.compress_vec(chunk).map_err(|e| corrupt(codec, e))?;
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        LZ4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_mode(lz4_flex::frame::BlockMode::Independent)
                .block_size(lz4_flex::frame::BlockSize::Max64KB);
            let mut e = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            e.write_all(data).map_err(|e| corrupt(codec, e))?;
            e.finish().map_err(|e| corrupt(codec, e))
        }
        ZSTD => Ok(ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)),
        other => Err(CodecError::Unknown(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_and_is_bounded() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_be_bytes()).collect();
        for codec in [NONE, GZIP, SNAPPY, LZ4, ZSTD] {
            let packed = compress(codec, &data, -1).unwrap();
            if codec != NONE {
                assert!(packed.len() < data.len(), "{codec}");
            }
            assert_eq!(decompress(codec, &packed, data.len()).unwrap(), data, "{codec}");
            if codec != NONE {
                assert_eq!(decompress(codec, &packed, 1000), Err(CodecError::TooLarge { limit: 1000 }), "{codec}");
                assert!(decompress(codec, &packed[..packed.len() / 2], usize::MAX).is_err() || codec == SNAPPY);
                assert!(decompress(codec, b"garbage garbage", usize::MAX).is_err(), "{codec}");
            }
        }
        assert_eq!(decompress(7, b"", 10), Err(CodecError::Unknown(7)));
    }

    #[test]
    fn raw_snappy_blocks_are_read_too() {
        let block = snap::raw::Encoder::new().compress_vec(b"hello hello hello").unwrap();
        assert_eq!(decompress(SNAPPY, &block, 100).unwrap(), b"hello hello hello");
        assert_eq!(codec_of("producer"), None);
        assert_eq!(codec_of("zstd"), Some(ZSTD));
    }
}
