//! verify_backup: reads every object of a backup and checks it against its
//! checksum record, block by block, the way a restore does, writing nothing.
//!
//! Output, on standard output, one line per object as it finishes (in the
//! order they finish):
//!
//! ```text
//! OK <path> <bytes>
//! FAILED <path>: <reason>
//! UNRECORDED <path>
//! ```
//!
//! then `SUMMARY ...` with the counts, bytes and speed. Paths are relative to
//! the config's `directory`. Objects that appeared while it ran (listed at the
//! end but not at the start) get a `NEW <path> <bytes>` line: not checked, and
//! not a failure. The command fails when an object failed, or has no record
//! and `--allow-unrecorded` was not given.
//!
//! It only reads: a backup being written at the same time is not disturbed
//! (temporaries are never listed, and an object renamed into place after the
//! listing is left for the next run), and an object that disappears or
//! cannot be read fails alone while the others are still checked.

use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::data::integrity::{self, Entry};
use crate::data::stream::{self, Verify};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::keys::Timestamp;
use crate::storage::{ObjectInfo, Storage};

use super::Context;

/// Objects read at once, each by its own thread with its own storage handle
/// (a DD Boost connection): enough to keep a Data Domain or a disk busy
/// while one stream waits, few enough not to crowd out a running backup.
pub const READERS: usize = 4;

/// What became of one object.
enum Outcome {
    Ok(u64),
    Failed(String),
    Unrecorded,
}

/// Verifies every object of backup `ts` (all segments, as stored below the
/// backup's folder). Prints one line per object and a summary on standard
/// output, logs the summary, and fails when an object failed or (unless
/// `allow_unrecorded`) has no checksum record. A backup with no objects is an
/// error of kind `NotFound`.
pub fn verify_backup(ctx: &Context, ts: &Timestamp, allow_unrecorded: bool) -> Result<()> {
    let storage = ctx.storage()?;
    let prefix = ts.prefix();
    let objects = storage.list(&prefix).map_err(|e| {
        e.context(format!(
            "verify_backup: cannot list backup {ts} in {}",
            storage.describe()
        ))
    })?;
    if objects.is_empty() {
        return Err(Error::not_found(format!(
            "backup {ts} not found in {}: no objects below {prefix}; check the timestamp and that the plugin config points at the storage the backup was written to",
            storage.describe()
        )));
    }
    let total: u64 = objects.iter().map(|o| o.size).sum();
    let readers = READERS.min(objects.len());
    log::info!(
        "verify_backup: checking {} objects ({total} bytes) of backup {ts} in {} with {readers} readers",
        objects.len(),
        storage.describe()
    );
    let started = Instant::now();
    let run = Run::new(&objects);
    std::thread::scope(|scope| {
        for _ in 1..readers {
            scope.spawn(|| match ctx.storage() {
                Ok(s) => run.work(s.as_ref()),
                // The other readers take its share.
                Err(e) => log::warn!("verify_backup: one reader could not connect: {e}"),
            });
        }
        run.work(storage.as_ref());
    });
    let secs = started.elapsed().as_secs_f64();
    if run.stdout_gone.load(Ordering::Relaxed) {
        return Err(Error::broken_pipe());
    }

    // Objects committed while this ran are reported, not checked.
    let seen: HashSet<&str> = objects.iter().map(|o| o.path.as_str()).collect();
    let appeared: Vec<ObjectInfo> = match storage.list(&prefix) {
        Ok(now) => now
            .into_iter()
            .filter(|o| !seen.contains(o.path.as_str()))
            .collect(),
        Err(e) => {
            log::warn!("verify_backup: cannot list backup {ts} again to see new objects: {e}");
            Vec::new()
        }
    };
    for o in &appeared {
        run.print(&format!("NEW {} {}", o.path, o.size));
        log::info!(
            "verify_backup: {} appeared while verifying; not checked",
            o.path
        );
    }

    let ok = run.ok.load(Ordering::Relaxed);
    let failed = run.failed.load(Ordering::Relaxed);
    let unrecorded = run.unrecorded.load(Ordering::Relaxed);
    let bytes = run.bytes.load(Ordering::Relaxed);
    let mbps = if secs > 0.0 {
        bytes as f64 / secs / 1e6
    } else {
        0.0
    };
    let mut summary = format!(
        "backup {ts}: {} objects, {bytes} bytes verified in {secs:.3} s ({mbps:.1} MB/s): {ok} OK, {failed} FAILED, {unrecorded} UNRECORDED",
        objects.len()
    );
    if !appeared.is_empty() {
        summary.push_str(&format!(", {} NEW (not checked)", appeared.len()));
    }
    run.print(&format!("SUMMARY {summary}"));
    if failed > 0 || (unrecorded > 0 && !allow_unrecorded) {
        log::error!("verify_backup: {summary}");
    } else {
        log::info!("verify_backup: {summary}");
    }
    if run.stdout_gone.load(Ordering::Relaxed) {
        return Err(Error::broken_pipe());
    }

    if failed > 0 {
        return Err(Error::integrity(format!(
            "backup {ts}: {failed} of {} objects failed verification (see the FAILED lines on standard output)",
            objects.len()
        )));
    }
    if unrecorded > 0 && !allow_unrecorded {
        return Err(Error::integrity(format!(
            "backup {ts}: {unrecorded} of {} objects have no checksum record and cannot be verified (see the UNRECORDED lines; written by another tool? --allow-unrecorded accepts them)",
            objects.len()
        )));
    }
    Ok(())
}

