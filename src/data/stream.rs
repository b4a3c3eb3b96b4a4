//! Moving bytes between a pipe or file and storage, with bounded memory.
//!
//! Both directions overlap I/O on threads joined by bounded channels of
//! reusable 1 MiB buffers, so memory is bounded whatever the stream size and
//! nothing is allocated per block in steady state. An upload reads its input
//! on one thread while the calling thread writes to storage (`QUEUE + 1`
//! buffers): the next block is ready when a write returns. A download reads
//! on the calling thread, which also puts the blocks in order and checks
//! them, while a writer thread writes them out; on slow storage more reader
//! threads keep up to `read_ahead` reads in flight (`read_ahead +
//! OUT_QUEUE + 4` buffers at most).

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::error::{is_broken_pipe, Error, ErrorKind, Result};
use xxhash_rust::xxh3::Xxh3;

use crate::data::integrity::{Checksum, Entry, Hasher, DIGEST_BLOCK};
use crate::storage::{ObjectReader, ObjectWriter};

/// The largest block (DD Boost's largest I/O) and the pipe size asked for.
pub const BLOCK: usize = 1 << 20;
/// Filled buffers that may wait between the two threads of an upload.
const QUEUE: usize = 8;
/// Verified blocks that may wait for the output writer of a download.
const OUT_QUEUE: usize = 4;

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

/// Reads in flight when the config does not say (option `read_ahead`):
/// measured on the mock Data Domain at 5 ms per call, 8 reads restore more
/// than 5 times as fast as 1, and more gain little (see README, Benchmarks).
pub const DEFAULT_READ_AHEAD: usize = 8;
/// The most reads in flight a config may ask for.
pub const MAX_READ_AHEAD: usize = 32;

/// A read slower than this is waiting on storage (a Data Domain, NFS, a
/// disk), where reads in flight gain; faster ones come from memory (the page
/// cache), where more reader threads only compete with the rest of the
/// restore for the CPU (measured: 4 or 8 of them restore from the page cache
/// at half the speed of 1 on two cores). A download therefore opens its
/// other readers only when the median of its first `PROBE_READS` reads (the
/// time spent in the backend's reads) is slow; the median, because a DD
/// Boost object's first block was read at open and a busy machine may stall
/// any one read.
const SLOW_READ: Duration = Duration::from_millis(1);
const PROBE_READS: usize = 3;
/// Opening more readers costs round trips of its own (on a Data Domain a
/// login and an open each, made at once): they are opened only when at
/// least this many reads are left after the probe. Measured on the mock at
/// 2 ms per call with a 20 ms login, a subset of 16 blocks restored faster
/// with one reader than with eight.
const MIN_READS_LEFT: usize = 16;

/// The reads that serve `ranges`: whole `unit`-sized blocks of the object,
/// each read once however many ranges it serves; blocks no range touches
/// are not read.
#[derive(Clone)]
struct Plan<'a> {
    ranges: &'a [Range<u64>],
    i: usize,
    pos: u64,
    unit: u64,
    size: u64,
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

/// [`download_ahead`] with one read in flight.
pub fn download(
    reader: &mut dyn ObjectReader,
    ranges: &[Range<u64>],
    sink: impl Write + Send + 'static,
    verify: Verify,
    object: &str,
) -> Result<u64> {
    download_ahead(reader, ranges, sink, verify, object, 1)
}

