//! The threads of a download: the reader threads (`Shared::help`) and the
//! calling thread's side (`Run`), which puts blocks in order, checks them
//! and passes them to the writer.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use xxhash_rust::xxh3::Xxh3;

use crate::error::{is_broken_pipe, Error, ErrorKind, Result};
use crate::storage::ObjectReader;

use super::blocks::{damaged, Checker};
use super::buffers::Buffer;
use super::plan::Plan;

/// A read slower than this is waiting on storage (a Data Domain, NFS, a
/// disk), where reads in flight gain; faster ones come from memory (the page
/// cache), where more reader threads only compete with the rest of the
/// restore for the CPU (measured: 4 or 8 of them restore from the page cache
/// at half the speed of 1 on two cores). A download therefore opens its
/// other readers only when the median of its first `PROBE_READS` reads (the
/// time spent in the backend's reads) is slow; the median, because a DD
/// Boost object's first block was read at open and a busy machine may stall
/// any one read.
pub(super) const SLOW_READ: Duration = Duration::from_millis(1);
pub(super) const PROBE_READS: usize = 3;
/// Opening more readers costs round trips of its own (on a Data Domain a
/// login and an open each, made at once): they are opened only when at
/// least this many reads are left after the probe. Measured on the mock at
/// 2 ms per call with a 20 ms login, a subset of 16 blocks restored faster
/// with one reader than with eight.
pub(super) const MIN_READS_LEFT: usize = 16;

/// One read and the parts of it that go to the output.
pub(super) struct Piece {
    pub(super) buf: Buffer,
    pub(super) slices: Vec<Range<usize>>,
}

/// One read handed to a reader thread.
pub(super) struct Job {
    pub(super) seq: u64,
    pub(super) offset: u64,
    pub(super) len: usize,
    pub(super) buf: Buffer,
}

/// A finished read: the block's XXH3-64 when blocks are verified.
pub(super) struct Done {
    pub(super) seq: u64,
    pub(super) buf: Buffer,
    pub(super) result: Result<Option<u64>>,
    /// Whether `download`'s own reader made it (else one opened besides it).
    pub(super) primary: bool,
}

/// What the reader threads and the calling thread share.
pub(super) struct Shared<'r, 'o> {
    /// The reader `download` was given: the calling thread reads with it
    /// while no reader thread runs, then a reader thread of its own; a block
    /// read again after a mismatch is read with it too.
    pub(super) primary: Mutex<&'r mut dyn ObjectReader>,
    /// The download ended: queued reads are skipped.
    pub(super) cancel: AtomicBool,
    /// The other readers stop (the object changed under them).
    pub(super) primary_only: AtomicBool,
    /// Reader threads running (the calling thread then reads no more).
    pub(super) helpers: AtomicUsize,
    pub(super) read_size: usize,
    pub(super) hash: bool,
    pub(super) object: &'o str,
}

impl Shared<'_, '_> {
    /// A reader thread: reads what it is handed with `reader`, or with the
    /// primary reader when None, until there is nothing more; the others stop
    /// when told to.
    pub(super) fn help(
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
    pub(super) fn read_primary(
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
    pub(super) fn read(
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
pub(super) struct Run<'s, 'r, 'o> {
    pub(super) shared: &'s Shared<'r, 'o>,
    /// Tells the opener of more readers whether reads are slow enough for
    /// them (until it is told).
    pub(super) probe: Option<Sender<bool>>,
    pub(super) read_times: Vec<Duration>,
    /// Reads the download makes in all.
    pub(super) reads: usize,
    pub(super) checker: Option<Checker>,
    pub(super) jobs: Sender<Job>,
    /// The same queue: reads no reader thread took yet, which the calling
    /// thread takes itself when it has nothing else to do.
    pub(super) queued: Receiver<Job>,
    pub(super) done: Receiver<Done>,
    pub(super) free: Receiver<Buffer>,
    pub(super) full: Sender<Piece>,
    pub(super) allocated: usize,
    pub(super) pool: usize,
    pub(super) block: usize,
}

impl Run<'_, '_, '_> {
    /// A buffer: one the writer gave back, a new one while fewer than
    /// `pool` exist, else the next the writer gives back.
    pub(super) fn buffer(&mut self) -> Result<Buffer> {
        if let Ok(b) = self.free.try_recv() {
            return Ok(b);
        }
        if self.allocated < self.pool {
            self.allocated += 1;
            return Ok(Buffer::new(self.block));
        }
        self.free.recv().map_err(|_| sink_gone())
    }

    /// The next read of `plan` as a job with a buffer, remembered in
    /// `waiting` (its place in the output order); None when the plan is done.
    pub(super) fn next_job(
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
    pub(super) fn read_here(&mut self, mut job: Job) -> Done {
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

    pub(super) fn feed(&mut self, plan: Plan<'_>, window: usize) -> Result<u64> {
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
                self.jobs.send(job).map_err(|_| {
                    Error::internal(format!("reading {object} stopped unexpectedly"))
                })?;
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
                .map_err(|_| Error::internal(format!("reading {object} stopped unexpectedly")))?;
            finished.insert(d.seq, d);
        }
        if let Some(last) = held {
            // Only v1 entries were left: the whole digest decides.
            if !self.checker.as_ref().is_some_and(|c| c.whole_matches()) {
                return Err(whole_mismatch(object));
            }
            self.full.send(last).map_err(|_| sink_gone())?;
        }
        Ok(total)
    }

    /// Checks a finished read, reading it again with `download`'s own reader
    /// when another reader's block matches nothing; returns the piece to
    /// output and whether it is verified now (else only at the end, v1).
    pub(super) fn check(
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
        let again = |buf: &mut [u8], why: &dyn std::fmt::Display| -> Result<Option<u64>> {
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

/// An object whose whole digest (a v1 record's) does not match.
pub(super) fn whole_mismatch(object: &str) -> Error {
    Error::integrity(format!(
        "{object} does not match the checksum recorded at backup time; the stored copy is damaged, restore it from another copy"
    ))
}

pub(super) fn sink_gone() -> Error {
    Error::io("output stopped")
}

pub(super) fn sink_error(e: io::Error, object: &str) -> Error {
    if is_broken_pipe(&e) {
        Error::broken_pipe()
    } else {
        Error::io(format!("cannot write output of {object}: {e}"))
    }
}
