//! backup_file, restore_file, backup_data, restore_data, restore_data_subset.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::data::integrity;
use crate::data::stream::{self, Verify};
use crate::error::{Error, ErrorKind, Result};
use crate::process::signals::{self, CleanupGuard};
use crate::process::{journal, pause};
use crate::protocol::args::LocalFile;
use crate::protocol::keys::ObjectKey;
use crate::protocol::offsets;
use crate::storage::{
    commit_closed, is_stale_temp, temp_name, temp_owner, ObjectReader, Replica, Storage,
};

use super::{log_summary, Context};

/// Stores `input` as the object `key`, in the steps that keep the old or the
/// new object readable whatever step is interrupted (see `integrity`): data
/// to a temporary (closed before anything else is opened), its record
/// staged, data renamed into place (the commit point: from here on the
/// command succeeds), record renamed into place. With `replication: on` the
/// replica gets the object, in the same steps, before the primary's commit,
/// so that a failed replica copy leaves the primary's old object.
fn store(ctx: &Context, key: &ObjectKey, input: Box<dyn Read + Send>, source: &str) -> Result<()> {
    let storage = ctx.storage_for_changes()?;
    let path = key.relative();
    let started = Instant::now();
    let fail = |e: Error| {
        e.context(format!(
            "{} of {path} to {} failed",
            ctx.command,
            storage.describe()
        ))
    };
    let journal =
        journal::begin(&ctx.config.redacted_options, key.timestamp.as_str()).map_err(fail)?;
    let mut writer = storage.create(&path).map_err(fail)?;
    let entry = stream::upload(input, writer.as_mut(), source).map_err(fail)?;
    let size = entry.sum.size;
    // The input may have ended because a signal stopped its producer.
    signals::check().map_err(fail)?;
    pause::pause("data-written");
    let closed = writer.close().map_err(fail)?;
    if let Some(replica) = storage.replica().filter(|r| r.mirrors_writes()) {
        replicate(ctx, replica, &path, closed.temp(), entry.clone())?;
    }
    integrity::stage(storage.as_ref(), &path, entry).map_err(fail)?;
    pause::pause("record-staged");
    signals::commit_point(|| commit_closed(closed)).map_err(fail)?;
    pause::pause("data-committed");
    integrity::publish_committed(storage.as_ref(), &path);
    journal.done();
    pause::pause("record-committed");
    log_summary(ctx.command, &path, size, started);
    Ok(())
}

/// Copies the primary's closed temporary `temp` of `path` to the replica and
/// commits it there in the same three steps: the object is there, whole,
/// before the primary's commit.
fn replicate(
    ctx: &Context,
    replica: &dyn Replica,
    path: &str,
    temp: &str,
    entry: integrity::Entry,
) -> Result<()> {
    let started = Instant::now();
    let remote = replica.storage();
    let fail = |e: Error| {
        e.context(format!(
            "{} of {path}: replication to {} failed; the object is left as it was on the primary",
            ctx.command,
            remote.describe()
        ))
    };
    let (closed, n) = replica.copy_closed(temp, path).map_err(fail)?;
    integrity::stage(remote, path, entry).map_err(fail)?;
    commit_closed(closed).map_err(fail)?;
    integrity::publish_committed(remote, path);
    log_summary(&format!("{} (replication)", ctx.command), path, n, started);
    Ok(())
}

pub fn backup_file(ctx: &Context, file: &LocalFile) -> Result<()> {
    let path = &file.path;
    let f = File::open(path)
        .map_err(|e| Error::io(format!("backup_file: cannot read local file {path}: {e}")))?;
    store(ctx, &file.key, Box::new(f), path)
}

pub fn backup_data(ctx: &Context, key: &ObjectKey) -> Result<()> {
    let stdin = std::io::stdin();
    stream::enlarge_pipe(stdin.as_fd());
    let fd = stdin
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::io(format!("cannot use standard input: {e}")))?;
    store(ctx, key, Box::new(File::from(fd)), "standard input")
}

/// An object opened for a restore, with what to verify.
struct Source {
    storage: Box<dyn Storage>,
    reader: Box<dyn ObjectReader>,
    path: String,
    /// The entries of its records, read before it was opened.
    entries: Vec<integrity::Entry>,
}

/// Opens the object `key`; its first read will be at `first_read`. Its
/// records are read first, so that no stream is held while waiting for
/// another (a system's streams may all be taken).
fn open_source(ctx: &Context, key: &ObjectKey, first_read: u64) -> Result<Source> {
    let storage = ctx.storage()?;
    let path = key.relative();
    let entries = integrity::load(storage.as_ref(), &path)?;
    let reader = storage.open_at(&path, first_read).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            Error::not_found(format!(
                "backup object {path} not found in {}; check the backup timestamp and that the plugin config points at the storage the backup was written to",
                storage.describe()
            ))
        } else {
            e.context(format!("cannot open {path}"))
        }
    })?;
    Ok(Source {
        storage,
        reader,
        path,
        entries,
    })
}

