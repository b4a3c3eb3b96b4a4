//! Moving bytes between a pipe or file and storage, with bounded memory.
//!
//! Both directions overlap I/O on two threads joined by a bounded channel of
//! reusable 1 MiB buffers: at most `QUEUE + 2` buffers exist, whatever the
//! stream size, and nothing is allocated per block in steady state. The thread
//! that talks to storage is always the calling thread, so backends need not
//! be `Send`.

use std::io::{self, Read, Write};
use std::ops::Range;
use std::os::fd::AsFd;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::error::{is_broken_pipe, Error, Result};
use xxhash_rust::xxh3::Xxh3;

use crate::data::integrity::{Checksum, Entry, Hasher, DIGEST_BLOCK};
use crate::storage::{ObjectReader, ObjectWriter};

/// The largest block (DD Boost's largest I/O) and the pipe size asked for.
pub const BLOCK: usize = 1 << 20;
/// Filled buffers that may wait between the two threads.
const QUEUE: usize = 8;

/// Asks the kernel for a 1 MiB pipe on `fd` if it is a pipe. Larger pipes
/// cut the number of context switches several times over.
pub fn enlarge_pipe(fd: impl AsFd) {
    #[cfg(target_os = "linux")]
    {
        use nix::fcntl::{fcntl, FcntlArg};
        use std::os::fd::AsRawFd;
        let _ = fcntl(fd.as_fd().as_raw_fd(), FcntlArg::F_SETPIPE_SZ(BLOCK as i32));
    }
}

enum Filled {
    Data(Vec<u8>, usize),
    End(Box<Entry>),
    Failed(io::Error),
}

/// Reads until `buf` is full or the input ends; returns the count.
fn fill(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn buffer_pool(n: usize, size: usize) -> (Sender<Vec<u8>>, Receiver<Vec<u8>>) {
    let (tx, rx) = bounded(n);
    for _ in 0..n {
        tx.send(vec![0u8; size]).expect("pool has room");
    }
    (tx, rx)
}

/// Copies all of `input` into `writer` in whole blocks (only the last may be
/// short) and returns the record entry (size, digests) of what was written. Idle input is waited
/// for without limit. `source` names the input in error messages.
pub fn upload(
    input: Box<dyn Read + Send>,
    writer: &mut dyn ObjectWriter,
    source: &str,
) -> Result<Entry> {
    let block = writer.block_size().clamp(4096, BLOCK);
    let (free_tx, free_rx) = buffer_pool(QUEUE + 1, block);
    let (full_tx, full_rx) = bounded::<Filled>(QUEUE);
    let mut input = input;
    std::thread::Builder::new()
        .name("reader".into())
        .spawn(move || {
            let mut hasher = Hasher::new();
            while let Ok(mut buf) = free_rx.recv() {
                match fill(&mut input, &mut buf) {
                    Ok(n) => {
                        hasher.update(&buf[..n]);
                        if n > 0 && full_tx.send(Filled::Data(buf, n)).is_err() {
                            return;
                        }
                        if n < block {
                            let _ = full_tx.send(Filled::End(Box::new(hasher.finish())));
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = full_tx.send(Filled::Failed(e));
                        return;
                    }
                }
            }
        })
        .map_err(|e| Error::io(format!("cannot start reader thread: {e}")))?;
    for msg in full_rx.iter() {
        match msg {
            Filled::Data(buf, n) => {
                writer.write(&buf[..n])?;
                // The reader may have stopped; then the buffer is not needed.
                let _ = free_tx.send(buf);
            }
            Filled::End(entry) => return Ok(*entry),
            Filled::Failed(e) => {
                return Err(Error::io(format!("cannot read {source}: {e}")));
            }
        }
    }
    Err(Error::io(format!("reading {source} stopped unexpectedly")))
}

/// What `download` should verify.
pub enum Verify {
    /// The entries of the object's records whose size matches (at least
    /// one): every block is checked before it is written out.
    Entries(Vec<Entry>),
    /// Nothing: an object without a record.
    Nothing,
}

/// One read and the parts of it that go to the output.
struct Piece {
    buf: Vec<u8>,
    slices: Vec<Range<usize>>,
}

/// The reads that serve `ranges`: with `aligned`, whole `unit`-sized blocks
/// of the object (each read once, however many ranges it serves), else
/// pieces of at most `unit` bytes of each range.
struct Plan<'a> {
    ranges: &'a [Range<u64>],
    i: usize,
    pos: u64,
    unit: u64,
    size: u64,
    aligned: bool,
}

impl Iterator for Plan<'_> {
    /// (offset, length, slices of the read to output)
    type Item = (u64, usize, Vec<Range<usize>>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let r = self.ranges.get(self.i)?;
            let start = r.start.max(self.pos);
            if start < r.end {
                self.pos = start;
                break;
            }
            self.i += 1;
        }
        if !self.aligned {
            let r = &self.ranges[self.i];
            let len = (r.end - self.pos).min(self.unit) as usize;
            let offset = self.pos;
            self.pos += len as u64;
            return Some((offset, len, std::iter::once(0..len).collect()));
        }
        let b0 = self.pos / self.unit * self.unit;
        let bend = (b0 + self.unit).min(self.size);
        let mut slices = Vec::new();
        while let Some(r) = self.ranges.get(self.i) {
            let s = r.start.max(self.pos);
            if s >= bend {
                break;
            }
            let e = r.end.min(bend);
            if s < e {
                slices.push((s - b0) as usize..(e - b0) as usize);
            }
            if r.end <= bend {
                self.i += 1;
            } else {
                break;
            }
        }
        self.pos = bend;
        Some((b0, (bend - b0) as usize, slices))
    }
}