/// Copies `ranges` of `reader` (in order, not overlapping) to `sink` and
/// returns the bytes written.
///
/// Whole blocks are read, each once, on the calling thread with `reader`;
/// once a read proved slow (see [`SLOW_READ`]) the readers its backend opens
/// besides it ([`ObjectReader::more_readers`]) read ahead on threads of
/// their own, up to `read_ahead` reads in flight in all. Blocks reach `sink`
/// strictly in order, each checked first, through a writer thread.
///
/// With `Verify::Entries`, each block is checked against the candidate
/// entries before any of it is written: an entry with block digests that
/// does not match is dropped, and a block no entry matches fails the
/// restore before its bytes are output. Entries of v1 records (whole-object
/// digest only) can only be checked at the end, so when only they remain the
/// last block is held back until the digest matches. A block from a reader
/// that opened the object again by name and that matches no entry (the
/// object was overwritten in between) is read again with `reader`, and the
/// other readers are no longer used. Without entries only readers of the
/// same open file are used.
/// A sink that goes away gives `ErrorKind::BrokenPipe`. With
/// `std::io::sink()` it only verifies (verify_backup).
pub fn download_ahead(
    reader: &mut dyn ObjectReader,
    ranges: &[Range<u64>],
    sink: impl Write + Send + 'static,
    verify: Verify,
    object: &str,
    read_ahead: usize,
) -> Result<u64> {
    let verified = matches!(verify, Verify::Entries(_));
    let read_size = reader.block_size().clamp(4096, BLOCK);
    let block = if verified { DIGEST_BLOCK } else { read_size };
    let plan = Plan {
        ranges,
        i: 0,
        pos: 0,
        unit: block as u64,
        size: reader.size(),
    };
    let reads = plan.clone().count();
    let wanted = read_ahead.clamp(1, MAX_READ_AHEAD).min(reads.max(1));
    let factory = if wanted > 1 {
        reader.more_readers().filter(|f| verified || f.same_file)
    } else {
        None
    };
    let checker = match verify {
        Verify::Entries(e) => Some(Checker::new(e)),
        Verify::Nothing => None,
    };
    let hash = checker.as_ref().is_some_and(|c| !c.blocks.is_empty());
    // Reads handed out and not yet passed on in order: those in flight and
    // two more, so a reader that finishes finds its next read waiting.
    let window = wanted + 2;
    let pool = window + OUT_QUEUE + 2;
    let shared = Shared {
        primary: Mutex::new(reader),
        cancel: AtomicBool::new(false),
        primary_only: AtomicBool::new(false),
        helpers: AtomicUsize::new(0),
        read_size,
        hash,
        object,
    };
    let (job_tx, job_rx) = bounded::<Job>(window);
    let (done_tx, done_rx) = unbounded::<Done>();
    let (free_tx, free_rx) = bounded::<Vec<u8>>(pool);
    let (full_tx, full_rx) = bounded::<Piece>(OUT_QUEUE);
    let (go_tx, go_rx) = bounded::<bool>(1);
    let mut sink = sink;
    std::thread::scope(|s| {
        let writer = std::thread::Builder::new()
            .name("writer".into())
            .spawn_scoped(s, move || -> io::Result<()> {
                for piece in full_rx.iter() {
                    for sl in &piece.slices {
                        sink.write_all(&piece.buf[sl.clone()])?;
                    }
                    let _ = free_tx.send(piece.buf);
                }
                sink.flush()
            })
            .map_err(|e| Error::io(format!("cannot start writer thread: {e}")))?;
        let shared = &shared;
        if let Some(factory) = factory {
            // Opening more readers may take round trips: reading goes on
            // meanwhile, and tells whether they are worth it.
            let (jobs, done) = (job_rx.clone(), done_tx.clone());
            let opener = move || {
                if go_rx.recv() != Ok(true) {
                    log::debug!("{object}: one read in flight (reads are fast, or few are left)");
                    return;
                }
                let more = (factory.open)(wanted - 1);
                log::debug!("{object}: {} of {wanted} reads in flight", more.len() + 1);
                if more.is_empty() {
                    return;
                }
                // The primary reader moves to a thread of its own too, so
                // that the calling thread only hands out and passes on.
                let readers = std::iter::once(None).chain(more.into_iter().map(Some));
                for r in readers {
                    let (jobs, done) = (jobs.clone(), done.clone());
                    shared.helpers.fetch_add(1, Ordering::SeqCst);
                    let spawned = std::thread::Builder::new()
                        .name("reader".into())
                        .spawn_scoped(s, move || {
                            let mut r: Option<Box<dyn ObjectReader>> = r;
                            let reader: Option<&mut dyn ObjectReader> = match r.as_mut() {
                                Some(b) => Some(&mut **b),
                                None => None,
                            };
                            shared.help(reader, &jobs, &done);
                            shared.helpers.fetch_sub(1, Ordering::SeqCst);
                        });
                    if let Err(e) = spawned {
                        shared.helpers.fetch_sub(1, Ordering::SeqCst);
                        log::warn!("{object}: cannot start another reader thread: {e}");
                        break;
                    }
                }
            };
            if let Err(e) = std::thread::Builder::new()
                .name("opener".into())
                .spawn_scoped(s, opener)
            {
                log::warn!("{object}: one read in flight: cannot start a thread: {e}");
            }
        }
        drop(done_tx);
        let mut run = Run {
            shared,
            probe: (wanted > 1).then_some(go_tx),
            read_times: Vec::new(),
            reads,
            checker,
            jobs: job_tx,
            queued: job_rx,
            done: done_rx,
            free: free_rx,
            full: full_tx,
            allocated: 0,
            pool,
            block,
        };
        let result = run.feed(plan, window);
        shared.cancel.store(true, Ordering::Relaxed);
        // Ends the readers (no more jobs) and the writer (no more pieces).
        drop(run);
        let sink_result = match writer.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(sink_error(e, object)),
            Err(_) => Err(Error::io(format!("output writer of {object} failed"))),
        };
        match (result, sink_result) {
            // The sink's failure explains a feed that stopped early.
            (_, Err(e)) => Err(e),
            (r, Ok(())) => r,
        }
    })
}

