//! delete_backup, list_directory, delete_directory, replicate_backup, delete_replica.

use std::io::Write;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::protocol::args::Folder;
use crate::protocol::keys::{Timestamp, BACKUPS_DIR};
use crate::storage::Storage;

use super::Context;

pub fn delete_backup(ctx: &Context, ts: &Timestamp) -> Result<()> {
    let storage = ctx.storage_for_changes()?;
    let prefix = ts.prefix();
    log::info!(
        "delete_backup: deleting {prefix} from {}",
        storage.describe()
    );
    let summary = storage.delete_dir_all(&prefix).map_err(|e| {
        e.context(format!(
            "delete_backup of {ts} from {} failed",
            storage.describe()
        ))
    })?;
    // The date folder goes too once its last backup is gone (another backup
    // of the same day keeps it). The backup itself is deleted by now, so a
    // failure here is only worth a warning.
    let date_dir = format!("{BACKUPS_DIR}/{}", ts.date());
    if let Err(e) = storage.remove_dir_if_empty(&date_dir) {
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
    if dir.is_empty() {
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

pub fn replicate_backup(ctx: &Context, ts: &Timestamp) -> Result<()> {
    let storage = ctx.storage_with_replica()?;
    let replica_name = replica_of(storage.as_ref())?.storage().describe();
    let files = storage.list_all(&ts.prefix())?;
    if files.is_empty() {
        return Err(Error::not_found(format!(
            "backup {ts} not found in {}; check the timestamp and the plugin config",
            storage.describe()
        )));
    }
    let streams = replica_of(storage.as_ref())?.streams().min(files.len());
    log::info!(
        "replicate_backup: copying {} files of backup {ts} from {} to {replica_name} with {streams} streams",
        files.len(),
        storage.describe()
    );
    let started = Instant::now();
    // Workers take files in path order (checksum records sort first).
    let queue: Mutex<Vec<String>> =
        Mutex::new(files.iter().rev().map(|f| f.path.clone()).collect());
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let copied = AtomicU64::new(0);
    // The first failure stops every worker.
    let fail = |e: Error| {
        if let Ok(mut f) = failed.lock() {
            f.get_or_insert(e);
        }
    };
    let work = |storage: &dyn Storage| loop {
        if failed.lock().map(|f| f.is_some()).unwrap_or(true) {
            return;
        }
        let Some(path) = queue.lock().ok().and_then(|mut q| q.pop()) else {
            return;
        };
        let result = replica_of(storage).and_then(|r| r.copy(&path, true));
        match result {
            Ok(n) => {
                copied.fetch_add(n, Ordering::Relaxed);
                log::debug!("replicate_backup: copied {path} ({n} bytes)");
            }
            Err(e) => return fail(e),
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..streams {
            scope.spawn(|| match ctx.storage_with_replica() {
                Ok(s) => work(s.as_ref()),
                Err(e) => fail(e),
            });
        }
        work(storage.as_ref());
    });
    if let Some(e) = failed.into_inner().ok().flatten() {
        return Err(e.context(format!("replicate_backup of {ts} to {replica_name} failed")));
    }
    super::log_summary(
        "replicate_backup",
        &ts.prefix(),
        copied.load(Ordering::Relaxed),
        started,
    );
    Ok(())
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
        .delete_dir_all(&ts.prefix())
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