/// Copies `ranges` of `reader` (in order, not overlapping) to `sink` and
/// returns the bytes written.
///
/// With `Verify::Entries`, whole blocks are read and each is checked against
/// the candidate entries before any of it is written: an entry with block
/// digests that does not match is dropped, and a block no entry matches
/// fails the restore before its bytes are output. Entries of v1 records
/// (whole-object digest only) can only be checked at the end, so when only
/// they remain the last block is held back until the digest matches.
/// A sink that goes away gives `ErrorKind::BrokenPipe`. With
/// `std::io::sink()` it only verifies (verify_backup).
pub fn download(
    reader: &mut dyn ObjectReader,
    ranges: &[Range<u64>],
    sink: impl Write + Send + 'static,
    verify: Verify,
    object: &str,
) -> Result<u64> {
    let verified = matches!(verify, Verify::Entries(_));
    let block = if verified {
        DIGEST_BLOCK
    } else {
        reader.block_size().clamp(4096, BLOCK)
    };
    let (free_tx, free_rx) = buffer_pool(QUEUE + 2, block);
    let (full_tx, full_rx) = bounded::<Piece>(QUEUE);
    let mut sink = sink;
    let writer = std::thread::Builder::new()
        .name("writer".into())
        .spawn(move || -> io::Result<()> {
            for piece in full_rx.iter() {
                for s in &piece.slices {
                    sink.write_all(&piece.buf[s.clone()])?;
                }
                let _ = free_tx.send(piece.buf);
            }
            sink.flush()
        })
        .map_err(|e| Error::io(format!("cannot start writer thread: {e}")))?;

    let plan = Plan {
        ranges,
        i: 0,
        pos: 0,
        unit: block as u64,
        size: reader.size(),
        aligned: verified,
    };
    let result = feed(reader, plan, &free_rx, &full_tx, verify, object);
    drop(full_tx);
    let written = writer.join();
    let sink_result = match written {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(sink_error(e, object)),
        Err(_) => Err(Error::io(format!("output writer of {object} failed"))),
    };
    match (result, sink_result) {
        // The sink's failure explains a feed that stopped early.
        (_, Err(e)) => Err(e),
        (r, Ok(())) => r,
    }
}

fn sink_error(e: io::Error, object: &str) -> Error {
    if is_broken_pipe(&e) {
        Error::broken_pipe()
    } else {
        Error::io(format!("cannot write output of {object}: {e}"))
    }
}

fn damaged(object: &str, at: u64, expected_end: u64) -> Error {
    Error::integrity(format!(
        "{object} ended at byte {at} but {expected_end} bytes were expected; the stored object is damaged"
    ))
}

fn mismatch(object: &str, at: u64) -> Error {
    Error::integrity(format!(
        "{object} does not match the checksum recorded at backup time (the block at byte {at} differs); the stored copy is damaged, restore it from another copy"
    ))
}

/// Checks blocks against the candidate entries, in read order.
struct Checker {
    /// Entries with block digests still consistent with every block read.
    blocks: Vec<Entry>,
    /// v1 entries and the running whole-object digest they need.
    whole: Vec<Checksum>,
    hasher: Xxh3,
    size: u64,
    block_hasher: Xxh3,
}

