//! verify_backup: checks that a backup is complete and undamaged, the way
//! a restore would find it, writing nothing.
//!
//! When the backup's folder holds gpbackup's manifest (its config or its
//! TOC), every object a restore of it opens is derived from the manifest
//! (`backups::manifest`: earlier backups of an incremental's restore plan
//! included) and each must be present, match its checksum record, and for
//! an uncompressed single data file have the size its segment TOC implies.
//! Without a manifest, a warning says so and every stored object of the
//! folder is checked against its record (a missing object cannot be found).
//!
//! Output, on standard output, one line per object as it finishes (in the
//! order they finish):
//!
//! ```text
//! MISSING <path>: <what it is>
//! OK <path> <bytes>
//! FAILED <path>: <reason>
//! UNRECORDED <path>
//! EXTRA <path> <bytes>
//! ```
//!
//! then, with a manifest, `BACKUP <ts> <VERDICT>: ...` per backup involved
//! (COMPLETE, UNVERIFIED, DAMAGED, INCOMPLETE, FAILED), and `SUMMARY ...` with
//! the counts, bytes and speed. `--json` prints one JSON document instead.
//! Paths are relative to the config's `directory`. `EXTRA` objects are in
//! the backup's folder but not in its manifest: reported, not read, not a
//! failure. Objects that appeared while it ran (listed at the end but not at
//! the start) get a `NEW <path> <bytes>` line: not checked, and not a
//! failure. The command fails when an object is missing or failed, when the
//! backup is incomplete or gpbackup recorded it as failed, or when an object
//! has no record and `--allow-unrecorded` was not given.
//!
//! It only reads: a backup being written at the same time is not disturbed
//! (temporaries are never listed, and an object renamed into place after the
//! listing is left for the next run), and an object that disappears or
//! cannot be read fails alone while the others are still checked. On a
//! terminal, progress is drawn on stderr (`process::progress`).

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::json;

use crate::about::PLUGIN_NAME;
use crate::backups::manifest::{Manifest, ProblemKind};
use crate::data::integrity::{self, Entry};
use crate::data::repo::{self, Opening};
use crate::error::{Error, ErrorKind, Result};
use crate::process::progress::{CountingSink, Progress};
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

/// One object to read.
#[derive(Clone)]
struct Target {
    path: String,
    backup: String,
    listed: u64,
    /// The exact size the manifest implies, and the segment TOC that says so.
    size: Option<(u64, String)>,
}

/// One line of the result.
#[derive(Clone)]
struct Line {
    status: &'static str,
    path: String,
    backup: String,
    bytes: Option<u64>,
    reason: Option<String>,
}

impl Line {
    fn text(&self) -> String {
        match (self.status, &self.reason, self.bytes) {
            ("OK" | "EXTRA" | "NEW", _, Some(b)) => format!("{} {} {b}", self.status, self.path),
            (_, Some(r), _) => format!("{} {}: {r}", self.status, self.path),
            _ => format!("{} {}", self.status, self.path),
        }
    }
}

/// Verdicts, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Complete,
    Unverified,
    Damaged,
    Incomplete,
    Failed,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Complete => "COMPLETE",
            Verdict::Unverified => "UNVERIFIED",
            Verdict::Damaged => "DAMAGED",
            Verdict::Incomplete => "INCOMPLETE",
            Verdict::Failed => "FAILED",
        }
    }
}

/// One backup's verdict and why.
struct BackupVerdict {
    ts: String,
    verdict: Verdict,
    reasons: Vec<String>,
    objects: usize,
}

