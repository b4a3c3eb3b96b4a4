//! Download: one download set up and joined (the writer thread, the opener
//! of more readers, the calling thread feeding them).

use std::io::{self, Write};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use std::thread::{Scope, ScopedJoinHandle};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use xxhash_rust::xxh3::xxh3_64;

use crate::data::integrity::DIGEST_BLOCK;
use crate::error::{Error, Result};
use crate::process::scope::Scope as CommandScope;
use crate::storage::{ObjectReader, ReaderFactory};

use super::blocks::Checker;
use super::buffers::Buffer;
use super::plan::Plan;
use super::threads::{sink_error, whole_mismatch, Done, Job, Piece, Run, Shared};
use super::{Verify, BLOCK, MAX_READ_AHEAD, OUT_QUEUE};

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

/// How many reads to have in flight (`read_ahead`, at most one per read),
/// and what opens the readers beyond `reader` when there are to be more:
/// readers that open the object again only when blocks are verified (only
/// their checks can tell an overwrite committed meanwhile).
fn readers_for(
    reader: &dyn ObjectReader,
    reads: usize,
    read_ahead: usize,
    verified: bool,
) -> (usize, Option<ReaderFactory>) {
    let wanted = read_ahead.clamp(1, MAX_READ_AHEAD).min(reads.max(1));
    let factory = if wanted > 1 {
        reader.more_readers().filter(|f| verified || f.same_file)
    } else {
        None
    };
    (wanted, factory)
}

/// Copies `ranges` of `reader` (in order, not overlapping) to `sink` and
/// returns the bytes written.
///
/// Whole blocks are read, each once, on the calling thread with `reader`;
/// once a read proved slow (see `threads::SLOW_READ`) the readers its backend opens
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
    // Writes to the output count as waiting for it.
    let sink = crate::process::metrics::Timed(sink);
    let verified = matches!(verify, Verify::Entries(_));
    let read_size = reader.block_size().clamp(4096, BLOCK);
    let reader_size = reader.size();
    let block = match reader.whole() {
        // Checked against digests of whole blocks.
        _ if verified => DIGEST_BLOCK,
        // In memory: one read, of the bytes as they are.
        Some(bytes) => bytes.len().max(1),
        None => read_size,
    };
    let plan = Plan::new(ranges, block as u64, reader_size);
    let reads = plan.clone().count();
    let (wanted, factory) = readers_for(&*reader, reads, read_ahead, verified);
    let checker = Checker::of(verify);
    let hash = checker.as_ref().is_some_and(|c| !c.blocks.is_empty());
    let shared = Shared {
        primary: Mutex::new(reader),
        cancel: AtomicBool::new(false),
        primary_only: AtomicBool::new(false),
        helpers: AtomicUsize::new(0),
        read_size,
        hash,
        object,
    };
    if reads <= 1 {
        return download_one(&shared, plan, sink, checker, block);
    }
    // Reads handed out and not yet passed on in order: those in flight and
    // two more, so a reader that finishes finds its next read waiting.
    let window = wanted + 2;
    let pool = window + OUT_QUEUE + 2;
    let (job_tx, job_rx) = bounded::<Job>(window);
    let (done_tx, done_rx) = unbounded::<Done>();
    let (free_tx, free_rx) = bounded::<Buffer>(pool);
    let (full_tx, full_rx) = bounded::<Piece>(OUT_QUEUE);
    let (go_tx, go_rx) = bounded::<bool>(1);
    std::thread::scope(|s| {
        let writer = start_writer(s, sink, full_rx, free_tx)?;
        let shared = &shared;
        if let Some(factory) = factory {
            start_opener(
                s,
                shared,
                factory,
                wanted,
                go_rx,
                job_rx.clone(),
                done_tx.clone(),
            );
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
            // No read is longer than the object: a small one gets small
            // buffers (many readers at once stay small).
            block: block.min(usize::try_from(reader_size).unwrap_or(block).max(1)),
        };
        let result = run.feed(plan, window);
        shared.cancel.store(true, Ordering::Relaxed);
        // Ends the readers (no more jobs) and the writer (no more pieces).
        drop(run);
        joined(result, writer, object)
    })
}

