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

/// Encodes a segment: LZ4 block format when it saves space, raw otherwise. Appends to
/// `out`; returns the codec.
///
/// The encoder is `lz4_flex`'s fast one (its `safe-encode` feature off: pointer reads
/// instead of bounds-checked slices; the output is the same LZ4 block format, which
/// `decode_segment` checks on the way back). A Data Domain client compresses only the
/// segments it sends and favours speed over ratio; the mock is a test double whose own
/// CPU time should not hide the plugin's.
pub fn encode_segment(raw: &[u8], out: &mut Vec<u8>) -> u8 {
    let start = out.len();
    let max = lz4_flex::block::get_maximum_output_size(raw.len());
    out.resize(start + max, 0);
    match lz4_flex::block::compress_into(raw, &mut out[start..]) {
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