/// Verifies backup `ts` (all segments; with a manifest, every object a
/// restore opens). Prints one line per object, the verdicts and a summary on
/// standard output (or one JSON document with `json`), logs the summary,
/// and fails when anything is missing, damaged or (unless
/// `allow_unrecorded`) unrecorded. A backup with no objects is an error of
/// kind `NotFound`.
pub fn verify_backup(
    ctx: &Context,
    ts: &Timestamp,
    allow_unrecorded: bool,
    json: bool,
) -> Result<()> {
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
    let manifest = Manifest::read(storage.as_ref(), ts, &objects).map_err(|e| {
        e.context(format!(
            "verify_backup: cannot read the manifest of backup {ts}"
        ))
    })?;

    let Plan {
        targets,
        missing,
        extra,
        warning,
    } = plan(ts, &objects, manifest.as_ref());

    let total: u64 = targets.iter().map(|t| t.listed).sum();
    let readers = READERS.min(targets.len()).max(1);
    log::info!(
        "verify_backup: checking {} objects ({total} bytes) of backup {ts} in {} with {readers} readers{}",
        targets.len(),
        storage.describe(),
        match &manifest {
            Some(_) => format!(", {} named by its manifest are missing", missing.len()),
            None => String::new(),
        }
    );
    let progress = Progress::start("verify_backup", targets.len() as u64, total);
    let run = Run::new(&targets, json, progress.clone());
    for line in &missing {
        log::error!(
            "verify_backup {}: missing ({})",
            line.path,
            line.reason.as_deref().unwrap_or("")
        );
        run.record(line.clone());
    }
    let started = Instant::now();
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
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    if run.stdout_gone.load(Ordering::Relaxed) {
        return Err(Error::broken_pipe());
    }
    for line in extra {
        log::info!(
            "verify_backup {}: not named by the manifest; not checked",
            line.path
        );
        run.record(line);
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
        run.record(Line {
            status: "NEW",
            path: o.path.clone(),
            backup: ts.to_string(),
            bytes: Some(o.size),
            reason: None,
        });
        log::info!(
            "verify_backup: {} appeared while verifying; not checked",
            o.path
        );
    }

    let lines = run.lines();
    let count = |status: &str| lines.iter().filter(|l| l.status == status).count();
    let (ok, failed, unrecorded) = (count("OK"), count("FAILED"), count("UNRECORDED"));
    let bytes: u64 = lines
        .iter()
        .filter(|l| l.status == "OK")
        .filter_map(|l| l.bytes)
        .sum();
    let verdicts = manifest
        .as_ref()
        .map(|m| verdicts(m, &lines, allow_unrecorded))
        .unwrap_or_default();
    let mbps = if secs > 0.0 {
        bytes as f64 / secs / 1e6
    } else {
        0.0
    };
    let named = targets.len() + missing.len();
    let mut summary = format!(
        "backup {ts}: {named} objects, {bytes} bytes verified in {secs:.3} s ({mbps:.1} MB/s): {ok} OK, {failed} FAILED, {unrecorded} UNRECORDED"
    );
    if manifest.is_some() {
        summary.push_str(&format!(", {} MISSING", missing.len()));
        if count("EXTRA") > 0 {
            summary.push_str(&format!(", {} EXTRA (not in the manifest)", count("EXTRA")));
        }
    }
    if !appeared.is_empty() {
        summary.push_str(&format!(", {} NEW (not checked)", appeared.len()));
    }
    let own = verdicts.last();
    if let Some(v) = own {
        summary.push_str(&format!(": {}", v.verdict.word()));
    }

    if json {
        let doc = json!({
            "timestamp": ts.as_str(),
            "manifest": manifest.is_some(),
            "warning": warning,
            "verdict": own.map(|v| v.verdict.word()),
            "backups": verdicts.iter().map(|v| json!({
                "timestamp": v.ts,
                "verdict": v.verdict.word(),
                "reasons": v.reasons,
                "objects": v.objects,
            })).collect::<Vec<_>>(),
            "objects": lines.iter().map(|l| json!({
                "status": l.status,
                "path": l.path,
                "backup": l.backup,
                "bytes": l.bytes,
                "reason": l.reason,
            })).collect::<Vec<_>>(),
            "summary": {
                "objects": named,
                "bytes": bytes,
                "seconds": secs,
                "ok": ok,
                "failed": failed,
                "unrecorded": unrecorded,
                "missing": missing.len(),
                "extra": count("EXTRA"),
                "new": appeared.len(),
            },
        });
        run.print(&doc.to_string());
    } else {
        for v in &verdicts {
            run.print(&verdict_text(v, ts.as_str()));
        }
        run.print(&format!("SUMMARY {summary}"));
    }
    let bad = match own {
        Some(v) => {
            v.verdict > Verdict::Unverified
                || (v.verdict == Verdict::Unverified && !allow_unrecorded)
        }
        None => failed > 0 || (unrecorded > 0 && !allow_unrecorded),
    };
    if bad {
        log::error!("verify_backup: {summary}");
    } else {
        log::info!("verify_backup: {summary}");
    }
    if run.stdout_gone.load(Ordering::Relaxed) {
        return Err(Error::broken_pipe());
    }

    if let Some(v) = own.filter(|_| bad) {
        return Err(Error::integrity(format!(
            "backup {ts} is {}: {} (see the BACKUP{} lines on standard output)",
            v.verdict.word(),
            v.reasons.join("; "),
            if missing.is_empty() {
                ""
            } else {
                " and MISSING"
            }
        )));
    }
    // Without a manifest: the warning goes with the one error line, or
    // alone on stderr after a success.
    let note = match &warning {
        Some(w) => format!("; note: {w}"),
        None => String::new(),
    };
    if failed > 0 {
        return Err(Error::integrity(format!(
            "backup {ts}: {failed} of {named} objects failed verification (see the FAILED lines on standard output){note}"
        )));
    }
    if unrecorded > 0 && !allow_unrecorded {
        return Err(Error::integrity(format!(
            "backup {ts}: {unrecorded} of {named} objects have no checksum record and cannot be verified (see the UNRECORDED lines; written by another tool? --allow-unrecorded accepts them){note}"
        )));
    }
    if let Some(w) = &warning {
        eprintln!("{PLUGIN_NAME} verify_backup: warning: {w}");
    }
    Ok(())
}

