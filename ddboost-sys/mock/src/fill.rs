//! Bulk fill: many small objects written as many short writer processes would leave them.
//!
//! Each object is written through a write stream of its own container and index log (a
//! process writing one table), and the logs are compacted as the processes opening the
//! system would compact them, so a filled system has the layout of one that many
//! `backup_data` processes wrote. With [`Fill::records`], each object also gets the checksum
//! record `gpbackup_ddboost_plugin` writes beside it ([`checksum_record`]), through the
//! same writer, as the process that stored the object leaves it.

use crate::error::{DdError, DdResult};
use crate::store::System;
use crate::stream::WriteStream;
use std::fmt::Write as _;
use std::path::Path;

/// What to write: `objects` files of `size` bytes in `folder` of storage unit `su`.
pub struct Fill<'a> {
    pub su: &'a str,
    /// A folder path inside the storage unit (created when missing).
    pub folder: &'a str,
    /// File names are `<prefix><n>`, n from `first`.
    pub prefix: &'a str,
    pub first: u64,
    pub objects: u64,
    pub size: usize,
    /// Contents differ between seeds (and between objects).
    pub seed: u64,
    /// Also write each object's checksum record `.<name>.checksum` ([`checksum_record`]).
    pub records: bool,
}

/// Writes the objects of `fill` (and their records) into the system at `sysdir`; returns
/// the bytes written.
/// `progress` is called after each object with the count so far.
pub fn fill(sysdir: &Path, fill: &Fill<'_>, mut progress: impl FnMut(u64)) -> DdResult<u64> {
    if !crate::admin::valid_name(fill.su) || fill.folder.split('/').any(|c| c == "..") {
        return Err(DdError::INVALID);
    }
    let host = sysdir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or(DdError::INVALID)?;
    let sys = System::open(sysdir, host)?;
    let dir = sys.su_root().join(fill.su);
    if !dir.is_dir() {
        return Err(DdError::NOT_FOUND);
    }
    let dir = dir.join(fill.folder.trim_matches('/'));
    std::fs::create_dir_all(&dir)?;
    let mut total = 0u64;
    for n in fill.first..fill.first + fill.objects {
        let name = format!("{}{n}", fill.prefix);
        let data = contents(fill.seed, n, fill.size);
        let mut ws = WriteStream::new(sys.clone(), dir.join(&name), 0o600, Vec::new())?;
        ws.write(&data)?;
        total += ws.finish()?;
        if fill.records {
            let path = dir.join(format!(".{name}.checksum"));
            let mut ws = WriteStream::new(sys.clone(), path, 0o600, Vec::new())?;
            ws.write(checksum_record(&data).as_bytes())?;
            total += ws.finish()?;
        }
        // The next object comes from another process: a container and log of its own.
        sys.retire_writers();
        progress(n + 1 - fill.first);
    }
    Ok(total)
}

/// The content of object `object`: `size` bytes of table-like rows, unique to (seed, object).
pub fn contents(seed: u64, object: u64, size: usize) -> Vec<u8> {
    let mut out = String::with_capacity(size + 64);
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ object.wrapping_add(1);
    let mut id = 0u64;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        id += 1;
        let _ = writeln!(
            out,
            "{object},{id},{},{}.{:02},2026-{:02}-{:02}",
            x % 1_000_000_007,
            (x >> 20) % 100_000,
            (x >> 40) % 100,
            1 + (x >> 8) % 12,
            1 + (x >> 16) % 28
        );
    }
    out.truncate(size);
    out.into_bytes()
}

/// The bytes each block digest of a checksum record covers (the plugin's `DIGEST_BLOCK`).
pub const RECORD_BLOCK: usize = 1 << 20;

/// The checksum record `gpbackup_ddboost_plugin` stores as `.<name>.checksum` beside a new
/// object `<name>` holding `data` (its format v2, one entry: `encode` of
/// `src/data/integrity.rs`): a header with the size, the XXH3-128 digest of the whole
/// object and the number of blocks, then the XXH3-64 digest of each [`RECORD_BLOCK`] bytes
/// (the last block may be short; an empty object has none), one per line in hex.
pub fn checksum_record(data: &[u8]) -> String {
    let blocks: Vec<u64> = data
        .chunks(RECORD_BLOCK)
        .map(xxhash_rust::xxh3::xxh3_64)
        .collect();
    let mut out = format!(
        "gpbackup_ddboost_plugin checksum v2\nalgorithm=xxh3-128\nsize={}\ndigest={:032x}\nblock_size={RECORD_BLOCK}\nblocks={}\n",
        data.len(),
        xxhash_rust::xxh3::xxh3_128(data),
        blocks.len()
    );
    for b in blocks {
        let _ = writeln!(out, "{b:016x}");
    }
    out
}