/// One read and the parts of it that go to the output.
struct Piece {
    buf: Vec<u8>,
    slices: Vec<Range<usize>>,
}

/// One read handed to a reader thread.
struct Job {
    seq: u64,
    offset: u64,
    len: usize,
    buf: Vec<u8>,
}

/// A finished read: the block's XXH3-64 when blocks are verified.
struct Done {
    seq: u64,
    buf: Vec<u8>,
    result: Result<Option<u64>>,
    /// Whether `download`'s own reader made it (else one opened besides it).
    primary: bool,
}

/// What the reader threads and the calling thread share.
struct Shared<'r, 'o> {
    /// The reader `download` was given: the calling thread reads with it
    /// while no reader thread runs, then a reader thread of its own; a block
    /// read again after a mismatch is read with it too.
    primary: Mutex<&'r mut dyn ObjectReader>,
    /// The download ended: queued reads are skipped.
    cancel: AtomicBool,
    /// The other readers stop (the object changed under them).
    primary_only: AtomicBool,
    /// Reader threads running (the calling thread then reads no more).
    helpers: AtomicUsize,
    read_size: usize,
    hash: bool,
    object: &'o str,
}

impl Shared<'_, '_> {
    /// A reader thread: reads what it is handed with `reader`, or with the
    /// primary reader when None, until there is nothing more; the others stop
    /// when told to.
    fn help(
        &self,
        mut reader: Option<&mut dyn ObjectReader>,
        jobs: &Receiver<Job>,
        done: &Sender<Done>,
    ) {
        let primary = reader.is_none();
        for mut job in jobs.iter() {
            let mut took = Duration::ZERO;
            let result = if self.cancel.load(Ordering::Relaxed) {
                Err(Error::io("cancelled"))
            } else {
                match reader.as_deref_mut() {
                    Some(r) => self.read(r, &mut job.buf, job.offset, job.len, &mut took),
                    None => self.read_primary(&mut job.buf, job.offset, job.len, &mut took),
                }
            };
            let sent = done.send(Done {
                seq: job.seq,
                buf: job.buf,
                result,
                primary,
            });
            if sent.is_err() || (!primary && self.primary_only.load(Ordering::Relaxed)) {
                return;
            }
        }
    }

    /// [`Shared::read`] with the primary reader.
    fn read_primary(
        &self,
        buf: &mut [u8],
        offset: u64,
        len: usize,
        waited: &mut Duration,
    ) -> Result<Option<u64>> {
        let mut p = self.primary.lock().unwrap_or_else(|e| e.into_inner());
        self.read(&mut **p, buf, offset, len, waited)
    }