/// What to read, and what is already known missing or extra.
struct Plan {
    targets: Vec<Target>,
    missing: Vec<Line>,
    extra: Vec<Line>,
    /// Without a manifest: why completeness is not checked.
    warning: Option<String>,
}

/// The objects to read: with a manifest, those a restore opens (the missing
/// ones as MISSING lines, the folder's others as EXTRA lines); without one,
/// every stored object of the folder.
fn plan(ts: &Timestamp, objects: &[ObjectInfo], manifest: Option<&Manifest>) -> Plan {
    let mut missing = Vec::new();
    let mut extra = Vec::new();
    let mut warning = None;
    let targets: Vec<Target> = match manifest {
        None => {
            let w = format!(
                "backup {ts} has no gpbackup manifest (neither gpbackup_{ts}_config.yaml nor gpbackup_{ts}_toc.yaml): its stored objects are checked against their checksum records only, so a missing object cannot be found"
            );
            log::warn!("verify_backup: {w}");
            warning = Some(w);
            objects
                .iter()
                .map(|o| Target {
                    path: o.path.clone(),
                    backup: ts.to_string(),
                    listed: o.size,
                    size: None,
                })
                .collect()
        }
        Some(m) => {
            let mut seen = HashSet::new();
            let mut targets = Vec::new();
            for e in m.expected.iter().filter(|e| seen.insert(e.path.clone())) {
                match m.stored_size(&e.path) {
                    Some(listed) => targets.push(Target {
                        path: e.path.clone(),
                        backup: e.backup.clone(),
                        listed,
                        size: e.size.clone(),
                    }),
                    None => missing.push(Line {
                        status: "MISSING",
                        path: e.path.clone(),
                        backup: e.backup.clone(),
                        bytes: None,
                        reason: Some(e.what.clone()),
                    }),
                }
            }
            extra = m
                .extra
                .iter()
                .map(|o| Line {
                    status: "EXTRA",
                    path: o.path.clone(),
                    backup: ts.to_string(),
                    bytes: Some(o.size),
                    reason: None,
                })
                .collect();
            targets
        }
    };
    Plan {
        targets,
        missing,
        extra,
        warning,
    }
}

