//! Write streams (chunking, fingerprinting, dedup, compression) and reads through recipes.
//!
//! A write stream chunks incoming bytes on the calling thread with FastCDC (v2020,
//! 4 KiB / 8 KiB / 16 KiB), then hands each batch of whole chunks to the worker pool, which
//! fingerprints them with SHA-256 and compresses (LZ4) only those the system does not hold.
//! Results are committed in order on the calling thread: new segments are appended to the
//! stream's container, and every segment becomes an entry of the file's recipe. The bytes
//! after the last cut point stay in a small tail buffer until more data or the close arrives.

use crate::error::{DdError, DdResult};
use crate::recipe::{self, Entry};
use crate::segment::{self, Fp, Loc};
use crate::store::{System, Writer};
use crate::util::now_nanos;
use crossbeam_channel::{bounded, Receiver};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

/// Segment sizes in a Data Domain's range: 4 KiB to 16 KiB, with FastCDC's
/// target at 8 KiB (about 10 KiB on average on table data). The minimum also
/// sets how much of each segment FastCDC skips without hashing, which makes a
/// 4 KiB minimum markedly faster than 2 KiB.
pub const MIN_CHUNK: u32 = 4 * 1024;
pub const AVG_CHUNK: u32 = 8 * 1024;
pub const MAX_CHUNK: u32 = 16 * 1024;
const MAX_INFLIGHT: usize = 4;

struct SegOut {
    fp: Fp,
    raw: u32,
    /// Already held by the system when the worker looked.
    known: Option<Loc>,
    codec: u8,
    start: usize,
    len: usize,
}

struct BatchOut {
    segs: Vec<SegOut>,
    stored: Vec<u8>,
}

fn process_batch(sys: &System, data: &[u8], cuts: &[(usize, usize)]) -> BatchOut {
    let mut out = BatchOut {
        segs: Vec::with_capacity(cuts.len()),
        stored: Vec::with_capacity(data.len() / 2),
    };
    for &(off, len) in cuts {
        let raw = &data[off..off + len];
        let fp: Fp = Sha256::digest(raw).into();
        let known = sys.lookup(&fp);
        let start = out.stored.len();
        let codec = if known.is_none() {
            segment::encode_segment(raw, &mut out.stored)
        } else {
            segment::CODEC_RAW
        };
        out.segs.push(SegOut {
            fp,
            raw: len as u32,
            known,
            codec,
            start,
            len: out.stored.len() - start,
        });
    }
    out
}

/// An open write stream.
pub struct WriteStream {
    pub sys: Arc<System>,
    /// The recipe's path in the namespace.
    pub path: PathBuf,
    pub mode: u32,
    pub entries: Vec<Entry>,
    /// Logical size: committed entries + in flight + tail.
    pub size: u64,
    committed: u64,
    tail: Vec<u8>,
    inflight: VecDeque<Receiver<BatchOut>>,
    writer: Option<Writer>,
    /// Logical bytes added by this stream.
    pub added: u64,
    error: Option<DdError>,
    /// The empty file this stream made at open, published in place at close.
    created: Option<std::fs::File>,
}

impl WriteStream {
    pub fn new(sys: Arc<System>, path: PathBuf, mode: u32, entries: Vec<Entry>) -> DdResult<Self> {
        let size = entries.last().map(|e| e.end()).unwrap_or(0);
        sys.refresh(true)?;
        let writer = sys.acquire_writer()?;
        Ok(WriteStream {
            sys,
            path,
            mode,
            entries,
            size,
            committed: size,
            tail: Vec::new(),
            inflight: VecDeque::new(),
            writer: Some(writer),
            added: 0,
            error: None,
            created: None,
        })
    }

    /// A stream on the new empty file `file` (made by [`recipe::create`] at its path): its
    /// close writes the recipe into that file rather than into a new one renamed over it.
    pub fn created(mut self, file: std::fs::File) -> Self {
        self.created = Some(file);
        self
    }

    fn fail(&mut self, e: DdError) -> DdError {
        if self.error.is_none() {
            self.error = Some(e);
        }
        e
    }