    /// Reads `len` bytes at `offset` into `buf` in reads of the backend's
    /// size, each hashed while in cache; returns the block digest, and adds
    /// the time spent waiting for the reads to `waited`.
    fn read(
        &self,
        reader: &mut dyn ObjectReader,
        buf: &mut [u8],
        offset: u64,
        len: usize,
        waited: &mut Duration,
    ) -> Result<Option<u64>> {
        let mut hasher = self.hash.then(Xxh3::new);
        let mut got = 0;
        while got < len {
            let want = (len - got).min(self.read_size);
            let started = Instant::now();
            let n = reader.read_at(&mut buf[got..got + want], offset + got as u64)?;
            *waited += started.elapsed();
            if n == 0 {
                return Err(damaged(
                    self.object,
                    offset + got as u64,
                    offset + len as u64,
                ));
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&buf[got..got + n]);
            }
            got += n;
        }
        Ok(hasher.map(|h| h.digest()))
    }
}

/// The calling thread's side of a download: reads with `download`'s own
/// reader, hands reads to the reader threads while there are any, puts
/// finished blocks in order, checks them and passes them to the writer.
struct Run<'s, 'r, 'o> {
    shared: &'s Shared<'r, 'o>,
    /// Tells the opener of more readers whether reads are slow enough for
    /// them (until it is told).
    probe: Option<Sender<bool>>,
    read_times: Vec<Duration>,
    /// Reads the download makes in all.
    reads: usize,
    checker: Option<Checker>,
    jobs: Sender<Job>,
    /// The same queue: reads no reader thread took yet, which the calling
    /// thread takes itself when it has nothing else to do.
    queued: Receiver<Job>,
    done: Receiver<Done>,
    free: Receiver<Vec<u8>>,
    full: Sender<Piece>,
    allocated: usize,
    pool: usize,
    block: usize,
}

