//! verify_backup: checks that a backup is complete and undamaged, the way
//! a restore would find it, writing nothing.
//!
//! When the backup's folder holds gpbackup's manifest (its config or its
//! TOC), every object a restore of it opens is derived from the manifest
//! (`backups::manifest`: earlier backups of an incremental's restore plan
//! included) and each must be present, match its checksum record, and for
//! an uncompressed single data file have the size its segment TOC implies.
//! Without a manifest, a warning says so and every stored object of the
//! folder is checked against its record, and an object whose published
//! checksum record is stored without it is MISSING (an object lost with its
//! record too cannot be found).
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
//! failure. Objects that appeared while it ran get a `NEW <path> <bytes>`
//! line: not checked, and not a failure (with a manifest, those it names
//! that were missing at the start; without one, every object stored at the
//! end but not at the start). The command fails when an object is missing or failed, when the
//! backup is incomplete or gpbackup recorded it as failed, or when an object
//! has no record and `--allow-unrecorded` was not given.
//!
//! It only reads: a backup being written at the same time is not disturbed
//! (temporaries are never listed, and an object renamed into place after the
//! listing is left for the next run), and an object that disappears or
//! cannot be read fails alone while the others are still checked. On a
//! terminal, progress is drawn on stderr (`process::progress`).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{json, Value};

use crate::about::PLUGIN_NAME;
use crate::backups::manifest::Manifest;
use crate::data::integrity;
use crate::error::{Error, Result};
use crate::process::fanout;
use crate::process::progress::Progress;
use crate::protocol::keys::Timestamp;
use crate::storage::{ObjectInfo, Storage, StoragePath};

use super::Context;

mod objects;
mod verdict;

use objects::{stored_size, Line, Run, Status, Target};
use verdict::{verdict_text, verdicts, BackupVerdict, Verdict};

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
    let (objects, manifest) = read_backup(storage.as_ref(), ts)?;
    let plan = plan(ts, &objects, manifest.as_ref());
    // What appeared meanwhile is looked at as the last objects are read.
    let appeared = std::sync::atomic::AtomicUsize::new(0);
    let (run, secs) = check_all(
        ctx,
        storage.as_ref(),
        ts,
        &plan,
        manifest.is_some(),
        json,
        &|s, run| {
            appeared.store(
                self::appeared(s, ts, &objects, &plan, run),
                Ordering::Relaxed,
            )
        },
    )?;
    for mut line in plan.extra.iter().cloned() {
        // Its size, for the line (the listing read names only).
        line.bytes = stored_size(storage.as_ref(), &line.path);
        log::info!(
            "verify_backup {}: not named by the manifest; not checked",
            line.path
        );
        run.record(line);
    }
    let appeared = appeared.into_inner();
    let lines = run.take_lines();
    let report = Report::new(
        ts,
        &plan,
        manifest.as_ref(),
        &lines,
        secs,
        appeared,
        allow_unrecorded,
    );
    if json {
        run.print(&json_doc(ts, &plan, manifest.is_some(), &report, &lines).to_string());
    } else {
        for v in &report.verdicts {
            run.print(&verdict_text(v, ts.as_str()));
        }
        run.print(&format!("SUMMARY {}", report.summary));
    }
    let bad = report.bad(allow_unrecorded);
    if bad {
        log::error!("verify_backup: {}", report.summary);
    } else {
        log::info!("verify_backup: {}", report.summary);
    }
    if run.stdout_gone.load(Ordering::Relaxed) {
        return Err(Error::broken_pipe());
    }
    let result = outcome(ts, &plan, &report, bad, allow_unrecorded);
    crate::observe::verified::note(&ctx.config.redacted_options, ts.as_str(), result.is_ok());
    result
}

/// The backup's stored objects (none is an error of kind `NotFound`) and
/// its manifest, if it has one.
fn read_backup(
    storage: &dyn Storage,
    ts: &Timestamp,
) -> Result<(Vec<ObjectInfo>, Option<Manifest>)> {
    let prefix = ts.prefix();
    // Names only (no call per object): the sizes that matter are read with
    // the objects, and the few a manifest implies are looked up then.
    let names = storage.list_names(prefix, false).map_err(|e| {
        e.context(format!(
            "verify_backup: cannot list backup {ts} in {}",
            storage.describe()
        ))
    })?;
    let objects: Vec<ObjectInfo> = names
        .iter()
        .filter_map(|n| prefix.child(n).ok())
        .map(|path| ObjectInfo { path, size: 0 })
        .collect();
    if objects.is_empty() {
        return Err(Error::not_found(format!(
            "backup {ts} not found in {}: no objects below {prefix}; check the timestamp and that the plugin config points at the storage the backup was written to",
            storage.describe()
        )));
    }
    let manifest = Manifest::read(storage, ts, &objects).map_err(|e| {
        e.context(format!(
            "verify_backup: cannot read the manifest of backup {ts}"
        ))
    })?;
    Ok((objects, manifest))
}

