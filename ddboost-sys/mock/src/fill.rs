//! Bulk fill: many small objects written as many short writer processes would leave them.
//!
//! Each object is written through a write stream of its own container and index log (a
//! process writing one table), and the logs are compacted as the processes opening the
//! system would compact them, so a filled system has the layout of one that many
//! `backup_data` processes wrote.

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
}

/// Writes the objects of `fill` into the system at `sysdir`; returns the bytes written.
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
        let path = dir.join(format!("{}{n}", fill.prefix));
        let mut ws = WriteStream::new(sys.clone(), path, 0o600, Vec::new())?;
        ws.write(&contents(fill.seed, n, fill.size))?;
        total += ws.finish()?;
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
