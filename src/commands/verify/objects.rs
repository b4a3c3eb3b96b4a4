//! Checking the objects: each read through the repository's verified read, and the line each
//! result prints.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::data::integrity::{self, Entry};
use crate::data::repo::{self, Opening};
use crate::error::{Error, ErrorKind};
use crate::process::progress::{CountingSink, Progress};
use crate::storage::{Storage, StoragePath};

/// What became of one object.
pub(super) enum Checked {
    Ok(u64),
    Failed(String),
    Unrecorded,
}

/// One object to read.
#[derive(Clone)]
pub(super) struct Target {
    pub(super) path: StoragePath,
    pub(super) backup: String,
    /// Its size where a listing with sizes gave it (earlier backups'
    /// folders), else 0: the order to read in, largest first.
    pub(super) listed: u64,
    /// The exact size the manifest implies, and the segment TOC that says so.
    pub(super) size: Option<(u64, String)>,
}

/// What a line says of its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// Read and verified.
    Ok,
    /// Read, and found damaged (or unreadable).
    Failed,
    /// Read, with no checksum record to verify it by.
    Unrecorded,
    /// Named by the manifest (or by its checksum record), not stored.
    Missing,
    /// Stored in the backup's folder, not named by the manifest.
    Extra,
    /// Appeared in the backup's folder while verifying; not checked.
    New,
}

impl Status {
    /// Whether the line is of an object the backup names (not EXTRA or NEW).
    pub(super) fn is_named(self) -> bool {
        matches!(
            self,
            Status::Ok | Status::Failed | Status::Unrecorded | Status::Missing
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::Failed => "FAILED",
            Status::Unrecorded => "UNRECORDED",
            Status::Missing => "MISSING",
            Status::Extra => "EXTRA",
            Status::New => "NEW",
        })
    }
}

/// One line of the result.
#[derive(Clone)]
pub(super) struct Line {
    pub(super) status: Status,
    pub(super) path: StoragePath,
    pub(super) backup: String,
    pub(super) bytes: Option<u64>,
    pub(super) reason: Option<String>,
}

impl Line {
    pub(super) fn text(&self) -> String {
        match (self.status, &self.reason, self.bytes) {
            (Status::Ok | Status::Extra | Status::New, _, Some(b)) => {
                format!("{} {} {b}", self.status, self.path)
            }
            (_, Some(r), _) => format!("{} {}: {r}", self.status, self.path),
            _ => format!("{} {}", self.status, self.path),
        }
    }
}

/// The shared state of one run: the objects, the results, the output.
pub(super) struct Run<'t> {
    pub(super) targets: &'t [Target],
    pub(super) stdout_gone: AtomicBool,
    pub(super) json: bool,
    pub(super) lines: Mutex<Vec<Line>>,
    pub(super) progress: Progress,
}