/// The shared state of one run: the objects left, the counts, the output.
struct Run {
    queue: Mutex<Vec<String>>,
    stdout_gone: AtomicBool,
    ok: AtomicUsize,
    failed: AtomicUsize,
    unrecorded: AtomicUsize,
    bytes: AtomicU64,
}

impl Run {
    fn new(objects: &[ObjectInfo]) -> Run {
        // Largest first, so the run does not end waiting on one big object;
        // popped from the end.
        let mut order: Vec<&ObjectInfo> = objects.iter().collect();
        order.sort_by(|a, b| a.size.cmp(&b.size).then_with(|| b.path.cmp(&a.path)));
        Run {
            queue: Mutex::new(order.into_iter().map(|o| o.path.clone()).collect()),
            stdout_gone: AtomicBool::new(false),
            ok: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            unrecorded: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// Takes objects until none are left (or the output went away, or a
    /// signal arrived).
    fn work(&self, storage: &dyn Storage) {
        loop {
            if self.stdout_gone.load(Ordering::Relaxed) || crate::process::signals::interrupted() {
                return;
            }
            let Some(path) = self.queue.lock().ok().and_then(|mut q| q.pop()) else {
                return;
            };
            let started = Instant::now();
            let line = match check_object(storage, &path) {
                Outcome::Ok(n) => {
                    self.ok.fetch_add(1, Ordering::Relaxed);
                    self.bytes.fetch_add(n, Ordering::Relaxed);
                    super::log_summary("verify_backup", &path, n, started);
                    format!("OK {path} {n}")
                }
                Outcome::Failed(reason) => {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    log::error!("verify_backup {path}: {reason}");
                    format!("FAILED {path}: {reason}")
                }
                Outcome::Unrecorded => {
                    self.unrecorded.fetch_add(1, Ordering::Relaxed);
                    log::warn!("verify_backup {path}: no checksum record; not verified");
                    format!("UNRECORDED {path}")
                }
            };
            self.print(&line);
        }
    }

    /// One line on standard output, flushed so progress shows in a pipe.
    fn print(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            self.stdout_gone.store(true, Ordering::Relaxed);
        }
    }
}

/// Reads the object at `path` and checks it against its records. A check
/// that fails while the record changed under it (the object was rewritten
/// meanwhile) is repeated once against the new state.
fn check_object(storage: &dyn Storage, path: &str) -> Outcome {
    match check_once(storage, path) {
        Ok(outcome) => outcome,
        Err((e, used)) => {
            let rewritten = e.kind() == ErrorKind::Integrity
                && integrity::load(storage, path).is_ok_and(|now| now != used);
            if !rewritten {
                return Outcome::Failed(reason(&e, path));
            }
            log::info!("verify_backup {path}: rewritten while being read; checking again");
            match check_once(storage, path) {
                Ok(outcome) => outcome,
                Err((e, _)) => Outcome::Failed(reason(&e, path)),
            }
        }
    }
}

/// One attempt; on failure, the error and the entries it checked against.
fn check_once(
    storage: &dyn Storage,
    path: &str,
) -> std::result::Result<Outcome, (Error, Vec<Entry>)> {
    // Opened before the records are read, as a restore does: an object
    // rewritten in between still matches the staged or the old entry.
    let mut reader = storage.open(path).map_err(|e| {
        let e = if e.kind() == ErrorKind::NotFound {
            Error::not_found("it no longer exists (deleted while verifying?)")
        } else {
            e.context("cannot open it")
        };
        (e, Vec::new())
    })?;
    let entries = integrity::load(storage, path).map_err(|e| (e, Vec::new()))?;
    if entries.is_empty() {
        return Ok(Outcome::Unrecorded);
    }
    let matching = integrity::entries_for(entries.clone(), reader.as_mut(), path)
        .map_err(|e| (e, entries.clone()))?;
    let size = reader.size();
    match stream::download(
        reader.as_mut(),
        std::slice::from_ref(&(0..size)),
        std::io::sink(),
        Verify::Entries(matching),
        path,
    ) {
        Ok(n) => Ok(Outcome::Ok(n)),
        Err(e) => Err((e, entries)),
    }
}

/// The error as the reason of a FAILED line, without repeating the path.
fn reason(e: &Error, path: &str) -> String {
    let m = e.message();
    // "<path> is 3 bytes but ..." reads "it is 3 bytes but ..." after the path.
    m.strip_prefix(path)
        .map(|rest| rest.trim_start())
        .filter(|rest| !rest.is_empty())
        .map(|rest| match rest.strip_prefix("is ") {
            Some(_) => format!("it {rest}"),
            None => rest.to_string(),
        })
        .unwrap_or_else(|| m.to_string())
}
