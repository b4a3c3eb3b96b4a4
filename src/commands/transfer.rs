//! backup_file, restore_file, backup_data, restore_data, restore_data_subset.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::data::repo::{self, Part};
use crate::data::stream;
use crate::error::{Error, Result};
use crate::process::metrics::Timed;
use crate::process::signals::CleanupGuard;
use crate::protocol::args::LocalFile;
use crate::protocol::keys::ObjectKey;
use crate::protocol::offsets;
use crate::storage::{is_stale_temp, temp_name, temp_owner, Storage};

use super::Context;

/// Stores `input` as the object `key` (see [`repo::store`]).
fn store(ctx: &Context, key: &ObjectKey, input: Box<dyn Read + Send>, source: &str) -> Result<()> {
    let storage = ctx.storage_for_changes()?;
    let path = key.path();
    let write = repo::WriteInfo {
        command: ctx.command,
        source,
        timestamp: key.timestamp.as_str(),
        options: &ctx.config.redacted_options,
    };
    let more = ctx.more_storage_for_changes(WRITE_LANES - 1);
    let (stored, deferred) =
        repo::store_with_lanes(&lanes(storage.as_ref(), &more), path, input, &write)?;
    ctx.object_done(key, stored.size);
    deferred.finish();
    Ok(())
}

/// Connections a small object's steps run on at once, when they are to be
/// had without a login of their own (the connection broker's): a write's
/// data, lookup and record; a read's record and object.
const WRITE_LANES: usize = 3;
const READ_LANES: usize = 2;

/// `first` and then `more`, as the lanes of one command.
fn lanes<'a>(first: &'a dyn Storage, more: &'a [Box<dyn Storage>]) -> Vec<&'a dyn Storage> {
    std::iter::once(first)
        .chain(more.iter().map(|s| s.as_ref()))
        .collect()
}

pub fn backup_file(ctx: &Context, file: &LocalFile) -> Result<()> {
    let path = &file.path;
    let f = File::open(path)
        .map_err(|e| Error::io(format!("backup_file: cannot read local file {path}: {e}")))?;
    store(ctx, &file.key, Box::new(Timed(f)), path)
}

pub fn backup_data(ctx: &Context, key: &ObjectKey) -> Result<()> {
    let stdin = ctx.stdin()?;
    stream::enlarge_pipe(stdin.as_fd());
    // A stalled producer does not hold up a cancelled request.
    store(
        ctx,
        key,
        Box::new(Timed(stream::Input(stdin))),
        "standard input",
    )
}

fn stdout_file(ctx: &Context) -> Result<File> {
    let stdout = ctx.stdout()?;
    stream::enlarge_pipe(stdout.as_fd());
    Ok(stdout)
}

pub fn restore_data(ctx: &Context, key: &ObjectKey) -> Result<()> {
    restore_to(ctx, key, Part::Whole)
}

/// Copies `part` of the verified object `key` to standard output, its
/// steps on up to [`READ_LANES`] connections, and logs the summary.
fn restore_to(ctx: &Context, key: &ObjectKey, part: Part) -> Result<()> {
    let storage = ctx.storage()?;
    let more = ctx.more_storage(READ_LANES - 1);
    let lanes = lanes(storage.as_ref(), &more);
    let out = stdout_file(ctx)?;
    let (n, deferred) = repo::restore_with_lanes(
        &lanes,
        key.path(),
        part,
        ctx.command,
        out,
        ctx.config.read_ahead,
    )?;
    ctx.object_done(key, n);
    deferred.finish();
    Ok(())
}

/// The most offsets text read, far more than any segment's table count needs.
const MAX_OFFSETS_BYTES: u64 = 256 << 20;

pub fn restore_data_subset(ctx: &Context, key: &ObjectKey, offsets_file: &Path) -> Result<()> {
    let mut text = String::new();
    File::open(offsets_file)
        .and_then(|f| f.take(MAX_OFFSETS_BYTES).read_to_string(&mut text))
        .map_err(|e| {
            Error::invalid(format!(
                "cannot read offsets file {}: {e}",
                offsets_file.display()
            ))
        })?;
    let origin = format!("offsets file {}", offsets_file.display());
    let ranges = offsets::parse(&text).map_err(|e| e.context(origin.clone()))?;
    let part = Part::Ranges {
        ranges: &ranges,
        origin: &origin,
    };
    restore_to(ctx, key, part)
}

pub fn restore_file(ctx: &Context, file: &LocalFile) -> Result<()> {
    let storage = ctx.storage()?;
    let object = repo::open_verified(storage.as_ref(), file.key.path(), Part::Whole)?;
    let target = PathBuf::from(&file.path);
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::create_dir_all(&parent).map_err(|e| {
        Error::io(format!(
            "restore_file: cannot create folder {}: {e}",
            parent.display()
        ))
    })?;
    remove_stale_local_temporaries(&parent, &name);
    let temp = parent.join(temp_name(&name));
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| {
            Error::io(format!(
                "restore_file: cannot create {}: {e}",
                temp.display()
            ))
        })?;
    let guard = CleanupGuard::remove_file(temp.clone());
    let n = object.copy_to(ctx.command, out, ctx.config.read_ahead)?;
    guard.disarm_with(|| {
        std::fs::rename(&temp, &target).map_err(|e| {
            Error::io(format!(
                "restore_file: cannot rename into {}: {e}",
                target.display()
            ))
        })
    })?;
    ctx.object_done(&file.key, n);
    Ok(())
}

/// Removes what earlier restores of `name` into `dir`, killed with SIGKILL,
/// left behind (temporaries of processes of this host that are gone).
fn remove_stale_local_temporaries(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let ours = temp_owner(&file).is_some_and(|(object, _, _)| object == name);
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if ours && is_file && is_stale_temp(&file) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => log::info!(
                    "restore_file: removed {} left by a restore that was killed",
                    entry.path().display()
                ),
                Err(e) => log::warn!(
                    "restore_file: cannot remove stale temporary {}: {e}",
                    entry.path().display()
                ),
            }
        }
    }
}