impl<'t> Run<'t> {
    pub(super) fn new(targets: &'t [Target], json: bool, progress: Progress) -> Run<'t> {
        Run {
            targets,
            stdout_gone: AtomicBool::new(false),
            json,
            lines: Mutex::new(Vec::new()),
            progress,
        }
    }

    /// The targets' indices in the order to read them: largest first, so
    /// that the run does not end waiting on one big object.
    pub(super) fn order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.targets.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&self.targets[a], &self.targets[b]);
            b.listed.cmp(&a.listed).then_with(|| a.path.cmp(&b.path))
        });
        order
    }

    /// Checks target `i` and records its line; fails only when the output
    /// went away (which stops the run).
    pub(super) fn check(&self, storage: &dyn Storage, i: usize) -> crate::error::Result<()> {
        if self.stdout_gone.load(Ordering::Relaxed) {
            return Err(Error::broken_pipe());
        }
        let Target {
            path, backup, size, ..
        } = &self.targets[i];
        let started = Instant::now();
        // A size the manifest implies is compared before anything is read.
        // Not to be had: the read below says why.
        let stored = size.as_ref().and_then(|_| stored_size(storage, path));
        let checked = match (size, stored) {
            // It already has the wrong size: nothing to read.
            (Some((want, toc)), Some(listed)) if listed != *want => {
                Checked::Failed(size_reason(listed, *want, toc))
            }
            _ => match check_object(storage, path, &self.progress) {
                Checked::Ok(n) => match size {
                    Some((want, toc)) if n != *want => Checked::Failed(size_reason(n, *want, toc)),
                    _ => Checked::Ok(n),
                },
                other => other,
            },
        };
        self.progress.inc_objects(1);
        let (status, bytes, reason) = match checked {
            Checked::Ok(n) => {
                crate::commands::log_summary("verify_backup", path, n, started);
                (Status::Ok, Some(n), None)
            }
            Checked::Failed(reason) => {
                log::error!("verify_backup {path}: {reason}");
                (Status::Failed, None, Some(reason))
            }
            Checked::Unrecorded => {
                log::warn!("verify_backup {path}: no checksum record; not verified");
                (Status::Unrecorded, None, None)
            }
        };
        self.record(Line {
            status,
            path: path.clone(),
            backup: backup.clone(),
            bytes,
            reason,
        });
        Ok(())
    }

    /// Keeps a result and prints its line (unless the output is JSON).
    pub(super) fn record(&self, line: Line) {
        if !self.json {
            self.print(&line.text());
        }
        if let Ok(mut l) = self.lines.lock() {
            l.push(line);
        }
    }

    /// The lines recorded so far, taken out (the run keeps none).
    pub(super) fn take_lines(&self) -> Vec<Line> {
        self.lines
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    /// One line on standard output, flushed so progress shows in a pipe.
    pub(super) fn print(&self, line: &str) {
        self.progress.suspend(|| {
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                self.stdout_gone.store(true, Ordering::Relaxed);
            }
        })
    }
}

/// The stored size of the object at `path`, by one lookup; None when it
/// is not stored (or cannot be looked up: the caller's read says why).
pub(super) fn stored_size(storage: &dyn Storage, path: &StoragePath) -> Option<u64> {
    storage.list(path).ok()?.first().map(|o| o.size)
}

pub(super) fn size_reason(is: u64, want: u64, toc: &str) -> String {
    format!("it is {is} bytes but its segment TOC {toc} says {want} (truncated or replaced)")
}

/// Reads the object at `path` and checks it against its records. A check
/// that fails while the record changed under it (the object was rewritten
/// meanwhile) is repeated once against the new state.
pub(super) fn check_object(
    storage: &dyn Storage,
    path: &StoragePath,
    progress: &Progress,
) -> Checked {
    match check_once(storage, path, progress) {
        Ok(checked) => checked,
        Err((e, used)) => {
            let rewritten = e.kind() == ErrorKind::Integrity
                && integrity::load(storage, path).is_ok_and(|now| now != used);
            if !rewritten {
                return Checked::Failed(reason(&e, path));
            }
            log::info!("verify_backup {path}: rewritten while being read; checking again");
            match check_once(storage, path, progress) {
                Ok(checked) => checked,
                Err((e, _)) => Checked::Failed(reason(&e, path)),
            }
        }
    }
}

/// One attempt, through the repository's verified read of the whole object
/// (as a restore reads it, one read in flight); on failure, the error and
/// the entries it checked against. An object rewritten between its records
/// and its open fails the check, and [`check_object`] repeats it.
pub(super) fn check_once(
    storage: &dyn Storage,
    path: &StoragePath,
    progress: &Progress,
) -> std::result::Result<Checked, (Error, Vec<Entry>)> {
    let recorded = repo::open_recorded(storage, path, 0).map_err(|e| {
        let e = match e {
            Opening::Records(e) => e,
            Opening::Object(e) if e.kind() == ErrorKind::NotFound => {
                Error::not_found("it no longer exists (deleted while verifying?)")
            }
            Opening::Object(e) => e.context("cannot open it"),
        };
        (e, Vec::new())
    })?;
    if recorded.entries().is_empty() {
        return Ok(Checked::Unrecorded);
    }
    let entries = recorded.entries().to_vec();
    let object = match recorded.whole() {
        Ok(object) => object,
        Err(e) => return Err((e, entries)),
    };
    match object.read_into(CountingSink(progress.clone()), 1) {
        Ok(n) => Ok(Checked::Ok(n)),
        Err(e) => Err((e, entries)),
    }
}

/// The error as the reason of a FAILED line, without repeating the path.
pub(super) fn reason(e: &Error, path: &str) -> String {
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
