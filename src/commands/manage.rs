//! delete_backup, list_directory, delete_directory, replicate_backup, delete_replica.

use std::io::Write;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use std::collections::HashMap;

use crate::data::integrity;
use crate::error::{Error, Result};
use crate::process::progress::Progress;
use crate::process::{fanout, pause};
use crate::protocol::args::Folder;
use crate::protocol::keys::Timestamp;
use crate::storage::{
    commit_closed, read_to_end, sweep_stale_temporaries, temp_owner, ObjectInfo, OpenOptions,
    Storage, StoragePath,
};

use super::Context;

pub fn delete_backup(ctx: &Context, ts: &Timestamp) -> Result<()> {
    let storage = ctx.storage_for_changes()?;
    let prefix = ts.prefix();
    log::info!(
        "delete_backup: deleting {prefix} from {}",
        storage.describe()
    );
    let summary = storage.delete_dir_all(prefix).map_err(|e| {
        e.context(format!(
            "delete_backup of {ts} from {} failed",
            storage.describe()
        ))
    })?;
    // The date folder goes too once its last backup is gone (another backup
    // of the same day keeps it). The backup itself is deleted by now, so a
    // failure here is only worth a warning.
    let date_dir = prefix.parent().filter(|d| !d.is_root());
    if let Some((date_dir, Err(e))) = date_dir.map(|d| {
        let removed = storage.remove_dir_if_empty(&d);
        (d, removed)
    }) {
        log::warn!(
            "delete_backup: backup {ts} is deleted, but its empty date folder {date_dir} could not be removed from {}: {e}",
            storage.describe()
        );
    }
    if summary.files == 0 {
        // Harmless for a repeat, but a typo in the timestamp or the wrong
        // plugin config would orphan the real backup: say where we looked.
        let place = format!("{}/{prefix}", storage.describe());
        log::warn!(
            "delete_backup: nothing is stored for backup {ts} in {place} (already deleted, or another timestamp or plugin config was meant)"
        );
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "backup {ts}: nothing found in {place}");
    } else {
        log::info!(
            "delete_backup: deleted backup {ts}: {} files",
            summary.files
        );
    }
    Ok(())
}

pub fn list_directory(ctx: &Context, path: Option<&Folder>) -> Result<()> {
    let dir = path.map(|f| f.0.clone()).unwrap_or_default();
    let storage = ctx.storage()?;
    let objects = storage.list(&dir).map_err(|e| {
        e.context(format!(
            "list_directory of {dir:?} in {} failed",
            storage.describe()
        ))
    })?;
    let mut out = std::io::stdout().lock();
    for o in &objects {
        if writeln!(out, "{}\t{}", o.path, o.size).is_err() {
            return Ok(()); // reader went away
        }
    }
    let _ = out.flush();
    log::info!("list_directory: {} objects under {dir:?}", objects.len());
    Ok(())
}

pub fn delete_directory(ctx: &Context, path: &Folder) -> Result<()> {
    let dir = path.0.clone();
    if dir.is_root() {
        return Err(Error::invalid(
            "delete_directory needs a folder below option \"directory\"; it will not delete the whole directory",
        ));
    }
    let storage = ctx.storage()?;
    log::info!(
        "delete_directory: deleting {dir} from {}",
        storage.describe()
    );
    let s = storage.delete_dir_all(&dir).map_err(|e| {
        e.context(format!(
            "delete_directory of {dir} in {} failed",
            storage.describe()
        ))
    })?;
    log::info!(
        "delete_directory: deleted {} files and {} folders",
        s.files,
        s.dirs
    );
    Ok(())
}