/// The verdict of each backup involved: the earlier backups of the restore
/// plan, then the backup itself (whose verdict includes theirs).
fn verdicts(m: &Manifest, lines: &[Line], allow_unrecorded: bool) -> Vec<BackupVerdict> {
    let mut out: Vec<BackupVerdict> = Vec::new();
    let mut by_backup: BTreeMap<&str, Vec<&Line>> = BTreeMap::new();
    for l in lines {
        by_backup.entry(l.backup.as_str()).or_default().push(l);
    }
    for b in m.backups() {
        let mine = by_backup.get(b.as_str()).cloned().unwrap_or_default();
        let n = |s: &str| mine.iter().filter(|l| l.status == s).count();
        let named = mine
            .iter()
            .filter(|l| matches!(l.status, "OK" | "FAILED" | "UNRECORDED" | "MISSING"))
            .count();
        let mut v = BackupVerdict {
            ts: b.clone(),
            verdict: Verdict::Complete,
            reasons: Vec::new(),
            objects: named,
        };
        let worse = |v: &mut BackupVerdict, to: Verdict, why: String| {
            v.verdict = v.verdict.max(to);
            v.reasons.push(why);
        };
        for p in m.problems.iter().filter(|p| p.backup == b) {
            let to = match p.kind {
                ProblemKind::NotSuccess => Verdict::Failed,
                ProblemKind::NoTeardown | ProblemKind::Underivable => Verdict::Incomplete,
                ProblemKind::Unreadable => Verdict::Damaged,
            };
            worse(&mut v, to, p.text.clone());
        }
        if n("MISSING") > 0 {
            worse(
                &mut v,
                Verdict::Incomplete,
                format!("{} of {named} objects missing", n("MISSING")),
            );
        }
        if n("FAILED") > 0 {
            worse(
                &mut v,
                Verdict::Damaged,
                format!("{} objects failed verification", n("FAILED")),
            );
        }
        if n("UNRECORDED") > 0 {
            let to = if allow_unrecorded {
                Verdict::Complete
            } else {
                Verdict::Unverified
            };
            worse(
                &mut v,
                to,
                format!(
                    "{} objects have no checksum record (--allow-unrecorded accepts them)",
                    n("UNRECORDED")
                ),
            );
        }
        if b == m.ts {
            for e in &out {
                if e.verdict > Verdict::Complete {
                    let why = format!(
                        "earlier backup {} of its restore plan is {}",
                        e.ts,
                        e.verdict.word()
                    );
                    worse(&mut v, e.verdict.min(Verdict::Incomplete), why);
                }
            }
        }
        out.push(v);
    }
    out
}

fn verdict_text(v: &BackupVerdict, ts: &str) -> String {
    let what = if v.ts == ts {
        format!("{} objects", v.objects)
    } else {
        format!("{} objects a restore of {ts} opens", v.objects)
    };
    if v.reasons.is_empty() {
        format!(
            "BACKUP {} {}: {what}, all present and verified",
            v.ts,
            v.verdict.word()
        )
    } else {
        format!(
            "BACKUP {} {}: {}",
            v.ts,
            v.verdict.word(),
            v.reasons.join("; ")
        )
    }
}

/// The shared state of one run: the objects left, the results, the output.
struct Run {
    queue: Mutex<Vec<usize>>,
    targets: Vec<Target>,
    stdout_gone: AtomicBool,
    json: bool,
    lines: Mutex<Vec<Line>>,
    progress: Progress,
}