impl Run<'_, '_, '_> {
    /// A buffer: one the writer gave back, a new one while fewer than
    /// `pool` exist, else the next the writer gives back.
    fn buffer(&mut self) -> Result<Vec<u8>> {
        if let Ok(b) = self.free.try_recv() {
            return Ok(b);
        }
        if self.allocated < self.pool {
            self.allocated += 1;
            return Ok(vec![0u8; self.block]);
        }
        self.free.recv().map_err(|_| sink_gone())
    }

    /// The next read of `plan` as a job with a buffer, remembered in
    /// `waiting` (its place in the output order); None when the plan is done.
    fn next_job(
        &mut self,
        plan: &mut std::iter::Peekable<Plan<'_>>,
        waiting: &mut VecDeque<(u64, usize, Vec<Range<usize>>)>,
        dispatched: &mut u64,
    ) -> Result<Option<Job>> {
        let Some((offset, len, slices)) = plan.next() else {
            return Ok(None);
        };
        let buf = self.buffer()?;
        waiting.push_back((offset, len, slices));
        let job = Job {
            seq: *dispatched,
            offset,
            len,
            buf,
        };
        *dispatched += 1;
        Ok(Some(job))
    }

    /// Reads `job` here, with `download`'s own reader.
    fn read_here(&mut self, mut job: Job) -> Done {
        let mut took = Duration::ZERO;
        let result = self
            .shared
            .read_primary(&mut job.buf, job.offset, job.len, &mut took);
        if let Some(probe) = &self.probe {
            self.read_times.push(took);
            if self.read_times.len() == PROBE_READS {
                self.read_times.sort();
                let slow = self.read_times[PROBE_READS / 2] >= SLOW_READ;
                let left = self.reads.saturating_sub(PROBE_READS);
                let _ = probe.send(slow && left >= MIN_READS_LEFT);
                self.probe = None;
            }
        }
        Done {
            seq: job.seq,
            buf: job.buf,
            result,
            primary: true,
        }
    }

    fn feed(&mut self, plan: Plan<'_>, window: usize) -> Result<u64> {
        let object = self.shared.object;
        let mut plan = plan.peekable();
        let mut waiting: VecDeque<(u64, usize, Vec<Range<usize>>)> = VecDeque::new();
        let mut finished: BTreeMap<u64, Done> = BTreeMap::new();
        let (mut dispatched, mut next) = (0u64, 0u64);
        let mut held: Option<Piece> = None;
        let mut total = 0u64;
        loop {
            while let Some(d) = finished.remove(&next) {
                let (offset, len, slices) = waiting.pop_front().expect("handed out");
                let n: u64 = slices.iter().map(|s| s.len() as u64).sum();
                let (piece, verified) = self.check(d, offset, len, slices)?;
                total += n;
                if verified {
                    if let Some(prev) = held.take() {
                        self.full.send(prev).map_err(|_| sink_gone())?;
                    }
                    self.full.send(piece).map_err(|_| sink_gone())?;
                } else if let Some(prev) = held.replace(piece) {
                    self.full.send(prev).map_err(|_| sink_gone())?;
                }
                next += 1;
            }
            if next == dispatched && plan.peek().is_none() {
                break;
            }
            // Reads for the reader threads, while there are any.
            let helpers = self.shared.helpers.load(Ordering::SeqCst);
            while helpers > 0 && waiting.len() < window {
                let Some(job) = self.next_job(&mut plan, &mut waiting, &mut dispatched)? else {
                    break;
                };
                self.jobs
                    .send(job)
                    .map_err(|_| Error::io(format!("reading {object} stopped unexpectedly")))?;
            }
            while let Ok(d) = self.done.try_recv() {
                finished.insert(d.seq, d);
            }
            if finished.contains_key(&next) {
                continue;
            }
            // A read here while no reader thread runs: the oldest none took
            // (they are starting), else the next.
            if helpers == 0 {
                if let Ok(job) = self.queued.try_recv() {
                    let d = self.read_here(job);
                    finished.insert(d.seq, d);
                    continue;
                }
            }
            if helpers == 0 && waiting.len() < window {
                if let Some(job) = self.next_job(&mut plan, &mut waiting, &mut dispatched)? {
                    let d = self.read_here(job);
                    finished.insert(d.seq, d);
                    continue;
                }
            }
            // Everything left is being read by the reader threads.
            let d = self
                .done
                .recv()
                .map_err(|_| Error::io(format!("reading {object} stopped unexpectedly")))?;
            finished.insert(d.seq, d);
        }
        if let Some(last) = held {
            // Only v1 entries were left: the whole digest decides.
            if !self.checker.as_ref().is_some_and(|c| c.whole_matches()) {
                return Err(Error::integrity(format!(
                    "{object} does not match the checksum recorded at backup time; the stored copy is damaged, restore it from another copy"
                )));
            }
            self.full.send(last).map_err(|_| sink_gone())?;
        }
        Ok(total)
    }

    /// Checks a finished read, reading it again with `download`'s own reader
    /// when another reader's block matches nothing; returns the piece to
    /// output and whether it is verified now (else only at the end, v1).
    fn check(
        &mut self,
        d: Done,
        offset: u64,
        len: usize,
        slices: Vec<Range<usize>>,
    ) -> Result<(Piece, bool)> {
        let object = self.shared.object;
        let Done {
            mut buf,
            result,
            primary,
            ..
        } = d;
        let shared = self.shared;
        let again = |buf: &mut Vec<u8>, why: &dyn std::fmt::Display| -> Result<Option<u64>> {
            if !shared.primary_only.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "{object}: a block read on another handle did not match ({why}); the object may have been replaced while it was read: reading on with one handle"
                );
            }
            let mut waited = Duration::ZERO;
            shared.read_primary(buf, offset, len, &mut waited)
        };
        let digest = match result {
            Ok(d) => d,
            Err(e) if !primary && e.kind() == ErrorKind::Integrity => again(&mut buf, &e)?,
            Err(e) => return Err(e),
        };
        let verified = match self.checker.as_mut() {
            None => true,
            Some(c) => match c.check(offset, digest, &buf[..len], object) {
                Ok(v) => v,
                Err(e) if !primary => {
                    let digest = again(&mut buf, &e)?;
                    c.check(offset, digest, &buf[..len], object)?
                }
                Err(e) => return Err(e),
            },
        };
        Ok((Piece { buf, slices }, verified))
    }
}