impl Checker {
    fn new(entries: Vec<Entry>) -> Checker {
        let (blocks, whole): (Vec<Entry>, Vec<Entry>) =
            entries.into_iter().partition(|e| e.blocks.is_some());
        Checker {
            blocks,
            whole: whole.into_iter().map(|e| e.sum).collect(),
            hasher: Xxh3::new(),
            size: 0,
            block_hasher: Xxh3::new(),
        }
    }

    /// Whether the block at `offset` is verified now (else it may only be
    /// output once the whole digest matched); an error if nothing matches.
    /// Hashes part of the block being read (while it is still in cache).
    fn update(&mut self, data: &[u8]) {
        self.block_hasher.update(data);
        if !self.whole.is_empty() {
            self.hasher.update(data);
            self.size += data.len() as u64;
        }
    }

    /// Checks the block at `offset`, whose bytes went through `update`.
    fn block(&mut self, offset: u64, object: &str) -> Result<bool> {
        let index = (offset / DIGEST_BLOCK as u64) as usize;
        let digest = self.block_hasher.digest();
        self.block_hasher.reset();
        self.blocks
            .retain(|e| e.block_digest_matches(index, digest));
        match (self.blocks.is_empty(), self.whole.is_empty()) {
            (false, _) => Ok(true),
            (true, false) => Ok(false),
            (true, true) => Err(mismatch(object, offset)),
        }
    }

    /// Whether the whole-object digest matched a v1 entry.
    fn whole_matches(&self) -> bool {
        let sum = Checksum {
            size: self.size,
            digest: self.hasher.digest128(),
        };
        self.whole.contains(&sum)
    }
}