impl Run {
    fn new(targets: &[Target], json: bool, progress: Progress) -> Run {
        // Largest first, so the run does not end waiting on one big object;
        // popped from the end.
        let mut order: Vec<usize> = (0..targets.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&targets[a], &targets[b]);
            a.listed.cmp(&b.listed).then_with(|| b.path.cmp(&a.path))
        });
        Run {
            queue: Mutex::new(order),
            targets: targets.to_vec(),
            stdout_gone: AtomicBool::new(false),
            json,
            lines: Mutex::new(Vec::new()),
            progress,
        }
    }

    /// Takes objects until none are left (or the output went away, or a
    /// signal arrived).
    fn work(&self, storage: &dyn Storage) {
        loop {
            if self.stdout_gone.load(Ordering::Relaxed) || crate::process::signals::interrupted() {
                return;
            }
            let Some(i) = self.queue.lock().ok().and_then(|mut q| q.pop()) else {
                return;
            };
            let Target {
                path,
                backup,
                listed,
                size,
            } = &self.targets[i];
            let started = Instant::now();
            let outcome = match size {
                // The listing already shows the wrong size: nothing to read.
                Some((want, toc)) if listed != want => {
                    Outcome::Failed(size_reason(*listed, *want, toc))
                }
                _ => match check_object(storage, path, &self.progress) {
                    Outcome::Ok(n) => match size {
                        Some((want, toc)) if n != *want => {
                            Outcome::Failed(size_reason(n, *want, toc))
                        }
                        _ => Outcome::Ok(n),
                    },
                    other => other,
                },
            };
            self.progress.inc_objects(1);
            let (status, bytes, reason) = match outcome {
                Outcome::Ok(n) => {
                    super::log_summary("verify_backup", path, n, started);
                    ("OK", Some(n), None)
                }
                Outcome::Failed(reason) => {
                    log::error!("verify_backup {path}: {reason}");
                    ("FAILED", None, Some(reason))
                }
                Outcome::Unrecorded => {
                    log::warn!("verify_backup {path}: no checksum record; not verified");
                    ("UNRECORDED", None, None)
                }
            };
            self.record(Line {
                status,
                path: path.clone(),
                backup: backup.clone(),
                bytes,
                reason,
            });
        }
    }

    /// Keeps a result and prints its line (unless the output is JSON).
    fn record(&self, line: Line) {
        if !self.json {
            self.print(&line.text());
        }
        if let Ok(mut l) = self.lines.lock() {
            l.push(line);
        }
    }

    fn lines(&self) -> Vec<Line> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// One line on standard output, flushed so progress shows in a pipe.
    fn print(&self, line: &str) {
        self.progress.suspend(|| {
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                self.stdout_gone.store(true, Ordering::Relaxed);
            }
        })
    }
}

fn size_reason(is: u64, want: u64, toc: &str) -> String {
    format!("it is {is} bytes but its segment TOC {toc} says {want} (truncated or replaced)")
}

/// Reads the object at `path` and checks it against its records. A check
/// that fails while the record changed under it (the object was rewritten
/// meanwhile) is repeated once against the new state.
fn check_object(storage: &dyn Storage, path: &str, progress: &Progress) -> Outcome {
    match check_once(storage, path, progress) {
        Ok(outcome) => outcome,
        Err((e, used)) => {
            let rewritten = e.kind() == ErrorKind::Integrity
                && integrity::load(storage, path).is_ok_and(|now| now != used);
            if !rewritten {
                return Outcome::Failed(reason(&e, path));
            }
            log::info!("verify_backup {path}: rewritten while being read; checking again");
            match check_once(storage, path, progress) {
                Ok(outcome) => outcome,
                Err((e, _)) => Outcome::Failed(reason(&e, path)),
            }
        }
    }
}

/// One attempt, through the repository's verified read of the whole object
/// (as a restore reads it, one read in flight); on failure, the error and
/// the entries it checked against. An object rewritten between its records
/// and its open fails the check, and [`check_object`] repeats it.
fn check_once(
    storage: &dyn Storage,
    path: &str,
    progress: &Progress,
) -> std::result::Result<Outcome, (Error, Vec<Entry>)> {
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
        return Ok(Outcome::Unrecorded);
    }
    let entries = recorded.entries().to_vec();
    let object = match recorded.whole() {
        Ok(object) => object,
        Err(e) => return Err((e, entries)),
    };
    match object.read_into(CountingSink(progress.clone()), 1) {
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