    pub fn check(&self) -> DdResult<()> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Appends `data` at the end of the file.
    pub fn write(&mut self, data: &[u8]) -> DdResult<()> {
        self.check()?;
        if data.is_empty() {
            return Ok(());
        }
        self.tail.extend_from_slice(data);
        self.size += data.len() as u64;
        self.added += data.len() as u64;
        if self.tail.len() >= 2 * MAX_CHUNK as usize {
            self.cut(false).map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    /// Cuts the tail into chunks and submits all but the last (all of them when `last`).
    fn cut(&mut self, last: bool) -> DdResult<()> {
        if self.tail.is_empty() {
            return Ok(());
        }
        let mut cuts: Vec<(usize, usize)> = Vec::with_capacity(self.tail.len() / 4096 + 2);
        for c in fastcdc::v2020::FastCDC::new(&self.tail, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK) {
            cuts.push((c.offset, c.length));
        }
        if !last {
            cuts.pop();
        }
        let Some(&(o, l)) = cuts.last() else {
            return Ok(());
        };
        let end = o + l;
        let rest = self.tail[end..].to_vec();
        let mut batch = std::mem::replace(&mut self.tail, rest);
        batch.truncate(end);
        while self.inflight.len() >= MAX_INFLIGHT {
            self.commit_one()?;
        }
        let (tx, rx) = bounded(1);
        let sys = self.sys.clone();
        crate::pool::spawn(move || {
            let out = process_batch(&sys, &batch, &cuts);
            let _ = tx.send(out);
        });
        self.inflight.push_back(rx);
        Ok(())
    }

    fn commit_one(&mut self) -> DdResult<()> {
        let Some(rx) = self.inflight.pop_front() else {
            return Ok(());
        };
        let out = rx.recv().map_err(|_| DdError::IO)?;
        let writer = self.writer.as_mut().ok_or(DdError::IO)?;
        for s in &out.segs {
            let loc = match s.known {
                Some(l) => l,
                None => match self.sys.lookup(&s.fp).or_else(|| writer.pending(&s.fp)) {
                    Some(l) => l,
                    None => writer.append(
                        &self.sys,
                        s.fp,
                        s.codec,
                        s.raw,
                        &out.stored[s.start..s.start + s.len],
                    )?,
                },
            };
            self.entries.push(Entry {
                loff: self.committed,
                loc,
                fp: s.fp,
            });
            self.committed += s.raw as u64;
        }
        self.sys.refresh(false)?;
        Ok(())
    }

    /// Commits everything written so far except the tail, and flushes the container.
    pub fn drain(&mut self) -> DdResult<()> {
        self.check()?;
        let r = (|| {
            while !self.inflight.is_empty() {
                self.commit_one()?;
            }
            let sys = self.sys.clone();
            self.writer.as_mut().ok_or(DdError::IO)?.flush(&sys)
        })();
        r.map_err(|e| self.fail(e))
    }

    /// The bytes not yet cut into segments (they follow the committed entries).
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }

    /// Appends an already-fingerprinted segment whose stored bytes come from `src`
    /// (file copy). The tail must be empty.
    pub fn append_segment(&mut self, src: &System, e: &Entry) -> DdResult<()> {
        self.check()?;
        if !self.tail.is_empty() || !self.inflight.is_empty() {
            return Err(DdError::INVALID);
        }
        let r = (|| {
            let writer = self.writer.as_mut().ok_or(DdError::IO)?;
            let loc = match self.sys.lookup(&e.fp).or_else(|| writer.pending(&e.fp)) {
                Some(l) => l,
                None => {
                    let mut buf = vec![0u8; e.loc.stored as usize];
                    src.read_stored(e.loc.container, e.loc.offset, &mut buf)?;
                    writer.append(&self.sys, e.fp, e.loc.codec, e.loc.raw, &buf)?
                }
            };
            self.entries.push(Entry {
                loff: self.committed,
                loc,
                fp: e.fp,
            });
            self.committed += e.loc.raw as u64;
            self.size += e.loc.raw as u64;
            self.added += e.loc.raw as u64;
            Ok(())
        })();
        r.map_err(|err| self.fail(err))
    }

    /// Finishes the stream and publishes the recipe at its path.
    pub fn finish(mut self) -> DdResult<u64> {
        let r = (|| {
            self.check()?;
            self.cut(true)?;
            while !self.inflight.is_empty() {
                self.commit_one()?;
            }
            let sys = self.sys.clone();
            let w = self.writer.as_mut().ok_or(DdError::IO)?;
            w.add_logical(self.added);
            w.flush(&sys)?;
            if let Some(file) = self.created.take() {
                if recipe::publish_in_place(&file, &self.path, self.mode, &self.entries)? {
                    return Ok(self.size);
                }
            }
            let tmp = sys
                .tmp_dir()
                .join(format!("{}-{}.recipe", std::process::id(), now_nanos()));
            recipe::write(&tmp, self.mode, &self.entries)?;
            if let Err(e) = std::fs::rename(&tmp, &self.path) {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
            Ok(self.size)
        })();
        self.release();
        r
    }

    /// Drops the stream without publishing anything.
    pub fn abort(mut self) {
        self.release();
    }

    fn release(&mut self) {
        // Wait for in-flight jobs so their memory is freed before returning.
        for rx in self.inflight.drain(..) {
            let _ = rx.recv();
        }
        if let Some(mut w) = self.writer.take() {
            // Flush what is buffered so the container stays reusable; failures retire it.
            if w.flush(&self.sys).is_err() {
                w.discard();
            }
            self.sys.release_writer(w);
        }
    }
}

/// Per-handle cache of the last decoded segment.
#[derive(Default)]
pub struct SegCache {
    key: Option<(u64, u64)>,
    data: Vec<u8>,
}

/// Reads into `buf` from `entries` (then `tail`, which starts at the end of `entries`)
/// at `offset`. Returns the number of bytes read (short only at the end of the file).
pub fn read_at(
    sys: &System,
    entries: &[Entry],
    tail: &[u8],
    offset: u64,
    buf: &mut [u8],
    cache: &mut SegCache,
) -> DdResult<usize> {
    let ents_end = entries.last().map(|e| e.end()).unwrap_or(0);
    let size = ents_end + tail.len() as u64;
    if offset >= size || buf.is_empty() {
        return Ok(0);
    }
    let want = buf.len().min((size - offset) as usize);
    let mut done = 0usize;
    let mut i = entries.partition_point(|e| e.end() <= offset);
    let mut scratch: Vec<u8> = Vec::new();
    while done < want && i < entries.len() {
        // A run of entries stored back to back in one container: one read for all.
        let mut j = i;
        let mut span = 0u64;
        let mut covered = entries[i].loff;
        while j < entries.len() && covered < offset + want as u64 {
            let e = &entries[j];
            if j > i {
                let p = &entries[j - 1];
                if e.loc.container != p.loc.container
                    || e.loc.offset != p.loc.offset + p.loc.stored as u64
                {
                    break;
                }
            }
            span += e.loc.stored as u64;
            covered = e.end();
            j += 1;
        }
        let first = &entries[i];
        let cached_first = j == i + 1 && cache.key == Some((first.loc.container, first.loc.offset));
        if !cached_first {
            scratch.resize(span as usize, 0);
            sys.read_stored(first.loc.container, first.loc.offset, &mut scratch)?;
        }
        let mut soff = 0usize;
        for e in &entries[i..j] {
            let pos_now = offset + done as u64;
            let skip = (pos_now - e.loff) as usize;
            let n = (e.loc.raw as usize - skip).min(want - done);
            let stored = if cached_first {
                &[][..]
            } else {
                &scratch[soff..soff + e.loc.stored as usize]
            };
            soff += e.loc.stored as usize;
            let key = (e.loc.container, e.loc.offset);
            if cached_first {
                buf[done..done + n].copy_from_slice(&cache.data[skip..skip + n]);
            } else if skip == 0 && n == e.loc.raw as usize {
                segment::decode_segment(e.loc.codec, stored, &mut buf[done..done + n])?;
            } else {
                if cache.key != Some(key) {
                    cache.data.resize(e.loc.raw as usize, 0);
                    segment::decode_segment(e.loc.codec, stored, &mut cache.data)?;
                    cache.key = Some(key);
                }
                buf[done..done + n].copy_from_slice(&cache.data[skip..skip + n]);
            }
            done += n;
        }
        i = j;
    }
    if done < want {
        let pos = offset + done as u64;
        let t = (pos - ents_end) as usize;
        let n = want - done;
        buf[done..want].copy_from_slice(&tail[t..t + n]);
        done = want;
    }
    Ok(done)
}