/// Copies backup `ts` to the replica. A rerun after an interruption
/// completes the copy: files missing on the replica are copied, temporaries
/// left there by a copier that is gone are removed, and files already whole
/// (the same size, and records of the same content) are left alone. A
/// replica that already has everything is refused as the plugin test bench
/// expects ([`crate::storage::Replica::already_there`]), and a file there
/// that differs from the primary's is refused, naming it. Each object's data
/// is copied before its checksum record, so a half-made replica never looks
/// complete.
pub fn replicate_backup(ctx: &Context, ts: &Timestamp) -> Result<()> {
    let storage = ctx.storage_with_replica()?;
    let remote = replica_of(storage.as_ref())?.storage();
    let replica_name = remote.describe();
    let prefix = ts.prefix();
    let failed = |e: Error| e.context(format!("replicate_backup of {ts} to {replica_name} failed"));
    let files: Vec<ObjectInfo> = storage
        .list_all(prefix)?
        .into_iter()
        .filter(|f| temp_owner(f.path.file_name()).is_none())
        .collect();
    if files.is_empty() {
        return Err(Error::not_found(format!(
            "backup {ts} not found in {}; check the timestamp and the plugin config",
            storage.describe()
        )));
    }
    let there = remote.list_all(prefix).map_err(failed)?;
    remove_dead_copiers_temporaries(remote, &there)?;
    let (data, records, both) = compare_listings(ts, &files, &there, &replica_name)?;
    // Records on both systems must say the same, compared on as many
    // connections as copies would use.
    let width = replica_of(storage.as_ref())?.streams();
    fanout::run(
        storage.as_ref(),
        width,
        || ctx.storage_with_replica(),
        both,
        |s, path, _| {
            let there = read_all(replica_of(s)?.storage(), &path).map_err(failed)?;
            if read_all(s, &path)? != there {
                return Err(differs(ts, &path, &replica_name, "its content differs"));
            }
            Ok(())
        },
    )?;
    let missing = data.len() + records.len();
    if missing == 0 {
        return Err(replica_of(storage.as_ref())?.already_there(&format!(
            "backup {ts} is already on {replica_name} ({} files); nothing was copied",
            files.len()
        )));
    }
    if missing < files.len() {
        log::info!(
            "replicate_backup: {} of {} files of backup {ts} are already on {replica_name}; copying the {missing} missing",
            files.len() - missing,
            files.len()
        );
    }
    let started = Instant::now();
    let sizes: HashMap<&str, u64> = files.iter().map(|f| (f.path.as_str(), f.size)).collect();
    let bytes = data
        .iter()
        .chain(&records)
        .filter_map(|p| sizes.get(p.as_str()))
        .sum();
    let progress = Progress::start("replicate_backup", missing as u64, bytes);
    // Data before records: a record on the replica means its data is there.
    let copied = copy_all(ctx, storage.as_ref(), data, &progress)
        .and_then(|a| copy_all(ctx, storage.as_ref(), records, &progress).map(|b| a + b));
    progress.finish();
    let copied = copied.map_err(failed)?;
    super::log_summary("replicate_backup", prefix, copied, started);
    Ok(())
}

/// What of `files` (the primary's) the replica, holding `there`, lacks: the
/// data and the checksum records to copy; and the records both have (to
/// compare). A file of another size there is refused.
fn compare_listings(
    ts: &Timestamp,
    files: &[ObjectInfo],
    there: &[ObjectInfo],
    replica_name: &str,
) -> Result<(Vec<StoragePath>, Vec<StoragePath>, Vec<StoragePath>)> {
    let there: HashMap<&str, u64> = there
        .iter()
        .filter(|f| temp_owner(f.path.file_name()).is_none())
        .map(|f| (f.path.as_str(), f.size))
        .collect();
    let (mut data, mut records, mut both) = (Vec::new(), Vec::new(), Vec::new());
    for f in files {
        let is_record = integrity::is_record(f.path.file_name());
        match there.get(f.path.as_str()) {
            None if is_record => records.push(f.path.clone()),
            None => data.push(f.path.clone()),
            Some(&size) if size != f.size => {
                return Err(differs(
                    ts,
                    &f.path,
                    replica_name,
                    &format!("{size} bytes there, {} here", f.size),
                ));
            }
            Some(_) if is_record => both.push(f.path.clone()),
            Some(_) => {}
        }
    }
    Ok((data, records, both))
}

