//! The shared segment index of a system: index logs compacted into fingerprint shards.
//!
//! Each write stream appends its segments' records to its own index log
//! (`store/index/<id>.idx`) and holds an exclusive `flock` on it while it lives (a killed
//! process's locks go with it). Logs whose writer is gone are compacted into the shared
//! index: `store/fp/<xyz>` holds the records of the fingerprints whose first 12 bits are
//! `xyz` (4096 shards), `store/fp/logical` the logical-byte records, and `store/fp/SEQ`
//! counts compactions. A process reads a shard only when a lookup needs it, and reads it
//! again (from where it stopped) only after `SEQ` changed, so opening a system and writing
//! a small file cost the same on a new system and on one holding millions of segments.
//!
//! Compaction runs under `store/compact.lock` (one compactor at a time, others skip it):
//! it appends the logs' records to the shards (first cutting a torn last record a killed
//! compactor left), then bumps `SEQ`, then removes the logs. Killed before the removal, the
//! next compaction copies the same records again: copies have the same identity
//! ([`crate::records`]) and change no lookup or total. A reader scans the logs before it
//! reads `SEQ`, so a record is always in a log it read or in a shard it will read.

use crate::error::{DdError, DdResult};
use crate::records::{self, decode_all, encode_logical, encode_seg, Record, REC_SIZE};
use crate::segment::{Fp, Loc};
use parking_lot::Mutex;
use rustix::fs::{flock, FlockOperation};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Number of fingerprint shards (the first 12 bits of a fingerprint).
pub const SHARDS: usize = 4096;
/// Compaction starts when a system holds this many index logs.
pub const COMPACT_AT: usize = 16;
/// At most this many logs per compaction, so one caller's share stays bounded.
const COMPACT_MAX: usize = 4096;
/// A log being created (`.<id>.new`) older than this was left by a killed writer.
const STRAY_AGE: Duration = Duration::from_secs(60);

pub fn shard_of(fp: &Fp) -> usize {
    ((fp[0] as usize) << 4) | (fp[1] as usize >> 4)
}

pub fn shard_name(i: usize) -> String {
    format!("{i:03x}")
}

/// Tries an exclusive lock without waiting: false when another holder has it.
pub fn try_lock(f: &File) -> DdResult<bool> {
    match flock(f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(std::io::Error::from(e).into()),
    }
}

/// One shard as this process has read it.
#[derive(Default)]
struct Shard {
    /// Bytes of the shard file read so far.
    len: u64,
    /// The `SEQ` at the last read; the file is read again when `SEQ` moved on.
    seq: u64,
    loaded: bool,
    map: HashMap<Fp, Loc>,
}

/// The shared index as one process sees it: shards read lazily.
pub struct SharedIndex {
    dir: PathBuf,
    seq: AtomicU64,
    shards: Vec<Mutex<Shard>>,
}