fn sink_gone() -> Error {
    Error::io("output stopped")
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

/// Checks blocks against the candidate entries, in order.
struct Checker {
    /// Entries with block digests still consistent with every block read.
    blocks: Vec<Entry>,
    /// v1 entries and the running whole-object digest they need.
    whole: Vec<Checksum>,
    hasher: Xxh3,
    size: u64,
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
        }
    }

    /// Checks the block `data` at `offset`, whose XXH3-64 is `digest` (when
    /// entries with block digests remain). Ok(true): verified now;
    /// Ok(false): only v1 entries remain, so it may only be output once the
    /// whole digest matched. An error, with nothing changed, when no entry
    /// matches.
    fn check(
        &mut self,
        offset: u64,
        digest: Option<u64>,
        data: &[u8],
        object: &str,
    ) -> Result<bool> {
        let index = (offset / DIGEST_BLOCK as u64) as usize;
        let matches = |e: &Entry| digest.is_some_and(|d| e.block_digest_matches(index, d));
        if self.whole.is_empty() && !self.blocks.iter().any(matches) {
            return Err(mismatch(object, offset));
        }
        self.blocks.retain(matches);
        if !self.whole.is_empty() {
            self.hasher.update(data);
            self.size += data.len() as u64;
        }
        Ok(!self.blocks.is_empty())
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
        fn close(self: Box<Self>) -> Result<Box<dyn crate::storage::ClosedObject>> {
            Err(crate::error::Error::io("not used"))
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

    /// A reader of `data` whose reads take a little while (varying, so
    /// reads in flight finish out of order); its more readers read `others`
    /// (the same bytes unless a test says otherwise).
    struct SlowReader {
        data: Arc<Vec<u8>>,
        others: Arc<Vec<u8>>,
        same_file: bool,
        reads: Arc<std::sync::atomic::AtomicUsize>,
        /// Readers opened besides the first.
        opened: Arc<std::sync::atomic::AtomicUsize>,
        fail_at: Option<u64>,
    }

    impl SlowReader {
        fn new(data: &[u8]) -> SlowReader {
            let data = Arc::new(data.to_vec());
            SlowReader {
                others: data.clone(),
                data,
                same_file: true,
                reads: Default::default(),
                opened: Default::default(),
                fail_at: None,
            }
        }
    }

    impl ObjectReader for SlowReader {
        fn block_size(&self) -> usize {
            BLOCK
        }
        fn size(&self) -> u64 {
            self.data.len() as u64
        }
        fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
            if self.fail_at == Some(offset) {
                return Err(Error::storage("injected read failure"));
            }
            let k = self.reads.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_micros(
                1000 + (k as u64 * 7919) % 3000,
            ));
            let off = (offset as usize).min(self.data.len());
            let n = buf.len().min(self.data.len() - off);
            buf[..n].copy_from_slice(&self.data[off..off + n]);
            Ok(n)
        }
        fn more_readers(&self) -> Option<crate::storage::ReaderFactory> {
            let (others, reads, fail_at) = (self.others.clone(), self.reads.clone(), self.fail_at);
            let opened = self.opened.clone();
            Some(crate::storage::ReaderFactory {
                same_file: self.same_file,
                open: Box::new(move |n| {
                    opened.fetch_add(n, Ordering::Relaxed);
                    (0..n)
                        .map(|_| {
                            Box::new(SlowReader {
                                data: others.clone(),
                                others: others.clone(),
                                same_file: true,
                                reads: reads.clone(),
                                opened: opened.clone(),
                                fail_at,
                            }) as Box<dyn ObjectReader>
                        })
                        .collect()
                }),
            })
        }
    }

    fn run_ahead(
        r: &mut SlowReader,
        ranges: &[Range<u64>],
        verify: Verify,
        read_ahead: usize,
    ) -> (Result<u64>, Vec<u8>) {
        let (f, p) = sink();
        let res = download_ahead(r, ranges, f, verify, "o", read_ahead);
        (res, std::fs::read(&p).unwrap())
    }

    #[test]
    fn reads_in_flight_reach_the_output_in_order() {
        let d = data(24 * BLOCK + 123);
        let whole = 0..d.len() as u64;
        let ranges: Vec<Range<u64>> = (0..400u64)
            .map(|i| i * 23_000..i * 23_000 + 1 + i % 5000)
            .collect();
        let want_ranges: Vec<u8> = ranges
            .iter()
            .flat_map(|r| d[r.start as usize..r.end as usize].iter().copied())
            .collect();
        for read_ahead in [1, 2, 4, 8, 32] {
            for verified in [true, false] {
                let verify = || {
                    if verified {
                        Verify::Entries(vec![entry(&d)])
                    } else {
                        Verify::Nothing
                    }
                };
                let mut r = SlowReader::new(&d);
                let (n, out) =
                    run_ahead(&mut r, std::slice::from_ref(&whole), verify(), read_ahead);
                assert_eq!(n.unwrap(), d.len() as u64);
                assert!(out == d, "read_ahead {read_ahead}, verified {verified}");
                assert_eq!(r.opened.load(Ordering::Relaxed), read_ahead.min(25) - 1);
                let (n, out) = run_ahead(&mut r, &ranges, verify(), read_ahead);
                assert_eq!(n.unwrap(), want_ranges.len() as u64);
                assert!(out == want_ranges, "ranges, read_ahead {read_ahead}");
            }
        }
    }

    #[test]
    fn corrupt_block_is_never_output_with_reads_in_flight() {
        let d = data(24 * BLOCK + 10);
        let e = entry(&d);
        let mut bad = d.clone();
        bad[12 * BLOCK + 7] ^= 0x40;
        for read_ahead in [2, 8] {
            let mut r = SlowReader::new(&bad);
            let whole = 0..d.len() as u64;
            let (res, out) = run_ahead(
                &mut r,
                &[whole],
                Verify::Entries(vec![e.clone()]),
                read_ahead,
            );
            assert_eq!(res.unwrap_err().kind(), ErrorKind::Integrity);
            assert!(
                out == d[..12 * BLOCK],
                "read_ahead {read_ahead}: {} bytes out",
                out.len()
            );
        }
    }

    #[test]
    fn readers_that_opened_another_version_are_not_trusted() {
        let old = data(24 * BLOCK + 99);
        let new: Vec<u8> = old.iter().map(|b| b.wrapping_add(3)).collect();
        let whole = 0..old.len() as u64;
        // The object was replaced between the first open and the others.
        let replaced = || {
            let mut r = SlowReader::new(&old);
            r.others = Arc::new(new.clone());
            r.same_file = false;
            r
        };
        // Only the old version is recorded: every block comes out old.
        let (n, out) = run_ahead(
            &mut replaced(),
            std::slice::from_ref(&whole),
            Verify::Entries(vec![entry(&old)]),
            8,
        );
        n.unwrap();
        assert!(out == old);
        // Both are candidates: the output is one of them, whole.
        let (n, out) = run_ahead(
            &mut replaced(),
            std::slice::from_ref(&whole),
            Verify::Entries(vec![entry(&old), entry(&new)]),
            8,
        );
        n.unwrap();
        assert!(out == old || out == new, "a mix of versions");
        // Nothing to verify against: only the first reader is used.
        let (n, out) = run_ahead(&mut replaced(), &[whole], Verify::Nothing, 8);
        n.unwrap();
        assert!(out == old);
    }

    #[test]
    fn a_failing_read_fails_the_download_after_the_blocks_before_it() {
        let d = data(24 * BLOCK);
        let mut r = SlowReader::new(&d);
        r.fail_at = Some(10 * BLOCK as u64);
        let whole = 0..d.len() as u64;
        let (res, out) = run_ahead(&mut r, &[whole], Verify::Entries(vec![entry(&d)]), 4);
        assert_eq!(res.unwrap_err().kind(), ErrorKind::Storage);
        assert!(out == d[..10 * BLOCK]);
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
