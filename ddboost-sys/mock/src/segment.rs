//! Segments: their fingerprints, where their stored bytes are, and how they are encoded.

use crate::error::{DdError, DdResult};

/// A SHA-256 segment fingerprint.
pub type Fp = [u8; 32];

pub const CODEC_RAW: u8 = 0;
pub const CODEC_LZ4: u8 = 1;

/// Where a segment's stored bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub container: u64,
    pub offset: u64,
    pub stored: u32,
    pub raw: u32,
    pub codec: u8,
}

/// Decodes stored segment bytes into `out` (exactly the segment's raw length).
pub fn decode_segment(codec: u8, stored: &[u8], out: &mut [u8]) -> DdResult<()> {
    match codec {
        CODEC_RAW if stored.len() == out.len() => {
            out.copy_from_slice(stored);
            Ok(())
        }
        CODEC_LZ4 => match lz4_flex::block::decompress_into(stored, out) {
            Ok(n) if n == out.len() => Ok(()),
            _ => Err(DdError::IO),
        },
        _ => Err(DdError::IO),
    }
}

/// LZ4 acceleration for new segments: a Data Domain client compresses only the segments it
/// sends and favours speed over ratio (8: about 1.5 times the speed of the default level
/// for a few percent less compression).
const LZ4_ACCELERATION: i32 = 8;

/// Encodes a segment: LZ4 block format when it saves space, raw otherwise. Appends to
/// `out`; returns the codec.
///
/// The encoder is the reference C implementation (the `lz4` crate, which builds liblz4)
/// in its fast mode: only it has the acceleration setting, and the mock is a test double
/// whose own CPU time should not hide the plugin's. `lz4_flex` (pure Rust) has no
/// acceleration; its encoder, even without bounds checks, compresses table data about
/// 1.4 times slower. Decoding stays with `lz4_flex`'s checked decoder: the bytes read
/// back from containers never reach C code.
pub fn encode_segment(raw: &[u8], out: &mut Vec<u8>) -> u8 {
    let start = out.len();
    let max = lz4::block::compress_bound(raw.len()).unwrap_or(raw.len() + raw.len() / 255 + 16);
    out.resize(start + max, 0);
    let mode = Some(lz4::block::CompressionMode::FAST(LZ4_ACCELERATION));
    match lz4::block::compress_to_buffer(raw, mode, false, &mut out[start..]) {
        Ok(n) if n < raw.len() => {
            out.truncate(start + n);
            CODEC_LZ4
        }
        _ => {
            out.truncate(start);
            out.extend_from_slice(raw);
            CODEC_RAW
        }
    }
}
