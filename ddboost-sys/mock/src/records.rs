//! Index records: the 64-byte records of index logs and of the shared index.
//!
//! ```text
//! segment  [0]=1 [1]=codec [4..8]=stored [8..12]=raw [16..24]=offset [24..56]=fingerprint
//!          [56..64]=container (0 in older logs: the container of the log's own id)
//! logical  [0]=2 [8..16]=container [16..24]=offset of the record in its log (0 in logs:
//!          its own position) [56..64]=bytes written by one closed stream
//! ```
//!
//! A record is identified by (container, offset): a segment by where its bytes are, a
//! logical record by where it was first written. Copies of a record (a compaction killed
//! before it removed the logs it had copied is run again) have the same identity, so
//! totals count each once.

use crate::error::DdResult;
use crate::segment::{Fp, Loc};
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const REC_SIZE: usize = 64;
const REC_SEG: u8 = 1;
const REC_LOGICAL: u8 = 2;

pub fn encode_seg(fp: &Fp, loc: &Loc) -> [u8; REC_SIZE] {
    let mut r = [0u8; REC_SIZE];
    r[0] = REC_SEG;
    r[1] = loc.codec;
    r[4..8].copy_from_slice(&loc.stored.to_le_bytes());
    r[8..12].copy_from_slice(&loc.raw.to_le_bytes());
    r[16..24].copy_from_slice(&loc.offset.to_le_bytes());
    r[24..56].copy_from_slice(fp);
    r[56..64].copy_from_slice(&loc.container.to_le_bytes());
    r
}

/// A logical record; `key` is its identity once it leaves its log (`(0, 0)` inside it).
pub fn encode_logical(bytes: u64, key: (u64, u64)) -> [u8; REC_SIZE] {
    let mut r = [0u8; REC_SIZE];
    r[0] = REC_LOGICAL;
    r[8..16].copy_from_slice(&key.0.to_le_bytes());
    r[16..24].copy_from_slice(&key.1.to_le_bytes());
    r[56..64].copy_from_slice(&bytes.to_le_bytes());
    r
}

pub enum Record {
    Seg(Fp, Loc),
    /// Bytes written, and the record's identity.
    Logical(u64, (u64, u64)),
    Unknown,
}

/// Decodes a record found at `pos` in the file of container `container` (for a log; 0 for
/// the shared index, whose records name their container).
pub fn decode(container: u64, pos: u64, r: &[u8]) -> Record {
    let u32at = |i: usize| u32::from_le_bytes(r[i..i + 4].try_into().expect("4 bytes"));
    let u64at = |i: usize| u64::from_le_bytes(r[i..i + 8].try_into().expect("8 bytes"));
    match r[0] {
        REC_SEG => {
            let mut fp = [0u8; 32];
            fp.copy_from_slice(&r[24..56]);
            let own = u64at(56);
            Record::Seg(
                fp,
                Loc {
                    container: if own == 0 { container } else { own },
                    offset: u64at(16),
                    stored: u32at(4),
                    raw: u32at(8),
                    codec: r[1],
                },
            )
        }
        REC_LOGICAL => {
            let key = match (u64at(8), u64at(16)) {
                (0, 0) => (container, pos),
                k => k,
            };
            Record::Logical(u64at(56), key)
        }
        _ => Record::Unknown,
    }
}

/// Decodes every whole record of `buf`, which starts at `start` in its file.
pub fn decode_all(container: u64, start: u64, buf: &[u8]) -> impl Iterator<Item = Record> + '_ {
    buf.chunks_exact(REC_SIZE)
        .enumerate()
        .map(move |(i, r)| decode(container, start + (i * REC_SIZE) as u64, r))
}

/// The whole records of `f` from byte `from`: the bytes and the new end. A torn last record
/// (a writer killed in the middle of an append) is left out.
pub fn read_whole(f: &File, from: u64) -> DdResult<(Vec<u8>, u64)> {
    let len = f.metadata()?.len();
    let whole = len - len % REC_SIZE as u64;
    if whole <= from {
        return Ok((Vec::new(), from.max(whole)));
    }
    let mut buf = vec![0u8; (whole - from) as usize];
    f.read_exact_at(&mut buf, from)?;
    Ok((buf, whole))
}

/// The index logs in `dir` (`<hex id>.idx`): their container ids and paths.
pub fn index_logs(dir: &Path) -> DdResult<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for ent in fs::read_dir(dir)? {
        let ent = ent?;
        let id = ent
            .file_name()
            .to_str()
            .and_then(|n| n.strip_suffix(".idx"))
            .and_then(|h| u64::from_str_radix(h, 16).ok());
        if let Some(id) = id {
            out.push((id, ent.path()));
        }
    }
    Ok(out)
}