/// Checks the plan's targets with up to `command_connections` readers, each
/// on a storage connection of its own (and one read stream at a time), after
/// recording its missing objects, and runs `last` once every target is
/// taken (beside the last reads); returns the run and the seconds it took.
fn check_all<'p>(
    ctx: &Context,
    storage: &dyn Storage,
    ts: &Timestamp,
    plan: &'p Plan,
    has_manifest: bool,
    json: bool,
    last: &(dyn Fn(&dyn Storage, &Run) + Sync),
) -> Result<(Run<'p>, f64)> {
    let targets = &plan.targets;
    let total: u64 = targets.iter().map(|t| t.listed).sum();
    let readers = ctx
        .config
        .backend
        .command_connections()
        .min(targets.len())
        .max(1);
    log::info!(
        "verify_backup: checking {} objects ({total} bytes) of backup {ts} in {} with {readers} readers{}",
        targets.len(),
        storage.describe(),
        if has_manifest {
            format!(", {} named by its manifest are missing", plan.missing.len())
        } else {
            String::new()
        }
    );
    let progress = Progress::start("verify_backup", targets.len() as u64, total);
    let run = Run::new(targets, json, progress.clone());
    for line in &plan.missing {
        log::error!(
            "verify_backup {}: missing ({})",
            line.path,
            line.reason.as_deref().unwrap_or("")
        );
        run.record(line.clone());
    }
    let started = Instant::now();
    // Targets in order, then `last`.
    let mut items: Vec<Option<usize>> = run.order().into_iter().map(Some).collect();
    items.push(None);
    let checked = fanout::run(
        storage,
        readers,
        || ctx.storage(),
        items,
        |s, item, _| match item {
            Some(i) => run.check(s, i),
            None => {
                last(s, &run);
                Ok(())
            }
        },
    );
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    checked?;
    Ok((run, secs))
}

/// What is stored at the end of a run that was not at its start (begun
/// once the last objects are being read, beside them). With a manifest,
/// only what it names matters: the objects it names that were missing are
/// looked up again (a call each, usually none). Without one, the folder's
/// names are read once: objects committed while it ran, and published
/// checksum records whose object is gone (`MISSING` lines: a record is only
/// published after its object, so the object was lost; a staged
/// `.checksum.next` alone describes nothing).
/// Returns how many appeared (`NEW` lines: not checked, listed with their
/// size).
fn appeared(
    storage: &dyn Storage,
    ts: &Timestamp,
    objects: &[ObjectInfo],
    plan: &Plan,
    run: &Run,
) -> usize {
    crate::process::pause::pause("verify-appeared");
    if plan.warning.is_none() {
        return plan
            .missing
            .iter()
            .filter(|line| stored_new(storage, &line.path, &line.backup, run))
            .count();
    }
    let prefix = ts.prefix();
    let names = match storage.list_names(prefix, true) {
        Ok(names) => names,
        Err(e) => {
            log::warn!("verify_backup: cannot read the folder of backup {ts} again to see new objects: {e}");
            return 0;
        }
    };
    let seen: HashSet<&str> = objects.iter().map(|o| o.path.file_name()).collect();
    let present: HashSet<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !n.starts_with('.'))
        .collect();
    let mut new = 0;
    for name in &names {
        if let Some(object) = integrity::object_of_record(name) {
            if !present.contains(object) {
                let Ok(path) = prefix.child(object) else {
                    continue;
                };
                log::error!("verify_backup {path}: its checksum record {name} is stored, but the object is not");
                run.record(Line {
                    status: Status::Missing,
                    path,
                    backup: ts.to_string(),
                    bytes: None,
                    reason: Some(format!(
                        "its checksum record {name} is stored, but the object is not (deleted or lost)"
                    )),
                });
            }
            continue;
        }
        if name.starts_with('.') || seen.contains(name.as_str()) {
            continue;
        }
        if let Ok(path) = prefix.child(name) {
            new += usize::from(stored_new(storage, &path, ts.as_str(), run));
        }
    }
    new
}

/// Records a `NEW` line for `path` of backup `backup` when it is stored now
/// (with its size); gone again, or unreadable, is fine: not checked either
/// way.
fn stored_new(storage: &dyn Storage, path: &StoragePath, backup: &str, run: &Run) -> bool {
    let Some(size) = stored_size(storage, path) else {
        return false;
    };
    log::info!("verify_backup: {path} appeared while verifying; not checked");
    run.record(Line {
        status: Status::New,
        path: path.clone(),
        backup: backup.to_string(),
        bytes: Some(size),
        reason: None,
    });
    true
}

/// The counts of a run, the verdicts and the summary line.
struct Report {
    named: usize,
    bytes: u64,
    secs: f64,
    ok: usize,
    failed: usize,
    unrecorded: usize,
    missing: usize,
    extra: usize,
    appeared: usize,
    verdicts: Vec<BackupVerdict>,
    summary: String,
}