/// A file of the replica that is not the primary's.
fn differs(ts: &Timestamp, path: &str, replica: &str, why: &str) -> Error {
    Error::storage(format!(
        "{path} on the replica {replica} differs from the primary's ({why}); replicate_backup does not overwrite it: remove the replica's copy with delete_replica {ts}, then run replicate_backup again"
    ))
}

/// The bytes of the small file `path` (a checksum record).
fn read_all(storage: &dyn Storage, path: &StoragePath) -> Result<Vec<u8>> {
    read_to_end(storage.open(path, &OpenOptions::default())?.as_mut())
}

/// Removes the temporaries of `files` (on the replica) whose copier, on this
/// host, is gone; one that cannot be removed is only worth a warning.
fn remove_dead_copiers_temporaries(remote: &dyn Storage, files: &[ObjectInfo]) -> Result<()> {
    sweep_stale_temporaries(
        remote,
        files,
        |f| {
            log::info!(
                "replicate_backup: removed {} left on {} by a copy that was interrupted",
                f.path,
                remote.describe()
            )
        },
        |f, e| {
            log::warn!(
                "replicate_backup: cannot remove {} left on {} by a copy that was interrupted: {e}",
                f.path,
                remote.describe()
            );
            Ok(())
        },
    )?;
    Ok(())
}

/// Copies `paths` to the replica (each replacing a partial copy there), with
/// as many streams as option `replication_streams` allows; returns the bytes
/// copied. The first failure stops every worker.
fn copy_all(
    ctx: &Context,
    storage: &dyn Storage,
    paths: Vec<StoragePath>,
    progress: &Progress,
) -> Result<u64> {
    if paths.is_empty() {
        return Ok(0);
    }
    let streams = replica_of(storage)?.streams().min(paths.len());
    log::info!(
        "replicate_backup: copying {} files from {} with {streams} streams",
        paths.len(),
        storage.describe()
    );
    let copied = AtomicU64::new(0);
    fanout::run(
        storage,
        streams,
        || ctx.storage_with_replica(),
        paths,
        |storage, path, _| {
            let r = replica_of(storage)?;
            let (closed, n) = r.copy_closed(&path, &path)?;
            pause::pause("replica-copied");
            commit_closed(closed)?;
            pause::pause("replica-committed");
            copied.fetch_add(n, Ordering::Relaxed);
            progress.inc(1, n);
            log::debug!("replicate_backup: copied {path} ({n} bytes)");
            Ok(())
        },
    )?;
    Ok(copied.into_inner())
}

pub fn delete_replica(ctx: &Context, ts: &Timestamp) -> Result<()> {
    let storage = ctx.storage_with_replica()?;
    let replica = replica_of(storage.as_ref())?.storage();
    let replica_name = replica.describe();
    log::info!(
        "delete_replica: deleting {} from {replica_name}",
        ts.prefix()
    );
    let s = replica
        .delete_dir_all(ts.prefix())
        .map_err(|e| e.context(format!("delete_replica of {ts} from {replica_name} failed")))?;
    if s.files == 0 && s.dirs == 0 {
        log::info!("delete_replica: backup {ts} already deleted from {replica_name}");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "backup {ts} already deleted from the replica {replica_name}"
        );
    } else {
        log::info!(
            "delete_replica: deleted backup {ts} from {replica_name}: {} files",
            s.files
        );
    }
    Ok(())
}

/// The replica of `storage`, or why there is none.
fn replica_of(storage: &dyn Storage) -> Result<&dyn crate::storage::Replica> {
    storage.replica().ok_or_else(|| {
        Error::config(
            "replication needs backend ddboost with the remote_* options set in the plugin config",
        )
    })
}