/// A download of at most one read (a small object's): read, checked and
/// written out on the calling thread, without threads of its own. An object
/// the reader holds in memory is not read: its bytes go out as they are.
fn download_one(
    shared: &Shared<'_, '_>,
    mut plan: Plan<'_>,
    mut sink: impl Write,
    mut checker: Option<Checker>,
    block: usize,
) -> Result<u64> {
    let object = shared.object;
    let mut total = 0u64;
    if let Some((offset, len, slices)) = plan.next() {
        let mut primary = shared.primary.lock().unwrap_or_else(|e| e.into_inner());
        let mut buf;
        let (bytes, digest) = match in_memory(primary.whole(), offset, len) {
            Some(bytes) => (bytes, shared.hash.then(|| xxh3_64(bytes))),
            None => {
                buf = Buffer::new(block);
                let mut waited = std::time::Duration::ZERO;
                let digest = shared.read(&mut **primary, &mut buf, offset, len, &mut waited)?;
                (&buf[..len], digest)
            }
        };
        let verified = match checker.as_mut() {
            None => true,
            Some(c) => c.check(offset, digest, bytes, object)?,
        };
        // Only v1 entries: the whole digest decides.
        if !verified && !checker.as_ref().is_some_and(|c| c.whole_matches()) {
            return Err(whole_mismatch(object));
        }
        for sl in slices {
            sink.write_all(&bytes[sl.clone()])
                .map_err(|e| sink_error(e, object))?;
            total += sl.len() as u64;
        }
    }
    sink.flush().map_err(|e| sink_error(e, object))?;
    Ok(total)
}

/// The `len` bytes at `offset` of an object held `whole` in memory.
fn in_memory(whole: Option<&[u8]>, offset: u64, len: usize) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    whole?.get(start..start.checked_add(len)?)
}

/// The download's result once the writer is done: the sink's failure
/// explains a feed that stopped early.
fn joined(
    result: Result<u64>,
    writer: ScopedJoinHandle<'_, io::Result<()>>,
    object: &str,
) -> Result<u64> {
    let sink_result = match writer.join() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(sink_error(e, object)),
        Err(_) => Err(Error::internal(format!("output writer of {object} failed"))),
    };
    match (result, sink_result) {
        (_, Err(e)) => Err(e),
        (r, Ok(())) => r,
    }
}

/// The output writer's thread: writes the pieces it is given to `sink`, in
/// order, and gives their buffers back.
fn start_writer<'scope>(
    s: &'scope Scope<'scope, '_>,
    mut sink: impl Write + Send + 'scope,
    full: Receiver<Piece>,
    free: Sender<Buffer>,
) -> Result<ScopedJoinHandle<'scope, io::Result<()>>> {
    let scope = CommandScope::current();
    std::thread::Builder::new()
        .name("writer".into())
        .spawn_scoped(s, move || -> io::Result<()> {
            let _in = scope.enter();
            for piece in full.iter() {
                for sl in &piece.slices {
                    sink.write_all(&piece.buf[sl.clone()])?;
                }
                let _ = free.send(piece.buf);
            }
            sink.flush()
        })
        .map_err(|e| Error::io(format!("cannot start writer thread: {e}")))
}

/// The opener's thread: opening more readers may take round trips, so
/// reading goes on meanwhile, and tells (on `go`) whether they are worth it;
/// then a reader thread for each and one for the primary reader.
fn start_opener<'scope, 'env>(
    s: &'scope Scope<'scope, 'env>,
    shared: &'env Shared<'_, '_>,
    factory: ReaderFactory,
    wanted: usize,
    go_rx: Receiver<bool>,
    jobs: Receiver<Job>,
    done: Sender<Done>,
) {
    let object = shared.object;
    let scope = CommandScope::current();
    let opener = move || {
        let _in = scope.enter();
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
            let scope = CommandScope::current();
            let spawned = std::thread::Builder::new()
                .name("reader".into())
                .spawn_scoped(s, move || {
                    let _in = scope.enter();
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