impl Report {
    fn new(
        ts: &Timestamp,
        plan: &Plan,
        manifest: Option<&Manifest>,
        lines: &[Line],
        secs: f64,
        appeared: usize,
        allow_unrecorded: bool,
    ) -> Report {
        let count = |status: Status| lines.iter().filter(|l| l.status == status).count();
        let (ok, failed) = (count(Status::Ok), count(Status::Failed));
        let unrecorded = count(Status::Unrecorded);
        let missing = count(Status::Missing);
        let bytes: u64 = lines
            .iter()
            .filter(|l| l.status == Status::Ok)
            .filter_map(|l| l.bytes)
            .sum();
        let verdicts = manifest
            .map(|m| verdicts(m, lines, allow_unrecorded))
            .unwrap_or_default();
        let mbps = if secs > 0.0 {
            bytes as f64 / secs / 1e6
        } else {
            0.0
        };
        let named = plan.targets.len() + plan.missing.len();
        let mut summary = format!(
            "backup {ts}: {named} objects, {bytes} bytes verified in {secs:.3} s ({mbps:.1} MB/s): {ok} OK, {failed} FAILED, {unrecorded} UNRECORDED"
        );
        let extra = count(Status::Extra);
        if manifest.is_some() || missing > 0 {
            summary.push_str(&format!(", {missing} MISSING"));
            if extra > 0 {
                summary.push_str(&format!(", {extra} EXTRA (not in the manifest)"));
            }
        }
        if appeared > 0 {
            summary.push_str(&format!(", {appeared} NEW (not checked)"));
        }
        if let Some(v) = verdicts.last() {
            summary.push_str(&format!(": {}", v.verdict.word()));
        }
        Report {
            named,
            bytes,
            secs,
            ok,
            failed,
            unrecorded,
            missing,
            extra,
            appeared,
            verdicts,
            summary,
        }
    }

    /// The backup's own verdict (with a manifest).
    fn own(&self) -> Option<&BackupVerdict> {
        self.verdicts.last()
    }

    /// Whether the command fails.
    fn bad(&self, allow_unrecorded: bool) -> bool {
        match self.own() {
            Some(v) => {
                v.verdict > Verdict::Unverified
                    || (v.verdict == Verdict::Unverified && !allow_unrecorded)
            }
            None => {
                self.failed > 0 || self.missing > 0 || (self.unrecorded > 0 && !allow_unrecorded)
            }
        }
    }
}

/// The `--json` document.
fn json_doc(
    ts: &Timestamp,
    plan: &Plan,
    has_manifest: bool,
    report: &Report,
    lines: &[Line],
) -> Value {
    json!({
        "timestamp": ts.as_str(),
        "manifest": has_manifest,
        "warning": plan.warning,
        "verdict": report.own().map(|v| v.verdict.word()),
        "backups": report.verdicts.iter().map(|v| json!({
            "timestamp": v.ts,
            "verdict": v.verdict.word(),
            "reasons": v.reasons,
            "objects": v.objects,
        })).collect::<Vec<_>>(),
        "objects": lines.iter().map(|l| json!({
            "status": l.status.to_string(),
            "path": l.path.as_str(),
            "backup": l.backup,
            "bytes": l.bytes,
            "reason": l.reason,
        })).collect::<Vec<_>>(),
        "summary": {
            "objects": report.named,
            "bytes": report.bytes,
            "seconds": report.secs,
            "ok": report.ok,
            "failed": report.failed,
            "unrecorded": report.unrecorded,
            "missing": report.missing,
            "extra": report.extra,
            "new": report.appeared,
        },
    })
}

/// The command's result: the one error line when it fails (`bad`), else
/// the warning of a backup without a manifest on stderr.
fn outcome(
    ts: &Timestamp,
    plan: &Plan,
    report: &Report,
    bad: bool,
    allow_unrecorded: bool,
) -> Result<()> {
    if let Some(v) = report.own().filter(|_| bad) {
        return Err(Error::unverified(format!(
            "backup {ts} is {}: {} (see the BACKUP{} lines on standard output)",
            v.verdict.word(),
            v.reasons.join("; "),
            if plan.missing.is_empty() {
                ""
            } else {
                " and MISSING"
            }
        )));
    }
    // Without a manifest: the warning goes with the one error line, or
    // alone on stderr after a success.
    let note = match &plan.warning {
        Some(w) => format!("; note: {w}"),
        None => String::new(),
    };
    let (failed, unrecorded, named) = (report.failed, report.unrecorded, report.named);
    if report.missing > 0 {
        return Err(Error::unverified(format!(
            "backup {ts}: {} objects are missing: their checksum records are stored but the objects are not (see the MISSING lines on standard output){note}",
            report.missing
        )));
    }
    if failed > 0 {
        return Err(Error::unverified(format!(
            "backup {ts}: {failed} of {named} objects failed verification (see the FAILED lines on standard output){note}"
        )));
    }
    if unrecorded > 0 && !allow_unrecorded {
        return Err(Error::unverified(format!(
            "backup {ts}: {unrecorded} of {named} objects have no checksum record and cannot be verified (see the UNRECORDED lines; written by another tool? --allow-unrecorded accepts them){note}"
        )));
    }
    if let Some(w) = &plan.warning {
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
                "backup {ts} has no gpbackup manifest (neither gpbackup_{ts}_config.yaml nor gpbackup_{ts}_toc.yaml): its stored objects are checked against their checksum records only, so an object lost together with its record cannot be found"
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
                        status: Status::Missing,
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
                    status: Status::Extra,
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