fn feed(
    reader: &mut dyn ObjectReader,
    plan: Plan<'_>,
    free_rx: &Receiver<Vec<u8>>,
    full_tx: &Sender<Piece>,
    verify: Verify,
    object: &str,
) -> Result<u64> {
    let sink_gone = || Error::io("output stopped");
    let mut checker = match verify {
        Verify::Entries(e) => Some(Checker::new(e)),
        Verify::Nothing => None,
    };
    let read_size = reader.block_size().clamp(4096, BLOCK);
    let mut held: Option<Piece> = None;
    let mut total = 0u64;
    for (offset, len, slices) in plan {
        let mut buf = free_rx.recv().map_err(|_| sink_gone())?;
        let mut got = 0;
        while got < len {
            // Reads of the backend's size, each hashed while in cache.
            let want = (len - got).min(read_size);
            let n = reader.read_at(&mut buf[got..got + want], offset + got as u64)?;
            if n == 0 {
                return Err(damaged(object, offset + got as u64, offset + len as u64));
            }
            if let Some(c) = checker.as_mut() {
                c.update(&buf[got..got + n]);
            }
            got += n;
        }
        total += slices.iter().map(|s| s.len() as u64).sum::<u64>();
        let verified = match checker.as_mut() {
            Some(c) => c.block(offset, object)?,
            None => true,
        };
        let piece = Piece { buf, slices };
        if verified {
            if let Some(prev) = held.take() {
                full_tx.send(prev).map_err(|_| sink_gone())?;
            }
            full_tx.send(piece).map_err(|_| sink_gone())?;
        } else if let Some(prev) = held.replace(piece) {
            full_tx.send(prev).map_err(|_| sink_gone())?;
        }
    }
    if let Some(last) = held {
        // Only v1 entries were left: the whole digest decides.
        if !checker.as_ref().is_some_and(|c| c.whole_matches()) {
            return Err(Error::integrity(format!(
                "{object} does not match the checksum recorded at backup time; the stored copy is damaged, restore it from another copy"
            )));
        }
        full_tx.send(last).map_err(|_| sink_gone())?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::sync::{Arc, Mutex};

    struct MemWriter(Arc<Mutex<Vec<u8>>>, Vec<usize>);
    impl ObjectWriter for MemWriter {
        fn block_size(&self) -> usize {
            BLOCK
        }
        fn write(&mut self, buf: &[u8]) -> Result<()> {
            self.1.push(buf.len());
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(())
        }
        fn commit(self: Box<Self>) -> Result<()> {
            Ok(())
        }
    }

    struct MemReader(Vec<u8>);
    impl ObjectReader for MemReader {
        fn block_size(&self) -> usize {
            BLOCK
        }
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
            let off = (offset as usize).min(self.0.len());
            // Short reads, to prove callers loop.
            let n = buf.len().min(self.0.len() - off).min(300_000);
            buf[..n].copy_from_slice(&self.0[off..off + n]);
            Ok(n)
        }
    }

    /// A sink file and a way to read back what was written to it.
    fn sink() -> (File, tempfile::TempPath) {
        let f = tempfile::NamedTempFile::new().unwrap();
        let (file, path) = f.into_parts();
        (file, path)
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn upload_writes_whole_blocks() {
        let d = data(3 * BLOCK + 17);
        let out = Arc::new(Mutex::new(Vec::new()));
        let mut w = MemWriter(out.clone(), Vec::new());
        let sum = upload(Box::new(io::Cursor::new(d.clone())), &mut w, "t").unwrap();
        assert_eq!(*out.lock().unwrap(), d);
        assert_eq!(w.1, vec![BLOCK, BLOCK, BLOCK, 17]);
        assert_eq!(sum.sum.size, d.len() as u64);
    }

    fn entry(d: &[u8]) -> Entry {
        let mut h = Hasher::new();
        h.update(d);
        h.finish()
    }

    fn run(d: &[u8], ranges: &[Range<u64>], verify: Verify) -> (Result<u64>, Vec<u8>) {
        let (f, p) = sink();
        let mut r = MemReader(d.to_vec());
        let res = download(&mut r, ranges, f, verify, "o");
        (res, std::fs::read(&p).unwrap())
    }

    #[test]
    fn download_ranges_and_verify() {
        let d = data(2 * BLOCK + 5);
        let whole = 0..d.len() as u64;
        let (n, out) = run(
            &d,
            std::slice::from_ref(&whole),
            Verify::Entries(vec![entry(&d)]),
        );
        assert_eq!(n.unwrap(), d.len() as u64);
        assert_eq!(out, d);

        let ranges = [
            3..10,
            1_500_000..1_500_001,
            1_500_001..1_500_001,
            2_000_000..2_090_000,
        ];
        let mut want = d[3..10].to_vec();
        want.push(d[1_500_000]);
        want.extend_from_slice(&d[2_000_000..2_090_000]);
        for verify in [Verify::Nothing, Verify::Entries(vec![entry(&d)])] {
            let (n, out) = run(&d, &ranges, verify);
            assert_eq!(n.unwrap(), want.len() as u64);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn corrupt_block_is_never_output() {
        let d = data(3 * BLOCK + 10);
        let e = entry(&d);
        let mut bad = d.clone();
        bad[BLOCK + 7] ^= 0x40;
        let whole = 0..d.len() as u64;
        let (res, out) = run(&bad, &[whole], Verify::Entries(vec![e.clone()]));
        assert_eq!(res.unwrap_err().kind(), crate::error::ErrorKind::Integrity);
        // Only the verified first block went out.
        assert_eq!(out, d[..BLOCK]);
        // A subset touching the damaged block fails without its bytes.
        let (res, out) = run(
            &bad,
            &[10..20, BLOCK as u64 + 100..BLOCK as u64 + 200],
            Verify::Entries(vec![e]),
        );
        assert!(res.is_err());
        assert_eq!(out, d[10..20]);
    }

    #[test]
    fn either_candidate_may_match() {
        let old = data(2 * BLOCK);
        let new: Vec<u8> = old.iter().map(|b| b.wrapping_add(1)).collect();
        let cands = || vec![entry(&old), entry(&new)];
        let whole = 0..old.len() as u64;
        assert_eq!(
            run(&old, std::slice::from_ref(&whole), Verify::Entries(cands())).1,
            old
        );
        assert_eq!(
            run(&new, std::slice::from_ref(&whole), Verify::Entries(cands())).1,
            new
        );
        // A mix of both versions matches neither.
        let mut mixed = old[..BLOCK].to_vec();
        mixed.extend_from_slice(&new[BLOCK..]);
        let (res, out) = run(&mixed, &[whole], Verify::Entries(cands()));
        assert!(res.is_err());
        assert_eq!(out, old[..BLOCK]);
    }

    #[test]
    fn v1_records_hold_back_the_last_block() {
        let d = data(BLOCK / 2 + BLOCK);
        let v1 = |d: &[u8]| Entry {
            sum: entry(d).sum,
            blocks: None,
        };
        let whole = 0..d.len() as u64;
        let (res, out) = run(
            &d,
            std::slice::from_ref(&whole),
            Verify::Entries(vec![v1(&d)]),
        );
        res.unwrap();
        assert_eq!(out, d);
        let (res, out) = run(&d, &[whole], Verify::Entries(vec![v1(b"something else")]));
        assert_eq!(res.unwrap_err().kind(), crate::error::ErrorKind::Integrity);
        assert!(out.len() < d.len());
    }
}