/// What to verify a restore against: the entries of the object's records
/// whose size matches it.
fn expected(src: &mut Source) -> Result<Verify> {
    let entries = std::mem::take(&mut src.entries);
    if entries.is_empty() {
        log::warn!(
            "{} has no checksum record (not written by this plugin?); restoring it unverified",
            src.path
        );
        // Nothing confirms the size: ask the storage.
        src.reader.exact_size()?;
        return Ok(Verify::Nothing);
    }
    let matching = integrity::entries_for(entries, src.reader.as_mut(), &src.path)?;
    Ok(Verify::Entries(matching))
}

fn stdout_file() -> Result<File> {
    let stdout = std::io::stdout();
    stream::enlarge_pipe(stdout.as_fd());
    let fd = stdout
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::io(format!("cannot use standard output: {e}")))?;
    Ok(File::from(fd))
}

pub fn restore_data(ctx: &Context, key: &ObjectKey) -> Result<()> {
    let mut src = open_source(ctx, key, 0)?;
    let verify = expected(&mut src)?;
    let started = Instant::now();
    let size = src.reader.size();
    let n = stream::download_ahead(
        src.reader.as_mut(),
        std::slice::from_ref(&(0..size)),
        stdout_file()?,
        verify,
        &src.path,
        ctx.config.read_ahead,
    )
    .map_err(|e| restore_error(ctx, &src, e))?;
    log_summary(ctx.command, &src.path, n, started);
    Ok(())
}

fn restore_error(ctx: &Context, src: &Source, e: Error) -> Error {
    match e.kind() {
        ErrorKind::BrokenPipe | ErrorKind::Integrity => e,
        _ => e.context(format!(
            "{} of {} from {} failed",
            ctx.command,
            src.path,
            src.storage.describe()
        )),
    }
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
    let ranges = offsets::parse(&text)
        .map_err(|e| e.context(format!("offsets file {}", offsets_file.display())))?;
    let merged = offsets::merge(&ranges);
    let first_read = merged.first().map_or(0, |r| r.start);
    let mut src = open_source(ctx, key, first_read)?;
    if offsets::check_within(&ranges, src.reader.size(), &src.path).is_err() {
        src.reader.exact_size()?;
    }
    offsets::check_within(&ranges, src.reader.size(), &src.path)
        .map_err(|e| e.context(format!("offsets file {}", offsets_file.display())))?;
    log::debug!(
        "{}: {} ranges ({} reads) from {}",
        ctx.command,
        ranges.len(),
        merged.len(),
        src.path
    );
    // Every block a range touches is verified; records of 0.1.0 have no
    // block digests, so their subsets cannot be.
    let verify = match expected(&mut src)? {
        Verify::Entries(e) if e.iter().any(|e| e.blocks.is_some()) => {
            Verify::Entries(e.into_iter().filter(|e| e.blocks.is_some()).collect())
        }
        Verify::Entries(_) => {
            log::warn!(
                "{}: its checksum record has no block digests (written by 0.1.0); the subset is restored unverified",
                src.path
            );
            Verify::Nothing
        }
        Verify::Nothing => Verify::Nothing,
    };
    let started = Instant::now();
    let n = stream::download_ahead(
        src.reader.as_mut(),
        &merged,
        stdout_file()?,
        verify,
        &src.path,
        ctx.config.read_ahead,
    )
    .map_err(|e| restore_error(ctx, &src, e))?;
    log_summary(ctx.command, &src.path, n, started);
    Ok(())
}

pub fn restore_file(ctx: &Context, file: &LocalFile) -> Result<()> {
    let mut src = open_source(ctx, &file.key, 0)?;
    let verify = expected(&mut src)?;
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
    let started = Instant::now();
    let size = src.reader.size();
    let n = stream::download_ahead(
        src.reader.as_mut(),
        std::slice::from_ref(&(0..size)),
        out,
        verify,
        &src.path,
        ctx.config.read_ahead,
    )
    .map_err(|e| restore_error(ctx, &src, e))?;
    guard.disarm_with(|| {
        std::fs::rename(&temp, &target).map_err(|e| {
            Error::io(format!(
                "restore_file: cannot rename into {}: {e}",
                target.display()
            ))
        })
    })?;
    log_summary(ctx.command, &src.path, n, started);
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