impl SharedIndex {
    pub fn new(store: &Path) -> Self {
        SharedIndex {
            dir: store.join("fp"),
            seq: AtomicU64::new(0),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    /// Notes the current compaction count: shards read before it are read again (their
    /// new records only) at their next lookup.
    pub fn sync(&self) {
        self.seq.store(read_seq(&self.dir), Ordering::Release);
    }

    /// The location of `fp` in the shared index. A shard that cannot be read counts as
    /// empty: the segment is stored again, which costs space, never data.
    pub fn lookup(&self, fp: &Fp) -> Option<Loc> {
        let seq = self.seq.load(Ordering::Acquire);
        let mut s = self.shards[shard_of(fp)].lock();
        if !s.loaded || s.seq != seq {
            let path = self.dir.join(shard_name(shard_of(fp)));
            if read_shard(&path, &mut s).is_ok() {
                s.loaded = true;
                s.seq = seq;
            }
        }
        s.map.get(fp).copied()
    }
}

fn read_shard(path: &Path, s: &mut Shard) -> DdResult<()> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let (buf, end) = records::read_whole(&f, s.len)?;
    for r in decode_all(0, s.len, &buf) {
        if let Record::Seg(fp, loc) = r {
            s.map.entry(fp).or_insert(loc);
        }
    }
    s.len = end;
    Ok(())
}

fn read_seq(dir: &Path) -> u64 {
    fs::read_to_string(dir.join("SEQ"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Every segment record of the shared index (for totals).
pub fn all_records(store: &Path, mut each: impl FnMut(Record)) -> DdResult<()> {
    let dir = store.join("fp");
    if !dir.is_dir() {
        return Ok(());
    }
    for i in 0..SHARDS {
        read_all(&dir.join(shard_name(i)), &mut each)?;
    }
    read_all(&dir.join("logical"), &mut each)
}

fn read_all(path: &Path, each: &mut impl FnMut(Record)) -> DdResult<()> {
    match File::open(path) {
        Ok(f) => {
            let (buf, _) = records::read_whole(&f, 0)?;
            decode_all(0, 0, &buf).for_each(each);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A log whose writer is gone, locked by the compactor.
struct Done {
    path: PathBuf,
    _lock: File,
}

/// Compacts the index logs of `store` whose writers are gone into the shared index.
/// Returns the number of logs compacted (0 when another process is compacting).
pub fn compact(store: &Path) -> DdResult<usize> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(store.join("compact.lock"))?;
    if !try_lock(&lock)? {
        return Ok(0);
    }
    let index_dir = store.join("index");
    remove_strays(&index_dir);
    let mut shards: HashMap<usize, Vec<u8>> = HashMap::new();
    let mut done = Vec::new();
    for (id, path) in records::index_logs(&index_dir)?
        .into_iter()
        .take(COMPACT_MAX)
    {
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        if !try_lock(&f)? {
            continue; // its writer is alive
        }
        let (buf, _) = records::read_whole(&f, 0)?;
        for r in decode_all(id, 0, &buf) {
            let (shard, rec) = match r {
                Record::Seg(fp, loc) => (shard_of(&fp), encode_seg(&fp, &loc)),
                Record::Logical(bytes, key) => (SHARDS, encode_logical(bytes, key)),
                Record::Unknown => continue,
            };
            shards.entry(shard).or_default().extend_from_slice(&rec);
        }
        done.push(Done { path, _lock: f });
    }
    if done.is_empty() {
        return Ok(0);
    }
    let dir = store.join("fp");
    fs::create_dir_all(&dir)?;
    for (i, recs) in &shards {
        let name = if *i == SHARDS {
            "logical".to_string()
        } else {
            shard_name(*i)
        };
        append_whole(&dir.join(name), recs)?;
    }
    bump_seq(&dir)?;
    for d in &done {
        match fs::remove_file(&d.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done.len())
}

/// Appends `recs` to a shard file after cutting a torn last record.
fn append_whole(path: &Path, recs: &[u8]) -> DdResult<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .append(true)
        .open(path)?;
    let len = f.metadata()?.len();
    if len % REC_SIZE as u64 != 0 {
        f.set_len(len - len % REC_SIZE as u64)?;
    }
    f.write_all(recs)?;
    Ok(())
}

fn bump_seq(dir: &Path) -> DdResult<()> {
    let next = read_seq(dir) + 1;
    let tmp = dir.join(format!(".SEQ.{}", std::process::id()));
    fs::write(&tmp, format!("{next}\n"))?;
    fs::rename(&tmp, dir.join("SEQ")).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        DdError::from(e)
    })
}

/// Removes logs that killed writers left half created (`.<id>.new`, unlocked, old).
fn remove_strays(index_dir: &Path) {
    let Ok(rd) = fs::read_dir(index_dir) else {
        return;
    };
    for ent in rd.flatten() {
        let name = ent.file_name();
        let stray = name
            .to_str()
            .is_some_and(|n| n.starts_with('.') && n.ends_with(".new"));
        let old = ent
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STRAY_AGE));
        if stray && old {
            if let Ok(f) = File::open(ent.path()) {
                if try_lock(&f).unwrap_or(false) {
                    let _ = fs::remove_file(ent.path());
                }
            }
        }
    }
}
